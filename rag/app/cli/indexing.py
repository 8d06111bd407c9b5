"""`rag index`, `rag remove`, `rag documents`: building and reading the index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rag.app import pipeline
from rag.app.cli.common import (AllowPrivateOption, ContactOption, DelayOption, EmbedderOption, IndexOption,
                                MinCharsOption, app, err, fail, friendly, out, progress_bar, web_fetcher)
from rag.text.chunking import ChunkerSettings
from rag.text.documents import MAX_FILE_MB


@app.command(epilog="Example: $ rag index ~/articles --index indexes/articles   (a feed and a scraper's export: "
                     "$ rag index https://www.tagesschau.de/index~rss2.xml scraped.jsonl --index indexes/news)")
@friendly
def index(inputs: list[str] = typer.Argument(None, help="Folders and files of articles (.txt, .md, saved pages "
                                             ".html, exports .jsonl/.csv), feeds and sitemaps (files or addresses), "
                                             "article addresses (default: seeds/)."),
          index_dir: str = IndexOption,
          add: bool = typer.Option(False, "--add", help="Only add or update these files; remove nothing."),
          no_wait: bool = typer.Option(False, "--no-wait", help="Fail at once if another rag is writing the index."),
          max_file_mb: float = typer.Option(MAX_FILE_MB, help="Skip files larger than this (megabytes)."),
          embedder: Optional[str] = EmbedderOption,
          max_tokens: int = typer.Option(ChunkerSettings.max_tokens, help="Chunk size in embedder tokens."),
          overlap: int = typer.Option(ChunkerSettings.overlap_tokens, help="Overlap between chunks in tokens."),
          delay: float = DelayOption, contact: Optional[str] = ContactOption,
          allow_private_hosts: bool = AllowPrivateOption, min_chars: int = MinCharsOption):
    """Build or update an index: new and changed articles are indexed, articles whose files are
    gone from the given folders are removed. Unchanged input does no work. Pages and feeds are
    fetched politely (robots.txt, a delay between requests to one host)."""
    from rag.sources.inputs import collect
    from rag.sources.urls import is_web_address
    from rag.store.locations import build_store, describe

    try:
        settings = ChunkerSettings(max_tokens, overlap)
    except ValueError as exc:
        fail(str(exc))
    inputs = inputs or [str(pipeline.DEFAULT_SEEDS)]
    local = [Path(item) for item in inputs if not is_web_address(item) and "://" not in item]
    for path in local:
        if not path.exists() and not path.is_symlink():
            fail(f"{path} does not exist")
    try:
        with progress_bar("reading") as bar:
            task = bar.add_task("reading", total=None)
            loaded = collect(inputs, fetcher_factory=web_fetcher(delay, contact, allow_private_hosts),
                             max_file_mb=max_file_mb, min_chars=min_chars, on_read=lambda where: bar.advance(task))
        with progress_bar("embedding") as bar:
            task = bar.add_task("embedding", total=None)
            report = build_store(local, index_dir, pipeline.make_embedder(embedder), settings,
                                 on_progress=lambda done, total: bar.update(task, completed=done, total=total),
                                 add_only=add, max_file_mb=max_file_mb, wait=not no_wait, loaded=loaded,
                                 on_wait=lambda message: err.print(message, soft_wrap=True))
    except KeyboardInterrupt:
        err.print(f"interrupted: the index at {describe(index_dir)} is as it was before this run")
        raise typer.Exit(130)
    for path, reason in report.skipped:
        err.print(f"skipped {path}: {reason}", soft_wrap=True, markup=False)
    for path, note in report.notes:
        err.print(f"{path}: {note}", soft_wrap=True, markup=False)
    if report.up_to_date:
        out.print(f"{describe(index_dir)} is up to date: {report.documents} documents, {report.chunks} chunks; nothing to embed.")
    else:
        removed = f", removed {len(report.removed)}" if report.removed else ""
        out.print(f"indexed {report.documents} documents into {report.chunks} chunks at {describe(index_dir)} "
                  f"(added or changed {len(report.added)}{removed}; embedded {report.embedded}, "
                  f"reused {report.reused}) in {report.seconds:.1f} s", soft_wrap=True)


@app.command(epilog="Example: $ rag remove 000_81614b4d2948c4c6 --index indexes/articles")
@friendly
def remove(doc_ids: list[str] = typer.Argument(..., help="Document ids (file names without .txt/.md)."),
           index_dir: str = IndexOption,
           no_wait: bool = typer.Option(False, "--no-wait", help="Fail at once if another rag is writing the index.")):
    """Remove articles from an index by id: their text can no longer be retrieved or cited."""
    from rag.store.locations import describe, remove_from_store

    report = remove_from_store(index_dir, doc_ids, wait=not no_wait,
                              on_wait=lambda message: err.print(message, soft_wrap=True))
    out.print(f"removed {len(report.removed)} document{'s' if len(report.removed) != 1 else ''} "
              f"({report.chunks} chunk{'s' if report.chunks != 1 else ''}) from {describe(index_dir)} in {report.seconds:.2f} s",
              soft_wrap=True)


@app.command(epilog="Example: $ rag documents --index indexes/articles")
@friendly
def documents(index_dir: str = IndexOption,
              as_json: bool = typer.Option(False, "--json", help="One JSON object a line.")):
    """List the articles in an index: id, date, chunks, file or address, and title and site where known."""
    from rag.store.locations import open_store

    for row in open_store(index_dir).document_list():
        if as_json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            about = " · ".join(str(row[key]) for key in ("title", "site") if row.get(key))
            out.print(f"{row['doc_id']}  {row['date'] or 'undated':10}  {row['chunks']:>4} chunks  {row.get('url') or row['path']}"
                      + (f"  ({about})" if about else ""), soft_wrap=True, highlight=False, markup=False)
