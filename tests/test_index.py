import json

import pytest

from fakes import FakeEmbedder
from rag.chunking import ChunkerSettings
from rag.errors import IndexMismatchError, RagError
from rag.index import build_index, open_index

SETTINGS = ChunkerSettings(max_tokens=48, overlap_tokens=8)


def test_build_then_open_round_trips_chunks_and_vectors(seeds, tmp_path):
    embedder = FakeEmbedder()
    report = build_index([seeds], tmp_path / "idx", embedder, SETTINGS)
    assert report.documents == 2 and report.chunks > 4 and report.embedded == report.chunks
    index = open_index(tmp_path / "idx", embedder.model_id)
    assert len(index.chunks) == report.chunks == index.dense.ntotal
    manifest = json.loads(next((tmp_path / "idx").glob("gen-*/manifest.json")).read_text())
    assert manifest["format_version"] == 1
    assert manifest["embedder"] == {"id": "fake-embedder@1", "dimension": 64}
    assert manifest["chunker"] == {"version": 1, "max_tokens": 48, "overlap_tokens": 8}
    assert len(manifest["documents"]["000_81614b4d2948c4c6"]["sha256"]) == 64
    for chunk in index.chunks:
        assert index.documents[chunk.doc_id].text[chunk.start:chunk.end] == chunk.text


def test_unchanged_input_does_no_embedding_work(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    embedder = FakeEmbedder()
    report = build_index([seeds], tmp_path / "idx", embedder, SETTINGS)
    assert report.up_to_date and embedder.embedded_texts == 0


def test_a_changed_document_reembeds_only_its_new_chunks(seeds, tmp_path):
    first = build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    path = seeds / "003_f1e7237187863abb.txt"
    path.write_text(path.read_text().replace("Im Dezember hielten", "Im November hielten"))
    embedder = FakeEmbedder()
    report = build_index([seeds], tmp_path / "idx", embedder, SETTINGS)
    assert not report.up_to_date
    assert 0 < embedder.embedded_texts < first.chunks
    assert report.reused + report.embedded == report.chunks


def test_another_embedder_is_refused_with_a_clear_error(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    with pytest.raises(IndexMismatchError, match="built with embedder fake-embedder@1.*current embedder is other@2"):
        open_index(tmp_path / "idx", "other@2")


def test_interrupted_build_leaves_the_previous_index_usable(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    before = open_index(tmp_path / "idx", "fake-embedder@1").chunks

    class Crashing(FakeEmbedder):
        def embed(self, texts):
            raise KeyboardInterrupt

    (seeds / "new.txt").write_text("Ein neuer Artikel mit einem Satz.")
    with pytest.raises(KeyboardInterrupt):
        build_index([seeds], tmp_path / "idx", Crashing(), SETTINGS)
    assert open_index(tmp_path / "idx", "fake-embedder@1").chunks == before


def test_missing_and_damaged_indexes_are_clear_errors(seeds, tmp_path):
    with pytest.raises(RagError, match="no index at"):
        open_index(tmp_path / "nothing")
    build_index([seeds], tmp_path / "idx", FakeEmbedder(), SETTINGS)
    next((tmp_path / "idx").glob("gen-*/chunks.json")).write_text("{not json")
    with pytest.raises(RagError, match="damaged"):
        open_index(tmp_path / "idx")


def test_no_usable_article_is_an_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.txt").write_bytes(b"\x00\x00")
    with pytest.raises(RagError, match="no article to index"):
        build_index([tmp_path / "in"], tmp_path / "idx", FakeEmbedder(), SETTINGS)
