"""Index: articles, chunks, vectors and BM25 postings in one SQLite database, changed in place.

Layout of an index folder:

    indexes/seeds/index.sqlite    every table below (with -wal and -shm beside it while in use)
    indexes/seeds/LOCK            held by the one writer (`rag index`, `rag remove`)

Tables: `meta` (format version, embedder, chunker, analyzer, corpus language, generation),
`documents` (cleaned text and sha256 per article), `chunks` (offsets and text; ids only grow),
`vectors` (one float32 blob and the BM25 length per chunk), `removed` (chunk ids removed, with
the generation that removed them), `postings` (per term, one segment per commit that added it:
chunk ids and term frequencies, see lexical.py) and `terms` (document frequency and segment
count per term). A removed chunk's postings stay until its term's segments are merged (when a
term has more than MERGE_SEGMENTS of them): readers skip chunks that are not live.

A change (articles added, replaced or removed) is one SQLite transaction, so it costs what
changed, never a rewrite of the rest; WAL mode shows readers the state before it or after it,
never between, and a crash at any moment leaves one of the two. Readers hold the vectors in a
FAISS IndexIDMap2 and catch up with a newer generation by loading the vectors whose ids are
above the ones they hold and dropping the ids removed since.

>>> import tempfile
>>> from rag.models.embedding import Embedder
>>> class Words(Embedder):
...     model_id, dimension, max_tokens = "words@1", 8, 512
...     def embed(self, texts):
...         vectors = np.ones((len(texts), 8), np.float32)
...         return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "a.txt").write_text("Zwei Abkommen wurden unterzeichnet.")
>>> build_index([folder], folder / "idx", Words()).chunks
1
>>> index = open_index(folder / "idx", "words@1")
>>> [index.chunks_by_id([i])[i].text for i, _ in index.lexical_search("Abkommen", 5)]
['Zwei Abkommen wurden unterzeichnet.']
>>> remove_documents(folder / "idx", ["a"]).removed, index.lexical_search("Abkommen", 5)
(['a'], [])
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from rag import __version__
from rag.text.chunking import Chunk, ChunkerSettings, chunk_document
from rag.text.documents import MAX_FILE_MB, Document, load_documents
from rag.models.embedding import Embedder
from rag.errors import IndexMismatchError, RagError
from rag.fileio import sha256_bytes
from rag.text.language import detect_language
from rag.text.lexical import ANALYZER, analyze, bm25, chunk_terms, decode_postings, encode_postings
from rag.store.locking import writer_lock

FORMAT_VERSION = 2
DATABASE = "index.sqlite"
EMBED_BATCH = 32
MERGE_SEGMENTS = 16  # a term's segments are merged into one (dropping removed chunks) above this many
LOAD_BATCH = 1024  # vectors read per query when an index is opened: small, so the blobs in flight stay small

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(doc_id TEXT PRIMARY KEY, path TEXT NOT NULL, source TEXT NOT NULL,
    sha256 TEXT NOT NULL, date TEXT, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL,
    chunk_id TEXT NOT NULL, start_char INTEGER NOT NULL, end_char INTEGER NOT NULL, text TEXT NOT NULL,
    text_sha256 TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_by_text ON chunks(text_sha256);
CREATE TABLE IF NOT EXISTS vectors(chunk_id INTEGER PRIMARY KEY, vector BLOB NOT NULL, terms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS removed(chunk_id INTEGER PRIMARY KEY, generation INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS postings(term TEXT NOT NULL, segment INTEGER NOT NULL, ids BLOB NOT NULL,
    tfs BLOB NOT NULL, PRIMARY KEY(term, segment)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS terms(term TEXT PRIMARY KEY, df INTEGER NOT NULL, segments INTEGER NOT NULL) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Manifest:
    """What built the index, from its `meta` table."""

    format_version: int
    embedder: dict  # {"id", "dimension"}
    chunker: dict
    analyzer: str
    language: str  # the corpus language: questions in another language get translated
    generation: int  # counts committed changes
    epoch: int  # counts rebuilds from scratch (another embedder or chunker)
    chunk_count: int
    created_at: str
    updated_at: str
    rag_version: str

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> "Manifest":
        return cls(int(meta["format_version"]), json.loads(meta["embedder"]), json.loads(meta["chunker"]),
                   meta["analyzer"], meta["language"], int(meta["generation"]), int(meta["epoch"]),
                   int(meta["chunk_count"]), meta["created_at"], meta["updated_at"], meta["rag_version"])


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
    added: list[str] = field(default_factory=list)  # doc ids new or changed
    removed: list[str] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, how it was read)


@dataclass
class RemoveReport:
    index_dir: Path
    removed: list[str]
    chunks: int  # chunks removed
    seconds: float


def _connect(database: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(database, timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")  # readers see whole transactions and never block the writer
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta"))


def _old_format(index_dir: Path) -> bool:
    return (index_dir / "CURRENT").is_file() and not (index_dir / DATABASE).exists()


def open_index(index_dir: Path, embedder_id: str | None = None) -> "Index":
    """Open the index at `index_dir`; refuse it if `embedder_id` differs from its own."""
    index_dir = Path(index_dir)
    if _old_format(index_dir):
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
    """One open index. Safe to share between threads: each thread reads through its own SQLite
    connection, and `snapshot()` pins what a search or an answer sees to one generation."""

    def __init__(self, path: Path, embedder_id: str | None = None):
        import faiss

        self.path = Path(path)
        self.database = self.path / DATABASE
        self._local = threading.local()
        self._held_lock = threading.Lock()
        self.documents = Documents(self)
        try:
            meta = _read_meta(self.connection())
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
                manifest = Manifest.from_meta(_read_meta(conn))
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


class IndexWriter:
    """Changes an index in place; the caller holds the writer lock (see `writer_lock`).

    Opening it for another embedder, chunker or analyzer than the index was built with makes
    the next commit a rebuild: everything old goes, in the same transaction as the new comes.
    """

    def __init__(self, index_dir: Path, embedder_id: str, dimension: int, settings: ChunkerSettings):
        self.index_dir = Path(index_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.embedder = {"id": embedder_id, "dimension": dimension}
        self.chunker = settings.identity()
        try:
            self.conn = _connect(self.index_dir / DATABASE)
            self.conn.executescript(SCHEMA)
            self.meta = _read_meta(self.conn)
        except sqlite3.DatabaseError as exc:
            raise _write_error(self.index_dir, exc) from None
        if self.meta and int(self.meta.get("format_version", 0)) != FORMAT_VERSION:
            raise IndexMismatchError(f"the index at {self.index_dir} has format version "
                                     f"{self.meta.get('format_version')}; move it away and build a new one")
        self.rebuild = bool(self.meta) and (json.loads(self.meta["embedder"]), json.loads(self.meta["chunker"]),
                                            self.meta["analyzer"]) != (self.embedder, self.chunker, ANALYZER)

    @classmethod
    def for_existing(cls, index_dir: Path) -> "IndexWriter":
        """A writer that keeps the embedder and chunker the index was built with."""
        try:
            with sqlite3.connect(Path(index_dir) / DATABASE) as conn:
                meta = _read_meta(conn)
            conn.close()
            embedder, chunker = json.loads(meta["embedder"]), json.loads(meta["chunker"])
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            raise RagError(f"the index at {index_dir} is damaged ({exc}); rebuild it with `rag index`") from None
        return cls(index_dir, embedder["id"], embedder["dimension"],
                   ChunkerSettings(chunker["max_tokens"], chunker["overlap_tokens"]))

    def close(self) -> None:
        self.conn.close()

    def stored(self) -> dict[str, tuple[str, str]]:
        """doc_id -> (sha256, source path) of every article in the index."""
        return {doc_id: (sha, source) for doc_id, sha, source in
                self.conn.execute("SELECT doc_id, sha256, source FROM documents")}

    def known_vectors(self, text_hashes: list[str]) -> dict[str, np.ndarray]:
        """Vectors already in the index for chunk texts with these sha256s (same embedder only)."""
        if self.rebuild and json.loads(self.meta["embedder"]) != self.embedder:
            return {}
        known = {}
        for start in range(0, len(text_hashes), 500):
            batch = text_hashes[start:start + 500]
            for sha, blob in self.conn.execute(
                    f"SELECT c.text_sha256, v.vector FROM chunks c JOIN vectors v ON v.chunk_id = c.id "
                    f"WHERE c.text_sha256 IN ({','.join('?' * len(batch))})", batch):
                known[sha] = np.frombuffer(blob, dtype=np.float32)
        return known

    def commit(self, added: list[tuple[Document, list[Chunk], np.ndarray]], removed: list[str],
               language: str | None = None) -> tuple[int, int]:
        """Replace or add the `added` articles and delete `removed` ones in one transaction.
        Returns (chunks removed, generation committed)."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                meta = _read_meta(conn)
                generation = int(meta.get("generation", 0)) + 1
                epoch = int(meta.get("epoch", 0))
                frequencies: Counter = Counter()  # document frequency changes, by term
                if self.rebuild:
                    dropped = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
                    for table in ("documents", "chunks", "vectors", "removed", "postings", "terms"):
                        conn.execute(f"DELETE FROM {table}")
                    epoch += 1
                else:
                    dropped = sum(self._delete(doc_id, generation, frequencies)
                                  for doc_id in [*removed, *(doc.doc_id for doc, _, _ in added)])
                postings: dict[str, tuple[list[int], list[int]]] = {}
                for doc, chunks, vectors in added:
                    self._insert(doc, chunks, vectors, postings)
                self._write_postings(postings, frequencies, generation)
                count = conn.execute("SELECT count(*) FROM chunks").fetchone()[0] if self.rebuild else \
                    int(meta.get("chunk_count", 0)) - dropped + sum(len(c) for _, c, _ in added)
                now = datetime.now(timezone.utc).isoformat(timespec="seconds")
                values = {"format_version": str(FORMAT_VERSION), "embedder": json.dumps(self.embedder),
                          "chunker": json.dumps(self.chunker), "analyzer": ANALYZER,
                          "language": language or meta.get("language", "de"), "generation": str(generation),
                          "epoch": str(epoch), "chunk_count": str(count), "updated_at": now,
                          "created_at": now if self.rebuild else meta.get("created_at", now),
                          "rag_version": __version__}
                conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", values.items())
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise _write_error(self.index_dir, exc) from None
        self.meta = _read_meta(conn)
        self.rebuild = False
        return dropped, generation

    def _delete(self, doc_id: str, generation: int, frequencies: Counter) -> int:
        """Delete an article's rows. Its postings stay (readers skip removed chunks) until merged."""
        rows = self.conn.execute("SELECT id, text FROM chunks WHERE doc_id = ?", (doc_id,)).fetchall()
        for _, text in rows:
            frequencies.subtract(chunk_terms(text).keys())
        self.conn.executemany("DELETE FROM vectors WHERE chunk_id = ?", [(i,) for i, _ in rows])
        self.conn.executemany("INSERT OR REPLACE INTO removed(chunk_id, generation) VALUES (?, ?)",
                              [(i, generation) for i, _ in rows])
        self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self.conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        return len(rows)

    def _insert(self, doc: Document, chunks: list[Chunk], vectors: np.ndarray,
                postings: dict[str, tuple[list[int], list[int]]]) -> None:
        source = str(Path(doc.path).resolve()) if doc.path else ""
        self.conn.execute("INSERT INTO documents(doc_id, path, source, sha256, date, text) VALUES (?, ?, ?, ?, ?, ?)",
                          (doc.doc_id, doc.path, source, doc.sha256, doc.date, doc.text))
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for chunk, vector in zip(chunks, vectors):
            cursor = self.conn.execute(
                "INSERT INTO chunks(doc_id, chunk_id, start_char, end_char, text, text_sha256) VALUES (?, ?, ?, ?, ?, ?)",
                (chunk.doc_id, chunk.chunk_id, chunk.start, chunk.end, chunk.text, sha256_bytes(chunk.text.encode())))
            row = cursor.lastrowid
            terms = chunk_terms(chunk.text)
            self.conn.execute("INSERT INTO vectors(chunk_id, vector, terms) VALUES (?, ?, ?)",
                              (row, vector.tobytes(), sum(terms.values())))
            for term, tf in terms.items():
                ids, tfs = postings.setdefault(term, ([], []))
                ids.append(row)
                tfs.append(tf)

    def _write_postings(self, postings: dict[str, tuple[list[int], list[int]]], frequencies: Counter,
                        generation: int) -> None:
        """One new segment per term of the added chunks; document frequencies updated; a term with
        too many segments merged into one."""
        for term, (ids, tfs) in postings.items():
            frequencies[term] += len(ids)
        self.conn.executemany("INSERT INTO postings(term, segment, ids, tfs) VALUES (?, ?, ?, ?)",
                              ((term, generation, *encode_postings(ids, tfs)) for term, (ids, tfs) in postings.items()))
        self.conn.executemany(
            "INSERT INTO terms(term, df, segments) VALUES (?, ?, ?) "
            "ON CONFLICT(term) DO UPDATE SET df = df + excluded.df, segments = segments + excluded.segments",
            ((term, change, int(term in postings)) for term, change in frequencies.items()))
        crowded = [row[0] for row in self.conn.execute(f"SELECT term FROM terms WHERE segments > {MERGE_SEGMENTS}")]
        for term in crowded:
            self.merge(term, generation)

    def merge(self, term: str, generation: int) -> None:
        """Rewrite a term's segments as one, without the chunks removed since they were written."""
        parts = [decode_postings(ids, tfs) for ids, tfs in
                 self.conn.execute("SELECT ids, tfs FROM postings WHERE term = ?", (term,))]
        ids, tfs = (np.concatenate(column) for column in zip(*parts))
        gone = {row[0] for row in self.conn.execute(
            f"SELECT chunk_id FROM removed WHERE chunk_id IN ({','.join('?' * len(ids))})", ids.tolist())} \
            if len(ids) < 30000 else {row[0] for row in self.conn.execute("SELECT chunk_id FROM removed")}
        keep = np.array([i not in gone for i in ids.tolist()], dtype=bool)
        self.conn.execute("DELETE FROM postings WHERE term = ?", (term,))
        if keep.any():
            self.conn.execute("INSERT INTO postings(term, segment, ids, tfs) VALUES (?, ?, ?, ?)",
                              (term, generation, *encode_postings(ids[keep].tolist(), tfs[keep].tolist())))
        self.conn.execute("UPDATE terms SET segments = ? WHERE term = ?", (int(keep.any()), term))


def _write_error(index_dir: Path, exc: sqlite3.DatabaseError) -> RagError:
    reason = "the disk is full" if "full" in str(exc) or "disk I/O" in str(exc) else str(exc)
    return RagError(f"could not write the index at {index_dir}: {reason}; the index is as it was before this run")


def _under(source: str, roots: list[Path]) -> bool:
    path = Path(source)
    return any(path == root or root in path.parents for root in roots)


def build_index(paths: list[Path], index_dir: Path, embedder: Embedder,
                settings: ChunkerSettings = ChunkerSettings(),
                on_progress: Callable[[int, int], None] | None = None, *, add_only: bool = False,
                max_file_mb: float = MAX_FILE_MB, wait: bool = True,
                on_wait: Callable[[str], None] | None = None) -> BuildReport:
    """Bring `index_dir` up to date with the articles under `paths`, embedding only what is new.

    New and changed articles are (re)indexed; an article indexed from under one of `paths` whose
    file is gone is removed, unless `add_only`. Articles from elsewhere are left alone.
    """
    started = time.perf_counter()
    index_dir = Path(index_dir)
    loaded = load_documents([Path(p) for p in paths], max_file_mb)
    if not loaded.documents:
        reasons = "; ".join(f"{p}: {r}" for p, r in loaded.skipped[:3])
        raise RagError(f"no article to index under {', '.join(map(str, paths))}" + (f" ({reasons})" if reasons else ""))
    notes = [(d.path, d.note) for d in loaded.documents if d.note]
    if settings.max_tokens > embedder.max_tokens:
        raise RagError(f"chunks of {settings.max_tokens} tokens exceed the embedder's limit of {embedder.max_tokens}")
    with writer_lock(index_dir, wait, on_wait):
        writer = IndexWriter(index_dir, embedder.model_id, embedder.dimension, settings)
        try:
            stored = writer.stored()
            roots = [Path(p).resolve() for p in paths]
            present = {d.doc_id for d in loaded.documents} | {Path(p).stem for p, _ in loaded.skipped}
            removed = [] if add_only else sorted(doc_id for doc_id, (_, source) in stored.items()
                                                 if doc_id not in present and _under(source, roots))
            changed = [d for d in loaded.documents if writer.rebuild or stored.get(d.doc_id, ("",))[0] != d.sha256]
            total = len(set(stored) - set(removed) | {d.doc_id for d in loaded.documents})
            if not changed and not removed:
                return BuildReport(index_dir, total, int(writer.meta.get("chunk_count", 0)), 0, 0, True,
                                   time.perf_counter() - started, loaded.skipped, notes=notes)
            chunked = [(doc, chunk_document(doc, embedder.count_tokens, settings)) for doc in changed]
            texts = [c.text for _, chunks in chunked for c in chunks]
            vectors, reused = _embed_reusing(texts, embedder, writer, index_dir, on_progress)
            added, at = [], 0
            for doc, chunks in chunked:
                added.append((doc, chunks, vectors[at:at + len(chunks)]))
                at += len(chunks)
            language = None
            if not stored or writer.rebuild or not add_only:
                language = Counter(detect_language(d.text[:3000]) for d in loaded.documents).most_common(1)[0][0]
            writer.commit(added, removed, language)
            chunk_count = int(writer.meta["chunk_count"])
        finally:
            writer.close()
        _remove_old_format(index_dir)
    return BuildReport(index_dir, total, chunk_count, len(texts) - reused, reused, False,
                       time.perf_counter() - started, loaded.skipped, [d.doc_id for d in changed], removed, notes)


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
            stored = {row[0] for row in writer.conn.execute(
                f"SELECT doc_id FROM documents WHERE doc_id IN ({','.join('?' * len(doc_ids))})", doc_ids)}
            unknown = [doc_id for doc_id in doc_ids if doc_id not in stored]
            if unknown:
                raise RagError(f"no document {', '.join(map(repr, unknown))} in the index at {index_dir}; "
                               "nothing was removed (`rag documents` lists the ids)")
            dropped, _ = writer.commit([], sorted(stored))
        finally:
            writer.close()
    return RemoveReport(index_dir, sorted(stored), dropped, time.perf_counter() - started)


def _embed_reusing(texts: list[str], embedder: Embedder, writer: IndexWriter, index_dir: Path,
                   on_progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, int]:
    """Vectors for `texts`, taking those of chunk texts the index (or an old-format one) already holds."""
    keys = [sha256_bytes(t.encode()) for t in texts]
    known = _old_format_vectors(index_dir, embedder.model_id)
    known.update(writer.known_vectors(sorted(set(keys) - set(known))))
    todo = sorted({k: t for k, t in zip(keys, texts) if k not in known}.items())
    if on_progress:
        on_progress(0, len(todo))
    for start in range(0, len(todo), EMBED_BATCH):
        batch = todo[start:start + EMBED_BATCH]
        for (key, _), vector in zip(batch, embedder.embed([text for _, text in batch])):
            known[key] = vector
        if on_progress:
            on_progress(min(start + EMBED_BATCH, len(todo)), len(todo))
    if not keys:
        return np.zeros((0, embedder.dimension), np.float32), 0
    return np.stack([known[k] for k in keys]).astype(np.float32), len(texts) - len(todo)


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
