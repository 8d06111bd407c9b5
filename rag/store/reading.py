"""Reading an index held in SQL tables, whichever database holds them: `TableIndex`.

Both backends keep the same tables (documents, chunks, vectors, removed, postings, terms, meta;
`store.sqlite.schema`, `store.postgres.schema`) and read them with the same SQL, written with `?`
placeholders. A backend says how to connect, how a read-only snapshot begins and ends, and how
dense search runs (SQLite: FAISS in memory beside the database; PostgreSQL: pgvector in it).

A reader holds, by chunk id, which chunks are live, how many terms each has (for BM25) and the
day its article was published (a search within a period, `text.periods.Period`, masks the rest
inside both searches, not after them), and catches up with a newer generation by reading the rows whose ids are above the ones it holds and
dropping the ids removed since. Lexical search reads the query terms' posting segments inside
the snapshot and scores them with numpy (`text.lexical.bm25`): the same numbers on either store.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import date
from typing import Any, Iterator

import numpy as np

from rag.errors import IndexMismatchError, IndexMissingError, RagError
from rag.fileio import sha256_bytes
from rag.store.base import Manifest
from rag.text.chunking import Chunk
from rag.text.documents import Document
from rag.text.lexical import ANALYZER, analyze, bm25
from rag.text.periods import Period

FORMAT_VERSION = 3  # of the tables and what they hold, in both backends (3: documents.meta)
# What a writer does to an index of an older format to bring it to this one, step by step, each in
# one transaction of its own (`TableWriter._migrate`); a reader refuses an older format in one line.
MIGRATIONS = {2: ["ALTER TABLE documents ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'"]}
UNDATED = np.iinfo(np.int32).min  # the day of a chunk whose article has no date: inside no period
LOAD_BATCH = 1024  # rows read per query while catching up: small, so the blobs in flight stay small


def day_number(day: str | None) -> int:
    """A YYYY-MM-DD date as the day number `live_within` compares, UNDATED for None.

    >>> day_number("2025-09-02") - day_number("2025-08-31"), day_number(None) == UNDATED
    (2, True)
    """
    return date.fromisoformat(day).toordinal() if day else int(UNDATED)


def read_meta(conn) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


class Documents(Mapping):
    """The index's articles by id, read from the database when asked for (an archive of 100,000
    chunks does not fit in memory twice)."""

    def __init__(self, index: "TableIndex"):
        self._index = index

    def __getitem__(self, doc_id: str) -> Document:
        row = self._index.connection().execute(
            "SELECT doc_id, text, path, sha256, date, meta FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            raise KeyError(doc_id)
        return Document(*row[:5], meta=json.loads(row[5]))

    def __iter__(self) -> Iterator[str]:
        rows = self._index.connection().execute("SELECT doc_id FROM documents ORDER BY doc_id").fetchall()
        return (row[0] for row in rows)

    def __len__(self) -> int:
        return self._index.connection().execute("SELECT count(*) FROM documents").fetchone()[0]


class TableIndex:
    """One open index (a `store.base.Store`). Safe to share between threads: each thread reads
    through its own connection, and `snapshot()` pins what a search or an answer sees to one generation.

    Subclasses give `where` (a path or a URL without its password, for messages), `database_errors`,
    and `_connect`, `_begin_read`, `_hold_rows`, `_drop_ids`, `dense_search`, `_reset_dense`."""

    where: str
    database_errors: tuple[type[BaseException], ...] = ()
    hold_vectors = False  # read the vectors while catching up (for a search in memory)

    def _open(self, embedder_id: str | None) -> None:
        """Read and check the manifest, then catch up: the end of a subclass's __init__."""
        self._local = threading.local()
        self._held_lock = threading.Lock()
        self.documents = Documents(self)
        try:
            meta = read_meta(self.connection())
            if not meta:  # created by a first build that did not commit
                raise IndexMissingError(f"no index at {self.where}; build one with `rag index` first")
            self.manifest = Manifest.from_meta(meta)
        except (*self.database_errors, KeyError, ValueError) as exc:
            raise self.damaged(exc) from None
        if self.manifest.format_version in MIGRATIONS:
            raise IndexMismatchError(f"the index at {self.where} has format version {self.manifest.format_version}, "
                                     f"this rag reads version {FORMAT_VERSION}; `rag index` or `rag remove` on it "
                                     "converts it in place, keeping its articles and vectors")
        if self.manifest.format_version != FORMAT_VERSION:
            raise IndexMismatchError(f"the index at {self.where} has format version {self.manifest.format_version}, "
                                     f"this rag reads version {FORMAT_VERSION}; rebuild it with `rag index`")
        if self.manifest.analyzer != ANALYZER:
            raise IndexMismatchError(f"the index at {self.where} was analysed with {self.manifest.analyzer}, this rag "
                                     f"uses {ANALYZER}; rebuild it with `rag index`")
        self.embedder_id = embedder_id or self.manifest.embedder["id"]
        self._check_embedder(self.manifest)
        self._live = np.zeros(0, dtype=bool)  # by chunk id: in the index at the generation held
        self._lengths = np.zeros(0, dtype=np.int32)  # by chunk id: terms, for BM25
        self._days = np.zeros(0, dtype=np.int32)  # by chunk id: its article's day (date.toordinal()) or UNDATED
        self._held_generation = -1
        self._held_epoch = self.manifest.epoch
        self._held_max_id = 0
        self._reset_dense()
        with self.snapshot():
            pass  # catches up

    def damaged(self, exc: BaseException) -> RagError:
        return RagError(f"the index at {self.where} is damaged ({exc}); rebuild it with `rag index`")

    def _check_embedder(self, manifest: Manifest) -> None:
        if manifest.embedder["id"] != self.embedder_id:
            raise IndexMismatchError(
                f"the index at {self.where} was built with embedder {manifest.embedder['id']}, but the current "
                f"embedder is {self.embedder_id}; rebuild it with `rag index` or pass the embedder it was built "
                "with (--embedder / RAG_EMBEDDER)")

    def connection(self) -> Any:
        """This thread's connection to the database; a new one when the last was lost (outside a snapshot)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(conn, "broken", False) and not self._local.depth:
            conn.close()
            conn = None
        if conn is None:
            conn = self._local.conn = self._connect()
            self._local.depth = 0
        return conn

    @property
    def generation(self) -> int:
        return self.manifest.generation

    @property
    def chunk_count(self) -> int:
        return self.manifest.chunk_count

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
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
        self._begin_read(conn)
        self._local.depth = 1
        try:
            try:
                manifest = Manifest.from_meta(read_meta(conn))
            except (*self.database_errors, KeyError, ValueError) as exc:
                raise self.damaged(exc) from None
            self._check_embedder(manifest)
            self.manifest = self._local.manifest = manifest  # the thread's own: another may begin a newer one
            self._catch_up(conn, manifest)
            yield conn
        finally:
            self._local.depth = 0
            self._end_read(conn)

    def _catch_up(self, conn, manifest: Manifest) -> None:
        """Bring what this reader holds in memory (live flags, BM25 lengths, and the vectors where
        they are searched in memory) to `manifest`'s generation."""
        with self._held_lock:
            if manifest.epoch != self._held_epoch:
                self._reset_dense()
                self._live[:] = False
                self._held_generation, self._held_epoch, self._held_max_id = -1, manifest.epoch, 0
            if manifest.generation <= self._held_generation:
                return
            if self._held_generation >= 0:
                gone = [row[0] for row in conn.execute("SELECT chunk_id FROM removed WHERE generation > ?",
                                                       (self._held_generation,)).fetchall()]
                if gone:
                    self._drop_ids(np.array(gone, dtype=np.int64))
                    self._live[[i for i in gone if i < len(self._live)]] = False
            # A chunk's article never changes its date: a replaced article gets new chunk ids.
            vector = ", v.vector" if self.hold_vectors else ""
            rows = conn.execute(f"SELECT v.chunk_id, v.terms, d.date{vector} FROM vectors v "
                                "JOIN chunks c ON c.id = v.chunk_id JOIN documents d ON d.doc_id = c.doc_id "
                                "WHERE v.chunk_id > ? ORDER BY v.chunk_id", (self._held_max_id,))
            while batch := rows.fetchmany(LOAD_BATCH):
                ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
                self._hold_rows(ids, batch)
                self._grow(int(ids[-1]) + 1)
                self._live[ids] = True
                self._lengths[ids] = [r[1] for r in batch]
                self._days[ids] = [day_number(r[2]) for r in batch]
                self._held_max_id = int(ids[-1])
            self._held_generation = manifest.generation

    def _grow(self, size: int) -> None:
        if size > len(self._live):
            capacity = max(size, 2 * len(self._live))
            self._live = np.concatenate([self._live, np.zeros(capacity - len(self._live), dtype=bool)])
            self._lengths = np.concatenate([self._lengths, np.zeros(capacity - len(self._lengths), dtype=np.int32)])
            self._days = np.concatenate([self._days, np.full(capacity - len(self._days), UNDATED, dtype=np.int32)])

    def live_within(self, period: Period | None) -> np.ndarray:
        """By chunk id: live at the generation held and, given a period, published inside it."""
        with self._held_lock:
            live, days = self._live, self._days
        if period is None:
            return live
        return live & (days >= period.start.toordinal()) & (days <= period.end.toordinal())

    def lexical_search(self, query: str, limit: int, period: Period | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the best `limit` chunks for the terms of `query`, of articles
        published in `period` when given (scored as if the index held only those); ties by id."""
        terms = sorted(set(analyze(query)))
        if not terms:
            return []
        postings: dict[str, list[tuple[bytes, bytes]]] = {}
        with self.snapshot() as conn:
            for term, ids, tfs in conn.execute(
                    f"SELECT term, ids, tfs FROM postings WHERE term IN ({','.join('?' * len(terms))}) "
                    "ORDER BY term, segment", terms).fetchall():
                postings.setdefault(term, []).append((bytes(ids), bytes(tfs)))
            live = self.live_within(period)
            with self._held_lock:
                lengths = self._lengths
        return bm25(postings, live, lengths[:len(live)], limit)

    def feedback_terms(self, texts: list[str], count: int) -> list[str]:
        """The `count` terms of `texts` with the highest tf-idf (for pseudo-relevance feedback)."""
        counts = [Counter(analyze(text)) for text in texts]
        terms = sorted({term for c in counts for term in c})
        if not terms:
            return []
        frequency = dict(self.connection().execute(
            f"SELECT term, df FROM terms WHERE term IN ({','.join('?' * len(terms))})", terms).fetchall())
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
            f"({','.join('?' * len(ids))})", [int(i) for i in ids]).fetchall()
        found = {row[0]: Chunk(*row[1:]) for row in rows}
        return {i: found[i] for i in ids if i in found}

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return [Chunk(*row) for row in self.connection().execute(
            "SELECT doc_id, chunk_id, start_char, end_char, text FROM chunks WHERE doc_id = ? ORDER BY id",
            (doc_id,)).fetchall()]

    def document_and_chunks(self, doc_id: str) -> tuple[Document, list[Chunk]] | None:
        """An article and its chunks, from one generation; None if the index does not hold it."""
        with self.snapshot():
            doc = self.documents.get(doc_id)
            return None if doc is None else (doc, self.chunks_of(doc_id))

    def document_list(self) -> list[dict]:
        """Every article's id, date, file or address, number of chunks and metadata, by id."""
        rows = self.connection().execute(
            "SELECT d.doc_id, d.date, d.path, count(c.id), d.meta FROM documents d LEFT JOIN chunks c "
            "ON c.doc_id = d.doc_id GROUP BY d.doc_id, d.date, d.path, d.meta ORDER BY d.doc_id").fetchall()
        return [{"doc_id": doc_id, "date": date, "path": path, "chunks": chunks, **json.loads(meta)}
                for doc_id, date, path, chunks, meta in rows]

    def iter_chunks(self) -> Iterator[Chunk]:
        rows = self.connection().execute("SELECT doc_id, chunk_id, start_char, end_char, text FROM chunks ORDER BY id")
        while batch := rows.fetchmany(LOAD_BATCH):
            yield from (Chunk(*row) for row in batch)

    @property
    def content_sha256(self) -> str:
        """Identifies what the index holds: its builders and every article's sha256."""
        hashes = [row[0] for row in self.connection().execute(
            "SELECT doc_id || ':' || sha256 FROM documents ORDER BY doc_id").fetchall()]
        identity = {"format": FORMAT_VERSION, "embedder": self.manifest.embedder, "chunker": self.manifest.chunker,
                    "analyzer": self.manifest.analyzer, "documents": hashes}
        return sha256_bytes(json.dumps(identity, sort_keys=True).encode())
