"""Reading the PostgreSQL store: `open_index` and `PostgresIndex`.

The tables are read as every backend reads them (`store.reading.TableIndex`); what is
PostgreSQL's own: one connection per thread, a snapshot is a REPEATABLE READ, READ ONLY
transaction (one committed generation, whatever writers do meanwhile), and dense search runs in
the database: pgvector's exact inner product over the live vectors, nearest first.
"""

from __future__ import annotations

import numpy as np

from rag.errors import IndexMissingError, RagError
from rag.store.postgres.connection import Connection, connect, first_line, redact
from rag.store.postgres.schema import HNSW_EF_SEARCH, has_hnsw, hnsw_expression
from rag.store.follow import FollowState, read_state_if_indexed
from rag.store.reading import TableIndex, read_meta
from rag.text.periods import Period


def open_index(url: str, embedder_id: str | None = None) -> "PostgresIndex":
    """Open the index at `url`; refuse it if `embedder_id` differs from its own."""
    return PostgresIndex(url, embedder_id)


def stored_meta(url: str) -> dict[str, str]:
    """The index's meta table alone: what a writer needs to keep the index's embedder and chunker,
    read without opening the index (which reads a flag and a length per chunk). One line for no
    index or one that cannot be read."""
    import psycopg

    conn = connect(url, read_only=True)[0]
    try:
        if not conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]:
            raise IndexMissingError(f"no index at {redact(url)}; build one with `rag index --index URL` first")
        return read_meta(conn)
    except psycopg.Error as exc:
        raise RagError(f"the index at {redact(url)} cannot be read ({first_line(exc)})") from None
    finally:
        conn.close()


def read_follow_state(url: str, sources: list[str] | None, fetched: bool = True) -> FollowState | None:
    """The follower's state alone, None where there is no index: two small tables, read without
    opening the index."""
    import psycopg

    conn = connect(url, read_only=True)[0]
    has_table = lambda name: conn.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()[0]
    try:
        return read_state_if_indexed(conn, has_table, sources, fetched)
    except psycopg.Error as exc:
        raise RagError(f"the index at {redact(url)} cannot be read ({first_line(exc)})") from None
    finally:
        conn.close()


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form; each float32 printed so that it reads back as the same float32.

    >>> vector_literal(np.array([0.1, -2.0], dtype=np.float32))
    '[0.10000000149011612,-2.0]'
    """
    return "[" + ",".join(map(repr, np.asarray(vector, dtype=np.float32).astype(np.float64).tolist())) + "]"


class PostgresIndex(TableIndex):
    """One open PostgreSQL index (a `store.base.Store`)."""

    def __init__(self, url: str, embedder_id: str | None = None):
        import psycopg

        self.url = url
        self.path = self.where = redact(url)
        self.database_errors = (psycopg.Error,)
        self._hnsw_known: tuple[tuple[int, int] | None, bool] = (None, False)  # (epoch, generation), has it
        stored_meta(url)  # one line for no index
        self._open(embedder_id)

    def _connect(self) -> Connection:
        return connect(self.url, read_only=True)[0]

    def _begin_read(self, conn: Connection) -> None:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def _end_read(self, conn: Connection) -> None:
        conn.execute("ROLLBACK")  # a read transaction: nothing to keep

    def _reset_dense(self) -> None:
        """Nothing held: the vectors stay in the database."""

    def _hold_rows(self, ids: np.ndarray, rows: list[tuple]) -> None:
        """Nothing held but the live flags and lengths every reader keeps."""

    def _drop_ids(self, ids: np.ndarray) -> None:
        """Nothing held: removed vectors are gone from the table."""

    def dense_search(self, vector: np.ndarray, limit: int, period: Period | None = None,
                     exact: bool = False) -> list[tuple[int, float]]:
        """(chunk id, inner product) of the `limit` nearest chunks, nearest first, ties by id: exact
        below HNSW_FROM_CHUNKS (or when asked), through the HNSW index above it. Given a period,
        only chunks of articles published in it: a condition of the query itself."""
        literal = vector_literal(vector)
        within, arguments = "", []
        if period is not None:
            within = ("JOIN chunks c ON c.id = v.chunk_id JOIN documents d ON d.doc_id = c.doc_id "
                      "WHERE d.date BETWEEN ? AND ?")
            arguments = [period.start.isoformat(), period.end.isoformat()]
        with self.snapshot() as conn:
            if not exact and self._has_hnsw(conn):
                rows = self._approximate(conn, literal, limit, within, arguments)
            else:
                rows = conn.execute(f"SELECT v.chunk_id, -(v.vector <#> ?::vector) FROM vectors v {within} "
                                    "ORDER BY v.vector <#> ?::vector, v.chunk_id LIMIT ?",
                                    (literal, *arguments, literal, limit)).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def has_approximate_search(self) -> bool:
        """Whether dense search goes through the HNSW index (the index has grown past HNSW_FROM_CHUNKS)."""
        with self.snapshot() as conn:
            return self._has_hnsw(conn)

    def _has_hnsw(self, conn: Connection) -> bool:
        """Asked of the database once per generation (only a commit builds or drops the index), not
        once per query: a round trip saved on every search."""
        held = self._local.manifest
        key = (held.epoch, held.generation)
        if self._hnsw_known[0] != key:
            self._hnsw_known = (key, has_hnsw(conn))
        return self._hnsw_known[1]

    def _approximate(self, conn: Connection, literal: str, limit: int, within: str, arguments: list) -> list[tuple]:
        """The graph search orders by distance alone (a tie-break would turn it into a full sort).
        Within a period it goes on through the graph until enough rows pass (pgvector's iterative scan)."""
        conn.execute("SELECT set_config('hnsw.ef_search', ?, true)", (str(max(HNSW_EF_SEARCH, limit)),))
        if within:
            conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
        dimension = self.manifest.embedder["dimension"]
        column, query = hnsw_expression(dimension, "v.vector"), f"?::vector({int(dimension)})"
        rows = conn.execute(f"SELECT v.chunk_id, -({column} <#> {query}) FROM vectors v {within} "
                            f"ORDER BY {column} <#> {query} LIMIT ?", (literal, *arguments, literal, limit)).fetchall()
        return sorted(rows, key=lambda row: (-row[1], row[0]))


def index_bytes(url: str) -> int:
    """Bytes the index's tables take in the database, their indexes and TOAST included."""
    conn, schema_name = connect(url, read_only=True)
    try:
        return int(conn.execute("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relkind = 'r'",
                                (schema_name,)).fetchone()[0])
    finally:
        conn.close()
