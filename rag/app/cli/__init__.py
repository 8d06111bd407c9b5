"""The `rag` command: a thin typer layer over the library in rag.pipeline and friends.

Every failure the user can act on is one sentence on stderr and a non-zero exit, no traceback.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from rag.app import pipeline
from rag.answer.answering import Answer, AnswerSettings
from rag.text.chunking import ChunkerSettings
from rag.text.documents import MAX_FILE_MB
from rag.errors import RagError
from rag.search.retrieval import MODES, RetrievalSettings

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
LlmUrlOption = typer.Option(None, "--llm-url", help="Answer through this OpenAI-compatible model server (several: "
                                                    "comma-separated, spread and failed over) instead of the in-process "
                                                    "model (default: $RAG_LLM_URL; $RAG_LLM_MODEL, $RAG_LLM_API_KEY).")
LlmTimeoutOption = typer.Option(60.0, "--llm-timeout", min=0.1, help="Seconds a model server request may take, "
                                                                      "failover included.")
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


def _choice(model: Optional[str], embedder: Optional[str], llm_url: Optional[str], llm_timeout: float):
    return pipeline.ModelChoice(model, embedder, pipeline.ServerChoice(llm_url, timeout=llm_timeout))


def _open(index: Path, model: Optional[str], embedder: Optional[str], retrieval: str, k: int, min_support: float,
          llm_url: Optional[str] = None, llm_timeout: float = 60.0):
    try:
        return pipeline.open_answerer(index, _choice(model, embedder, llm_url, llm_timeout), RetrievalSettings(mode=retrieval),
                                      AnswerSettings(k=k, min_support=min_support), progress=_assembly_progress())
    except ValueError as exc:
        fail(str(exc))


@app.command(epilog="Example: $ rag index ~/articles --index indexes/articles")
@friendly
def index(paths: list[Path] = typer.Argument(None, help="Files or folders of .txt/.md articles (default: seeds/)."),
          index_dir: Path = IndexOption,
          add: bool = typer.Option(False, "--add", help="Only add or update these files; remove nothing."),
          no_wait: bool = typer.Option(False, "--no-wait", help="Fail at once if another rag is writing the index."),
          max_file_mb: float = typer.Option(MAX_FILE_MB, help="Skip files larger than this (megabytes)."),
          embedder: Optional[str] = EmbedderOption,
          max_tokens: int = typer.Option(ChunkerSettings.max_tokens, help="Chunk size in embedder tokens."),
          overlap: int = typer.Option(ChunkerSettings.overlap_tokens, help="Overlap between chunks in tokens.")):
    """Build or update an index: new and changed articles are indexed, articles whose files are
    gone from the given folders are removed. Unchanged input does no work."""
    from rag.store.sqlite.index import build_index

    try:
        settings = ChunkerSettings(max_tokens, overlap)
    except ValueError as exc:
        fail(str(exc))
    paths = paths or [pipeline.DEFAULT_SEEDS]
    for path in paths:
        if not path.exists() and not path.is_symlink():
            fail(f"{path} does not exist")
    try:
        with _progress("embedding") as bar:
            task = bar.add_task("embedding", total=None)
            report = build_index(paths, index_dir, pipeline.make_embedder(embedder), settings,
                                 on_progress=lambda done, total: bar.update(task, completed=done, total=total),
                                 add_only=add, max_file_mb=max_file_mb, wait=not no_wait,
                                 on_wait=lambda message: err.print(message, soft_wrap=True))
    except KeyboardInterrupt:
        err.print(f"interrupted: the index at {index_dir} is as it was before this run")
        raise typer.Exit(130)
    for path, reason in report.skipped:
        err.print(f"skipped {path}: {reason}", soft_wrap=True)
    for path, note in report.notes:
        err.print(f"{path}: {note}", soft_wrap=True)
    if report.up_to_date:
        out.print(f"{index_dir} is up to date: {report.documents} documents, {report.chunks} chunks; nothing to embed.")
    else:
        removed = f", removed {len(report.removed)}" if report.removed else ""
        out.print(f"indexed {report.documents} documents into {report.chunks} chunks at {index_dir} "
                  f"(added or changed {len(report.added)}{removed}; embedded {report.embedded}, "
                  f"reused {report.reused}) in {report.seconds:.1f} s", soft_wrap=True)


@app.command(epilog="Example: $ rag remove 000_81614b4d2948c4c6 --index indexes/articles")
@friendly
def remove(doc_ids: list[str] = typer.Argument(..., help="Document ids (file names without .txt/.md)."),
           index_dir: Path = IndexOption,
           no_wait: bool = typer.Option(False, "--no-wait", help="Fail at once if another rag is writing the index.")):
    """Remove articles from an index by id: their text can no longer be retrieved or cited."""
    from rag.store.sqlite.index import remove_documents

    report = remove_documents(index_dir, doc_ids, wait=not no_wait,
                              on_wait=lambda message: err.print(message, soft_wrap=True))
    out.print(f"removed {len(report.removed)} document{'s' if len(report.removed) != 1 else ''} "
              f"({report.chunks} chunk{'s' if report.chunks != 1 else ''}) from {index_dir} in {report.seconds:.2f} s",
              soft_wrap=True)


@app.command(epilog="Example: $ rag documents --index indexes/articles")
@friendly
def documents(index_dir: Path = IndexOption,
              as_json: bool = typer.Option(False, "--json", help="One JSON object a line.")):
    """List the articles in an index: id, date, chunks, file."""
    from rag.store.sqlite.index import open_index

    for row in open_index(index_dir).document_list():
        if as_json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            out.print(f"{row['doc_id']}  {row['date'] or '-':10}  {row['chunks']:>4} chunks  {row['path']}",
                      soft_wrap=True, highlight=False)


def withdrawal_reason(answer: Answer) -> str:
    """Why an answer was withdrawn, in one line."""
    if answer.ungrounded_numbers:
        numbers = ", ".join(map(str, answer.ungrounded_numbers))
        return f"withdrawn: {numbers} {'is' if len(answer.ungrounded_numbers) == 1 else 'are'} not in the sources"
    if answer.support is None:
        return "withdrawn: no sentence of the sources supports the model's answer"
    return f"withdrawn: the sources support the model's answer too weakly (support {answer.support:.2f})"


def answer_on_screen(generator, ask) -> Answer:
    """`ask(on_token)` with one answer on screen: the checked one.

    On a terminal the model's draft shows dimmed under a status line while it is written and
    checked, and is then replaced in place by the checked answer (the draft is often reworded or
    withdrawn: two answers on screen read as two answers). Piped, only the checked answer is
    printed. Ctrl-C stops the model either way (KeyboardInterrupt).
    """
    if not out.is_terminal:
        with ctrl_c_stops(generator):
            answer = ask(None)
    else:
        from rich.console import Group
        from rich.live import Live
        from rich.text import Text

        draft: list[str] = []

        def view(status: str) -> Group:
            return Group(Text(status, style="dim italic"), Text("".join(draft), style="dim"))

        with Live(view("reading the sources…"), console=out, auto_refresh=False, transient=True) as live:
            def on_token(piece: str) -> None:
                draft.append(piece)
                live.update(view("checking the sources…"), refresh=True)

            with ctrl_c_stops(generator):
                answer = ask(on_token)
    out.print(answer.answer, markup=False, soft_wrap=True, highlight=False)
    if answer.abstained:
        out.print(f"({withdrawal_reason(answer)})", style="dim", markup=False, soft_wrap=True)
    return answer


def print_answer_sources(answer: Answer, console: Console = out) -> None:
    """The verified sources under an answer, and notes on what checking them found."""
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


@app.command(epilog='Example: $ rag ask "How many agreements were signed?"')
@friendly
def ask(question: str = typer.Argument(..., help="The question, in English or German."),
        index_dir: Path = IndexOption,
        k: int = KOption,
        min_support: float = MinSupportOption,
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
        model: Optional[str] = ModelOption,
        embedder: Optional[str] = EmbedderOption,
        retrieval: str = RetrievalOption,
        llm_url: Optional[str] = LlmUrlOption,
        llm_timeout: float = LlmTimeoutOption):
    """Answer one question with cited sources."""
    if not question.strip():
        fail("the question is empty")
    answerer = _open(index_dir, model, embedder, retrieval, k, min_support, llm_url, llm_timeout)
    load_seconds = answerer.warm_up()
    if as_json:
        answer = answerer.ask(question)
        answer.timings.update(load_seconds)
        out.print_json(json.dumps(answer.to_json(), ensure_ascii=False))
        return
    answer = answer_on_screen(answerer.generator, lambda on_token: answerer.ask(question, on_token=on_token))
    print_answer_sources(answer)


@app.command(epilog="Example: $ rag batch questions.jsonl -o answers.jsonl")
@friendly
def batch(file: Path = typer.Argument(..., help="Questions: .jsonl ({\"id\", \"question\"}), .txt or .csv."),
          output: Path = typer.Option(..., "-o", "--output", help="Where to write the answers (JSON lines)."),
          index_dir: Path = IndexOption,
          k: int = KOption,
          min_support: float = MinSupportOption,
          model: Optional[str] = ModelOption,
          embedder: Optional[str] = EmbedderOption,
          retrieval: str = RetrievalOption,
          llm_url: Optional[str] = LlmUrlOption,
          llm_timeout: float = LlmTimeoutOption):
    """Answer a file of questions, one JSON object per line, resumable."""
    from rag.app.batch import read_questions, run_batch

    questions, problems = read_questions(file)
    for line, reason in problems:
        err.print(f"{file}:{line}: skipped: {reason}", soft_wrap=True)
    answerer = _open(index_dir, model, embedder, retrieval, k, min_support, llm_url, llm_timeout)
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


@app.command(epilog="Example: $ rag models --model fast")
@friendly
def models(model: Optional[str] = ModelOption, embedder: Optional[str] = EmbedderOption,
           llm_url: Optional[str] = LlmUrlOption, llm_timeout: float = LlmTimeoutOption):
    """Show the models that would be used: path, size, sha256, context, dimension (or the model server)."""
    emb = pipeline.make_embedder(embedder)
    gen = pipeline.make_generator(model, _assembly_progress(), pipeline.ServerChoice(llm_url, timeout=llm_timeout))
    out.print("[bold]answerer[/]")
    if hasattr(gen, "urls"):  # a model server
        gen.load()
        gen.count_tokens("probe")  # finds the server's tokenizer
        gen.yes_probability([{"role": "user", "content": "Reply yes or no: is water wet?"}])  # finds logprobs
        out.print(f"  server          {', '.join(gen.urls)}", soft_wrap=True)
        out.print(f"  model id        {gen.model}", soft_wrap=True)
        out.print(f"  logprobs        {'yes' if gen.logprobs else 'no: the support check reads the yes/no reply'}")
        out.print(f"  tokenizer       {gen.tokenizer}")
        out.print(f"  context length  {gen.context_length} (assumed)")
    else:
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


@app.command("eval", epilog="Example: $ rag eval --summary eval-summary.md")
@friendly
def evaluate(question_set: Path = typer.Option(Path("eval/questions.jsonl"), "--set", help="Evaluation questions (JSON lines)."),
             index_dir: Path = IndexOption,
             baseline: Path = typer.Option(Path("eval/baseline.json"), help="Report to compare with."),
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
             llm_timeout: float = LlmTimeoutOption):
    """Answer the evaluation set, score it per tag, and fail (exit 1) on a regression against the baseline."""
    from rich.table import Table

    from rag.quality.evaluation import (EXIT_REGRESSION, compare_with_baseline, load_eval_set, markdown_summary, run_eval,
                             runtime_note, settings_note)
    from rag.fileio import atomic_write_json, atomic_write_text

    questions = load_eval_set(question_set)
    answerer = _open(index_dir, model, embedder, retrieval, k, min_support, llm_url, llm_timeout)
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

    def write_summary(recorded: dict | None, problems: list[str], notes: list[str]) -> None:
        text = markdown_summary(result, recorded, problems, notes)
        if summary_file is not None:
            atomic_write_text(summary_file, text)
            out.print(f"summary written to {summary_file}")
        elif os.environ.get("GITHUB_STEP_SUMMARY"):
            with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as step_summary:
                step_summary.write(text)

    if update_baseline:
        atomic_write_json(baseline, result)
        out.print(f"baseline updated: {baseline}")
        write_summary(None, [], [f"this run was recorded as the new baseline {baseline}"])
        return
    if not baseline.is_file():
        fail(f"no baseline at {baseline}; create one with --update-baseline")
    try:
        recorded = json.loads(baseline.read_text())
        problems = compare_with_baseline(result, recorded)
    except (ValueError, KeyError) as exc:
        fail(f"the baseline {baseline} is not a valid report ({exc})")
    notes = [note for note in (runtime_note(result, recorded), settings_note(result, recorded)) if note]
    for note in notes:
        err.print(f"note: {note}", soft_wrap=True, markup=False)
    write_summary(recorded, problems, notes)
    if problems:
        err.print(f"[bold red]regression[/] against {baseline}:")
        for problem in problems:
            err.print(f"  - {problem}", soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_REGRESSION)
    out.print(f"no regression against {baseline}")


@app.command(epilog="Example: $ rag chat --index indexes/articles")
@friendly
def chat(index_dir: Path = IndexOption,
         k: int = KOption,
         min_support: float = MinSupportOption,
         model: Optional[str] = ModelOption,
         embedder: Optional[str] = EmbedderOption,
         retrieval: str = RetrievalOption,
         llm_url: Optional[str] = LlmUrlOption,
         llm_timeout: float = LlmTimeoutOption):
    """A conversation: answers stream, verified sources follow, follow-up questions are understood."""
    from rag.app.chat import ChatSession
    from rag.models.packages import rag_home

    answerer = _open(index_dir, model, embedder, retrieval, k, min_support, llm_url, llm_timeout)
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
        try:
            answer = answer_on_screen(answerer.generator, lambda on_token: session.ask(
                line, on_token=on_token,
                on_rewrite=lambda q: out.print(f"(searching: {q})", style="dim", markup=False, soft_wrap=True)))
        except KeyboardInterrupt:
            err.print("(stopped)")
            continue
        print_answer_sources(answer)
        out.print()


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command(epilog="Example: $ rag serve --port 8000 --api-key \"$(cat key.txt)\"")
@friendly
def serve(index_dir: Path = IndexOption,
          host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; another than loopback needs --api-key."),
          port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free one, printed)."),
          api_key: Optional[str] = typer.Option(None, "--api-key", envvar="RAG_API_KEY", show_envvar=True,
                                                help="Require 'Authorization: Bearer KEY' on every /v1 route."),
          max_queue: int = typer.Option(8, "--max-queue", min=0, help="Questions that may wait for the model; more get 503."),
          cors_origin: list[str] = typer.Option([], "--cors-origin", help="Allow browsers from this origin (repeatable); off by default."),
          parallel: int = typer.Option(1, "--parallel", min=1, max=64,
                                       help="Questions answered at once; more than 1 needs a model server (--llm-url)."),
          k: int = KOption,
          min_support: float = MinSupportOption,
          model: Optional[str] = ModelOption,
          embedder: Optional[str] = EmbedderOption,
          retrieval: str = RetrievalOption,
          llm_url: Optional[str] = LlmUrlOption,
          llm_timeout: float = LlmTimeoutOption):
    """Serve answers over HTTP: native /v1/ask and OpenAI-compatible /v1/chat/completions."""
    import logging
    import socket

    import uvicorn

    from rag.store.sqlite.index import open_index
    from rag.app.http.server import ServerSettings, create_app
    from rag.app.service import AnswerService

    if not _is_loopback(host) and not api_key:
        fail(f"refusing to listen on {host} without an API key: pass --api-key KEY (or set RAG_API_KEY), "
             "or listen on 127.0.0.1")
    if parallel > 1 and not pipeline.ServerChoice(llm_url).urls:
        fail("--parallel above 1 needs a model server (--llm-url): the in-process model answers one question at a time")
    open_index(index_dir)  # no index, or one of an older format: one line now, before the models load
    try:
        service = AnswerService.from_choice(index_dir, _choice(model, embedder, llm_url, llm_timeout),
                                            RetrievalSettings(mode=retrieval), AnswerSettings(k=k, min_support=min_support),
                                            progress=_assembly_progress())
    except ValueError as exc:
        fail(str(exc))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host.strip("[]"), port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    for name in ("rag.server", "uvicorn.error"):  # one line per request, and the server's own news
        logging.getLogger(name).setLevel(logging.INFO)
    failure: list[str] = []
    server: uvicorn.Server | None = None

    def stop_on_failure(message: str) -> None:
        failure.append(message)
        server.should_exit = True

    app_ = create_app(service, ServerSettings(api_key or None, max_queue, tuple(cors_origin), parallel), stop_on_failure)
    server = uvicorn.Server(uvicorn.Config(app_, log_config=None, access_log=False, timeout_graceful_shutdown=5))
    bound = listener.getsockname()[1]
    err.print(f"rag serve: http://{host}:{bound} (index {index_dir}); loading models, /health says 503 until ready",
              soft_wrap=True)
    server.run(sockets=[listener])
    if failure:
        fail(failure[0])


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
                    report: Optional[Path] = typer.Option(None, "--json", help="Also write the rows as JSON.")):
    """Recall@1/3/5, MRR and latency per question language and retrieval variant."""
    from rich.table import Table

    from rag.quality.xquad import load_xquad, retrieval_benchmark
    from rag.quality.evaluation import latency_summary

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

        from rag.fileio import atomic_write_json

        atomic_write_json(report, {"build_seconds": result.build_seconds, "chunks": result.chunks,
                                   "rows": [asdict(r) for r in result.rows]})


@bench_app.command("index", epilog="Example: $ rag bench index --chunks 1000,10000 --json")
@friendly
def bench_index(chunks: str = typer.Option("1000,10000,100000", help="Index sizes in chunks, comma-separated."),
                xquad: Path = typer.Option(XQUAD_DEFAULT, "--xquad", help="Folder with xquad.de/en.dev.json."),
                as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON instead of a table.")):
    """Build, add-one, remove-one, open and query costs, disk bytes and memory as an index grows."""
    from rich.table import Table

    from rag.quality.xquad import load_xquad
    from rag.quality.indexbench import run_index_bench

    try:
        sizes = [int(size) for size in chunks.split(",")]
    except ValueError:
        fail(f"--chunks takes sizes like 1000,10000,100000, not {chunks!r}")
    data = load_xquad(xquad)
    questions = [q.question["de"] for q in data.questions]
    rows = run_index_bench(sizes, list(data.paragraphs.values()), questions,
                           on_progress=lambda message: err.print(message, style="dim"))
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title="Index costs (vectors: random unit vectors, 384 dimensions; texts: XQuAD dev paragraphs)")
    for column in ("chunks", "build s", "add one s", "remove one s", "open s", "dense p50/p95 ms",
                   "lexical p50/p95 ms", "hybrid p50/p95 ms", "disk MB", "resident MB", "resident / vectors"):
        table.add_column(column, justify="right")
    for row in rows:
        q = row["query_ms"]
        table.add_row(str(row["chunks"]), f"{row['build_seconds']:.1f}", f"{row['add_one_seconds']:.3f}",
                      f"{row['remove_one_seconds']:.3f}", f"{row['open_seconds']:.2f}",
                      *(f"{q[m]['p50']:.1f} / {q[m]['p95']:.1f}" for m in ("dense", "lexical", "hybrid")),
                      f"{row['disk_bytes'] / 1e6:.1f}", f"{row['resident_bytes'] / 1e6:.1f}",
                      f"{row['resident_per_vector_byte']:.2f}")
    out.print(table)


@bench_app.command("speed", epilog="Example: $ rag bench speed --set eval/questions.jsonl --json")
@friendly
def bench_speed(question_set: Path = typer.Option(Path("eval/questions.jsonl"), "--set",
                                                  help="Questions (the evaluation set's JSON lines)."),
                index_dir: Path = IndexOption,
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
    answerer = _open(index_dir, model, embedder, "hybrid", AnswerSettings.k, AnswerSettings.min_support)
    sample = next(iter(answerer.index.documents.values())).text
    with _progress("answering") as bar:
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

    from rag.quality.xquad import answer_benchmark, load_xquad
    from rag.fileio import atomic_write_json

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


@bench_app.command("http", epilog="Example: $ rag bench http --url http://127.0.0.1:8000 --concurrency 4")
@friendly
def bench_http(url: str = typer.Option("http://127.0.0.1:8000", "--url", help="A running `rag serve`."),
               question_set: Path = typer.Option(Path("eval/questions.jsonl"), "--set",
                                                 help="Questions: .jsonl, .txt or .csv, as for `rag batch`."),
               concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Requests in flight at once."),
               limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N questions."),
               api_key: Optional[str] = typer.Option(None, "--api-key", envvar="RAG_API_KEY"),
               report: Optional[Path] = typer.Option(None, "--json", help="Also write the summary and outcomes as JSON.")):
    """A bounded load test of `rag serve`: answers per minute, latency and queue wait, every status."""
    from dataclasses import asdict

    from rag.app.batch import read_questions
    from rag.fileio import atomic_write_json
    from rag.quality.loadtest import run_load

    questions, _ = read_questions(question_set)
    load = run_load(url, [q.question for q in questions[:limit]], concurrency, api_key)
    summary = load.summary()
    if not summary["answered"] and all(o.status == 0 for o in load.outcomes):
        fail(f"no answer from {url}: {load.outcomes[0].error}")
    out.print(f"{summary['requests']} requests at concurrency {concurrency} in {summary['wall_seconds']:.1f} s: "
              f"{summary['answered']} answered ({summary['answers_per_minute']} per minute), statuses {summary['statuses']}")
    for name in ("latency_seconds", "queue_seconds"):
        if summary[name]:
            out.print(f"  {name.replace('_seconds', '')}: median {summary[name]['median']:.2f} s, "
                      f"p95 {summary[name]['p95']:.2f} s")
    if report:
        atomic_write_json(report, {"summary": summary, "outcomes": [asdict(o) for o in load.outcomes]})
