"""An index survives its writer being killed at any moment, a full disk and a second writer."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import faiss
from fakes import FakeEmbedder, assert_postings_consistent
from index_writer_child import SETTINGS, extra_text, marker, read_round, wait_for_round, watch_while_it_writes

from rag.search.retrieval import RetrievalSettings, Retriever
from rag.store.sqlite import DATABASE, build_index, open_index

HERE = Path(__file__).parent
KILLS = int(os.environ.get("RAG_TEST_KILLS", "20"))  # the closing note's 50: RAG_TEST_KILLS=50


def assert_one_consistent_state(index_dir: Path, seed_ids: set[str], rounds: int) -> str | None:
    """The index opens, answers, and holds the seeds plus at most one extra article, whole."""
    index = open_index(index_dir)
    docs = set(index.documents)
    extras = docs - seed_ids
    assert seed_ids <= docs and len(extras) <= 1, docs
    database = sqlite3.connect(index_dir / DATABASE, isolation_level=None)
    assert {r[0] for r in database.execute("SELECT DISTINCT doc_id FROM chunks")} == docs
    chunk_ids = {r[0] for r in database.execute("SELECT id FROM chunks")}
    assert chunk_ids == {r[0] for r in database.execute("SELECT chunk_id FROM vectors")}
    assert chunk_ids == set(faiss.vector_to_array(index.dense.id_map).tolist())
    assert len(chunk_ids) == index.chunk_count
    assert_postings_consistent(database)
    for doc_id in docs:  # every article whole: its chunks run from its first character to its last
        chunks = index.chunks_of(doc_id)
        assert chunks[0].start == 0 and chunks[-1].end == len(index.documents[doc_id].text), doc_id
    retriever = Retriever(index, FakeEmbedder(), RetrievalSettings(k=5))
    for i in range(1, rounds + 1):
        found = {r.chunk.doc_id for mode in ("bm25", "dense")
                 for r in retriever.search(f"Thema {marker(i)}", mode=mode).chunks}
        if f"extra_{i}" in docs:
            assert f"extra_{i}" in found, (i, found)
        else:
            assert not index.lexical_search(marker(i), 5), i  # no orphan of a removed article
    return next(iter(extras), None)


def test_kill_9_at_random_moments_leaves_the_old_or_the_new_state(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    seed_ids = set(open_index(tmp_path / "idx").documents)
    chance = random.Random(20261203)
    round_file = tmp_path / "round"
    seen = []
    for run in range(KILLS):
        child = subprocess.Popen([sys.executable, str(HERE / "index_writer_child.py"), str(seeds), str(tmp_path / "idx"),
                                  str(round_file)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline() == "ready\n", child.stderr.read()
            # Kill in a chosen round, at a random moment in it: paced by the writer's own progress,
            # so a loaded machine moves the moments but not how they spread over the rounds.
            wait_for_round(round_file, 1 + run % 4, child)
            time.sleep(chance.uniform(0, 0.1))
            assert child.poll() is None, child.stderr.read()
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        rounds = read_round(round_file)  # the round under way when killed: its extra file may be gone
        seen.append(assert_one_consistent_state(tmp_path / "idx", seed_ids, rounds))
        # The dead writer's lock went with it: the next writer gets in at once and brings it up to date.
        build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS, wait=False)
        assert_one_consistent_state(tmp_path / "idx", seed_ids, rounds)
        for path in seeds.glob("extra_*.txt"):
            path.unlink()
        build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS, wait=False)
    print(f"{KILLS} kills; states found: {seen}")
    assert len(set(seen)) > 1  # the kills landed in different rounds (each fourth one in round 3 or later)


def test_a_full_disk_is_a_clear_error_and_leaves_the_index_as_it_was(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    before = set(open_index(tmp_path / "idx").documents)
    (seeds / "big.txt").write_text(extra_text(7) * 20, encoding="utf-8")  # ~1.5 MB of chunks to write
    used = sum(p.stat().st_size for p in (tmp_path / "idx").iterdir())
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(HERE)!r})
        from fakes import FakeEmbedder, assert_postings_consistent
        from index_writer_child import SETTINGS
        from rag.errors import RagError
        from rag.store.sqlite import build_index
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, ({used} + 200_000, {used} + 200_000))
        try:
            build_index([{str(seeds)!r}], {str(tmp_path / "idx")!r}, FakeEmbedder(), SETTINGS)
        except RagError as exc:
            print(exc)
            sys.exit(1)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "could not write the index at" in done.stdout and "the disk is full" in done.stdout
    assert "is as it was before this run" in done.stdout and "Traceback" not in done.stderr
    index = open_index(tmp_path / "idx")
    assert set(index.documents) == before and "big" not in retrievable_ids(index, "Thema " + marker(7))
    report = build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)  # with room again: it goes in
    assert report.added == ["big"]


def retrievable_ids(index, query: str) -> set[str]:
    return {r.chunk.doc_id for r in Retriever(index, FakeEmbedder()).search(query, mode="bm25").chunks}


def test_an_open_reader_never_sees_a_half_written_change(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    reader = open_index(tmp_path / "idx")
    generations, checks = watch_while_it_writes(reader, seeds, str(tmp_path / "idx"), tmp_path / "round")
    assert len(generations) > 5 and checks > len(generations), (generations, checks)  # it saw the writer at work
