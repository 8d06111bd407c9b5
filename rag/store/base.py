"""The store interface: what search, answering and the server read from an index.

`Store` is what every backend implements (`store.sqlite` today); the layers above type against
it, never against a backend, so a second store (PostgreSQL, say) needs no change above this
layer. A store is shared between threads, and everything read inside `snapshot()` comes from one
committed generation.

Chunks are addressed by integer ids that only grow; searches return (chunk id, score) pairs,
best first, and `chunks_by_id` turns them into `Chunk`s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rag.errors import RagError
from rag.text.chunking import Chunk
from rag.text.documents import Document
from rag.text.periods import Period


class StoreUnavailable(RagError):
    """The store cannot be reached now (its database restarts, say); the same request may succeed
    later without reopening anything: an HTTP server answers 503."""


@dataclass(frozen=True)
class Manifest:
    """What built the index and how far it has come: the same in every backend."""

    format_version: int
    embedder: dict  # {"id", "dimension"}
    chunker: dict
    analyzer: str
    language: str  # the corpus language: questions in another language get translated
    generation: int  # counts committed changes
    epoch: int  # counts rebuilds from scratch (another embedder or chunker)
    chunk_count: int
    created_at: str
    updated_at: str
    rag_version: str

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> "Manifest":
        return cls(int(meta["format_version"]), json.loads(meta["embedder"]), json.loads(meta["chunker"]),
                   meta["analyzer"], meta["language"], int(meta["generation"]), int(meta["epoch"]),
                   int(meta["chunk_count"]), meta["created_at"], meta["updated_at"], meta["rag_version"])



class Store(Protocol):
    manifest: Manifest  # as of the newest snapshot taken
    documents: Mapping[str, Document]  # the articles by id, read when asked for

    @property
    def generation(self) -> int: ...

    @property
    def chunk_count(self) -> int: ...

    @property
    def content_sha256(self) -> str:
        """Identifies what the store holds: its builders and every article's sha256."""

    def snapshot(self) -> AbstractContextManager[Any]:
        """Everything read inside comes from one committed generation, the newest when it began."""

    def dense_search(self, vector: np.ndarray, limit: int, period: Period | None = None) -> list[tuple[int, float]]:
        """(chunk id, inner product) of the `limit` nearest chunks, nearest first; given a period,
        of articles published in it only (inside the search, never a filter of its results)."""

    def lexical_search(self, query: str, limit: int, period: Period | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the best `limit` chunks for the terms of `query`, of articles
        published in `period` when given; ties by id."""

    def feedback_terms(self, texts: list[str], count: int) -> list[str]:
        """The `count` terms of `texts` with the highest tf-idf (for pseudo-relevance feedback)."""

    def chunks_by_id(self, ids: list[int]) -> dict[int, Chunk]:
        """The chunks with these ids, in that order; ids no longer in the store are left out."""

    def chunks_of(self, doc_id: str) -> list[Chunk]: ...

    def document_and_chunks(self, doc_id: str) -> tuple[Document, list[Chunk]] | None:
        """An article and its chunks, from one generation; None if the store does not hold it."""

    def document_list(self) -> list[dict]:
        """Every article's id, date, file and number of chunks, by id."""

    def iter_chunks(self) -> Iterator[Chunk]: ...
