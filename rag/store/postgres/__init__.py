"""The PostgreSQL store: the index's tables in a schema of a database teams already run, vectors
in pgvector, so that several `rag serve` replicas read one store that an ingest job keeps growing.

    rag index seeds --index postgresql://rag@db:5432/news?schema=seeds

`reader.py` opens it (over `store/reading.py`), `writer.py` changes it (over `store/writing.py`),
`connection.py` reaches it, `schema.py` holds its tables.
"""

from rag.store.postgres.connection import is_database_url, redact
from rag.store.postgres.reader import PostgresIndex, open_index
from rag.store.postgres.writer import build_index, remove_documents

__all__ = ["PostgresIndex", "build_index", "is_database_url", "open_index", "redact", "remove_documents"]
