"""What every `rag` command shares: the typer app, the consoles, the common options, one-line
errors (`friendly`), progress bars and opening an answerer.

Every failure the user can act on is one sentence on stderr and a non-zero exit, no traceback.
"""

from __future__ import annotations

import functools
import signal
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from rag.answer.answering import AnswerSettings
from rag.answer.timeframe import TimeFrame
from rag.app import pipeline
from rag.errors import RagError
from rag.search.retrieval import MODES, RetrievalSettings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Offline question answering over German news articles, with checked citations.")
err = Console(stderr=True, highlight=False)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)

EXIT_ERROR = 2

IndexOption = typer.Option(str(pipeline.DEFAULT_INDEX), "--index",
                           help="Index folder, or a PostgreSQL URL: postgresql://user@host/db?schema=name.")
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

# Reading the web (rag index; rag follow): how politely, and what counts as an article.
DelayOption = typer.Option(5.0, "--delay", min=0.0, help="Seconds between two requests to one host (a longer "
                                                         "Crawl-delay in its robots.txt wins).")
ContactOption = typer.Option(None, "--contact", help="A contact (e-mail or address) sent in the User-Agent, so "
                                                     "that a site can reach whoever runs rag.")
AllowPrivateOption = typer.Option(False, "--allow-private-hosts",
                                  help="Follow links in feeds and sitemaps to loopback, private and link-local "
                                       "addresses (refused by default: a feed must not reach internal services).")
DAY = ["%Y-%m-%d"]
TodayOption = typer.Option(None, "--today", formats=DAY, help="Read the questions as on this day (YYYY-MM-DD): "
                           "what 'last week' or 'aktuell' mean, and no article after it counts as current. "
                           "Default: today.")
SinceOption = typer.Option(None, "--since", formats=DAY, help="Only articles published on or after this day "
                           "(YYYY-MM-DD); with --until, replaces a period the question names.")
UntilOption = typer.Option(None, "--until", formats=DAY, help="Only articles published on or before this day (YYYY-MM-DD).")
MinCharsOption = typer.Option(400, "--min-chars", min=1, help="A page with less article text than this is not an "
                                                              "article (a teaser, login page or section front).")


def web_fetcher(delay: float, contact: str | None, allow_private: bool):
    """A factory of the polite fetcher these options describe (made only when a page is fetched)."""
    from rag.sources.fetch import Fetcher

    return lambda: Fetcher(delay=delay, contact=contact, allow_private=allow_private)


def fail(message: str, code: int = EXIT_ERROR) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)  # a message's [brackets] are text
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


def progress_bar(description: str) -> Progress:
    return Progress(TextColumn(description), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal)


def assembly_progress():
    """A progress callback for the one-time assembly of the default model."""
    state: dict = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            err.print("assembling the default model from its packages (once)…")
            state["bar"] = progress_bar("model").__enter__()
            state["task"] = state["bar"].add_task("model", total=total)
        state["bar"].update(state["task"], completed=done)
        if done >= total:
            state["bar"].__exit__(None, None, None)

    return update


def model_choice(model: Optional[str], embedder: Optional[str], llm_url: Optional[str], llm_timeout: float):
    return pipeline.ModelChoice(model, embedder, pipeline.ServerChoice(llm_url, timeout=llm_timeout))


def time_frame(today: Optional[datetime], since: Optional[datetime], until: Optional[datetime]) -> TimeFrame:
    """The --today, --since and --until options as the answerer's time frame (one line for since after until)."""
    try:
        return TimeFrame(*(value.date() if value else None for value in (today, since, until)))
    except ValueError as exc:
        fail(str(exc))


def open_answerer(index: Path, model: Optional[str], embedder: Optional[str], retrieval: str, k: int, min_support: float,
          llm_url: Optional[str] = None, llm_timeout: float = 60.0, frame: TimeFrame = TimeFrame()):
    try:
        return pipeline.open_answerer(index, model_choice(model, embedder, llm_url, llm_timeout), RetrievalSettings(mode=retrieval),
                                      AnswerSettings(k=k, min_support=min_support), progress=assembly_progress(),
                                      frame=frame)
    except ValueError as exc:
        fail(str(exc))
