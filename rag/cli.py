"""The `rag` command: a thin typer layer over the library in rag.pipeline and friends.

Every failure the user can act on is one sentence on stderr and a non-zero exit, no traceback.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from . import pipeline
from .answering import Answer, AnswerSettings
from .chunking import ChunkerSettings
from .citations import strip_markers
from .errors import RagError
from .retrieval import MODES, RetrievalSettings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Offline question answering over German news articles, with checked citations.")
err = Console(stderr=True, highlight=False)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)

EXIT_ERROR = 2

IndexOption = typer.Option(pipeline.DEFAULT_INDEX, "--index", help="Index folder.")
ModelOption = typer.Option(None, "--model", help="GGUF file, or 'fast' for the packaged 0.5B model "
                                                   "(default: $RAG_MODEL, else the packaged Qwen2.5 1.5B).")
EmbedderOption = typer.Option(None, "--embedder",
                              help="'e5' (packaged multilingual-e5-small), 'minilm' (packaged all-MiniLM-L6-v2), "
                                   "a sentence-transformers folder or E5 weights file (default: $RAG_EMBEDDER, else e5).")
RetrievalOption = typer.Option("hybrid", "--retrieval", help=f"Retrieval mode: {', '.join(MODES)}.")
KOption = typer.Option(AnswerSettings.k, "--k", min=0, help="Chunks to retrieve (the best few go into the prompt).")
MinSupportOption = typer.Option(
    AnswerSettings.min_support, "--min-support", min=0.0, max=1.0,
    help="How surely the quoted sentences must answer the question (0-1) for an answer to stand; "
         "higher: fewer wrong answers, more refusals (see README).")


def fail(message: str, code: int = EXIT_ERROR) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def friendly(command):
    """Turn a RagError raised anywhere below a command into one line on stderr."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RagError as exc:
            fail(str(exc))

    return run


@contextmanager
def ctrl_c_stops(generator):
    """Inside, Ctrl-C stops the model at once (`Generator.stoppable`) and the block ends with KeyboardInterrupt."""
    with generator.stoppable():
        previous = signal.signal(signal.SIGINT, lambda _signum, _frame: generator.request_stop())
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _progress(description: str) -> Progress:
    return Progress(TextColumn(description), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal)


def _assembly_progress():
    """A progress callback for the one-time assembly of the default model."""
    state: dict = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            err.print("assembling the default model from its packages (once)…")
            state["bar"] = _progress("model").__enter__()
            state["task"] = state["bar"].add_task("model", total=total)
        state["bar"].update(state["task"], completed=done)
        if done >= total:
            state["bar"].__exit__(None, None, None)

    return update


def _open(index: Path, model: Optional[str], embedder: Optional[str], retrieval: str, k: int, min_support: float):
    try:
        return pipeline.open_answerer(index, pipeline.ModelChoice(model, embedder), RetrievalSettings(mode=retrieval),
                                      AnswerSettings(k=k, min_support=min_support), progress=_assembly_progress())
    except ValueError as exc:
        fail(str(exc))


@app.command()
@friendly
def index(paths: list[Path] = typer.Argument(None, help="Files or folders of .txt/.md articles (default: seeds/)."),
          index_dir: Path = IndexOption,
          embedder: Optional[str] = EmbedderOption,
          max_tokens: int = typer.Option(ChunkerSettings.max_tokens, help="Chunk size in embedder tokens."),
          overlap: int = typer.Option(ChunkerSettings.overlap_tokens, help="Overlap between chunks in tokens.")):
    """Build or update an index. Unchanged input does no work."""
    from .index import build_index

    try:
        settings = ChunkerSettings(max_tokens, overlap)
    except ValueError as exc:
        fail(str(exc))
    paths = paths or [pipeline.DEFAULT_SEEDS]
    for path in paths:
        if not path.exists():
            fail(f"{path} does not exist")
    with _progress("embedding") as bar:
        task = bar.add_task("embedding", total=None)
        report = build_index(paths, index_dir, pipeline.make_embedder(embedder), settings,
                             on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    for path, reason in report.skipped:
        err.print(f"skipped {path}: {reason}", soft_wrap=True)
    if report.up_to_date:
        out.print(f"{index_dir} is up to date: {report.documents} documents, {report.chunks} chunks; nothing to embed.")
    else:
        out.print(f"indexed {report.documents} documents into {report.chunks} chunks at {index_dir} "
                  f"(embedded {report.embedded}, reused {report.reused}) in {report.seconds:.1f} s")


def finish_streamed_answer(answer: Answer, streamed: str) -> None:
    """End the streamed line; an abstention follows what streamed, which was then withdrawn."""
    if answer.abstained:
        numbers = ", ".join(map(str, answer.ungrounded_numbers))
        reason = f"withdrawn: {numbers} {'is' if len(answer.ungrounded_numbers) == 1 else 'are'} not in them" \
            if numbers else "withdrawn"
        sys.stdout.write((f"\n(checked against the sources: {reason}) " if streamed else "") + answer.answer)
    sys.stdout.write("\n")
    sys.stdout.flush()


def print_answer_sources(answer: Answer, streamed: str = "", console: Console = out) -> None:
    """The verified sources under a streamed answer, and what checking them changed."""
    if not answer.abstained and strip_markers(streamed) != strip_markers(answer.answer):
        console.print(f"(checked against the sources: {answer.answer})", style="dim", markup=False, soft_wrap=True)
    shown = [c for c in answer.citations if c.verified]
    if shown:
        console.print("\nSources:")
    for c in shown:
        excerpt = c.quote if len(c.quote) <= 160 else c.quote[:157] + "…"
        date = f", {c.date}" if c.date else ""
        console.print(f"  [{c.number}] {c.doc_id}{date} (chars {c.start}-{c.end}): “{excerpt}”",
                      soft_wrap=True, markup=False)
    for c in answer.citations:
        if c.cited_as is not None:
            console.print(f"(the model cited [{c.cited_as}]; source [{c.number}] is the one that supports the answer)",
                          style="dim")
    for number in answer.invented_citations:
        err.print(f"note: dropped citation [{number}]: the model cited a source it was not given")
    unverified = [c for c in answer.citations if not c.verified]
    for c in unverified:
        err.print(f"note: citation [{c.number}] ({c.doc_id}) is not shown: no passage of it supports the answer")
    for chunk_id in answer.withheld:
        err.print(f"note: {chunk_id} was not given to the model: it contains instructions addressed to it")
    if answer.truncated:
        err.print("note: the answer was cut off at the token limit and may be incomplete")


@app.command()
@friendly
def ask(question: str = typer.Argument(..., help="The question, in English or German."),
        index_dir: Path = IndexOption,
        k: int = KOption,
        min_support: float = MinSupportOption,
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
        model: Optional[str] = ModelOption,
        embedder: Optional[str] = EmbedderOption,
        retrieval: str = RetrievalOption):
    """Answer one question with cited sources."""
    if not question.strip():
        fail("the question is empty")
    answerer = _open(index_dir, model, embedder, retrieval, k, min_support)
    load_seconds = answerer.warm_up()
    if as_json:
        answer = answerer.ask(question)
        answer.timings.update(load_seconds)
        out.print_json(json.dumps(answer.to_json(), ensure_ascii=False))
        return
    streamed: list[str] = []

    def show(piece: str) -> None:
        streamed.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()

    with ctrl_c_stops(answerer.generator):
        answer = answerer.ask(question, on_token=show)
    finish_streamed_answer(answer, "".join(streamed))
    print_answer_sources(answer, "".join(streamed))


@app.command()
@friendly
def batch(file: Path = typer.Argument(..., help="Questions: .jsonl ({\"id\", \"question\"}), .txt or .csv."),
          output: Path = typer.Option(..., "-o", "--output", help="Where to write the answers (JSON lines)."),
          index_dir: Path = IndexOption,
          k: int = KOption,
          min_support: float = MinSupportOption,
          model: Optional[str] = ModelOption,
          embedder: Optional[str] = EmbedderOption,
          retrieval: str = RetrievalOption):
    """Answer a file of questions, one JSON object per line, resumable."""
    from .batch import read_questions, run_batch

    questions, problems = read_questions(file)
    for line, reason in problems:
        err.print(f"{file}:{line}: skipped: {reason}", soft_wrap=True)
    answerer = _open(index_dir, model, embedder, retrieval, k, min_support)
    with _progress("answering") as bar:
        task = bar.add_task("answering", total=len(questions))
        summary = run_batch(answerer, questions, output, on_done=lambda: bar.advance(task))
    out.print(f"answered {summary.answered}, already in {output}: {summary.skipped_existing}, "
              f"failed: {summary.failed + len(problems)}")
    if summary.questions_per_minute:
        out.print(f"{summary.questions_per_minute:.1f} questions per minute ({summary.answer_seconds:.0f} s answering, "
                  f"models loaded in {summary.load_seconds:.1f} s)")
    if problems or summary.failed:
        raise typer.Exit(1)


@app.command()
@friendly
def models(model: Optional[str] = ModelOption, embedder: Optional[str] = EmbedderOption):
    """Show the models that would be used: path, size, sha256, context, dimension."""
    emb = pipeline.make_embedder(embedder)
    gen = pipeline.make_generator(model, progress=_assembly_progress())
    out.print("[bold]answerer[/]")
    out.print(f"  path            {gen.model_path}", soft_wrap=True)
    out.print(f"  size            {gen.model_path.stat().st_size:,} bytes")
    out.print(f"  sha256          {gen.sha256}", soft_wrap=True)
    out.print(f"  context length  {gen.training_context_length()} (trained), {gen.context_length} (used)")
    out.print("[bold]embedder[/]")
    out.print(f"  weights         {emb.weights}", soft_wrap=True)
    out.print(f"  id              {emb.model_id}")
    out.print(f"  weights sha256  {emb.sha256}", soft_wrap=True)
    out.print(f"  dimension       {emb.dimension}")
    out.print(f"  max tokens      {emb.max_tokens}")


@app.command("eval")
@friendly
def evaluate(question_set: Path = typer.Option(Path("eval/questions.jsonl"), "--set", help="Evaluation questions (JSON lines)."),
             index_dir: Path = IndexOption,
             baseline: Path = typer.Option(Path("eval/baseline.json"), help="Report to compare with."),
             report: Path = typer.Option(Path("eval/reports/latest.json"), help="Where to write this run's report."),
             update_baseline: bool = typer.Option(False, "--update-baseline", help="Write this run as the new baseline."),
             k: int = KOption,
             min_support: float = MinSupportOption,
             model: Optional[str] = ModelOption,
             embedder: Optional[str] = EmbedderOption,
             retrieval: str = RetrievalOption):
    """Answer the evaluation set, score it per tag, and fail (exit 1) on a regression against the baseline."""
    from rich.table import Table

    from .evaluation import (EXIT_REGRESSION, compare_with_baseline, load_eval_set, run_eval, runtime_note,
                             settings_note)
    from .fileio import atomic_write_json

    questions = load_eval_set(question_set)
    answerer = _open(index_dir, model, embedder, retrieval, k, min_support)
    answerer.warm_up()
    with _progress("evaluating") as bar:
        task = bar.add_task("evaluating", total=len(questions))
        result = run_eval(answerer, questions, on_done=lambda row: bar.advance(task))
    table = Table(title=f"Evaluation: {len(questions)} questions, {result['wall_seconds']:.0f} s")
    columns = [("answer_accuracy", "correct"), ("retrieval_hit", "retr. hit"), ("recall_at_k", f"R@{k}"),
               ("citation_precision", "cite P"), ("citation_recall", "cite R"), ("verified_rate", "verified"),
               ("abstained_on_unanswerable", "abstain ok"), ("answered_answerable", "answered"),
               ("seconds_per_question", "s/q")]
    table.add_column("tag")
    table.add_column("n", justify="right")
    for _, title in columns:
        table.add_column(title, justify="right")

    def cells(summary):
        return [str(summary["questions"])] + ["-" if summary[key] is None else f"{summary[key]:.2f}" for key, _ in columns]

    for tag, summary in result["tags"].items():
        table.add_row(tag, *cells(summary))
    table.add_row("[bold]all[/]", *cells(result["summary"]))
    out.print(table)
    wrong = [r for r in result["questions"] if not r["correct"]]
    for row in wrong:
        out.print(f"  wrong: {row['id']}: {row['answer']}", soft_wrap=True, markup=False)
    atomic_write_json(report, result)
    out.print(f"report written to {report}")
    if update_baseline:
        atomic_write_json(baseline, result)
        out.print(f"baseline updated: {baseline}")
        return
    if not baseline.is_file():
        fail(f"no baseline at {baseline}; create one with --update-baseline")
    try:
        recorded = json.loads(baseline.read_text())
        problems = compare_with_baseline(result, recorded)
    except (ValueError, KeyError) as exc:
        fail(f"the baseline {baseline} is not a valid report ({exc})")
    for note in (runtime_note(result, recorded), settings_note(result, recorded)):
        if note:
            err.print(f"note: {note}", soft_wrap=True, markup=False)
    if problems:
        err.print(f"[bold red]regression[/] against {baseline}:")
        for problem in problems:
            err.print(f"  - {problem}", soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_REGRESSION)
    out.print(f"no regression against {baseline}")


@app.command()
@friendly
def chat(index_dir: Path = IndexOption,
         k: int = KOption,
         min_support: float = MinSupportOption,
         model: Optional[str] = ModelOption,
         embedder: Optional[str] = EmbedderOption,
         retrieval: str = RetrievalOption):
    """A conversation: answers stream, verified sources follow, follow-up questions are understood."""
    from .chat import ChatSession
    from .models import rag_home

    answerer = _open(index_dir, model, embedder, retrieval, k, min_support)
    session = ChatSession(answerer, k=k)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if interactive:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        rag_home().mkdir(parents=True, exist_ok=True)
        prompt = PromptSession(history=FileHistory(str(rag_home() / "chat_history")))

        def read() -> str:
            return prompt.prompt("› ")

        err.print("loading models…", style="dim")
    else:
        def read() -> str:
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line

    answerer.warm_up()
    if interactive:
        out.print("Ask about the indexed articles in English or German. /help lists commands; Ctrl-D leaves.")

    streamed: list[str] = []

    def show(piece: str) -> None:
        streamed.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()

    while True:
        try:
            line = read().strip()
        except EOFError:
            break
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the line, as in a shell
        if not line:
            continue
        if line.startswith("/"):
            reply = session.command(line)
            if reply is None:
                break
            out.print(reply, markup=False, soft_wrap=True)
            continue
        if not interactive:
            out.print(f"› {line}", markup=False, soft_wrap=True)
        streamed.clear()
        try:
            with ctrl_c_stops(answerer.generator):
                answer = session.ask(line, on_token=show,
                                     on_rewrite=lambda q: out.print(f"(searching: {q})", style="dim", markup=False,
                                                                    soft_wrap=True))
        except KeyboardInterrupt:
            sys.stdout.write("\n")
            err.print("(stopped)")
            continue
        finish_streamed_answer(answer, "".join(streamed))
        print_answer_sources(answer, "".join(streamed))
        out.print()


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on XQuAD (German paragraphs, German and English questions).")
app.add_typer(bench_app, name="bench")
XQUAD_DEFAULT = Path("../shared/data/xquad-dev")


@bench_app.command("retrieval")
@friendly
def bench_retrieval(xquad: Path = typer.Option(XQUAD_DEFAULT, "--xquad", help="Folder with xquad.de/en.dev.json."),
                    limit: Optional[int] = typer.Option(None, help="Only the first N questions."),
                    translate: bool = typer.Option(True, help="Also run the variants that translate English questions."),
                    dense_weight: float = typer.Option(RetrievalSettings.dense_weight),
                    lexical_weight: float = typer.Option(RetrievalSettings.lexical_weight),
                    max_tokens: int = typer.Option(ChunkerSettings.max_tokens),
                    overlap: int = typer.Option(ChunkerSettings.overlap_tokens),
                    model: Optional[str] = ModelOption, embedder: Optional[str] = EmbedderOption,
                    report: Optional[Path] = typer.Option(None, "--json", help="Also write the rows as JSON.")):
    """Recall@1/3/5, MRR and latency per question language and retrieval variant."""
    from rich.table import Table

    from .bench import load_xquad, retrieval_benchmark
    from .evaluation import latency_summary

    data = load_xquad(xquad)
    translator = None
    if translate:
        translator = pipeline.make_translator(model, progress=_assembly_progress()).translate_timed
    result = retrieval_benchmark(data, pipeline.make_embedder(embedder), translator,
                                 RetrievalSettings(dense_weight=dense_weight, lexical_weight=lexical_weight),
                                 ChunkerSettings(max_tokens, overlap), limit=limit,
                                 on_progress=lambda message: err.print(message, style="dim"))
    table = Table(title=f"Retrieval on XQuAD dev: {result.documents} paragraphs, {result.chunks} chunks, "
                        f"{result.rows[0].questions} questions per language")
    for column in ("variant", "lang", "R@1", "R@3", "R@5", "MRR", "median ms", "p95 ms"):
        table.add_column(column, justify="left" if column in ("variant", "lang") else "right")
    for row in result.rows:
        table.add_row(row.variant, row.language, *(f"{row.recall[k]:.3f}" for k in (1, 3, 5)), f"{row.mrr:.3f}",
                      f"{row.latency['median'] * 1000:.1f}", f"{row.latency['p95'] * 1000:.1f}")
    out.print(table)
    out.print(f"index build: {result.build_seconds:.1f} s for {result.documents} documents ({result.chunks} chunks)")
    if result.translation_seconds:
        t = latency_summary(result.translation_seconds)
        out.print(f"translation of English questions (model time, recorded when first translated): "
                  f"median {t['median']:.2f} s, p95 {t['p95']:.2f} s; a cached translation costs ~0")
    if report:
        from dataclasses import asdict

        from .fileio import atomic_write_json

        atomic_write_json(report, {"build_seconds": result.build_seconds, "chunks": result.chunks,
                                   "rows": [asdict(r) for r in result.rows]})


@bench_app.command("answers")
@friendly
def bench_answers(xquad: Path = typer.Option(XQUAD_DEFAULT, "--xquad", help="Folder with xquad.de/en.dev.json."),
                  limit: Optional[int] = typer.Option(100, help="Questions per language, spread over the set (0: all)."),
                  k: int = KOption,
                  min_support: float = MinSupportOption,
                  model: Optional[str] = ModelOption, embedder: Optional[str] = EmbedderOption,
                  retrieval: str = RetrievalOption,
                  results: Optional[Path] = typer.Option(
                      None, "--results", help="Journal each scored answer to this JSON-lines file as it comes; "
                                              "run again with the same file to continue where it stopped."),
                  report: Optional[Path] = typer.Option(None, "--json", help="Also write the rows and answers as JSON.")):
    """EM, F1, contains-gold, citation precision, verified-quote and abstention rates, seconds per question."""
    from dataclasses import asdict

    from rich.table import Table

    from .bench import answer_benchmark, load_xquad
    from .fileio import atomic_write_json

    data = load_xquad(xquad)
    emb = pipeline.make_embedder(embedder)
    generator = pipeline.make_generator(model, progress=_assembly_progress())
    answers: list[dict] = []
    settings = (RetrievalSettings(mode=retrieval), AnswerSettings(k=k, min_support=min_support))
    with _progress("answering") as bar:
        task = bar.add_task("answering", total=2 * (limit or len(data.questions)))

        def done(q, scored):
            answers.append({**asdict(scored), "gold": q.answers[scored.language]})
            bar.advance(task)

        rows = answer_benchmark(data, lambda index: pipeline.answerer_for(index, emb, generator, *settings), emb,
                                limit=limit or None, results=results, on_done=done)
    table = Table(title=f"Answers on XQuAD dev, open retrieval over all paragraphs ({rows[0].questions} questions per language)")
    for column in ("lang", "EM", "F1", "contains", "cite P", "verified", "abstained", "s/q median", "s/q p95"):
        table.add_column(column, justify="left" if column == "lang" else "right")
    for row in rows:
        fmt = lambda v: "-" if v is None else f"{v:.3f}"
        table.add_row(row.language, fmt(row.exact_match), fmt(row.f1), fmt(row.contains), fmt(row.citation_precision),
                      fmt(row.verified_rate), fmt(row.abstention_rate), f"{row.seconds['median']:.1f}",
                      f"{row.seconds['p95']:.1f}")
    out.print(table)
    if report:
        atomic_write_json(report, {"rows": [asdict(r) for r in rows], "answers": answers})
