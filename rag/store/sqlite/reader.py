"""Reading the SQLite store: `open_index` and `Index`, which searches and answers read from.

Readers hold the vectors in a FAISS IndexIDMap2 and catch up with a newer generation by loading
the vectors whose ids are above the ones they hold and dropping the ids removed since; every
search and answer reads one committed generation (`Index.snapshot`).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from rag.errors import IndexMismatchError, RagError
from rag.fileio import sha256_bytes
from rag.store.base import Manifest
from rag.store.sqlite.schema import DATABASE, FORMAT_VERSION, old_format, read_meta
from rag.text.chunking import Chunk
from rag.text.documents import Document
from rag.text.lexical import ANALYZER, analyze, bm25

LOAD_BATCH = 1024  # vectors read per query when an index is opened: small, so the blobs in flight stay small


def open_index(index_dir: Path, embedder_id: str | None = None) -> "Index":
    """Open the index at `index_dir`; refuse it if `embedder_id` differs from its own."""
    index_dir = Path(index_dir)
    if old_format(index_dir):
        raise IndexMismatchError(f"the index at {index_dir} has the format of an older rag (version 1); "
                                 f"run `rag index` on its articles with --index {index_dir} to convert it "
                                 "(its vectors are reused, nothing is embedded again)")
    if not (index_dir / DATABASE).is_file():
        raise RagError(f"no index at {index_dir}; build one with `rag index` first")
    return Index(index_dir, embedder_id)


class Documents(Mapping):
    """The index's articles by id, read from the database when asked for (an archive of 100,000
    chunks does not fit in memory twice)."""

    def __init__(self, index: "Index"):
        self._index = index

    def __getitem__(self, doc_id: str) -> Document:
        row = self._index.connection().execute(
            "SELECT doc_id, text, path, sha256, date FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            raise KeyError(doc_id)
        return Document(*row)

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self._index.connection().execute("SELECT doc_id FROM documents ORDER BY doc_id"))

    def __len__(self) -> int:
        return self._index.connection().execute("SELECT count(*) FROM documents").fetchone()[0]


class Index:
    """One open index (a `store.base.Store`). Safe to share between threads: each thread reads through its own SQLite
    connection, and `snapshot()` pins what a search or an answer sees to one generation."""

    def __init__(self, path: Path, embedder_id: str | None = None):
        import faiss

        self.path = Path(path)
        self.database = self.path / DATABASE
        self._local = threading.local()
        self._held_lock = threading.Lock()
        self.documents = Documents(self)
        try:
            meta = read_meta(self.connection())
            if not meta:  # created by a first build that did not commit
                raise RagError(f"no index at {self.path}; build one with `rag index` first")
            self.manifest = Manifest.from_meta(meta)
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            raise RagError(f"the index at {self.path} is damaged ({exc}); rebuild it with `rag index`") from None
        if self.manifest.format_version != FORMAT_VERSION:
            raise IndexMismatchError(f"the index at {self.path} has format version {self.manifest.format_version}, "
                                     f"this rag reads version {FORMAT_VERSION}; rebuild it with `rag index`")
        if self.manifest.analyzer != ANALYZER:
            raise IndexMismatchError(f"the index at {self.path} was analysed with {self.manifest.analyzer}, this rag "
                                     f"uses {ANALYZER}; rebuild it with `rag index`")
        self.embedder_id = embedder_id or self.manifest.embedder["id"]
        self._check_embedder(self.manifest)
        self.dense = faiss.IndexIDMap2(faiss.IndexFlatIP(self.manifest.embedder["dimension"]))
        self._live = np.zeros(0, dtype=bool)  # by chunk id: in the index at the generation held
        self._lengths = np.zeros(0, dtype=np.int32)  # by chunk id: terms, for BM25
        self._held_generation = -1
        self._held_epoch = self.manifest.epoch
        self._held_max_id = 0
        with self.snapshot():
            pass  # loads the vectors

    def _check_embedder(self, manifest: Manifest) -> None:
        if manifest.embedder["id"] != self.embedder_id:
            raise IndexMismatchError(
                f"the index at {self.path} was built with embedder {manifest.embedder['id']}, but the current "
                f"embedder is {self.embedder_id}; rebuild it with `rag index` or pass the embedder it was built "
                "with (--embedder / RAG_EMBEDDER)")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection to the database."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = sqlite3.connect(self.database, timeout=60, isolation_level=None,
                                                      check_same_thread=False)
            self._local.depth = 0
        return conn

    @property
    def generation(self) -> int:
        return self.manifest.generation

    @property
    def chunk_count(self) -> int:
        return self.manifest.chunk_count

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Everything read inside comes from one committed generation, the newest when it began;
        nested snapshots of a thread share the outer one."""
        conn = self.connection()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        conn.execute("BEGIN")
        self._local.depth = 1
        try:
            try:
                manifest = Manifest.from_meta(read_meta(conn))
            except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
                raise RagError(f"the index at {self.path} is damaged ({exc}); rebuild it with `rag index`") from None
            self._check_embedder(manifest)
            self.manifest = manifest
            self._catch_up(conn, manifest)
            yield conn
        finally:
            self._local.depth = 0
            conn.execute("ROLLBACK")  # a read transaction: nothing to keep

    def _catch_up(self, conn: sqlite3.Connection, manifest: Manifest) -> None:
        """Bring what this reader holds in memory (vectors, live flags, BM25 lengths) to `manifest`'s generation."""
        with self._held_lock:
            if manifest.epoch != self._held_epoch:
                self.dense.reset()
                self._live[:] = False
                self._held_generation, self._held_epoch, self._held_max_id = -1, manifest.epoch, 0
            if manifest.generation <= self._held_generation:
                return
            if self._held_generation >= 0:
                gone = [row[0] for row in conn.execute("SELECT chunk_id FROM removed WHERE generation > ?",
                                                       (self._held_generation,))]
                if gone:
                    self.dense.remove_ids(np.array(gone, dtype=np.int64))
                    self._live[[i for i in gone if i < len(self._live)]] = False
            dimension = manifest.embedder["dimension"]
            rows = conn.execute("SELECT chunk_id, vector, terms FROM vectors WHERE chunk_id > ? ORDER BY chunk_id",
                                (self._held_max_id,))
            while batch := rows.fetchmany(LOAD_BATCH):
                ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
                vectors = np.frombuffer(b"".join(r[1] for r in batch), dtype=np.float32).reshape(len(batch), dimension)
                self.dense.add_with_ids(vectors, ids)
                self._grow(int(ids[-1]) + 1)
                self._live[ids] = True
                self._lengths[ids] = [r[2] for r in batch]
                self._held_max_id = int(ids[-1])
            self._held_generation = manifest.generation

    def _grow(self, size: int) -> None:
        if size > len(self._live):
            capacity = max(size, 2 * len(self._live))
            self._live = np.concatenate([self._live, np.zeros(capacity - len(self._live), dtype=bool)])
            self._lengths = np.concatenate([self._lengths, np.zeros(capacity - len(self._lengths), dtype=np.int32)])

    def dense_search(self, vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """(chunk id, inner product) of the `limit` nearest chunks, nearest first."""
        with self.snapshot(), self._held_lock:
            if not self.dense.ntotal:
                return []
            scores, ids = self.dense.search(np.asarray(vector, dtype=np.float32).reshape(1, -1),
                                            min(limit, self.dense.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def lexical_search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the best `limit` chunks for the terms of `query`; ties by id."""
        terms = sorted(set(analyze(query)))
        if not terms:
            return []
        postings: dict[str, list[tuple[bytes, bytes]]] = {}
        with self.snapshot() as conn:
            for term, ids, tfs in conn.execute(
                    f"SELECT term, ids, tfs FROM postings WHERE term IN ({','.join('?' * len(terms))})", terms):
                postings.setdefault(term, []).append((ids, tfs))
            with self._held_lock:
                live, lengths = self._live, self._lengths
        return bm25(postings, live, lengths, limit)

    def feedback_terms(self, texts: list[str], count: int) -> list[str]:
        """The `count` terms of `texts` with the highest tf-idf (for pseudo-relevance feedback)."""
        counts = [Counter(analyze(text)) for text in texts]
        terms = sorted({term for c in counts for term in c})
        if not terms:
            return []
        frequency = dict(self.connection().execute(
            f"SELECT term, df FROM terms WHERE term IN ({','.join('?' * len(terms))})", terms))
        n = max(self.chunk_count, 1)
        weights: Counter = Counter()
        for c in counts:
            for term, tf in c.items():
                weights[term] += tf * math.log(n / max(frequency.get(term, 1), 1))
        return [term for term, _ in weights.most_common(count)]

    def chunks_by_id(self, ids: list[int]) -> dict[int, Chunk]:
        """The chunks with these ids, in that order; ids not in the index (removed) are left out."""
        if not ids:
            return {}
        rows = self.connection().execute(
            f"SELECT id, doc_id, chunk_id, start_char, end_char, text FROM chunks WHERE id IN "
            f"({','.join('?' * len(ids))})", list(ids))
        found = {row[0]: Chunk(*row[1:]) for row in rows}
        return {i: found[i] for i in ids if i in found}

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return [Chunk(*row) for row in self.connection().execute(
            "SELECT doc_id, chunk_id, start_char, end_char, text FROM chunks WHERE doc_id = ? ORDER BY id", (doc_id,))]

    def document_and_chunks(self, doc_id: str) -> tuple[Document, list[Chunk]] | None:
        """An article and its chunks, from one generation; None if the index does not hold it."""
        with self.snapshot():
            doc = self.documents.get(doc_id)
            return None if doc is None else (doc, self.chunks_of(doc_id))

    def document_list(self) -> list[dict]:
        """Every article's id, date, file and number of chunks, by id."""
        rows = self.connection().execute(
            "SELECT d.doc_id, d.date, d.path, count(c.id) FROM documents d LEFT JOIN chunks c ON c.doc_id = d.doc_id "
            "GROUP BY d.doc_id ORDER BY d.doc_id")
        return [{"doc_id": doc_id, "date": date, "path": path, "chunks": chunks} for doc_id, date, path, chunks in rows]

    def iter_chunks(self) -> Iterator[Chunk]:
        for row in self.connection().execute("SELECT doc_id, chunk_id, start_char, end_char, text FROM chunks "
                                             "ORDER BY id"):
            yield Chunk(*row)

    @property
    def content_sha256(self) -> str:
        """Identifies what the index holds: its builders and every article's sha256."""
        conn = self.connection()
        hashes = [row[0] for row in conn.execute("SELECT doc_id || ':' || sha256 FROM documents ORDER BY doc_id")]
        identity = {"format": FORMAT_VERSION, "embedder": self.manifest.embedder, "chunker": self.manifest.chunker,
                    "analyzer": self.manifest.analyzer, "documents": hashes}
        return sha256_bytes(json.dumps(identity, sort_keys=True).encode())
