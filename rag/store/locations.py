"""Where an index lives, as every `--index` names it: a folder (the SQLite store, the default) or
a PostgreSQL URL (the PostgreSQL store). The layers above open, build and change an index through
these calls and never learn which store it is.

>>> describe("postgresql://rag:s3cret@db/news"), describe("indexes/seeds")
('postgresql://rag:***@db/news', 'indexes/seeds')
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rag.errors import IndexMissingError
from rag.models.embedding import Embedder
from rag.store.base import Store
from rag.store.postgres.connection import is_database_url, redact
from rag.store.writing import BuildReport, RemoveReport
from rag.text.chunking import ChunkerSettings
from rag.text.documents import LoadReport

Location = Path | str


def location(value: Location) -> Location:
    """A PostgreSQL URL as given (a Path would fold its `//`), anything else as a folder."""
    return value if is_database_url(value) else Path(value)


def describe(value: Location) -> str:
    """How messages and logs show a location: a URL without its password."""
    return redact(value) if is_database_url(value) else str(value)


def open_store(value: Location, embedder_id: str | None = None) -> Store:
    """Open the index; refuse it if `embedder_id` differs from the one it was built with."""
    if is_database_url(value):
        from rag.store.postgres import open_index
    else:
        from rag.store.sqlite import open_index
    return open_index(location(value), embedder_id)


def build_store(paths: list[Path], value: Location, embedder: Embedder, settings: ChunkerSettings = ChunkerSettings(),
                on_progress: Callable[[int, int], None] | None = None, **options) -> BuildReport:
    """`rag index`: bring the index up to date with the articles under `paths` (options:
    add_only, max_file_mb, wait, on_wait, and loaded: the articles read by the caller)."""
    if is_database_url(value):
        from rag.store.postgres import build_index
    else:
        from rag.store.sqlite import build_index
    return build_index(paths, location(value), embedder, settings, on_progress, **options)


def add_to_store(value: Location, loaded: LoadReport, embedder: Embedder, **options) -> BuildReport:
    """Add or replace `loaded`'s articles, removing nothing, chunked as the index was built (a new
    index: the default chunker); an index built with another embedder is refused in one line, not
    rebuilt (options: wait, on_wait, on_progress)."""
    try:
        index = open_store(value, embedder.model_id)
    except IndexMissingError:
        settings = ChunkerSettings()
    else:
        chunker = index.manifest.chunker
        settings = ChunkerSettings(chunker["max_tokens"], chunker["overlap_tokens"])
    return build_store([], value, embedder, settings, add_only=True, loaded=loaded, **options)


def remove_from_store(value: Location, doc_ids: list[str], **options) -> RemoveReport:
    """`rag remove`: remove articles by id in one change (options: wait, on_wait)."""
    if is_database_url(value):
        from rag.store.postgres import remove_documents
    else:
        from rag.store.sqlite import remove_documents
    return remove_documents(location(value), doc_ids, **options)


def read_follow_state(value: Location, sources: list[str] | None = None, fetched: bool = True):
    """The follower's state kept in the index (`store.follow.FollowState`; the addresses it read
    only with `fetched`), or None where there is no index yet; read without opening the index."""
    if is_database_url(value):
        from rag.store.postgres.reader import read_follow_state as read
    else:
        from rag.store.sqlite.reader import read_follow_state as read
    return read(location(value), sources, fetched)


def save_follow_state(value: Location, sources: dict[str, dict], fetched: dict[str, dict], **options) -> None:
    """Write the follower's state into the index (options: wait, on_wait)."""
    if is_database_url(value):
        from rag.store.postgres.writer import save_follow_state as save
    else:
        from rag.store.sqlite.writer import save_follow_state as save
    save(location(value), sources, fetched, **options)


def store_bytes(value: Location) -> int:
    """What the index takes on disk: the folder's files, or its tables in the database."""
    if is_database_url(value):
        from rag.store.postgres.reader import index_bytes

        return index_bytes(value)
    return sum(p.stat().st_size for p in Path(value).iterdir() if p.is_file())


def drop_store(value: Location) -> None:
    """Delete the index entirely: its folder, or its schema in the database."""
    if is_database_url(value):
        from rag.store.postgres.writer import drop_index

        drop_index(value)
    else:
        import shutil

        shutil.rmtree(value, ignore_errors=True)
