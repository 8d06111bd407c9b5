"""The SQLite store: one database file per index, FAISS in memory beside it (see docs/index.md)."""
