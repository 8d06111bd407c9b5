"""Reading the SQLite store: `open_index` and `Index`, which searches and answers read from.

The tables are read as every backend reads them (`store.reading.TableIndex`); what is SQLite's
own: one connection per thread, a snapshot is a deferred read transaction (WAL mode shows it one
committed state), and the vectors are searched in memory, in a FAISS IndexIDMap2 caught up by id.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np

from rag.errors import IndexMismatchError, IndexMissingError, RagError
from rag.store.follow import FollowState, read_state_if_indexed
from rag.store.reading import TableIndex
from rag.store.sqlite.schema import DATABASE, old_format
from rag.text.periods import Period


def open_index(index_dir: Path, embedder_id: str | None = None) -> "Index":
    """Open the index at `index_dir`; refuse it if `embedder_id` differs from its own."""
    index_dir = Path(index_dir)
    if old_format(index_dir):
        raise IndexMismatchError(f"the index at {index_dir} has the format of an older rag (version 1); "
                                 f"run `rag index` on its articles with --index {index_dir} to convert it "
                                 "(its vectors are reused, nothing is embedded again)")
    if not (index_dir / DATABASE).is_file():
        raise IndexMissingError(f"no index at {index_dir}; build one with `rag index` first")
    return Index(index_dir, embedder_id)


def read_follow_state(index_dir: Path, sources: list[str] | None, fetched: bool = True) -> FollowState | None:
    """The follower's state alone, None where there is no index: two small tables read over a
    plain connection, without opening the index (which would load every vector)."""
    database = Path(index_dir) / DATABASE
    if not database.is_file():
        return None
    with closing(sqlite3.connect(database, timeout=60)) as conn:
        has_table = lambda name: bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone())
        try:
            return read_state_if_indexed(conn, has_table, sources, fetched)
        except sqlite3.DatabaseError as exc:
            raise RagError(f"the index at {index_dir} cannot be read ({exc})") from None


class Index(TableIndex):
    """One open SQLite index (a `store.base.Store`)."""

    database_errors = (sqlite3.DatabaseError,)
    hold_vectors = True

    def __init__(self, path: Path, embedder_id: str | None = None):
        import faiss

        self.path = Path(path)
        self.where = str(self.path)
        self.database = self.path / DATABASE
        self._faiss = faiss
        self._open(embedder_id)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.database, timeout=60, isolation_level=None, check_same_thread=False)

    def _begin_read(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")

    def _end_read(self, conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # a read transaction: nothing to keep

    def _reset_dense(self) -> None:
        self.dense = self._faiss.IndexIDMap2(self._faiss.IndexFlatIP(self.manifest.embedder["dimension"]))

    def _hold_rows(self, ids: np.ndarray, rows: list[tuple]) -> None:
        vectors = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        self.dense.add_with_ids(vectors, ids)

    def _drop_ids(self, ids: np.ndarray) -> None:
        self.dense.remove_ids(ids)

    def dense_search(self, vector: np.ndarray, limit: int, period: Period | None = None) -> list[tuple[int, float]]:
        """(chunk id, inner product) of the `limit` nearest chunks, nearest first; only chunks of
        articles published in `period` when given (FAISS skips the others while it scans)."""
        with self.snapshot():
            params, count = None, None
            if period is not None:
                inside = self.live_within(period)
                count = int(inside.sum())
                bits = np.packbits(inside, bitorder="little")  # held until the search returns
                params = self._faiss.SearchParameters(
                    sel=self._faiss.IDSelectorBitmap(len(inside), self._faiss.swig_ptr(bits)))
            with self._held_lock:
                count = self.dense.ntotal if count is None else min(count, self.dense.ntotal)
                if not count:
                    return []
                scores, ids = self.dense.search(np.asarray(vector, dtype=np.float32).reshape(1, -1),
                                                min(limit, count), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
