"""Changing an index held in SQL tables, whichever database holds them: `TableWriter`, and the
steps of `rag index` and `rag remove` that every backend shares.

A change (articles added, replaced or removed) is one transaction, so it costs what changed,
never a rewrite of the rest, and a crash at any moment leaves the state before it or after it.
Removed chunks' postings stay until their term has more than MERGE_SEGMENTS segments; then that
term is merged without them in the same transaction. The SQL is written with `?` placeholders
and UPSERTs that SQLite and PostgreSQL both read; a backend says how to connect and create its
tables, how a write transaction begins, and how a vector is stored and read back.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from rag import __version__
from rag.errors import IndexMismatchError, RagError
from rag.fileio import sha256_bytes
from rag.models.embedding import Embedder
from rag.store.follow import forget_fetched, write_state
from rag.store.reading import FORMAT_VERSION, MIGRATIONS, read_meta
from rag.text.chunking import Chunk, ChunkerSettings, chunk_document
from rag.text.documents import Document, LoadReport, load_documents
from rag.text.language import detect_language
from rag.text.lexical import ANALYZER, chunk_terms, decode_postings, encode_postings

EMBED_BATCH = 32
MERGE_SEGMENTS = 16  # a term's segments are merged into one (dropping removed chunks) above this many


def settings_from_meta(meta: dict, where: str) -> tuple[str, int, ChunkerSettings]:
    """(embedder id, dimension, chunker settings) an index was built with, read from its meta,
    so that a change to it embeds and chunks as the build did; a meta that lacks them is a
    damaged index, said in one line.

    >>> settings_from_meta({"embedder": '{"id": "e5", "dimension": 384}',
    ...                     "chunker": '{"max_tokens": 200, "overlap_tokens": 40}'}, "x")
    ('e5', 384, ChunkerSettings(max_tokens=200, overlap_tokens=40))
    """
    try:
        embedder, chunker = json.loads(meta["embedder"]), json.loads(meta["chunker"])
        return (embedder["id"], embedder["dimension"],
                ChunkerSettings(chunker["max_tokens"], chunker["overlap_tokens"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise RagError(f"the index at {where} is damaged ({exc}); rebuild it with `rag index`") from None


@dataclass
class BuildReport:
    index_dir: Path | str
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
    index_dir: Path | str
    removed: list[str]
    chunks: int  # chunks removed
    seconds: float


class TableWriter:
    """Changes an index in place; the caller holds the backend's writer lock.

    Opening it for another embedder, chunker or analyzer than the index was built with makes
    the next commit a rebuild: everything old goes, in the same transaction as the new comes.
    Subclasses give `where`, `database_errors`, `_create()` (connect, create the tables, return
    the connection), `_begin()`, `_vector_param()`, `_vector_value()` and `write_error()`.
    """

    where: str
    database_errors: tuple[type[BaseException], ...] = ()
    conn: Any

    def _setup(self, embedder_id: str, dimension: int, settings: ChunkerSettings) -> None:
        self.embedder = {"id": embedder_id, "dimension": dimension}
        self.chunker = settings.identity()
        try:
            self.conn = self._create()
            self.meta = read_meta(self.conn)
        except self.database_errors as exc:
            raise self.write_error(exc) from None
        if self.meta and int(self.meta.get("format_version", 0)) in MIGRATIONS:
            self._migrate(int(self.meta["format_version"]))
        if self.meta and int(self.meta.get("format_version", 0)) != FORMAT_VERSION:
            raise IndexMismatchError(f"the index at {self.where} has format version "
                                     f"{self.meta.get('format_version')}; move it away and build a new one")
        self.rebuild = bool(self.meta) and (json.loads(self.meta["embedder"]), json.loads(self.meta["chunker"]),
                                            self.meta["analyzer"]) != (self.embedder, self.chunker, ANALYZER)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction: committed when the block ends, rolled back when it raises; a database
        error is the one-line `write_error`."""
        try:
            self._begin()
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except self.database_errors as exc:
            raise self.write_error(exc) from None

    def _migrate(self, version: int) -> None:
        """Bring an index of an older format to this one, a step (one transaction) per version, so
        that it keeps its articles and vectors; a crash leaves it at the last step done."""
        while version in MIGRATIONS:
            with self._transaction():
                for statement in MIGRATIONS[version]:
                    self.conn.execute(statement)
                version += 1
                self.conn.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(version),))
        self.meta = read_meta(self.conn)

    def write_error(self, exc: BaseException) -> RagError:
        return RagError(f"could not write the index at {self.where}: {exc}; the index is as it was before this run")

    def close(self) -> None:
        self.conn.close()

    def stored(self, doc_ids: list[str] | None = None) -> dict[str, tuple[str, str]]:
        """doc_id -> (sha256, source path) of every article in the index, or of those of `doc_ids`
        that it holds (an add reads what it adds, not the whole list)."""
        if doc_ids is None:
            rows = self.conn.execute("SELECT doc_id, sha256, source FROM documents").fetchall()
        else:
            rows = [row for start in range(0, len(doc_ids), 500) for row in self.conn.execute(
                f"SELECT doc_id, sha256, source FROM documents WHERE doc_id IN "
                f"({','.join('?' * len(doc_ids[start:start + 500]))})", doc_ids[start:start + 500]).fetchall()]
        return {doc_id: (sha, source) for doc_id, sha, source in rows}

    def known_vectors(self, text_hashes: list[str]) -> dict[str, np.ndarray]:
        """Vectors already in the index for chunk texts with these sha256s (same embedder only)."""
        if self.rebuild and json.loads(self.meta["embedder"]) != self.embedder:
            return {}
        known = {}
        for start in range(0, len(text_hashes), 500):
            batch = text_hashes[start:start + 500]
            for sha, value in self.conn.execute(
                    f"SELECT c.text_sha256, v.vector FROM chunks c JOIN vectors v ON v.chunk_id = c.id "
                    f"WHERE c.text_sha256 IN ({','.join('?' * len(batch))})", batch).fetchall():
                known[sha] = self._vector_value(value)
        return known

    def commit(self, added: list[tuple[Document, list[Chunk], np.ndarray]], removed: list[str],
               language: str | None = None) -> tuple[int, int]:
        """Replace or add the `added` articles and delete `removed` ones in one transaction.
        Returns (chunks removed, generation committed)."""
        conn = self.conn
        try:
            self._begin()
            try:
                meta = read_meta(conn)
                generation = int(meta.get("generation", 0)) + 1
                epoch = int(meta.get("epoch", 0))
                frequencies: Counter = Counter()  # document frequency changes, by term
                if self.rebuild:
                    self._before_rebuild()
                    dropped = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
                    for table in ("documents", "chunks", "vectors", "removed", "postings", "terms"):
                        conn.execute(f"DELETE FROM {table}")
                    forget_fetched(conn)  # the follower reads its sources' articles again
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
                self._write_meta(meta, language, generation, epoch, count)
                self._after_change(count)
                conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except self.database_errors as exc:
            raise self.write_error(exc) from None
        self.meta = read_meta(conn)
        self.rebuild = False
        return dropped, generation

    def save_follow_state(self, sources: dict[str, dict], fetched: dict[str, dict]) -> None:
        """The follower's state, in one transaction of its own (store/follow.py)."""
        with self._transaction():
            write_state(self.conn, sources, fetched)

    def _before_rebuild(self) -> None:
        """In the transaction, before a rebuild deletes every row (a backend may drop an index)."""

    def _after_change(self, chunk_count: int) -> None:
        """In the transaction, before it commits, with the chunks the index will hold."""

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except self.database_errors:
            pass  # no transaction was open (it failed to begin), or the connection is gone

    def _write_meta(self, meta: dict[str, str], language: str | None, generation: int, epoch: int,
                    count: int) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        values = {"format_version": str(FORMAT_VERSION), "embedder": json.dumps(self.embedder),
                  "chunker": json.dumps(self.chunker), "analyzer": ANALYZER,
                  "language": language or meta.get("language", "de"), "generation": str(generation),
                  "epoch": str(epoch), "chunk_count": str(count), "updated_at": now,
                  "created_at": now if self.rebuild else meta.get("created_at", now), "rag_version": __version__}
        self.conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?) "
                              "ON CONFLICT(key) DO UPDATE SET value = excluded.value", list(values.items()))

    def _delete(self, doc_id: str, generation: int, frequencies: Counter) -> int:
        """Delete an article's rows. Its postings stay (readers skip removed chunks) until merged."""
        rows = self.conn.execute("SELECT id, text FROM chunks WHERE doc_id = ?", (doc_id,)).fetchall()
        for _, text in rows:
            frequencies.subtract(chunk_terms(text).keys())
        if rows:
            self.conn.executemany("DELETE FROM vectors WHERE chunk_id = ?", [(i,) for i, _ in rows])
            self.conn.executemany("INSERT INTO removed(chunk_id, generation) VALUES (?, ?) "
                                  "ON CONFLICT(chunk_id) DO UPDATE SET generation = excluded.generation",
                                  [(i, generation) for i, _ in rows])
        self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self.conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        return len(rows)

    def _insert(self, doc: Document, chunks: list[Chunk], vectors: np.ndarray,
                postings: dict[str, tuple[list[int], list[int]]]) -> None:
        source = doc.path if "://" in doc.path else str(Path(doc.path).resolve()) if doc.path else ""
        self.conn.execute("INSERT INTO documents(doc_id, path, source, sha256, date, text, meta) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)", (doc.doc_id, doc.path, source, doc.sha256, doc.date, doc.text,
                                                          json.dumps(doc.meta, ensure_ascii=False, sort_keys=True)))
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for chunk, vector in zip(chunks, vectors):
            row = self.conn.execute(
                "INSERT INTO chunks(doc_id, chunk_id, start_char, end_char, text, text_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (chunk.doc_id, chunk.chunk_id, chunk.start, chunk.end, chunk.text, sha256_bytes(chunk.text.encode())),
            ).fetchone()[0]
            terms = chunk_terms(chunk.text)
            self.conn.execute("INSERT INTO vectors(chunk_id, vector, terms) VALUES (?, ?, ?)",
                              (row, self._vector_param(vector), sum(terms.values())))
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
        if postings:
            segments = [(term, generation, *encode_postings(ids, tfs)) for term, (ids, tfs) in postings.items()]
            self.conn.executemany("INSERT INTO postings(term, segment, ids, tfs) VALUES (?, ?, ?, ?)", segments)
        if frequencies:
            self.conn.executemany(
                "INSERT INTO terms(term, df, segments) VALUES (?, ?, ?) ON CONFLICT(term) DO UPDATE "
                "SET df = terms.df + excluded.df, segments = terms.segments + excluded.segments",
                [(term, change, int(term in postings)) for term, change in frequencies.items()])
        crowded = [row[0] for row in self.conn.execute(
            f"SELECT term FROM terms WHERE segments > {MERGE_SEGMENTS} ORDER BY term").fetchall()]
        for term in crowded:
            self.merge(term, generation)

    def merge(self, term: str, generation: int) -> None:
        """Rewrite a term's segments as one, without the chunks removed since they were written."""
        parts = [decode_postings(bytes(ids), bytes(tfs)) for ids, tfs in self.conn.execute(
            "SELECT ids, tfs FROM postings WHERE term = ? ORDER BY segment", (term,)).fetchall()]
        ids, tfs = (np.concatenate(column) for column in zip(*parts))
        gone = {row[0] for row in self.conn.execute(
            f"SELECT chunk_id FROM removed WHERE chunk_id IN ({','.join('?' * len(ids))})", ids.tolist()).fetchall()} \
            if len(ids) < 30000 else {row[0] for row in self.conn.execute("SELECT chunk_id FROM removed").fetchall()}
        keep = np.array([i not in gone for i in ids.tolist()], dtype=bool)
        self.conn.execute("DELETE FROM postings WHERE term = ?", (term,))
        if keep.any():
            self.conn.execute("INSERT INTO postings(term, segment, ids, tfs) VALUES (?, ?, ?, ?)",
                              (term, generation, *encode_postings(ids[keep].tolist(), tfs[keep].tolist())))
        self.conn.execute("UPDATE terms SET segments = ? WHERE term = ?", (int(keep.any()), term))


def load_articles(paths: list[Path], embedder: Embedder, settings: ChunkerSettings, max_file_mb: float,
                  loaded: LoadReport | None = None) -> LoadReport:
    """The articles under `paths` (or `loaded`, read by the caller from wherever), read before any
    lock is taken; one line for nothing to index."""
    loaded = loaded or load_documents([Path(p) for p in paths], max_file_mb)
    if not loaded.documents:
        reasons = "; ".join(f"{p}: {r}" for p, r in loaded.skipped[:3])
        raise RagError(f"no article to index under {', '.join(map(str, paths))}" + (f" ({reasons})" if reasons else ""))
    if settings.max_tokens > embedder.max_tokens:
        raise RagError(f"chunks of {settings.max_tokens} tokens exceed the embedder's limit of {embedder.max_tokens}")
    return loaded


def apply_articles(writer: TableWriter, loaded: LoadReport, paths: list[Path], embedder: Embedder,
                   settings: ChunkerSettings, started: float, *, add_only: bool = False,
                   on_progress: Callable[[int, int], None] | None = None,
                   known: dict[str, np.ndarray] | None = None) -> BuildReport:
    """Bring the index up to date with `loaded`, embedding only what is new (`known`: vectors by
    chunk-text sha256 from elsewhere, such as an old format's files). An article indexed from
    under one of `paths` whose file is gone is removed, unless `add_only`."""
    notes = loaded.notes + [(d.path, d.note) for d in loaded.documents if d.note]
    present = {d.doc_id for d in loaded.documents} | {Path(p).stem for p, _ in loaded.skipped}
    stored = writer.stored(sorted(present) if add_only else None)
    roots = [Path(p).resolve() for p in paths]
    removed = [] if add_only else sorted(doc_id for doc_id, (_, source) in stored.items()
                                         if doc_id not in present and _under(source, roots))
    changed = [d for d in loaded.documents if writer.rebuild or stored.get(d.doc_id, ("",))[0] != d.sha256]
    held = writer.conn.execute("SELECT count(*) FROM documents").fetchone()[0] if add_only else len(stored)
    total = held - len(removed) + len({d.doc_id for d in loaded.documents} - set(stored))
    if not changed and not removed:
        return BuildReport(writer.where, total, int(writer.meta.get("chunk_count", 0)), 0, 0, True,
                           time.perf_counter() - started, loaded.skipped, notes=notes)
    chunked = [(doc, chunk_document(doc, embedder.count_tokens, settings)) for doc in changed]
    texts = [c.text for _, chunks in chunked for c in chunks]
    vectors, reused = embed_reusing(texts, embedder, writer, dict(known or {}), on_progress)
    added, at = [], 0
    for doc, chunks in chunked:
        added.append((doc, chunks, vectors[at:at + len(chunks)]))
        at += len(chunks)
    language = None
    if not stored or writer.rebuild or not add_only:
        language = Counter(detect_language(d.text[:3000]) for d in loaded.documents).most_common(1)[0][0]
    writer.commit(added, removed, language)
    return BuildReport(writer.where, total, int(writer.meta["chunk_count"]), len(texts) - reused, reused, False,
                       time.perf_counter() - started, loaded.skipped, [d.doc_id for d in changed], removed, notes)


def remove_articles(writer: TableWriter, doc_ids: list[str], started: float) -> RemoveReport:
    """Remove articles by id in one transaction; all named ids must be there, or nothing is removed."""
    stored = {row[0] for row in writer.conn.execute(
        f"SELECT doc_id FROM documents WHERE doc_id IN ({','.join('?' * len(doc_ids))})", doc_ids).fetchall()}
    unknown = [doc_id for doc_id in doc_ids if doc_id not in stored]
    if unknown:
        raise RagError(f"no document {', '.join(map(repr, unknown))} in the index at {writer.where}; "
                       "nothing was removed (`rag documents` lists the ids)")
    dropped, _ = writer.commit([], sorted(stored))
    return RemoveReport(writer.where, sorted(stored), dropped, time.perf_counter() - started)


def _under(source: str, roots: list[Path]) -> bool:
    path = Path(source)
    return any(path == root or root in path.parents for root in roots)


def embed_reusing(texts: list[str], embedder: Embedder, writer: TableWriter, known: dict[str, np.ndarray],
                  on_progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, int]:
    """Vectors for `texts`, taking those of chunk texts the index (or `known`) already holds."""
    keys = [sha256_bytes(t.encode()) for t in texts]
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
