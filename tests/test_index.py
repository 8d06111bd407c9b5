import json
import sqlite3
import threading
import time

import faiss
import numpy as np
import pytest
from fakes import FakeEmbedder, assert_postings_consistent

from rag.errors import IndexMismatchError, RagError
from rag.search.retrieval import RetrievalSettings, Retriever
from rag.store.locking import IndexBusyError, writer_lock
from rag.store.sqlite import DATABASE, FORMAT_VERSION, build_index, open_index, remove_documents
from rag.text.chunking import ChunkerSettings

SETTINGS = ChunkerSettings(max_tokens=48, overlap_tokens=8)
PENGUINS = "date 2025-10-01\nDer Zoo von Leipzig bekam drei Pinguine aus Chile. Die Pinguine heißen Kurt, Emma und Lotte.\n"


def retrievable(index, words: str) -> set[str]:
    """Doc ids any retriever (dense, BM25, hybrid) finds for `words`, plus those the index lists."""
    retriever = Retriever(index, FakeEmbedder(), RetrievalSettings(k=50, candidates=50))
    found = set()
    for mode in ("dense", "bm25", "hybrid"):
        found |= {r.chunk.doc_id for r in retriever.search(words, mode=mode).chunks}
    return found


def test_build_then_open_round_trips_chunks_and_vectors(seeds, tmp_path):
    embedder = FakeEmbedder()
    report = build_index([seeds], tmp_path / "idx", embedder, SETTINGS)
    assert report.documents == 2 and report.chunks > 4 and report.embedded == report.chunks
    index = open_index(tmp_path / "idx", embedder.model_id)
    chunks = list(index.iter_chunks())
    assert len(chunks) == report.chunks == index.dense.ntotal == index.chunk_count
    manifest = index.manifest
    assert manifest.format_version == FORMAT_VERSION and manifest.generation == 1
    assert manifest.embedder == {"id": "fake-embedder@1", "dimension": 64}
    assert manifest.chunker == {"version": 1, "max_tokens": 48, "overlap_tokens": 8}
    assert len(index.documents["000_81614b4d2948c4c6"].sha256) == 64
    for chunk in chunks:
        assert index.documents[chunk.doc_id].text[chunk.start:chunk.end] == chunk.text
    stored = dict(sqlite3.connect(tmp_path / "idx" / DATABASE).execute("SELECT c.text, v.vector FROM chunks c "
                                                                       "JOIN vectors v ON v.chunk_id = c.id"))
    assert np.allclose(np.frombuffer(stored[chunks[0].text], np.float32), embedder.embed([chunks[0].text])[0])


def test_unchanged_input_does_no_embedding_work(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    embedder = FakeEmbedder()
    report = build_index([seeds], tmp_path / "idx", embedder, SETTINGS)
    assert report.up_to_date and embedder.embedded_texts == 0
    assert open_index(tmp_path / "idx").generation == 1  # nothing committed


def test_a_changed_document_reembeds_only_its_new_chunks(seeds, tmp_path):
    first = build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    path = seeds / "003_f1e7237187863abb.txt"
    path.write_text(path.read_text().replace("Im Dezember hielten", "Im November hielten"))
    embedder = FakeEmbedder()
    report = build_index([seeds], tmp_path / "idx", embedder, SETTINGS)
    assert not report.up_to_date and report.added == ["003_f1e7237187863abb"]
    assert 0 < embedder.embedded_texts < first.chunks
    index = open_index(tmp_path / "idx")
    assert "Im November hielten" in index.documents["003_f1e7237187863abb"].text
    assert not any("Im Dezember hielten" in c.text for c in index.iter_chunks())


def test_adding_an_article_leaves_the_other_rows_untouched(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    database = tmp_path / "idx" / DATABASE
    rows = lambda: set(sqlite3.connect(database).execute("SELECT id, doc_id, text FROM chunks"))  # noqa: E731
    before = rows()
    (seeds / "009_pinguine.txt").write_text(PENGUINS, encoding="utf-8")
    embedder = FakeEmbedder()
    report = build_index([seeds], tmp_path / "idx", embedder, SETTINGS)
    after = rows()
    assert before < after and {r[1] for r in after - before} == {"009_pinguine"}  # same ids: not rewritten
    assert report.added == ["009_pinguine"] and embedder.embedded_texts == len(after - before)


def test_an_article_deleted_from_the_folder_leaves_every_store(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    reader = open_index(tmp_path / "idx")  # open before the change: it must follow
    assert "000_81614b4d2948c4c6" in retrievable(reader, "Kooperationsabkommen unterzeichnet")
    (seeds / "000_81614b4d2948c4c6.txt").unlink()
    report = build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    assert report.removed == ["000_81614b4d2948c4c6"] and report.documents == 1
    for index in (reader, open_index(tmp_path / "idx")):
        assert "000_81614b4d2948c4c6" not in retrievable(index, "Kooperationsabkommen unterzeichnet Xi Putin")
        assert "000_81614b4d2948c4c6" not in index.documents
        assert index.dense.ntotal == index.chunk_count == len(list(index.iter_chunks()))
    database = sqlite3.connect(tmp_path / "idx" / DATABASE, isolation_level=None)
    assert not database.execute("SELECT count(*) FROM chunks WHERE doc_id = '000_81614b4d2948c4c6'").fetchone()[0]
    assert database.execute("SELECT count(*) FROM vectors").fetchone()[0] == reader.chunk_count
    assert_postings_consistent(database)


def test_remove_by_id_and_unknown_ids(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    reader = open_index(tmp_path / "idx")
    with pytest.raises(RagError, match="no document 'nope' in the index.*nothing was removed"):
        remove_documents(tmp_path / "idx", ["003_f1e7237187863abb", "nope"])
    assert len(reader.documents) == 2
    report = remove_documents(tmp_path / "idx", ["003_f1e7237187863abb"])
    assert report.removed == ["003_f1e7237187863abb"] and report.chunks > 0
    assert "003_f1e7237187863abb" not in retrievable(reader, "Dezember Besuch Staatsbesuch Moskau")
    assert list(reader.documents) == ["000_81614b4d2948c4c6"]
    # The file is still in the folder: indexing the folder again brings it back.
    assert build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS).added == ["003_f1e7237187863abb"]


def test_add_indexes_files_from_elsewhere_and_a_folder_run_keeps_them(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    (tmp_path / "other").mkdir()
    extra = tmp_path / "other" / "009_pinguine.txt"
    extra.write_text(PENGUINS, encoding="utf-8")
    embedder = FakeEmbedder()
    report = build_index([extra], tmp_path / "idx", embedder, SETTINGS, add_only=True)
    assert report.added == ["009_pinguine"] and report.removed == [] and report.documents == 3
    assert build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS).up_to_date  # not under seeds/: kept
    assert "009_pinguine" in retrievable(open_index(tmp_path / "idx"), "Pinguine Leipzig")


def test_another_embedder_is_refused_with_a_clear_error(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    with pytest.raises(IndexMismatchError, match="built with embedder fake-embedder@1.*current embedder is other@2"):
        open_index(tmp_path / "idx", "other@2")


def test_another_embedder_rebuilds_and_open_readers_notice(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    reader = open_index(tmp_path / "idx")
    report = build_index([seeds], tmp_path / "idx", FakeEmbedder("other@2", dimension=32), SETTINGS)
    assert report.embedded == report.chunks
    assert open_index(tmp_path / "idx", "other@2").dense.ntotal == report.chunks
    with pytest.raises(IndexMismatchError, match="current embedder is fake-embedder@1"):
        Retriever(reader, FakeEmbedder()).search("Abkommen")


def test_interrupted_build_leaves_the_previous_index_usable(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    before = list(open_index(tmp_path / "idx", "fake-embedder@1").iter_chunks())

    class Crashing(FakeEmbedder):
        def embed(self, texts):
            raise KeyboardInterrupt

    (seeds / "new.txt").write_text("Ein neuer Artikel mit einem Satz.")
    with pytest.raises(KeyboardInterrupt):
        build_index([seeds], tmp_path / "idx", Crashing(), SETTINGS)
    assert list(open_index(tmp_path / "idx", "fake-embedder@1").iter_chunks()) == before


def test_missing_and_damaged_indexes_are_clear_errors(seeds, tmp_path):
    with pytest.raises(RagError, match="no index at"):
        open_index(tmp_path / "nothing")
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    for name in ("index.sqlite-wal", "index.sqlite-shm"):
        (tmp_path / "idx" / name).unlink(missing_ok=True)
    (tmp_path / "idx" / DATABASE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(RagError, match="damaged"):
        open_index(tmp_path / "idx")


def test_no_usable_article_is_an_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.txt").write_bytes(b"\x00\x00")
    with pytest.raises(RagError, match="no article to index"):
        build_index([tmp_path / "in"], tmp_path / "idx", FakeEmbedder(), SETTINGS)


def write_old_format_index(seeds, index_dir):
    """An index as rag wrote it before format 2: JSON files and dense.faiss in a generation folder."""
    from rag.text.chunking import chunk_document
    from rag.text.documents import load_documents

    embedder = FakeEmbedder()
    docs = load_documents([seeds]).documents
    chunks = [c for d in docs for c in chunk_document(d, embedder.count_tokens, SETTINGS)]
    gen = index_dir / "gen-000001"
    gen.mkdir(parents=True)
    dense = faiss.IndexFlatIP(64)
    dense.add(embedder.embed([c.text for c in chunks]))
    faiss.write_index(dense, str(gen / "dense.faiss"))
    (gen / "chunks.json").write_text(json.dumps([c.__dict__ for c in chunks]))
    (gen / "manifest.json").write_text(json.dumps({"format_version": 1, "embedder": {"id": "fake-embedder@1",
                                                                                     "dimension": 64}}))
    (index_dir / "CURRENT").write_text("gen-000001\n")
    return len(chunks)


def test_an_old_format_index_is_refused_with_how_to_convert_and_converted_without_embedding(seeds, tmp_path):
    count = write_old_format_index(seeds, tmp_path / "idx")
    with pytest.raises(IndexMismatchError, match=r"older rag \(version 1\); run `rag index` on its articles"):
        open_index(tmp_path / "idx")
    embedder = FakeEmbedder()
    report = build_index([seeds], tmp_path / "idx", embedder, SETTINGS)
    assert report.chunks == count and report.reused == count and embedder.embedded_texts == 0
    assert open_index(tmp_path / "idx").chunk_count == count
    assert not (tmp_path / "idx" / "CURRENT").exists() and not list((tmp_path / "idx").glob("gen-*"))


def test_a_second_writer_waits_or_fails_with_no_wait(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    (seeds / "009_pinguine.txt").write_text(PENGUINS, encoding="utf-8")
    with writer_lock(tmp_path / "idx"):
        with pytest.raises(IndexBusyError, match=r"another rag is writing the index at .*pid \d+.*--no-wait"):
            build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS, wait=False)
        with pytest.raises(IndexBusyError):
            remove_documents(tmp_path / "idx", ["000_81614b4d2948c4c6"], wait=False)
        said, reports = [], []
        second = threading.Thread(target=lambda: reports.append(
            build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS, on_wait=said.append)))
        second.start()
        deadline = time.monotonic() + 30
        while not said:  # the second writer has reached the lock and says it waits
            assert time.monotonic() < deadline and second.is_alive(), "the second writer did not wait"
            time.sleep(0.01)
        assert second.is_alive() and reports == [] and "waiting" in said[0]
        assert open_index(tmp_path / "idx").generation == 1  # nothing written while it waits
    second.join(10)
    assert reports[0].added == ["009_pinguine"]


def test_a_term_added_by_many_commits_is_merged_and_removed_chunks_leave_its_postings(seeds, tmp_path):
    from rag.store.sqlite import MERGE_SEGMENTS

    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    database = sqlite3.connect(tmp_path / "idx" / DATABASE, isolation_level=None)
    segments = lambda: database.execute("SELECT count(*) FROM postings WHERE term = 'pinguin'").fetchone()[0]  # noqa
    for n in range(MERGE_SEGMENTS + 4):
        path = tmp_path / f"p{n}.txt"
        path.write_text(f"Pinguin Nummer {n} kam in den Zoo.", encoding="utf-8")
        build_index([path], tmp_path / "idx", FakeEmbedder(), SETTINGS, add_only=True)
        if n % 2:
            remove_documents(tmp_path / "idx", [f"p{n}"])
        assert segments() <= MERGE_SEGMENTS
        assert_postings_consistent(database)
    listed = {i for ids, tfs in database.execute("SELECT ids, tfs FROM postings WHERE term = 'pinguin'")
              for i in np.frombuffer(ids, "<u4").tolist()}
    removed = {r[0] for r in database.execute("SELECT chunk_id FROM removed")}
    assert len(listed & removed) < MERGE_SEGMENTS // 2 + 2  # only those removed since the last merge
    index = open_index(tmp_path / "idx")
    found = {index.chunks_by_id([i])[i].doc_id for i, _ in index.lexical_search("Pinguin", 50)}
    assert found == {f"p{n}" for n in range(0, MERGE_SEGMENTS + 4, 2)}
