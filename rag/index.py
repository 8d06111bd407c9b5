"""Index: the chunk store, the dense FAISS index, the BM25 index and a manifest, on disk.

Layout of an index folder:

    indexes/seeds/CURRENT            names the live generation, e.g. "gen-000002"
    indexes/seeds/gen-000002/        manifest.json, documents.json, chunks.json,
                                     dense.faiss, lexical.json

A build writes a new generation folder, then atomically replaces CURRENT; an interrupted build
leaves the previous generation live. The manifest carries the format version and the identity
of everything that produced the index (embedder id, chunker settings, sha256 per document), and
`open_index` refuses an index whose embedder differs from the one asked to query it.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .chunking import Chunk, ChunkerSettings, chunk_document
from .documents import Document, load_documents
from .embedding import Embedder
from .errors import IndexMismatchError, RagError
from .fileio import atomic_write_bytes, atomic_write_json, atomic_write_text, fsync_dir, sha256_bytes
from .language import detect_language
from .lexical import BM25Index

FORMAT_VERSION = 1
EMBED_BATCH = 32


@dataclass(frozen=True)
class Manifest:
    format_version: int
    embedder: dict  # {"id", "dimension"}
    chunker: dict
    documents: dict  # doc_id -> {"sha256", "path", "date"}
    chunk_count: int
    created_at: str
    rag_version: str
    language: str = "de"  # the corpus language: questions in another language get translated

    def built_from(self, embedder_id: str, settings: ChunkerSettings, documents: dict) -> bool:
        """True when this index was built from exactly these documents, embedder and chunker."""
        return (self.format_version, self.embedder["id"], self.chunker, self.documents) == \
            (FORMAT_VERSION, embedder_id, settings.identity(), documents)


@dataclass
class Index:
    path: Path
    manifest: Manifest
    documents: dict[str, Document]
    chunks: list[Chunk]
    dense: object  # faiss.Index
    lexical: BM25Index
    generation: Path  # the folder this index was read from

    @property
    def manifest_sha256(self) -> str:
        return sha256_bytes((self.generation / "manifest.json").read_bytes())

    def vectors(self) -> np.ndarray:
        return self.dense.reconstruct_n(0, self.dense.ntotal) if self.dense.ntotal else \
            np.zeros((0, self.manifest.embedder["dimension"]), dtype=np.float32)


@dataclass
class BuildReport:
    index_dir: Path
    documents: int
    chunks: int
    embedded: int
    reused: int
    up_to_date: bool
    seconds: float
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _live_generation(index_dir: Path) -> Path | None:
    pointer = index_dir / "CURRENT"
    if not pointer.is_file():
        return None
    gen = index_dir / pointer.read_text().strip()
    return gen if gen.is_dir() else None


def live_generation_name(index_dir: Path) -> str | None:
    """The name of the live generation ("gen-000002"), read afresh: a reader compares it with the
    generation it holds to notice that `rag index` committed a new one."""
    gen = _live_generation(Path(index_dir))
    return gen.name if gen is not None else None


def _read_manifest(gen: Path) -> Manifest:
    data = json.loads((gen / "manifest.json").read_text())
    return Manifest(**data)


def open_index(index_dir: Path, embedder_id: str | None = None) -> Index:
    """Load the live generation of `index_dir`; refuse it if `embedder_id` differs from its own."""
    import faiss

    index_dir = Path(index_dir)
    gen = _live_generation(index_dir)
    if gen is None:
        raise RagError(f"no index at {index_dir}; build one with `rag index` first")
    try:
        manifest = _read_manifest(gen)
    except (OSError, ValueError, TypeError) as exc:
        raise RagError(f"the index at {index_dir} is damaged ({exc}); rebuild it with `rag index`") from None
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatchError(f"the index at {index_dir} has format version {manifest.format_version}, "
                                 f"this rag reads version {FORMAT_VERSION}; rebuild it with `rag index`")
    if embedder_id is not None and manifest.embedder["id"] != embedder_id:
        raise IndexMismatchError(f"the index at {index_dir} was built with embedder {manifest.embedder['id']}, "
                                 f"but the current embedder is {embedder_id}; rebuild it with `rag index` "
                                 "or pass the embedder it was built with (--embedder / RAG_EMBEDDER)")
    try:
        documents = {d["doc_id"]: Document(**d) for d in json.loads((gen / "documents.json").read_text())}
        chunks = [Chunk(**c) for c in json.loads((gen / "chunks.json").read_text())]
        dense = faiss.read_index(str(gen / "dense.faiss"))
        lexical = BM25Index.from_json(json.loads((gen / "lexical.json").read_text()))
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise RagError(f"the index at {index_dir} is damaged ({exc}); rebuild it with `rag index`") from None
    if dense.ntotal != len(chunks) or len(lexical.lengths) != len(chunks):
        raise RagError(f"the index at {index_dir} is damaged (its parts disagree on the chunk count); "
                       "rebuild it with `rag index`")
    return Index(index_dir, manifest, documents, chunks, dense, lexical, gen)


def build_index(paths: list[Path], index_dir: Path, embedder: Embedder,
                settings: ChunkerSettings = ChunkerSettings(),
                on_progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Index the articles under `paths` into `index_dir`, embedding only what is new."""
    import faiss

    started = time.perf_counter()
    index_dir = Path(index_dir)
    loaded = load_documents([Path(p) for p in paths])
    if not loaded.documents:
        reasons = "; ".join(f"{p}: {r}" for p, r in loaded.skipped[:3])
        raise RagError(f"no article to index under {', '.join(map(str, paths))}" + (f" ({reasons})" if reasons else ""))
    documents = {d.doc_id: {"sha256": d.sha256, "path": d.path, "date": d.date} for d in loaded.documents}
    previous = _live_generation(index_dir)
    try:
        previous_manifest = _read_manifest(previous) if previous is not None else None
    except (OSError, ValueError, TypeError):
        previous_manifest = None
    # Decided from hashes alone, before any model is loaded: an unchanged input costs nothing.
    if previous_manifest is not None and previous_manifest.built_from(embedder.model_id, settings, documents):
        return BuildReport(index_dir, len(loaded.documents), previous_manifest.chunk_count, 0, 0, True,
                           time.perf_counter() - started, loaded.skipped)
    if settings.max_tokens > embedder.max_tokens:
        raise RagError(f"chunks of {settings.max_tokens} tokens exceed the embedder's limit of {embedder.max_tokens}")

    chunks = [c for doc in loaded.documents for c in chunk_document(doc, embedder.count_tokens, settings)]
    vectors, reused = _embed_reusing(chunks, embedder, index_dir, previous_manifest, on_progress)

    manifest = Manifest(
        format_version=FORMAT_VERSION,
        embedder={"id": embedder.model_id, "dimension": embedder.dimension},
        chunker=settings.identity(),
        documents=documents,
        chunk_count=len(chunks),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        rag_version=__version__,
        language=Counter(detect_language(d.text[:3000]) for d in loaded.documents).most_common(1)[0][0],
    )
    dense = faiss.IndexFlatIP(manifest.embedder["dimension"])
    if chunks:
        dense.add(vectors)
    lexical = BM25Index.build([c.text for c in chunks])

    gen = _new_generation(index_dir, previous)
    atomic_write_json(gen / "documents.json", [asdict(d) for d in loaded.documents])
    atomic_write_json(gen / "chunks.json", [asdict(c) for c in chunks])
    atomic_write_bytes(gen / "dense.faiss", faiss.serialize_index(dense).tobytes())
    atomic_write_text(gen / "lexical.json", json.dumps(lexical.to_json(), ensure_ascii=False))
    atomic_write_json(gen / "manifest.json", asdict(manifest))
    atomic_write_text(index_dir / "CURRENT", gen.name + "\n")  # the commit point
    _remove_stale_generations(index_dir, keep=gen.name)
    return BuildReport(index_dir, len(loaded.documents), len(chunks), len(chunks) - reused, reused, False,
                       time.perf_counter() - started, loaded.skipped)


def _embed_reusing(chunks: list[Chunk], embedder: Embedder, index_dir: Path, previous_manifest: Manifest | None,
                   on_progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, int]:
    """Vectors for `chunks`, taking those of unchanged chunk texts from the live index."""
    known: dict[str, np.ndarray] = {}
    if previous_manifest is not None and previous_manifest.embedder["id"] == embedder.model_id:
        try:
            old = open_index(index_dir, embedder.model_id)
            known = {sha256_bytes(c.text.encode()): v for c, v in zip(old.chunks, old.vectors())}
        except RagError:
            known = {}
    keys = [sha256_bytes(c.text.encode()) for c in chunks]
    todo = sorted({k: c.text for k, c in zip(keys, chunks) if k not in known}.items())
    if on_progress:
        on_progress(0, len(todo))
    for start in range(0, len(todo), EMBED_BATCH):
        batch = todo[start:start + EMBED_BATCH]
        for (key, _), vector in zip(batch, embedder.embed([text for _, text in batch])):
            known[key] = vector
        if on_progress:
            on_progress(min(start + EMBED_BATCH, len(todo)), len(todo))
    dimension = embedder.dimension
    vectors = np.stack([known[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, dimension), np.float32)
    return vectors, len(chunks) - len(todo)


def _new_generation(index_dir: Path, previous: Path | None) -> Path:
    number = int(previous.name.split("-")[1]) + 1 if previous is not None else 1
    gen = index_dir / f"gen-{number:06d}"
    if gen.exists():
        shutil.rmtree(gen)  # left behind by an interrupted build: never live
    gen.mkdir(parents=True)
    fsync_dir(index_dir)
    return gen


def _remove_stale_generations(index_dir: Path, keep: str) -> None:
    for path in index_dir.glob("gen-*"):
        if path.name != keep and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
