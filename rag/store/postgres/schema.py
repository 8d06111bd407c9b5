"""The PostgreSQL store's tables: the SQLite store's (`store.sqlite.schema`), with pgvector's
`vector` type for the vectors, identity ids that only grow, and BYTEA posting segments.

They live in a schema of their own (`?schema=` in the URL, default `rag`). What built them and how
far they have come is in `meta`, as in SQLite (format version, embedder, chunker, generation).
"""

from __future__ import annotations

# An HNSW index on the vectors (pgvector) once an index holds this many chunks. Below it the exact
# scan is exact and cheap beside an answer: p95 52 ms at 100,000 chunks, growing linearly, against
# about 10 s of model work a question; above it the scan would grow to seconds at 10 million chunks.
# HNSW's recall depends on how the vectors are spread (0.13 to 1.0 at 100,000): docs/index.md, "HNSW".
HNSW_FROM_CHUNKS = 200_000
HNSW_INDEX = "vectors_hnsw"
HNSW_BUILD = "m = 16, ef_construction = 64"  # pgvector's defaults
HNSW_EF_SEARCH = 100  # candidates the graph search keeps; at least the rows asked for


def hnsw_expression(dimension: int, column: str = "vector") -> str:
    """The indexed expression: HNSW needs a fixed dimension, the column has none, so the index is on
    the column cast to the index's dimension (an int from the index's own manifest, never user text);
    `column` names it as a query does (qualified where the query joins tables).

    >>> hnsw_expression(384), hnsw_expression(384, "v.vector")
    ('vector::vector(384)', 'v.vector::vector(384)')
    """
    return f"{column}::vector({int(dimension)})"

TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(doc_id TEXT PRIMARY KEY, path TEXT NOT NULL, source TEXT NOT NULL,
    sha256 TEXT NOT NULL, date TEXT, text TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS chunks(id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, doc_id TEXT NOT NULL,
    chunk_id TEXT NOT NULL, start_char INTEGER NOT NULL, end_char INTEGER NOT NULL, text TEXT NOT NULL,
    text_sha256 TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_by_text ON chunks(text_sha256);
CREATE TABLE IF NOT EXISTS vectors(chunk_id BIGINT PRIMARY KEY, vector vector NOT NULL, terms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS removed(chunk_id BIGINT PRIMARY KEY, generation BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS postings(term TEXT NOT NULL, segment BIGINT NOT NULL, ids BYTEA NOT NULL,
    tfs BYTEA NOT NULL, PRIMARY KEY(term, segment));
CREATE TABLE IF NOT EXISTS terms(term TEXT PRIMARY KEY, df BIGINT NOT NULL, segments INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS followed(source TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, last_attempt TEXT,
    last_success TEXT, failures INTEGER NOT NULL DEFAULT 0, last_error TEXT, gone INTEGER NOT NULL DEFAULT 0,
    polls INTEGER NOT NULL DEFAULT 0, unchanged INTEGER NOT NULL DEFAULT 0, added INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS fetched(url TEXT PRIMARY KEY, doc_id TEXT, etag TEXT, last_modified TEXT, listed TEXT,
    fetched_at TEXT NOT NULL);
"""


def statements() -> list[str]:
    return [statement.strip() for statement in TABLES.split(";") if statement.strip()]


def has_hnsw(conn) -> bool:
    """Whether the index's schema (the first on the connection's search path) has the HNSW index."""
    return conn.execute("SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident(?)) IS NOT NULL",
                        (HNSW_INDEX,)).fetchone()[0]
