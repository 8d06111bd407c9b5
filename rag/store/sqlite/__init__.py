"""The SQLite store: articles, chunks, vectors and BM25 postings in one database, changed in place.

Layout of an index folder:

    indexes/seeds/index.sqlite    every table of schema.py (with -wal and -shm beside it while in use)
    indexes/seeds/LOCK            held by the one writer (`rag index`, `rag remove`)

Tables: `schema.py`. Reading: `reader.py` over `store/reading.py`. Writing: `writer.py` over
`store/writing.py` (the SQL every backend shares).

A change (articles added, replaced or removed) is one SQLite transaction, so it costs what
changed, never a rewrite of the rest; WAL mode shows readers the state before it or after it,
never between, and a crash at any moment leaves one of the two. Readers hold the vectors in a
FAISS IndexIDMap2 and catch up with a newer generation by loading the vectors whose ids are
above the ones they hold and dropping the ids removed since.

>>> import tempfile
>>> from pathlib import Path
>>> import numpy as np
>>> from rag.models.embedding import Embedder
>>> class Words(Embedder):
...     model_id, dimension, max_tokens = "words@1", 8, 512
...     def embed(self, texts):
...         vectors = np.ones((len(texts), 8), np.float32)
...         return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "a.txt").write_text("Zwei Abkommen wurden unterzeichnet.")
>>> build_index([folder], folder / "idx", Words()).chunks
1
>>> index = open_index(folder / "idx", "words@1")
>>> [index.chunks_by_id([i])[i].text for i, _ in index.lexical_search("Abkommen", 5)]
['Zwei Abkommen wurden unterzeichnet.']
>>> remove_documents(folder / "idx", ["a"]).removed, index.lexical_search("Abkommen", 5)
(['a'], [])
"""

from rag.store.base import Manifest
from rag.store.reading import FORMAT_VERSION
from rag.store.sqlite.reader import Index, open_index
from rag.store.sqlite.schema import DATABASE
from rag.store.sqlite.writer import build_index, remove_documents
from rag.store.writing import MERGE_SEGMENTS, BuildReport, RemoveReport

__all__ = ["DATABASE", "FORMAT_VERSION", "MERGE_SEGMENTS", "BuildReport", "Index", "Manifest", "RemoveReport",
           "build_index", "open_index", "remove_documents"]
