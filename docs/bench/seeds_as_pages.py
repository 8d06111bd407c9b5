"""The seed articles as a news site publishes them, indexed through its feed, asked the 60 questions.

    python docs/bench/seeds_as_pages.py [REPORT.json]

Serves the seeds wrapped in realistic news pages (tests/newssite.py: menu, cookie banner, teaser,
related links, comments, a captioned picture, JSON-LD) on a loopback port, indexes the site's feed
with the default embedder, checks the documents hold every sentence of the seeds and none of the
furniture, answers the evaluation set with the default model, and compares each answer with the
one the .txt index gives on this llama.cpp build (its baseline in eval/baselines/). The web ids
differ from the files' names, so the set's source-based scores are not comparable; the answers are.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from newssite import FURNITURE, NewsSite, rss  # noqa: E402
from test_sources import SEED_FILES, seed_articles  # noqa: E402

from rag.app import pipeline  # noqa: E402
from rag.quality.evaluation import load_eval_set, run_eval  # noqa: E402
from rag.quality.gate import load_baselines  # noqa: E402
from rag.sources.fetch import Fetcher  # noqa: E402
from rag.sources.inputs import collect  # noqa: E402
from rag.store.sqlite import build_index, open_index  # noqa: E402
from rag.text.chunking import split_sentences  # noqa: E402
from rag.text.documents import read_document  # noqa: E402


def main(report_path: str | None = None) -> int:
    import tempfile
    from datetime import datetime
    from email.utils import format_datetime

    folder = Path(tempfile.mkdtemp(prefix="seeds-as-pages-"))
    with NewsSite() as site:
        articles = seed_articles()
        for article in articles:
            site.page(article)
        site.routes["/feed.rss"] = (200, {"Content-Type": "application/rss+xml"}, rss(
            [(a.path, a.title, a.published and format_datetime(datetime.fromisoformat(a.published)))
             for a in articles], site.base).encode())
        loaded = collect([f"{site.base}/feed.rss"], fetcher_factory=lambda: Fetcher(delay=0, allow_private=True))
    embedder = pipeline.make_embedder()
    build_index([], folder / "web", embedder, loaded=loaded)
    index = open_index(folder / "web")
    sentences = missing = furniture = 0
    for path, document in zip(SEED_FILES, loaded.documents):
        seed = read_document(path).text
        found = [s.text for s in split_sentences(seed, 0, len(seed))]
        sentences += len(found)
        missing += sum(s not in document.text for s in found)
        furniture += sum(f in document.text for f in FURNITURE)
    print(f"documents {len(index.documents)}; seed sentences {sentences}, missing {missing}; furniture found {furniture}")
    answerer = pipeline.open_answerer(folder / "web")
    answerer.warm_up()
    report = run_eval(answerer, load_eval_set(ROOT / "eval" / "questions.jsonl"))
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    same_build = [b for _, b in load_baselines(ROOT / "eval" / "baselines") if b["runtime"] == report["runtime"]]
    if not same_build:
        print(f"no baseline recorded on this build ({report['runtime']}): answers not compared")
        return 1
    before = {row["id"]: row["answer"] for row in same_build[0]["questions"]}
    differ = [row["id"] for row in report["questions"] if row["answer"] != before[row["id"]]]
    cited = [c for row in report["questions"] for c in row.get("citations", [])]
    print(f"runtime: {report['runtime']}")
    print(f"answers equal to the .txt index's: {len(report['questions']) - len(differ)} of {len(report['questions'])}"
          + (f" (differ: {', '.join(differ)})" if differ else ""))
    print(f"citations: {len(cited)}, verified {sum(c['verified'] for c in cited)}")
    return 1 if differ or missing or furniture else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
