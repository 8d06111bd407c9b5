"""Writing the SQLite store: `build_index`, `remove_documents` and the `IndexWriter` under them.

The change itself is every backend's (`store.writing`); what is SQLite's own: the database file
in the index folder, the writer lock on its LOCK file (`store.locking`), a write transaction that
takes the database at once (BEGIN IMMEDIATE), vectors as float32 blobs, and converting a format-1
index (JSON and FAISS files) without embedding again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Callable

import numpy as np

from rag.errors import RagError
from rag.fileio import sha256_bytes
from rag.models.embedding import Embedder
from rag.store.locking import writer_lock
from rag.store.reading import read_meta
from rag.store.sqlite.reader import open_index
from rag.store.sqlite.schema import DATABASE, SCHEMA, connect
from rag.store.writing import (BuildReport, RemoveReport, TableWriter, apply_articles, load_articles, remove_articles,
                               settings_from_meta)
from rag.text.chunking import ChunkerSettings
from rag.text.documents import MAX_FILE_MB, LoadReport


class IndexWriter(TableWriter):
    """Changes a SQLite index in place; the caller holds the writer lock (see `writer_lock`)."""

    database_errors = (sqlite3.DatabaseError,)

    def __init__(self, index_dir: Path, embedder_id: str, dimension: int, settings: ChunkerSettings):
        self.index_dir = Path(index_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.where = str(self.index_dir)
        self._setup(embedder_id, dimension, settings)

    @classmethod
    def for_existing(cls, index_dir: Path) -> "IndexWriter":
        """A writer that keeps the embedder and chunker the index was built with."""
        try:
            with sqlite3.connect(Path(index_dir) / DATABASE) as conn:
                meta = read_meta(conn)
            conn.close()
        except sqlite3.DatabaseError as exc:
            raise RagError(f"the index at {index_dir} is damaged ({exc}); rebuild it with `rag index`") from None
        embedder_id, dimension, chunker = settings_from_meta(meta, str(index_dir))
        return cls(index_dir, embedder_id, dimension, chunker)

    def _create(self) -> sqlite3.Connection:
        conn = connect(self.index_dir / DATABASE)
        conn.executescript(SCHEMA)
        return conn

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def _vector_param(self, vector: np.ndarray) -> bytes:
        return vector.tobytes()

    def _vector_value(self, value: bytes) -> np.ndarray:
        return np.frombuffer(value, dtype=np.float32)

    def write_error(self, exc: BaseException) -> RagError:
        reason = "the disk is full" if "full" in str(exc) or "disk I/O" in str(exc) else str(exc)
        return RagError(f"could not write the index at {self.index_dir}: {reason}; "
                        "the index is as it was before this run")


def build_index(paths: list[Path], index_dir: Path, embedder: Embedder,
                settings: ChunkerSettings = ChunkerSettings(),
                on_progress: Callable[[int, int], None] | None = None, *, add_only: bool = False,
                max_file_mb: float = MAX_FILE_MB, wait: bool = True,
                on_wait: Callable[[str], None] | None = None,
                loaded: LoadReport | None = None) -> BuildReport:
    """Bring `index_dir` up to date with the articles under `paths`, embedding only what is new.

    New and changed articles are (re)indexed; an article indexed from under one of `paths` whose
    file is gone is removed, unless `add_only`. Articles from elsewhere are left alone. `loaded`:
    the articles, read by the caller (web pages, feeds, exports: `rag.sources`), instead of `paths`.
    """
    started = time.perf_counter()
    index_dir = Path(index_dir)
    loaded = load_articles(paths, embedder, settings, max_file_mb, loaded)
    with writer_lock(index_dir, wait, on_wait):
        writer = IndexWriter(index_dir, embedder.model_id, embedder.dimension, settings)
        try:
            report = apply_articles(writer, loaded, paths, embedder, settings, started, add_only=add_only,
                                    on_progress=on_progress, known=_old_format_vectors(index_dir, embedder.model_id))
        finally:
            writer.close()
        if not report.up_to_date:
            _remove_old_format(index_dir)
    report.index_dir = index_dir
    return report


def remove_documents(index_dir: Path, doc_ids: list[str], wait: bool = True,
                     on_wait: Callable[[str], None] | None = None) -> RemoveReport:
    """Remove articles by id: their text leaves every table in one transaction. Costs what is
    removed: the vectors are not loaded."""
    started = time.perf_counter()
    index_dir = Path(index_dir)
    if not (index_dir / DATABASE).is_file():
        open_index(index_dir)  # raises the right error: no index, or the old format
    with writer_lock(index_dir, wait, on_wait):
        writer = IndexWriter.for_existing(index_dir)
        try:
            report = remove_articles(writer, doc_ids, started)
        finally:
            writer.close()
    report.index_dir = index_dir
    return report


def save_follow_state(index_dir: Path, sources: dict[str, dict], fetched: dict[str, dict], wait: bool = True,
                      on_wait: Callable[[str], None] | None = None) -> None:
    """The follower's state (store/follow.py), written under the writer lock in one transaction."""
    index_dir = Path(index_dir)
    with writer_lock(index_dir, wait, on_wait):
        writer = IndexWriter.for_existing(index_dir)
        try:
            writer.save_follow_state(sources, fetched)
        finally:
            writer.close()


def _old_format_vectors(index_dir: Path, embedder_id: str) -> dict[str, np.ndarray]:
    """Chunk-text sha256 -> vector from a format-1 index (JSON + dense.faiss generations), so that
    converting one embeds nothing."""
    if not (index_dir / "CURRENT").is_file():
        return {}
    import faiss

    try:
        gen = index_dir / (index_dir / "CURRENT").read_text().strip()
        manifest = json.loads((gen / "manifest.json").read_text())
        if manifest["embedder"]["id"] != embedder_id:
            return {}
        chunks = json.loads((gen / "chunks.json").read_text())
        dense = faiss.read_index(str(gen / "dense.faiss"))
        vectors = dense.reconstruct_n(0, dense.ntotal)
    except (OSError, ValueError, KeyError, RuntimeError):
        return {}
    return {sha256_bytes(c["text"].encode()): v for c, v in zip(chunks, vectors)}


def _remove_old_format(index_dir: Path) -> None:
    """After a conversion has committed: the format-1 files are no longer read."""
    (index_dir / "CURRENT").unlink(missing_ok=True)
    for gen in index_dir.glob("gen-*"):
        shutil.rmtree(gen, ignore_errors=True)
