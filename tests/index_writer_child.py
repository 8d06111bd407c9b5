"""A writer that changes an index over and over until it is killed: for the crash tests.

    python tests/index_writer_child.py ARTICLES INDEX

Round i replaces the extra article of round i-1 by extra article i: odd rounds by indexing the
folder (one commit removes the old and adds the new), even rounds by `remove_documents` and then
`build_index(add_only=True)` (two commits). So every committed state is the seed articles plus
at most one extra article. "ready" is printed once the first round has committed.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakeEmbedder  # noqa: E402
from rag.chunking import ChunkerSettings  # noqa: E402
from rag.index import build_index, remove_documents  # noqa: E402

SETTINGS = ChunkerSettings(max_tokens=48, overlap_tokens=8)


def marker(i: int) -> str:
    """A word no other article holds, in letters only (the analyzer keeps it whole)."""
    letters = ""
    while True:
        letters += "abcdefghijklmnopqrstuvwxyz"[i % 26]
        i //= 26
        if not i:
            return "zqx" + letters


def extra_text(i: int) -> str:
    return " ".join(f"Satz {n} über das Thema {marker(i)} mit einigen weiteren Wörtern." for n in range(300))


if __name__ == "__main__":
    articles, index_dir = Path(sys.argv[1]), Path(sys.argv[2])
    embedder = FakeEmbedder()
    i = 0
    while True:
        i += 1
        previous = articles / f"extra_{i - 1}.txt"
        if i % 2:
            previous.unlink(missing_ok=True)
            (articles / f"extra_{i}.txt").write_text(extra_text(i), encoding="utf-8")
            build_index([articles], index_dir, embedder, SETTINGS)
        else:
            remove_documents(index_dir, [f"extra_{i - 1}"])
            previous.unlink(missing_ok=True)
            (articles / f"extra_{i}.txt").write_text(extra_text(i), encoding="utf-8")
            build_index([articles / f"extra_{i}.txt"], index_dir, embedder, SETTINGS, add_only=True)
        if i == 1:
            print("ready", flush=True)
