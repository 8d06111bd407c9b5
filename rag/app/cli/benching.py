"""`rag bench ...`: retrieval, answers, speed and index costs on XQuAD and the eval set, and HTTP load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rag.answer.answering import AnswerSettings
from rag.app import pipeline
from rag.app.cli.common import (
    EmbedderOption,
    IndexOption,
    KOption,
    MinSupportOption,
    ModelOption,
    RetrievalOption,
    app,
    assembly_progress,
    err,
    fail,
    friendly,
    open_answerer,
    out,
    progress_bar,
)
from rag.search.retrieval import RetrievalSettings
from rag.store.locations import is_database_url
from rag.text.chunking import ChunkerSettings

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on XQuAD (German paragraphs, German and English questions).")
app.add_typer(bench_app, name="bench")
XQUAD_DEFAULT = Path("../shared/data/xquad-dev")


@bench_app.command("retrieval", epilog="Example: $ rag bench retrieval --limit 200")
@friendly
def bench_retrieval(xquad: Path = typer.Option(XQUAD_DEFAULT, "--xquad", help="Folder with xquad.de/en.dev.json."),
                    limit: Optional[int] = typer.Option(None, help="Only the first N questions."),
                    translate: bool = typer.Option(True, help="Also run the variants that translate English questions."),
                    dense_weight: float = typer.Option(RetrievalSettings.dense_weight),
                    lexical_weight: float = typer.Option(RetrievalSettings.lexical_weight),
                    max_tokens: int = typer.Option(ChunkerSettings.max_tokens),
                    overlap: int = typer.Option(ChunkerSettings.overlap_tokens),
                    model: Optional[str] = ModelOption, embedder: Optional[str] = EmbedderOption,
                    store: Optional[str] = typer.Option(None, "--index", help="Build the paragraphs into this index "
                                                        "(an empty one: a PostgreSQL URL with a schema of its own) "
                                                        "instead of a temporary SQLite folder."),
                    report: Optional[Path] = typer.Option(None, "--json", help="Also write the rows as JSON.")):
    """Recall@1/3/5, MRR and latency per question language and retrieval variant."""
    from rich.table import Table

    from rag.quality.evaluation import latency_summary
    from rag.quality.xquad import load_xquad, retrieval_benchmark

    data = load_xquad(xquad)
    translator = None
    if translate:
        translator = pipeline.make_translator(model, progress=assembly_progress()).translate_timed
    result = retrieval_benchmark(data, pipeline.make_embedder(embedder), translator,
                                 RetrievalSettings(dense_weight=dense_weight, lexical_weight=lexical_weight),
                                 ChunkerSettings(max_tokens, overlap), limit=limit,
                                 on_progress=lambda message: err.print(message, style="dim"), store=store)
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

        from rag.fileio import atomic_write_json

        atomic_write_json(report, {"build_seconds": result.build_seconds, "chunks": result.chunks,
                                   "rows": [asdict(r) for r in result.rows]})


@bench_app.command("index", epilog="Example: $ rag bench index --chunks 1000,10000 --json")
@friendly
def bench_index(chunks: str = typer.Option("1000,10000,100000", help="Index sizes in chunks, comma-separated."),
                xquad: Path = typer.Option(XQUAD_DEFAULT, "--xquad", help="Folder with xquad.de/en.dev.json."),
                store: Optional[str] = typer.Option(None, "--index", help="Build in this PostgreSQL database "
                                                    "(postgresql://…; a schema per size, dropped after) instead "
                                                    "of temporary SQLite folders."),
                as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON instead of a table.")):
    """Build, add-one, remove-one, open and query costs, disk bytes and memory as an index grows."""
    from rich.table import Table

    from rag.quality.indexbench import run_index_bench
    from rag.quality.xquad import load_xquad

    try:
        sizes = [int(size) for size in chunks.split(",")]
    except ValueError:
        fail(f"--chunks takes sizes like 1000,10000,100000, not {chunks!r}")
    data = load_xquad(xquad)
    questions = [q.question["de"] for q in data.questions]
    if store is not None and not is_database_url(store):
        fail(f"--index takes a PostgreSQL URL (postgresql://…) here, not {store!r}: without it the sizes are "
             "built in temporary SQLite folders")
    rows = run_index_bench(sizes, list(data.paragraphs.values()), questions,
                           on_progress=lambda message: err.print(message, style="dim"), store=store)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=f"Index costs in {'PostgreSQL' if store else 'SQLite'} (vectors: random unit vectors, "
                        "384 dimensions; texts: XQuAD dev paragraphs)")
    for column in ("chunks", "build s", "add one s", "remove one s", "open s", "dense p50/p95 ms",
                   "lexical p50/p95 ms", "hybrid p50/p95 ms", "disk MB", "resident MB", "resident / vectors",
                   "exact dense p50/p95 ms", "dense recall @10 / @50", "hybrid in a month p50/p95 ms",
                   "in a month / all, p95"):
        table.add_column(column, justify="right")
    for row in rows:
        q, recall = row["query_ms"], row["dense_recall"]
        exact = q.get("dense exact")  # only where dense search is approximate (HNSW)
        table.add_row(str(row["chunks"]), f"{row['build_seconds']:.1f}", f"{row['add_one_seconds']:.3f}",
                      f"{row['remove_one_seconds']:.3f}", f"{row['open_seconds']:.2f}",
                      *(f"{q[m]['p50']:.1f} / {q[m]['p95']:.1f}" for m in ("dense", "lexical", "hybrid")),
                      f"{row['disk_bytes'] / 1e6:.1f}", f"{row['resident_bytes'] / 1e6:.1f}",
                      f"{row['resident_per_vector_byte']:.2f}",
                      f"{exact['p50']:.1f} / {exact['p95']:.1f}" if exact else "(dense is exact)",
                      f"{recall['@10']:.3f} / {recall['@50']:.3f}",
                      f"{q['hybrid in a month']['p50']:.1f} / {q['hybrid in a month']['p95']:.1f}",
                      f"{q['hybrid in a month']['p95'] / q['hybrid']['p95']:.2f}x")
    out.print(table)


@bench_app.command("speed", epilog="Example: $ rag bench speed --set eval/questions.jsonl --json")
@friendly
def bench_speed(question_set: Path = typer.Option(Path("eval/questions.jsonl"), "--set",
                                                  help="Questions (the evaluation set's JSON lines)."),
                index_dir: str = IndexOption,
                limit: Optional[int] = typer.Option(None, help="Only the first N questions."),
                model: Optional[str] = ModelOption, embedder: Optional[str] = EmbedderOption,
                isolated: bool = typer.Option(False, "--isolated", help="Each question reads its sources as if "
                                              "it came first (as `rag ask` does), not from states saved by "
                                              "earlier ones."),
                as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables.")):
    """Seconds by stage and model work per question, against bare llama-cpp-python's speed."""
    from rich.table import Table

    from rag.quality.evaluation import load_eval_set
    from rag.quality.speedbench import run_speed_bench

    questions = load_eval_set(question_set)[:limit]
    answerer = open_answerer(index_dir, model, embedder, "hybrid", AnswerSettings.k, AnswerSettings.min_support)
    sample = next(iter(answerer.index.documents.values())).text
    with progress_bar("answering") as bar:
        task = bar.add_task("answering", total=len(questions))
        report = run_speed_bench(answerer, questions, sample, on_done=lambda row: bar.advance(task),
                                 isolated=isolated)
    if as_json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
        return
    reuse = "each question read as if first" if isolated else "sources read by earlier questions reused"
    table = Table(title=f"Speed: {report['questions']} questions, models warm, {reuse} ({report['runtime']})")
    for column in ("id", "s", "bare s", "prompt", "cached", "generated", "calls", "right"):
        table.add_column(column, justify="left" if column == "id" else "right")
    for row in report["rows"]:
        table.add_row(row["id"], f"{row['seconds']:.1f}", f"{row['bare_seconds']:.1f}", str(row["prompt_tokens"]),
                      str(row["cached_tokens"]), str(row["completion_tokens"]), str(sum(row["calls"].values())),
                      "yes" if row["correct"] else "no")
    out.print(table)
    out.print(f"median {report['median_seconds']:.1f} s a question (p95 {report['p95_seconds']:.1f}); median model "
              f"work {report['median_prompt_tokens']:.0f} prompt tokens evaluated, {report['median_cached_tokens']:.0f} "
              f"reused, {report['median_completion_tokens']:.0f} generated, {report['median_calls']:.0f} calls",
              soft_wrap=True)
    out.print(f"calls: {', '.join(f'{k} {v}' for k, v in report['calls'].items())}", soft_wrap=True)
    out.print(f"bare llama-cpp-python here: {report['raw_prompt_tokens_per_s']:.0f} prompt tokens/s "
              f"({report['bare_prompt_length']}-token prompt), {report['raw_generation_tokens_per_s']:.1f} generated "
              f"tokens/s; overhead ratio {report['overhead_ratio']:.2f}; accuracy {report['accuracy']:.3f}",
              soft_wrap=True)


@bench_app.command("answers", epilog="Example: $ rag bench answers --limit 100 --results answers.jsonl")
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

    from rag.fileio import atomic_write_json
    from rag.quality.xquad import answer_benchmark, load_xquad

    data = load_xquad(xquad)
    emb = pipeline.make_embedder(embedder)
    generator = pipeline.make_generator(model, progress=assembly_progress())
    answers: list[dict] = []
    settings = (RetrievalSettings(mode=retrieval), AnswerSettings(k=k, min_support=min_support))
    with progress_bar("answering") as bar:
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


@bench_app.command("http", epilog="Example: $ rag bench http --url http://127.0.0.1:8000 --concurrency 4")
@friendly
def bench_http(url: str = typer.Option("http://127.0.0.1:8000", "--url", help="A running `rag serve`; several "
                                       "replicas comma-separated take the questions in turn (round robin)."),
               question_set: Path = typer.Option(Path("eval/questions.jsonl"), "--set",
                                                 help="Questions: .jsonl, .txt or .csv, as for `rag batch`; "
                                                 "'-': one a line from stdin, asked as they come, until it closes."),
               concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Requests in flight at once."),
               limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N questions."),
               api_key: Optional[str] = typer.Option(None, "--api-key", envvar="RAG_API_KEY"),
               retry_other: bool = typer.Option(False, "--retry-other", help="Ask a question refused by one replica "
                                                "(no connection, or 503) once of the next, as a client would."),
               report: Optional[Path] = typer.Option(None, "--json", help="Also write the summary and outcomes as JSON.")):
    """A bounded load test of `rag serve`: answers per minute, latency and queue wait, every status."""
    import itertools
    import sys
    from dataclasses import asdict

    from rag.app.batch import read_questions
    from rag.fileio import atomic_write_json
    from rag.quality.loadtest import run_load

    if str(question_set) == "-":  # a steady stream: each line is asked as it arrives
        asked = itertools.islice((line.strip() for line in sys.stdin if line.strip()), limit)
    else:
        asked = [q.question for q in read_questions(question_set)[0][:limit]]
    load = run_load([u.strip() for u in url.split(",") if u.strip()], asked, concurrency, api_key,
                    retry_other=retry_other)
    if not load.outcomes:
        fail("no questions were asked")
    summary = load.summary()
    if not summary["answered"] and all(o.status == 0 for o in load.outcomes):
        fail(f"no answer from {url}: {load.outcomes[0].error}")
    out.print(f"{summary['requests']} requests at concurrency {concurrency} in {summary['wall_seconds']:.1f} s: "
              f"{summary['answered']} answered ({summary['answers_per_minute']} per minute), statuses {summary['statuses']}")
    if len(summary["answered_by"]) > 1:
        out.print("  answered by: " + ", ".join(f"{server} {n}" for server, n in summary["answered_by"].items()))
    if summary["retried"]:
        out.print(f"  {summary['retried']} refused by one replica and asked again of the next")
    for name in ("latency_seconds", "queue_seconds"):
        if summary[name]:
            out.print(f"  {name.replace('_seconds', '')}: median {summary[name]['median']:.2f} s, "
                      f"p95 {summary[name]['p95']:.2f} s")
    if report:
        atomic_write_json(report, {"summary": summary, "outcomes": [asdict(o) for o in load.outcomes]})
