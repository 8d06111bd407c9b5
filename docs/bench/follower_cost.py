"""What following costs: 1,000 articles on a loopback news site, read by `rag follow` with the
default embedder, then a poll where nothing changed, then one where one article was added.

    python docs/bench/follower_cost.py [ARTICLES] [XQUAD_DE_JSON]

The articles are built from the German XQuAD development paragraphs (../shared/data/xquad-dev),
two paragraphs each with a sentence of their own in each, so no two chunks share a text (a shared
one would be embedded once and make the rate look better). Served as news pages
(tests/newssite.py) listed in one feed, fetched with no delay between requests (the politeness
delay is the site's to set, not a cost of rag). Prints pages a second with extraction, embedding
and the commit included, and the requests and seconds of the two later polls.
"""

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from newssite import Article  # noqa: E402
from test_follow import FollowedSite  # noqa: E402

from rag.app import pipeline  # noqa: E402
from rag.app.follow import Follower  # noqa: E402
from rag.sources.fetch import Fetcher  # noqa: E402
from rag.store.sqlite import open_index  # noqa: E402

ARTICLES = 1000


def articles(paragraphs: list[str], count: int) -> list[Article]:
    made = []
    for n in range(count):
        first, second = paragraphs[n % len(paragraphs)], paragraphs[(n * 7 + 3) % len(paragraphs)]
        made.append(Article(f"/nachrichten/meldung-{n}.html", f"Meldung {n}",
                            [f"Meldung {n}, erster Teil. {first}", f"Meldung {n}, zweiter Teil. {second}"],
                            f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}T08:00:00+02:00"))
    return made


def poll(follower: Follower, label: str) -> None:
    started = time.perf_counter()
    report = follower.poll()
    took = time.perf_counter() - started
    print(f"{label}: {report.read} articles read, {len(report.added)} added, {report.unchanged} unchanged (304), "
          f"{report.requests} requests, {took:.1f} s" + (f", {report.read / took:.1f} pages/s" if report.read else ""))


def main(count: str = str(ARTICLES), xquad: str = str(ROOT.parent / "shared/data/xquad-dev/xquad.de.dev.json")) -> None:
    count = int(count)
    data = json.loads(Path(xquad).read_text())["data"]
    paragraphs = [p["context"] for article in data for p in article["paragraphs"]]
    folder = Path(tempfile.mkdtemp(prefix="follower-cost-"))
    embedder = pipeline.make_embedder()
    with FollowedSite() as site:
        site.publish(*articles(paragraphs, count))
        follower = Follower(folder / "idx", [f"{site.base}/feed.rss"], lambda: embedder,
                            Fetcher(delay=0, allow_private=True), stop=threading.Event())
        poll(follower, f"first poll ({count} new articles)")
        poll(follower, "nothing changed")
        site.publish(*articles(paragraphs, count + 1)[-1:])
        poll(follower, "one new article")
    index = open_index(folder / "idx")
    print(f"index: {len(index.documents)} documents, {index.chunk_count} chunks")


if __name__ == "__main__":
    main(*sys.argv[1:3])
