"""Following feeds and sitemaps: each poll adds their new and changed articles to the index through
the same O(change) add as `rag index --add`, and removes nothing.

A poll asks each source conditionally (its ETag and Last-Modified from the last answer): a 304
costs no extraction and no embedding. From a listing that changed, an article is fetched only
when it is new or its listing says it changed (the sitemap's lastmod, the feed's date), and then
conditionally too. A source that fails is asked less often (every 2, 4, … up to 64 polls), one
that answers 410 is dropped. The state (store/follow.py) lives in the index, written after the
poll's articles are committed: a poll stopped anywhere (Ctrl-C, SIGTERM, a crash) leaves the
index whole, and the next one asks again for what was not recorded, which its unchanged
articles make cheap (their text is the same: nothing is embedded).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from rag.sources.feeds import Link, read_listing
from rag.sources.fetch import FetchError, Fetcher
from rag.sources.inputs import with_listing_metadata
from rag.sources.pages import MIN_ARTICLE_CHARS, read_page
from rag.sources.urls import canonical_url
from rag.store.follow import FollowState
from rag.store.locations import Location, add_to_store, read_follow_state, save_follow_state
from rag.text.documents import LoadReport

MAX_BACKOFF_POLLS = 64
NEW_SOURCE = {"etag": None, "last_modified": None, "last_attempt": None, "last_success": None, "failures": 0,
              "last_error": None, "gone": 0, "polls": 0, "unchanged": 0, "added": 0}


@dataclass
class PollReport:
    polled: int = 0  # sources asked
    unchanged: int = 0  # of them answering 304
    read: int = 0  # articles fetched and extracted
    added: list[str] = field(default_factory=list)  # documents new or changed in the index
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (article address, reason)
    gone: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    stopped: bool = False  # a stop request ended the poll early


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Follower:
    def __init__(self, location: Location, sources: list[str], make_embedder: Callable, fetcher: Fetcher,
                 min_chars: int = MIN_ARTICLE_CHARS, stop: threading.Event | None = None,
                 on_wait: Callable[[str], None] | None = None):
        self.location, self.sources, self.fetcher = location, sources, fetcher
        self.make_embedder, self.min_chars = make_embedder, min_chars
        self.stop = stop or threading.Event()
        self.on_wait = on_wait
        self._embedder = None

    def run(self, every: float, once: bool, on_report: Callable[[PollReport], None]) -> None:
        """Poll, then wait `every` seconds, until a stop request (or after one poll with `once`)."""
        while not self.stop.is_set():
            on_report(self.poll())
            if once:
                return
            self.stop.wait(every)

    def poll(self) -> PollReport:
        started, requests = time.monotonic(), self.fetcher.requests
        report = PollReport()
        state = read_follow_state(self.location, self.sources)
        index_exists = state is not None
        state = state or FollowState()
        rows, fetched, documents = {}, {}, {}
        for source in self.sources:
            if self.stop.is_set():
                report.stopped = True
                break
            row = {**NEW_SOURCE, **state.sources.get(source, {})}
            if row["gone"]:
                report.gone.append(source)
                continue
            row["polls"] += 1
            if row["failures"] and row["polls"] % min(2 ** row["failures"], MAX_BACKOFF_POLLS):
                rows[source] = row  # backing off: asked again in a later poll
                continue
            report.polled += 1
            row["last_attempt"] = now()
            self._poll_source(source, row, state.fetched, fetched, documents, report)
            rows[source] = row
        if documents:
            built = add_to_store(self.location, LoadReport(list(documents.values())), self.embedder(),
                                 on_wait=self.on_wait)
            report.added = built.added
            report.skipped += built.skipped
        if (rows or fetched) and (documents or index_exists):  # no index yet: nothing to keep
            save_follow_state(self.location, rows, fetched, on_wait=self.on_wait)
        report.requests, report.seconds = self.fetcher.requests - requests, time.monotonic() - started
        return report

    def embedder(self):
        if self._embedder is None:  # loaded only for a poll that brings articles
            self._embedder = self.make_embedder()
        return self._embedder

    def _poll_source(self, source: str, row: dict, seen: dict, fetched: dict, documents: dict,
                     report: PollReport) -> None:
        try:
            answer = self.fetcher.get(source, trusted=True, etag=row["etag"], last_modified=row["last_modified"])
            if answer.not_modified:
                report.unchanged += 1
                row.update(unchanged=row["unchanged"] + 1, last_success=now(), failures=0, last_error=None)
                return
            listing = read_listing(answer.body, answer.final_url)
            links = list(listing.links)
            for sitemap in listing.sitemaps[:50]:  # a sitemap index: its sitemaps, one level
                links += read_listing(self.fetcher.get(sitemap, trusted=False).body, sitemap).links
        except (FetchError, ValueError) as exc:
            reason = str(exc).removeprefix(f"{source}: ")
            report.failed.append((source, reason))
            row.update(failures=row["failures"] + 1, last_error=reason[:500])
            if isinstance(exc, FetchError) and exc.gone:
                row["gone"] = 1
                report.gone.append(source)
            return
        found = len(documents)
        for link in links:
            if self.stop.is_set():
                report.stopped = True
                return  # the source's ETag is not kept: the next poll reads its listing again
            self._read_article(link, seen, fetched, documents, report)
        row.update(etag=answer.etag, last_modified=answer.last_modified, last_success=now(), failures=0,
                   last_error=None, added=row["added"] + len(documents) - found)

    def _read_article(self, link: Link, seen: dict, fetched: dict, documents: dict, report: PollReport) -> None:
        address = canonical_url(link.url)
        before = fetched.get(address) or seen.get(address)
        listed = link.modified or link.published or ""
        if before and before["listed"] == listed:
            return  # its listing says it has not changed
        try:
            page = self.fetcher.get(link.url, trusted=False, etag=before and before["etag"],
                                    last_modified=before and before["last_modified"])
            if page.not_modified:
                fetched[address] = {**before, "listed": listed, "fetched_at": now()}
                return
            report.read += 1
            document = with_listing_metadata(read_page(page.body, page.final_url, page.charset,
                                                       min_chars=self.min_chars), link)
        except (FetchError, ValueError) as exc:
            report.skipped.append((link.url, str(exc).removeprefix(f"{link.url}: ")))
            if isinstance(exc, ValueError):  # not an article: not asked again until its listing changes
                fetched[address] = {"doc_id": None, "etag": None, "last_modified": None, "listed": listed,
                                    "fetched_at": now()}
            return
        documents.setdefault(document.doc_id, document)
        fetched[address] = {"doc_id": document.doc_id, "etag": page.etag, "last_modified": page.last_modified,
                            "listed": listed, "fetched_at": now()}

