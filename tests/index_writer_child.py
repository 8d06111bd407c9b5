"""A writer that changes an index over and over until it is killed: for the crash tests.

    python tests/index_writer_child.py ARTICLES INDEX ROUND_FILE

INDEX is a folder (the SQLite store) or a PostgreSQL URL.

Round i replaces the extra article of round i-1 by extra article i: odd rounds by indexing the
folder (one commit removes the old and adds the new), even rounds by `remove_from_store` and then
`build_store(add_only=True)` (two commits). So every committed state is the seed articles plus
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

from rag.store.locations import build_store, remove_from_store  # noqa: E402
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


def wait_for_round(round_file: Path, target: int, child) -> None:
    """Until the writer (a Popen) has begun round `target`; bounded: a writer stuck for a minute fails."""
    import time

    deadline = time.monotonic() + 60
    while read_round(round_file) < target:
        assert child.poll() is None, child.stderr.read()
        assert time.monotonic() < deadline, f"the writer did not reach round {target} in 60 s"
        time.sleep(0.005)


def watch_while_it_writes(reader, articles: Path, index: str, round_file: Path) -> tuple[set[int], int]:
    """Start this writer over `index` and read `reader`'s snapshots while it commits: each holds the
    seed articles and at most one extra one, whole and findable. Until several commits were seen,
    however slow a loaded machine makes the writer; the minute is a bound for a stuck one."""
    import subprocess
    import time

    seed_ids = set(reader.documents)
    writer = subprocess.Popen([sys.executable, __file__, str(articles), index, str(round_file)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    generations, checks = set(), 0
    try:
        assert writer.stdout.readline() == "ready\n", writer.stderr.read()
        deadline = time.monotonic() + 60
        while len(generations) <= 5 or checks <= len(generations):
            assert time.monotonic() < deadline, (generations, checks)
            assert writer.poll() is None, writer.stderr.read()
            with reader.snapshot():
                docs = set(reader.documents)
                extras = sorted(docs - seed_ids)
                assert seed_ids <= docs and len(extras) <= 1, docs
                for doc_id in extras:
                    assert reader.chunks_of(doc_id)[-1].end == len(reader.documents[doc_id].text)
                    hits = reader.lexical_search(marker(int(doc_id.split("_")[1])), 5)
                    assert {reader.chunks_by_id([c])[c].doc_id for c, _ in hits} == {doc_id}
                assert reader.chunk_count == sum(len(reader.chunks_of(d)) for d in docs)
                generations.add(reader.generation)
                checks += 1
    finally:
        writer.kill()
        writer.wait()
    return generations, checks


if __name__ == "__main__":
    articles, index_dir, round_file = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    embedder = FakeEmbedder()
    i = 0
    while True:
        i += 1
        write_round(round_file, i)
        previous = articles / f"extra_{i - 1}.txt"
        if i % 2:
            previous.unlink(missing_ok=True)
            (articles / f"extra_{i}.txt").write_text(extra_text(i), encoding="utf-8")
            build_store([articles], index_dir, embedder, SETTINGS)
        else:
            remove_from_store(index_dir, [f"extra_{i - 1}"])
            previous.unlink(missing_ok=True)
            (articles / f"extra_{i}.txt").write_text(extra_text(i), encoding="utf-8")
            build_store([articles / f"extra_{i}.txt"], index_dir, embedder, SETTINGS, add_only=True)
        if i == 1:
            print("ready", flush=True)
