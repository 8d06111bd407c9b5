"""Reaching PostgreSQL: the `--index` URL, its schema, the password kept out of every message,
and one line for each way a connection fails.

    postgresql://rag@db.example:5432/news?schema=archive

Any libpq URL works (`PG*` variables fill in what it leaves out); `schema` (default `rag`) names
the schema the index's tables live in, so several indexes can share one database.

>>> redact("postgresql://rag:s3cret@db:5432/news?schema=a")
'postgresql://rag:***@db:5432/news?schema=a'
>>> split_schema("postgresql://rag@db/news?schema=archive&sslmode=require")
('postgresql://rag@db/news?sslmode=require', 'archive')
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rag.errors import RagError, redact  # noqa: F401 (redact: this store's messages, and its callers')
from rag.store.base import StoreUnavailable

SCHEMES = ("postgresql://", "postgres://")
DEFAULT_SCHEMA = "rag"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
CONNECT_TIMEOUT_SECONDS = 10


def is_database_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(SCHEMES)


def split_schema(url: str) -> tuple[str, str]:
    """(the URL libpq reads, the schema of the index's tables)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), DEFAULT_SCHEMA)
    if not _SCHEMA_NAME.fullmatch(schema):
        raise RagError(f"the schema {schema!r} in {redact(url)} is not a plain lower-case name (letters, digits, _)")
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class Connection:
    """A psycopg connection that takes the SQL every backend shares: `?` placeholders become
    psycopg's `%s` (the shared SQL holds no other `?` or `%`). Values are always bound as
    parameters, never formatted into the SQL. A lost connection is `StoreUnavailable`."""

    def __init__(self, raw, where: str):
        self.raw = raw
        self.where = where

    @property
    def broken(self) -> bool:
        return self.raw.broken or self.raw.closed

    def execute(self, sql, params=()):
        """`sql`: the shared SQL (a str with `?`), or psycopg's composed SQL for identifiers."""
        with self._reachable():
            return self.raw.execute(sql.replace("?", "%s") if isinstance(sql, str) else sql, params)

    def executemany(self, sql: str, rows) -> None:
        with self._reachable(), self.raw.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.OperationalError as exc:
            if not self.broken:
                raise  # a query's own failure (a cancelled statement, say), not a lost server
            raise StoreUnavailable(f"the index at {self.where} cannot be reached: {first_line(exc)}") from None

    def close(self) -> None:
        self.raw.close()


def connect(url: str, *, read_only: bool = False) -> tuple[Connection, str]:
    """An autocommit connection (transactions are begun by hand) with the index's schema first
    on its search path, and that schema's name. One line, no traceback, when it fails."""
    import psycopg
    from psycopg import sql

    conninfo, schema = split_schema(url)
    try:
        raw = psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                              application_name="rag")
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot connect to PostgreSQL at {redact(url)}: {first_line(exc)}") from None
    except psycopg.Error as exc:
        raise RagError(f"cannot connect to PostgreSQL at {redact(url)}: {first_line(exc)}") from None
    if read_only:
        raw.execute("SET default_transaction_read_only = on")
    raw.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
    return Connection(raw, redact(url)), schema


def first_line(exc: BaseException) -> str:
    """libpq's message without its detail lines (and never the password: libpq does not echo it)."""
    text = str(exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    return re.sub(r'^connection to server at "[^"]*" \([^)]*\), port \d+ failed: ', "", message)
