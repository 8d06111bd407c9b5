"""Each bad input of issue #54 given to `rag index` at once, beside one good article: what rag
printed for it, and what the index holds after (a Markdown table).

    python docs/bench/bad_inputs.py

The inputs are served by the tests' loopback news site (tests/newssite.py, `bad_inputs` in
tests/test_sources.py) or written as files; the embedder is the tests' fake (what is indexed is
the subject, not its vectors).
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from fakes import FakeEmbedder  # noqa: E402
from newssite import NewsSite  # noqa: E402
from test_sources import bad_inputs, seed_articles  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from rag.app import pipeline  # noqa: E402
from rag.app.cli import app  # noqa: E402
from rag.store.sqlite import open_index  # noqa: E402


def main() -> None:
    pipeline.make_embedder = lambda path=None: FakeEmbedder(max_tokens=256)
    folder = Path(tempfile.mkdtemp(prefix="bad-inputs-"))
    (folder / "pages").mkdir()
    with NewsSite() as site:
        site.page(seed_articles()[0])
        site.routes["/gone.rss"] = (410, {}, b"")
        expected = bad_inputs(site, folder / "pages")
        good = f"{site.base}/politik/seed-0.html"
        done = CliRunner().invoke(app, ["index", str(folder / "pages"), *expected, good, "--index",
                                        str(folder / "idx"), "--delay", "0", "--allow-private-hosts"])
    lines = done.stderr.splitlines()
    print(f"exit {done.exit_code}: {done.stdout.strip()}\n")
    print("| input | what rag printed |\n|---|---|")
    for where in [str(folder / "pages" / "broken.html"), str(folder / "pages" / "latin.html"), *expected]:
        said = [line for line in lines if where in line]
        shown = where.replace(site.base, "SITE").replace(str(folder), "DIR")
        print(f"| `{shown}` | {'; '.join(s.replace(site.base, 'SITE').replace(str(folder), 'DIR') for s in said) or 'indexed'} |")
    index = open_index(folder / "idx")
    print(f"\nthe index holds {len(index.documents)} documents: "
          f"{', '.join(sorted(d.replace(site.base.removeprefix('http://').replace(':', '-'), 'SITE') for d in index.documents))}")


if __name__ == "__main__":
    main()
