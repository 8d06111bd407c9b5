"""The SQLite store's schema: its tables, format version and the `meta` row that says what built it.

Tables: `meta` (format version, embedder, chunker, analyzer, corpus language, generation),
`documents` (cleaned text, sha256, date and metadata as JSON per article), `chunks` (offsets and text; ids only grow),
`vectors` (one float32 blob and the BM25 length per chunk), `removed` (chunk ids removed, with
the generation that removed them), `postings` (per term, one segment per commit that added it:
chunk ids and term frequencies, see text/lexical.py) and `terms` (document frequency and segment
count per term), and the follower's state (`followed`: each feed or sitemap's ETag, last success
and failures; `fetched`: each article address read, its ETag and what its listing said of it; see
store/follow.py). A removed chunk's postings stay until its term's segments are merged (when a
term has more than MERGE_SEGMENTS of them): readers skip chunks that are not live.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

DATABASE = "index.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(doc_id TEXT PRIMARY KEY, path TEXT NOT NULL, source TEXT NOT NULL,
    sha256 TEXT NOT NULL, date TEXT, text TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}');
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
CREATE TABLE IF NOT EXISTS followed(source TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, last_attempt TEXT,
    last_success TEXT, failures INTEGER NOT NULL DEFAULT 0, last_error TEXT, gone INTEGER NOT NULL DEFAULT 0,
    polls INTEGER NOT NULL DEFAULT 0, unchanged INTEGER NOT NULL DEFAULT 0, added INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS fetched(url TEXT PRIMARY KEY, doc_id TEXT, etag TEXT, last_modified TEXT, listed TEXT,
    fetched_at TEXT NOT NULL);
"""


def connect(database: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(database, timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")  # readers see whole transactions and never block the writer
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def old_format(index_dir: Path) -> bool:
    """A format-1 index (JSON files and FAISS generations) and no database yet."""
    return (index_dir / "CURRENT").is_file() and not (index_dir / DATABASE).exists()
