"""`rag follow`: poll feeds and sitemaps, adding their new and changed articles to an index."""

from __future__ import annotations

import re
import signal
import threading
from typing import Optional

import typer

from rag.app import pipeline
from rag.app.cli.common import (
    AllowPrivateOption,
    ContactOption,
    DelayOption,
    EmbedderOption,
    IndexOption,
    MinCharsOption,
    app,
    err,
    fail,
    friendly,
    out,
    web_fetcher,
)


def parse_every(text: str) -> float:
    """Seconds of `--every`: a number with s, m or h (or seconds alone).

    >>> parse_every("15m"), parse_every("1h"), parse_every("90")
    (900.0, 3600.0, 90.0)
    """
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if not found or float(found.group(1)) <= 0:
        raise ValueError(f"--every takes a time such as 30s, 15m or 1h, not {text!r}")
    return float(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)]


@app.command(epilog="Example: $ rag follow https://www.tagesschau.de/index~rss2.xml --index indexes/news --every 15m "
                    "(from cron: --once)")
@friendly
def follow(sources: list[str] = typer.Argument(..., help="Feeds (RSS, Atom) and sitemaps to follow, by address."),
           index_dir: str = IndexOption,
           every: str = typer.Option("15m", "--every", help="Time between polls: 30s, 15m, 1h."),
           once: bool = typer.Option(False, "--once", help="Poll once and exit (for cron or a systemd timer)."),
           delay: float = DelayOption, contact: Optional[str] = ContactOption,
           allow_private_hosts: bool = AllowPrivateOption, min_chars: int = MinCharsOption,
           embedder: Optional[str] = EmbedderOption):
    """Follow feeds and sitemaps: each poll adds their new and changed articles to the index (nothing
    is removed), asking conditionally, so an unchanged source costs one request. Ctrl-C or SIGTERM
    stops it between two articles; what was read is committed, and the next run goes on from there."""
    from rag.app.follow import Follower
    from rag.sources.urls import is_web_address
    from rag.store.locations import describe

    try:
        seconds = parse_every(every)
    except ValueError as exc:
        fail(str(exc))
    for source in sources:
        if not is_web_address(source):
            fail(f"{source} is not an http(s) address of a feed or sitemap")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # a stop request: finish the article, commit, exit
        signal.signal(signum, lambda *_: stop.set())
    follower = Follower(index_dir, sources, lambda: pipeline.make_embedder(embedder),
                        web_fetcher(delay, contact, allow_private_hosts)(), min_chars=min_chars, stop=stop,
                        on_wait=lambda message: err.print(message, soft_wrap=True))
    where = describe(index_dir)
    out.print(f"following {len(sources)} source{'s' if len(sources) != 1 else ''} into {where}"
              + ("" if once else f", every {every}") + "; Ctrl-C stops", soft_wrap=True)

    def show(report) -> None:
        for source, reason in report.failed:
            err.print(f"failed {source}: {reason}", soft_wrap=True, markup=False)
        for url, reason in report.skipped:
            err.print(f"skipped {url}: {reason}", soft_wrap=True, markup=False)
        out.print(f"poll: {report.polled} sources asked, {report.unchanged} unchanged (304), {report.read} articles "
                  f"read, {len(report.added)} added or changed, {report.requests} requests in {report.seconds:.1f} s"
                  + (" (stopped)" if report.stopped else ""), soft_wrap=True)

    try:
        follower.run(seconds, once, show)
    finally:
        follower.fetcher.close()
    if stop.is_set():
        out.print("stopped: what was read is in the index; the next run goes on from there")
