"""The PostgreSQL store's tables: the SQLite store's (`store.sqlite.schema`), with pgvector's
`vector` type for the vectors, identity ids that only grow, and BYTEA posting segments.

They live in a schema of their own (`?schema=` in the URL, default `rag`). What built them and how
far they have come is in `meta`, as in SQLite (format version, embedder, chunker, generation).
"""

from __future__ import annotations

TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(doc_id TEXT PRIMARY KEY, path TEXT NOT NULL, source TEXT NOT NULL,
    sha256 TEXT NOT NULL, date TEXT, text TEXT NOT NULL);
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
"""


def statements() -> list[str]:
    return [statement.strip() for statement in TABLES.split(";") if statement.strip()]
