"""The follower's state, kept in the index itself (both stores, the same SQL): which feeds and
sitemaps it follows and how they answered, and which article addresses it has read. So `rag serve`
on the same index, SQLite or PostgreSQL, needs nothing else, and a follower on another machine
goes on where the last one stopped.

`followed`: per source, its ETag and Last-Modified (for a conditional request), when it was last
asked and last answered, failures since, the last error, whether it is gone (410), and counts of
polls, unchanged answers (304) and articles added. `fetched`: per canonical article address, the
document it became, its ETag and Last-Modified, and what its listing said of it (`listed`: the
sitemap's lastmod or the feed's date), so an unchanged article is not asked for again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

SOURCE_COLUMNS = ("etag", "last_modified", "last_attempt", "last_success", "failures", "last_error", "gone", "polls",
                  "unchanged", "added")
FETCHED_COLUMNS = ("doc_id", "etag", "last_modified", "listed", "fetched_at")


@dataclass
class FollowState:
    sources: dict[str, dict] = field(default_factory=dict)  # source -> its row (SOURCE_COLUMNS)
    fetched: dict[str, dict] = field(default_factory=dict)  # canonical address -> its row (FETCHED_COLUMNS)


def read_state(conn, sources: list[str] | None = None, fetched: bool = True) -> FollowState:
    """The state of `sources` (all when None) and, with `fetched`, every address fetched (one row each)."""
    state = FollowState()
    rows = conn.execute(f"SELECT source, {', '.join(SOURCE_COLUMNS)} FROM followed").fetchall()
    for row in rows:
        if sources is None or row[0] in sources:
            state.sources[row[0]] = dict(zip(SOURCE_COLUMNS, row[1:]))
    rows = conn.execute(f"SELECT url, {', '.join(FETCHED_COLUMNS)} FROM fetched").fetchall() if fetched else []
    for row in rows:
        state.fetched[row[0]] = dict(zip(FETCHED_COLUMNS, row[1:]))
    return state


def read_state_if_indexed(conn, has_table: Callable[[str], bool], sources: list[str] | None,
                          fetched: bool = True) -> FollowState | None:
    """`read_state`, or None where the database holds no index; an index of an older format has no
    state yet (it is converted on its next write)."""
    if not has_table("meta"):
        return None
    return read_state(conn, sources, fetched) if has_table("followed") else FollowState()


def write_state(conn, sources: dict[str, dict], fetched: dict[str, dict]) -> None:
    """Upsert the given rows (inside the caller's transaction)."""
    _upsert(conn, "followed", "source", SOURCE_COLUMNS, sources)
    _upsert(conn, "fetched", "url", FETCHED_COLUMNS, fetched)


def _upsert(conn, table: str, key: str, columns: tuple[str, ...], rows: dict[str, dict]) -> None:
    if not rows:
        return
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
    conn.executemany(f"INSERT INTO {table}({key}, {', '.join(columns)}) VALUES (?{', ?' * len(columns)}) "
                     f"ON CONFLICT({key}) DO UPDATE SET {updates}",
                     [(name, *(row.get(c) for c in columns)) for name, row in rows.items()])


def forget_fetched(conn) -> None:
    """After a rebuild deleted every article: read every source's articles again."""
    conn.execute("DELETE FROM fetched")
    conn.execute("UPDATE followed SET etag = NULL, last_modified = NULL")
