"""Writing the PostgreSQL store: `build_index`, `remove_documents` and `PostgresWriter`.

The change itself is every backend's (`store.writing`): one transaction. What is PostgreSQL's
own: the tables are created in the URL's schema (with the `vector` extension), one writer at a
time holds a session advisory lock keyed by that schema (a writer killed with -9 loses its
connection and with it the lock), and vectors are written in pgvector's text form.
"""

from __future__ import annotations

import hashlib
import time
from typing import Callable

import numpy as np

from rag.errors import RagError
from rag.models.embedding import Embedder
from rag.store.locking import IndexBusyError
from rag.store.postgres import schema
from rag.store.postgres.connection import Connection, connect, first_line, redact
from rag.store.postgres.reader import stored_meta, vector_literal
from rag.store.writing import (BuildReport, RemoveReport, TableWriter, apply_articles, load_articles, remove_articles,
                               settings_from_meta)
from rag.text.chunking import ChunkerSettings
from rag.text.documents import MAX_FILE_MB, LoadReport


def lock_key(schema_name: str) -> int:
    """The advisory lock's key: a signed 64-bit number from the schema's name."""
    return int.from_bytes(hashlib.sha256(f"rag:{schema_name}".encode()).digest()[:8], "big", signed=True)


class PostgresWriter(TableWriter):
    """Changes a PostgreSQL index in place, holding its writer lock from the start."""

    def __init__(self, url: str, embedder_id: str, dimension: int, settings: ChunkerSettings,
                 wait: bool = True, on_wait: Callable[[str], None] | None = None):
        import psycopg

        self.url, self.where = url, redact(url)
        self.database_errors = (psycopg.Error,)
        self._wait, self._on_wait = wait, on_wait
        self._setup(embedder_id, dimension, settings)

    @classmethod
    def for_existing(cls, url: str, wait: bool = True,
                     on_wait: Callable[[str], None] | None = None) -> "PostgresWriter":
        """A writer that keeps the embedder and chunker the index was built with."""
        # not open_index: that reads every chunk's flag, and a change costs O(change)
        embedder_id, dimension, chunker = settings_from_meta(stored_meta(url), redact(url))
        return cls(url, embedder_id, dimension, chunker, wait, on_wait)

    def _create(self) -> Connection:
        from psycopg import sql

        conn, schema_name = connect(self.url)
        try:
            self._lock(conn, schema_name)
            self._ensure_vector_extension(conn)
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema_name)))
            for statement in schema.statements():
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def _lock(self, conn: Connection, schema_name: str) -> None:
        key = lock_key(schema_name)
        if conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0]:
            return
        holder = conn.execute("SELECT a.pid, a.application_name, a.client_addr FROM pg_locks l "
                              "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                              "AND l.granted AND (l.classid::bigint << 32 | l.objid::bigint) = ? LIMIT 1",
                              (key,)).fetchone()
        who = f"backend pid {holder[0]}" if holder else "another connection"
        message = f"another rag is writing the index at {self.where} ({who})"
        if not self._wait:
            raise IndexBusyError(f"{message}; try again when it is done, or leave out --no-wait to wait")
        if self._on_wait:
            self._on_wait(f"{message}; waiting for it to finish…")
        conn.execute("SELECT pg_advisory_lock(?)", (key,))

    def _ensure_vector_extension(self, conn: Connection) -> None:
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
            return
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except self.database_errors as exc:
            raise RagError(f"the database at {self.where} has no `vector` extension (pgvector), and this role "
                           f"cannot create it ({first_line(exc)}): run CREATE EXTENSION vector; as its owner") from None

    def _begin(self) -> None:
        self.conn.execute("BEGIN")

    def _before_rebuild(self) -> None:
        if schema.has_hnsw(self.conn):  # 0 rows left: built again at the end if the index is big enough
            self.conn.execute(f"DROP INDEX {schema.HNSW_INDEX}")

    def _after_change(self, chunk_count: int) -> None:
        """Build the HNSW index in the same transaction when the index grows past HNSW_FROM_CHUNKS;
        from then on each insert adds to the graph. It is never dropped but by a rebuild."""
        if chunk_count < schema.HNSW_FROM_CHUNKS or schema.has_hnsw(self.conn):
            return
        self.conn.execute("SELECT set_config('maintenance_work_mem', '1GB', true)")  # the graph fits: a fast build
        self.conn.execute(f"CREATE INDEX {schema.HNSW_INDEX} ON vectors USING hnsw "
                          f"(({schema.hnsw_expression(self.embedder['dimension'])}) vector_ip_ops) "
                          f"WITH ({schema.HNSW_BUILD})")

    def _vector_param(self, vector: np.ndarray) -> str:
        return vector_literal(vector)

    def _vector_value(self, value: str) -> np.ndarray:
        return np.array(value.strip("[]").split(","), dtype=np.float32)

    def write_error(self, exc: BaseException) -> RagError:
        return RagError(f"could not write the index at {self.where}: {first_line(exc)}; "
                        "the index is as it was before this run")


def build_index(paths: list, url: str, embedder: Embedder, settings: ChunkerSettings = ChunkerSettings(),
                on_progress: Callable[[int, int], None] | None = None, *, add_only: bool = False,
                max_file_mb: float = MAX_FILE_MB, wait: bool = True,
                on_wait: Callable[[str], None] | None = None,
                loaded: LoadReport | None = None) -> BuildReport:
    """Bring the index at `url` up to date with the articles under `paths` (as the SQLite store's
    `build_index` does), embedding only what is new."""
    started = time.perf_counter()
    loaded = load_articles(paths, embedder, settings, max_file_mb, loaded)
    writer = PostgresWriter(url, embedder.model_id, embedder.dimension, settings, wait, on_wait)
    try:
        return apply_articles(writer, loaded, paths, embedder, settings, started, add_only=add_only,
                              on_progress=on_progress)
    finally:
        writer.close()


def remove_documents(url: str, doc_ids: list[str], wait: bool = True,
                     on_wait: Callable[[str], None] | None = None) -> RemoveReport:
    """Remove articles by id in one transaction."""
    started = time.perf_counter()
    writer = PostgresWriter.for_existing(url, wait, on_wait)
    try:
        return remove_articles(writer, doc_ids, started)
    finally:
        writer.close()




def save_follow_state(url: str, sources: dict[str, dict], fetched: dict[str, dict], wait: bool = True,
                      on_wait: Callable[[str], None] | None = None) -> None:
    """The follower's state (store/follow.py), written under the writer lock in one transaction."""
    writer = PostgresWriter.for_existing(url, wait, on_wait)
    try:
        writer.save_follow_state(sources, fetched)
    finally:
        writer.close()


def drop_index(url: str) -> None:
    """Drop the index's schema and everything in it (`rag bench index` cleans up with this)."""
    from psycopg import sql

    conn, schema_name = connect(url)
    try:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema_name)))
    finally:
        conn.close()
