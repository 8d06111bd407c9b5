"""`rag eval`: the evaluation gate, with a table, a report and a Markdown summary."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from rag.app.cli.common import (
    DAY,
    EmbedderOption,
    IndexOption,
    KOption,
    LlmTimeoutOption,
    LlmUrlOption,
    MinSupportOption,
    ModelOption,
    RetrievalOption,
    app,
    err,
    fail,
    friendly,
    open_answerer,
    out,
    progress_bar,
    time_frame,
)


@app.command("eval", epilog="Example: $ rag eval --summary eval-summary.md")
@friendly
def evaluate(question_set: Path = typer.Option(Path("eval/questions.jsonl"), "--set", help="Evaluation questions (JSON lines)."),
             index_dir: str = IndexOption,
             baseline: Path = typer.Option(Path("eval/baselines"), help="Recorded reports to compare with: a folder "
                                           "of one per llama.cpp build (the one of this run's build is used), or one "
                                           "report."),
             report: Path = typer.Option(Path("eval/reports/latest.json"), help="Where to write this run's report."),
             update_baseline: bool = typer.Option(False, "--update-baseline", help="Write this run as the new baseline."),
             summary_file: Optional[Path] = typer.Option(
                 None, "--summary", help="Write a Markdown summary here (default: appended to $GITHUB_STEP_SUMMARY "
                                         "when that is set, as on GitHub Actions)."),
             k: int = KOption,
             min_support: float = MinSupportOption,
             model: Optional[str] = ModelOption,
             embedder: Optional[str] = EmbedderOption,
             retrieval: str = RetrievalOption,
             llm_url: Optional[str] = LlmUrlOption,
             llm_timeout: float = LlmTimeoutOption,
             today: Optional[datetime] = typer.Option(None, "--today", formats=DAY, help="Read the questions "
                                                      "without a `today` of their own as on this day (YYYY-MM-DD).")):
    """Answer the evaluation set, score it per tag, and fail (exit 1) on a regression against the baseline."""
    from rich.table import Table

    from rag.fileio import atomic_write_json, atomic_write_text
    from rag.quality.evaluation import (
        EXIT_REGRESSION,
        load_eval_set,
        markdown_summary,
        run_eval,
        settings_note,
    )
    from rag.quality.gate import baseline_name, judge, load_baselines

    questions = load_eval_set(question_set)
    try:  # before minutes of answers: a gate without its baseline can say so at once
        baselines = None if update_baseline else load_baselines(baseline)
    except FileNotFoundError:
        fail(f"no baseline at {baseline}; record one with --update-baseline")
    except ValueError as exc:
        fail(str(exc))
    answerer = open_answerer(index_dir, model, embedder, retrieval, k, min_support, llm_url, llm_timeout,
                             time_frame(today, None, None))
    answerer.warm_up()
    with progress_bar("evaluating") as bar:
        task = bar.add_task("evaluating", total=len(questions))
        result = run_eval(answerer, questions, on_done=lambda row: bar.advance(task))
    table = Table(title=f"Evaluation: {len(questions)} questions, {result['wall_seconds']:.0f} s")
    columns = [("answer_accuracy", "correct"), ("retrieval_hit", "retr. hit"), ("recall_at_k", f"R@{k}"),
               ("citation_precision", "cite P"), ("citation_recall", "cite R"), ("verified_rate", "verified"),
               ("abstained_on_unanswerable", "abstain ok"), ("answered_answerable", "answered"),
               ("stale_answers", "stale"), ("period_precision", "in period"), ("seconds_per_question", "s/q")]
    table.add_column("tag")
    table.add_column("n", justify="right")
    for _, title in columns:
        table.add_column(title, justify="right")

    def cell(value) -> str:
        return "-" if value is None else str(value) if isinstance(value, int) else f"{value:.2f}"

    def cells(summary):
        return [str(summary["questions"])] + [cell(summary[key]) for key, _ in columns]

    for tag, summary in result["tags"].items():
        table.add_row(tag, *cells(summary))
    table.add_row("[bold]all[/]", *cells(result["summary"]))
    out.print(table)
    wrong = [r for r in result["questions"] if not r["correct"]]
    for row in wrong:
        out.print(f"  wrong: {row['id']}: {row['answer']}", soft_wrap=True, markup=False)
    atomic_write_json(report, result)
    out.print(f"report written to {report}")

    def write_summary(recorded: dict | None, problems: list[str], notes: list[str]) -> None:
        text = markdown_summary(result, recorded, problems, notes)
        if summary_file is not None:
            atomic_write_text(summary_file, text)
            out.print(f"summary written to {summary_file}")
        elif os.environ.get("GITHUB_STEP_SUMMARY"):
            with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as step_summary:
                step_summary.write(text)

    if update_baseline:
        target = baseline / baseline_name(result["runtime"]) if baseline.is_dir() or not baseline.suffix else baseline
        atomic_write_json(target, result)
        out.print(f"baseline updated: {target}")
        write_summary(None, [], [f"this run was recorded as the new baseline {target}"])
        return
    verdict = judge(result, baselines)
    out.print(verdict.describe(), soft_wrap=True)
    note = settings_note(result, verdict.reference)
    if note:
        err.print(f"note: {note}", soft_wrap=True, markup=False)
    write_summary(verdict.reference, verdict.problems, [verdict.describe()] + ([note] if note else []))
    if verdict.problems:
        err.print(f"[bold red]regression[/] ({verdict.rule}):")
        for problem in verdict.problems:
            err.print(f"  - {problem}", soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_REGRESSION)
    out.print(f"no regression ({verdict.rule}: {', '.join(verdict.held_to)})", soft_wrap=True)
