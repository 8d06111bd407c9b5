"""A writer that changes an index over and over until it is killed: for the crash tests.

    python tests/index_writer_child.py ARTICLES INDEX ROUND_FILE

Round i replaces the extra article of round i-1 by extra article i: odd rounds by indexing the
folder (one commit removes the old and adds the new), even rounds by `remove_documents` and then
`build_index(add_only=True)` (two commits). So every committed state is the seed articles plus
at most one extra article. "ready" is printed once the first round has committed.

Before round i touches anything, ROUND_FILE is replaced (atomically) by one holding i, so a kill at
any moment leaves the number of the round under way, or of the one before it: never nothing.
The extra files cannot tell that, since an even round deletes one before it writes the next.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakeEmbedder  # noqa: E402

from rag.store.sqlite import build_index, remove_documents  # noqa: E402
from rag.text.chunking import ChunkerSettings  # noqa: E402

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


def write_round(round_file: Path, i: int) -> None:
    """Replace ROUND_FILE by one holding i: a reader finds the old number or the new, whole."""
    partial = round_file.with_name(round_file.name + ".partial")
    partial.write_text(str(i), encoding="utf-8")
    os.replace(partial, round_file)


def read_round(round_file: Path) -> int:
    return int(round_file.read_text(encoding="utf-8"))


if __name__ == "__main__":
    articles, index_dir, round_file = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    embedder = FakeEmbedder()
    i = 0
    while True:
        i += 1
        write_round(round_file, i)
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
