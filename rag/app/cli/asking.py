"""`rag ask`, `rag batch`, `rag chat`, `rag models`: answers on screen and in files."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from rag.answer.answers import Answer
from rag.app import pipeline
from rag.app.cli.common import (
    EmbedderOption,
    IndexOption,
    KOption,
    LlmTimeoutOption,
    LlmUrlOption,
    MinSupportOption,
    ModelOption,
    RetrievalOption,
    SinceOption,
    TodayOption,
    UntilOption,
    app,
    assembly_progress,
    ctrl_c_stops,
    err,
    fail,
    friendly,
    open_answerer,
    out,
    progress_bar,
    time_frame,
)


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
    if answer.abstained and not answer.outside_period:  # that answer says why itself
        out.print(f"({answer.withdrawal_reason()})", style="dim", markup=False, soft_wrap=True)
    return answer


def print_answer_sources(answer: Answer, console: Console = out) -> None:
    """The verified sources under an answer, and notes on what checking them found."""
    shown = [c for c in answer.citations if c.verified]
    if shown:
        console.print("\nSources:")
    for c in shown:
        excerpt = c.quote if len(c.quote) <= 160 else c.quote[:157] + "…"
        if c.title or c.site:  # an article from the web or an export: title · site · date, and its link
            about = " · ".join(part for part in (c.title, c.site, c.date or "undated") if part)
            console.print(f"  [{c.number}] {about} (chars {c.start}-{c.end}): “{excerpt}”", soft_wrap=True, markup=False)
            if c.source_link or c.url:
                console.print(f"      {c.source_link or c.url}", soft_wrap=True, markup=False, style="dim")
            continue
        date = f", {c.date}" if c.date else ", undated"
        console.print(f"  [{c.number}] {c.doc_id}{date} (chars {c.start}-{c.end}): “{excerpt}”",
                      soft_wrap=True, markup=False)
    if shown and answer.as_of:
        console.print(f"As of {answer.as_of} (the newest article cited)", style="dim", markup=False)
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
        index_dir: str = IndexOption,
        k: int = KOption,
        min_support: float = MinSupportOption,
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
        model: Optional[str] = ModelOption,
        embedder: Optional[str] = EmbedderOption,
        retrieval: str = RetrievalOption,
        llm_url: Optional[str] = LlmUrlOption,
        llm_timeout: float = LlmTimeoutOption,
        today: Optional[datetime] = TodayOption,
        since: Optional[datetime] = SinceOption,
        until: Optional[datetime] = UntilOption):
    """Answer one question with cited sources."""
    if not question.strip():
        fail("the question is empty")
    answerer = open_answerer(index_dir, model, embedder, retrieval, k, min_support, llm_url, llm_timeout,
                             time_frame(today, since, until))
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
          index_dir: str = IndexOption,
          k: int = KOption,
          min_support: float = MinSupportOption,
          model: Optional[str] = ModelOption,
          embedder: Optional[str] = EmbedderOption,
          retrieval: str = RetrievalOption,
          llm_url: Optional[str] = LlmUrlOption,
          llm_timeout: float = LlmTimeoutOption,
          today: Optional[datetime] = TodayOption,
          since: Optional[datetime] = SinceOption,
          until: Optional[datetime] = UntilOption):
    """Answer a file of questions, one JSON object per line, resumable."""
    from rag.app.batch import read_questions, run_batch

    frame = time_frame(today, since, until)
    questions, problems = read_questions(file)
    for line, reason in problems:
        err.print(f"{file}:{line}: skipped: {reason}", soft_wrap=True)
    answerer = open_answerer(index_dir, model, embedder, retrieval, k, min_support, llm_url, llm_timeout, frame)
    with progress_bar("answering") as bar:
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
    gen = pipeline.make_generator(model, assembly_progress(), pipeline.ServerChoice(llm_url, timeout=llm_timeout))
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


@app.command(epilog="Example: $ rag chat --index indexes/articles")
@friendly
def chat(index_dir: str = IndexOption,
         k: int = KOption,
         min_support: float = MinSupportOption,
         model: Optional[str] = ModelOption,
         embedder: Optional[str] = EmbedderOption,
         retrieval: str = RetrievalOption,
         llm_url: Optional[str] = LlmUrlOption,
         llm_timeout: float = LlmTimeoutOption,
         today: Optional[datetime] = TodayOption,
         since: Optional[datetime] = SinceOption,
         until: Optional[datetime] = UntilOption):
    """A conversation: answers stream, verified sources follow, follow-up questions are understood."""
    from rag.app.chat import ChatSession
    from rag.models.packages import rag_home

    answerer = open_answerer(index_dir, model, embedder, retrieval, k, min_support, llm_url, llm_timeout,
                             time_frame(today, since, until))
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
