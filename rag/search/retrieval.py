"""Retrieval: dense (FAISS), lexical (BM25) or both fused by weighted reciprocal rank.

>>> rrf([[3, 1], [1, 2]], weights=[1.0, 1.0], k=60)[0][0]
1
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from rag.models.embedding import Embedder
from rag.store.base import Store
from rag.text.chunking import Chunk
from rag.text.duplicates import near_duplicates
from rag.text.language import detect_language
from rag.text.periods import Period

MODES = ("dense", "bm25", "hybrid")


@dataclass(frozen=True)
class RetrievalSettings:
    """Defaults measured on the XQuAD development half (`rag bench retrieval`).

    The multilingual embedder finds German passages for English and German questions alike;
    BM25 adds exact-term evidence for questions in the corpus language (half the weight of
    dense search). A question in another language is searched densely only, unless a
    translator is given: BM25 over an English question or its machine translation lowered
    recall. Pseudo-relevance feedback adds the most distinctive terms of the first few hits
    to a second BM25 pass.
    """

    mode: str = "hybrid"
    k: int = 5
    candidates: int = 50  # per retriever, before fusion
    dense_weight: float = 1.0
    lexical_weight: float = 0.5
    translated_lexical_weight: float = 0.5
    feedback_chunks: int = 3
    feedback_terms: int = 10
    rrf_k: int = 60

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"retrieval mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.k < 0 or self.candidates < 1 or self.feedback_chunks < 0 or self.feedback_terms < 0:
            raise ValueError("k, feedback_chunks and feedback_terms must be >= 0 and candidates >= 1")


@dataclass(frozen=True)
class RetrievedChunk:
    chunk: Chunk
    score: float
    rank: int  # 1-based


@dataclass
class RetrievalResult:
    chunks: list[RetrievedChunk]
    seconds: dict[str, float] = field(default_factory=dict)
    lexical_query: str | None = None  # what BM25 searched, when it was not the question itself


def rrf(rankings: list[list[int]], weights: list[float], k: int) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of ranked id lists; best first, ties by id."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class Retriever:
    """Searches one index with the embedder it was built with.

    BM25 only matches words of the corpus language, so in hybrid mode a question in another
    language is searched densely only; with a `translate` function it is translated for BM25
    instead (`rag bench retrieval` measures whether that pays).
    """

    def __init__(self, index: Store, embedder: Embedder, settings: RetrievalSettings = RetrievalSettings(),
                 translate: Callable[[str, str], str] | None = None):
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.translate = translate

    def query_for_corpus(self, query: str) -> tuple[str | None, float]:
        """The query in the corpus language (None when there is none), and the seconds a translation took."""
        if detect_language(query) == self.index.manifest.language:
            return query, 0.0
        if self.translate is None:
            return None, 0.0
        started = time.perf_counter()
        translated = self.translate(query, self.index.manifest.language)
        return translated, time.perf_counter() - started

    def dense(self, query: str, limit: int, period: Period | None = None) -> list[tuple[int, float]]:
        if not self.index.chunk_count:
            return []
        return self.index.dense_search(self.embedder.embed_query([query])[0], limit, period)

    def search(self, query: str, k: int | None = None, lexical_query: str | None = None,
               dense_query: str | None = None, mode: str | None = None,
               period: Period | None = None) -> RetrievalResult:
        """Top-k chunks for `query`; `lexical_query` / `dense_query` (e.g. a translation) replace it per retriever;
        given a `period`, only chunks of articles published in it are candidates, in every retriever.
        Everything comes from one generation of the index, even while `rag index` changes it."""
        with self.index.snapshot():
            return self._search(query, k, lexical_query, dense_query, mode, period)

    def _search(self, query: str, k: int | None, lexical_query: str | None, dense_query: str | None,
                mode: str | None, period: Period | None) -> RetrievalResult:
        k = self.settings.k if k is None else k
        if k == 0:
            return RetrievalResult([])
        mode = mode or self.settings.mode
        limit = max(self.settings.candidates, k)
        seconds: dict[str, float] = {}
        if lexical_query is None and mode == "hybrid":
            lexical_query, seconds["translation"] = self.query_for_corpus(query)
        elif lexical_query is None:
            lexical_query = query  # BM25 alone was asked for: search the words as they are
        if mode == "bm25":
            t = time.perf_counter()
            ranked = self.index.lexical_search(lexical_query, limit, period)
            seconds["lexical"] = time.perf_counter() - t
            return self._result(ranked, k, seconds, lexical_query, query)
        t = time.perf_counter()
        dense_hits = self.dense(dense_query or query, limit, period)
        seconds["dense"] = time.perf_counter() - t
        if mode == "dense" or lexical_query is None:
            return self._result(dense_hits, k, seconds, None, query)
        t = time.perf_counter()
        lexical_weight = (self.settings.lexical_weight if lexical_query == query
                          else self.settings.translated_lexical_weight)
        rankings = [[i for i, _ in dense_hits], [i for i, _ in self.index.lexical_search(lexical_query, limit, period)]]
        weights = [self.settings.dense_weight, lexical_weight]
        ranked = rrf(rankings, weights, self.settings.rrf_k)
        if self.settings.feedback_chunks and self.settings.feedback_terms and ranked:
            expansion = self.index.feedback_terms(
                [c.text for c in self.index.chunks_by_id([i for i, _ in ranked[:self.settings.feedback_chunks]]).values()],
                self.settings.feedback_terms)
            rankings.append([i for i, _ in self.index.lexical_search(f"{lexical_query} {' '.join(expansion)}", limit,
                                                                      period)])
            ranked = rrf(rankings, weights + [lexical_weight], self.settings.rrf_k)
        seconds["lexical"] = time.perf_counter() - t
        return self._result(ranked, k, seconds, lexical_query, query)

    def _result(self, ranked: list[tuple[int, float]], k: int, seconds: dict[str, float],
                lexical_query: str | None, query: str) -> RetrievalResult:
        """The best k chunks, each passage once: a chunk that repeats a better one's text (the same
        report on two sites, `text.duplicates`) gives its place to the next. A chunk removed after the
        dense vectors were searched (a newer generation) is not in this snapshot: it is left out."""
        kept: list[tuple[Chunk, float]] = []
        for start in range(0, len(ranked), 2 * k):
            batch = ranked[start:start + 2 * k]
            found = self.index.chunks_by_id([i for i, _ in batch])
            for i, score in batch:
                if i in found and not any(near_duplicates(found[i].text, chunk.text) for chunk, _ in kept):
                    kept.append((found[i], score))
                    if len(kept) == k:
                        break
            if len(kept) == k:
                break
        chunks = [RetrievedChunk(chunk, score, rank) for rank, (chunk, score) in enumerate(kept, start=1)]
        return RetrievalResult(chunks, seconds, lexical_query if lexical_query != query else None)
