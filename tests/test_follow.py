"""`rag follow` against a real news site on a loopback port (tests/newssite.py), with fake models:
what a poll asks for, what it adds, and how it stops."""

import signal
import subprocess
import sys
import time
from email.utils import format_datetime
from datetime import datetime
from pathlib import Path

import pytest
from conftest import LiveServer
from fakes import FakeEmbedder, SlowGenerator
from newssite import Article, NewsSite, rss
from test_operations import scrape, value
from test_sources import seed_articles
from typer.testing import CliRunner

from rag.app import pipeline
from rag.app.cli import app
from rag.app.http.server import create_app
from rag.app.service import AnswerService
from rag.sources.urls import document_id
from rag.store.locations import read_follow_state
from rag.store.sqlite import reader as sqlite_reader
from rag.store.sqlite import open_index

HERE = Path(__file__).parent


def rfc2822(iso: str | None) -> str | None:
    return iso and format_datetime(datetime.fromisoformat(iso))


class FollowedSite(NewsSite):
    """The site with a feed of `articles` that answers 304 to its own ETag, and a version counter."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.articles: list[Article] = []
        self.routes["/feed.rss"] = self._feed

    def publish(self, *articles: Article) -> None:
        for article in articles:
            self.articles = [a for a in self.articles if a.path != article.path] + [article]
            self.page(article)

    def _feed(self, handler):
        body = rss([(a.path, a.title, rfc2822(a.modified or a.published)) for a in self.articles], self.base).encode()
        tag = f'"feed-{hash(body) & 0xffffffff:x}"'
        if handler.headers.get("If-None-Match") == tag:
            return 304, {"ETag": tag}, b""
        return 200, {"Content-Type": "application/rss+xml", "ETag": tag}, body


def article(n: int, published: str = "2025-10-0{n}T08:00:00+02:00", words: str = "") -> Article:
    text = seed_articles()[n % 2].paragraphs  # neighbours differ (the same text twice is one search result)
    return Article(f"/politik/meldung-{n}.html", f"Meldung {n}", [f"Meldung {n}: {words}".strip()] + text,
                   published.format(n=n))


@pytest.fixture
def counting(monkeypatch):
    """The fake embedder, counting how often a model was made and how many texts it embedded."""
    made = []

    def make(path=None):
        made.append(FakeEmbedder(max_tokens=256))
        return made[-1]

    monkeypatch.setattr(pipeline, "make_embedder", make)
    return made


def follow(site, index, *extra):
    return CliRunner().invoke(app, ["follow", f"{site.base}/feed.rss", "--index", str(index), "--once",
                                    "--delay", "0", "--allow-private-hosts", *extra])


def served_metrics(index) -> dict:
    """/metrics of a `rag serve` over `index` (fake models): the follower's state kept in the index."""
    live = LiveServer(create_app(AnswerService(index, FakeEmbedder(max_tokens=256), SlowGenerator(delay=0.0)))).start()
    try:
        live.wait_ready()
        return scrape(live.url)
    finally:
        live.stop()


def test_a_poll_adds_new_articles_and_an_unchanged_feed_costs_one_request(counting, tmp_path, monkeypatch):
    with FollowedSite() as site:
        site.publish(article(1), article(2))
        first = follow(site, tmp_path / "idx")
        assert first.exit_code == 0, first.output
        assert "1 sources asked, 0 unchanged (304), 2 articles read, 2 added or changed" in first.stdout
        assert sorted(open_index(tmp_path / "idx").documents) == sorted(
            document_id(site.base + a.path) for a in site.articles)
        site.log.clear()
        opened = []
        with monkeypatch.context() as patch:  # the follower's state is read without opening the index
            patch.setattr(sqlite_reader.Index, "_open", lambda *args: opened.append(args))
            again = follow(site, tmp_path / "idx")
        assert opened == [], "a poll that brings nothing opened the index (loading its vectors)"
        assert "1 sources asked, 1 unchanged (304), 0 articles read, 0 added or changed" in again.stdout
        assert [entry[2] for entry in site.log] == ["/robots.txt", "/feed.rss"]  # no article asked for
        assert site.log[-1][3]["If-None-Match"].startswith('"feed-') and len(counting) == 1  # no model made
        site.log.clear()
        site.publish(article(3))  # a new article: the feed changes, the two known ones are not asked again
        third = follow(site, tmp_path / "idx")
        assert "1 articles read, 1 added or changed" in third.stdout, third.output
        assert [entry[2].split("?")[0] for entry in site.log] == ["/robots.txt", "/feed.rss", "/politik/meldung-3.html"]
        site.publish(article(2, "2025-10-02T08:00:00+02:00", "Korrigiert: 21 Abkommen."))  # changed at its address
        site.articles[-1].modified = "2025-10-05T09:00:00+02:00"
        site.page(site.articles[-1])
        fourth = follow(site, tmp_path / "idx")
        assert "1 articles read, 1 added or changed" in fourth.stdout, fourth.output
        index = open_index(tmp_path / "idx")
        changed = index.documents[document_id(site.base + "/politik/meldung-2.html")]
        assert len(index.documents) == 3 and "Korrigiert: 21 Abkommen." in changed.text
        assert changed.meta["modified"] == "2025-10-05"
    state = read_follow_state(tmp_path / "idx")
    [(source, row)] = state.sources.items()
    assert (row["polls"], row["unchanged"], row["added"], row["failures"]) == (4, 1, 4, 0)
    assert len(state.fetched) == 3 and all(r["doc_id"] for r in state.fetched.values())
    shown = served_metrics(tmp_path / "idx")
    assert [value(shown, f"rag_follow_{name}_total", source=source) for name in ("polls", "unchanged", "added")] == [4, 1, 4]
    assert value(shown, "rag_follow_failing_polls", source=source) == 0
    assert value(shown, "rag_follow_last_success_timestamp_seconds", source=source) > time.time() - 3600


def test_a_feed_that_answers_410_is_dropped_and_a_failing_one_asked_less_often(counting, tmp_path):
    with FollowedSite() as site:
        site.publish(article(1))
        assert follow(site, tmp_path / "idx").exit_code == 0
        site.routes["/feed.rss"] = (500, {}, b"broken")
        for _ in range(3):
            failed = follow(site, tmp_path / "idx")
            assert failed.exit_code == 0
        asked = [entry for entry in site.log if entry[2] == "/feed.rss"]
        assert len(asked) == 1 + 2  # polls 2 and 4 ask (after 1 failure: every 2nd poll), poll 3 waits
        assert f"failed {site.base}/feed.rss: HTTP 500" in failed.stderr  # the last of them asked
        assert read_follow_state(tmp_path / "idx").sources[f"{site.base}/feed.rss"]["failures"] == 2
        assert value(served_metrics(tmp_path / "idx"), "rag_follow_failing_polls", source=f"{site.base}/feed.rss") == 2
        site.routes["/feed.rss"] = (410, {}, b"")
        for _ in range(4):
            follow(site, tmp_path / "idx")
        row = read_follow_state(tmp_path / "idx").sources[f"{site.base}/feed.rss"]
        assert row["gone"] == 1
        assert value(served_metrics(tmp_path / "idx"), "rag_follow_gone", source=f"{site.base}/feed.rss") == 1
        before = len(site.log)
        follow(site, tmp_path / "idx")
        assert len(site.log) == before  # a gone feed is not asked again
    assert len(open_index(tmp_path / "idx").documents) == 1  # nothing removed


def test_sigterm_stops_between_articles_and_the_next_run_goes_on_from_there(tmp_path):
    """A follower process stopped by SIGTERM while it reads a feed's articles: it exits 0 soon after,
    the index holds whole articles, and the next run reads only the ones not read before."""
    with FollowedSite() as site:
        site.publish(*[article(n) for n in range(1, 7)])
        pages = [a.path for a in site.articles]
        for path in pages:  # each page takes a while to answer, so the stop lands between them
            inner = site.routes[path]

            def slow(handler, inner=inner):
                time.sleep(0.4)
                return inner(handler)
            site.routes[path] = slow
        command = [sys.executable, str(HERE / "fake_rag.py"), "follow", f"{site.base}/feed.rss", "--index",
                   str(tmp_path / "idx"), "--delay", "0", "--allow-private-hosts"]
        process = subprocess.Popen(command + ["--every", "1h"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        deadline = time.monotonic() + 60
        while len([e for e in site.log if e[2].split("?")[0] in pages]) < 2:  # two articles asked for
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        printed, _ = process.communicate(timeout=60)
        assert process.returncode == 0, printed
        assert "(stopped)" in printed and "stopped: what was read is in the index" in printed
        index = open_index(tmp_path / "idx")
        kept = set(index.documents)
        assert 2 <= len(kept) < 6, printed
        for doc_id in kept:  # whole: its chunks run from its first character to its last
            chunks = index.chunks_of(doc_id)
            assert chunks[0].start == 0 and chunks[-1].end == len(index.documents[doc_id].text)
        site.log.clear()
        done = subprocess.run(command + ["--once"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        asked = {e[2].split("?")[0] for e in site.log if e[2].split("?")[0] in pages}
        assert asked == {p for p in pages if document_id(site.base + p) not in kept}
        assert len(open_index(tmp_path / "idx").documents) == 6


def test_a_follower_adds_to_an_index_as_it_was_built_and_refuses_another_embedder(counting, seeds, tmp_path,
                                                                                  monkeypatch):
    """An index built with its own chunk size keeps it (a poll adds, it never rebuilds); one built
    with another embedder is refused in one line rather than rebuilt."""
    built = CliRunner().invoke(app, ["index", str(seeds), "--index", str(tmp_path / "idx"), "--max-tokens", "64",
                                     "--overlap", "8"])
    assert built.exit_code == 0, built.output
    before = open_index(tmp_path / "idx").manifest
    with FollowedSite() as site:
        site.publish(article(1))
        assert "1 added or changed" in follow(site, tmp_path / "idx").stdout
        after = open_index(tmp_path / "idx").manifest
        assert after.chunker == before.chunker and after.epoch == before.epoch
        assert len(open_index(tmp_path / "idx").documents) == 3
        site.publish(article(2))
        monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(model_id="other@2",
                                                                                      max_tokens=256))
        refused = follow(site, tmp_path / "idx")
        assert refused.exit_code == 2 and "was built with embedder fake-embedder@1" in refused.stderr
        assert refused.stderr.count("\n") == 1
    assert len(open_index(tmp_path / "idx").documents) == 3
