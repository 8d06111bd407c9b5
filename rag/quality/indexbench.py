"""`rag bench index`: what building, adding, removing, opening and searching cost as an index grows.

Articles are made from the XQuAD development paragraphs (German): each has five paragraphs,
each paragraph varied by an archive-number sentence, so that 100,000 chunks hold realistic text
for BM25. Article n is dated day n of a two-year cycle from 2024-01-01, so that a search within one
month (January 2025) has about 4% of the articles to choose from, as a question naming a month does. Vectors come from `RandomEmbedder` (unit vectors with E5's dimension, drawn from a
hash of the text): the real embedder's speed (~13 chunks/s on 2 cores) is measured on its own,
and would otherwise be all a build measures.

Every operation runs as `rag index` and `rag remove` run it (`build_store`, `remove_from_store`),
in a temporary SQLite folder or, with `--index URL`, in a PostgreSQL schema of its own per size.
Opening and searching are measured in a fresh process, so that its resident memory is the
index's alone:

    RAG_BENCH_INDEX=INDEX python -m rag.quality.indexbench probe QUESTIONS_JSON
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

import numpy as np

from rag.models.embedding import Embedder
from rag.search.retrieval import RetrievalSettings, Retriever
from rag.store.locations import Location, build_store, drop_store, location, open_store, remove_from_store, store_bytes
from rag.store.postgres.connection import is_database_url, split_schema
from rag.store.sqlite import DATABASE
from rag.text.chunking import ChunkerSettings
from rag.text.periods import Period

PARAGRAPHS_PER_ARTICLE = 5
REPEATS = 5  # add-one and remove-one are timed this many times; the median is reported
QUERIES = 200
FIRST_DAY, DAYS = date(2024, 1, 1), 731  # the articles' dates: 2024-01-01 to 2025-12-31, in turn
MONTH = Period(date(2025, 1, 1), date(2025, 1, 31), "januar 2025")  # the period the filtered searches ask for


class RandomEmbedder(Embedder):
    """A unit vector per text, drawn from its sha256: the same text always gets the same vector.

    >>> e = RandomEmbedder()
    >>> v = e.embed(["a", "b", "a"])
    >>> v.shape, bool(np.allclose(v[0], v[2])), round(float(np.linalg.norm(v[1])), 3)
    ((3, 384), True, 1.0)
    """

    model_id = "random-unit-vectors@384"
    dimension = 384
    max_tokens = 512

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = [np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little"))
                .standard_normal(self.dimension) for t in texts]
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-9)


def article(paragraphs: list[str], number: int) -> str:
    """Article `number`: its date line, then five paragraphs of the set in turn, each with its own
    archive number."""
    picked = [paragraphs[(number * PARAGRAPHS_PER_ARTICLE + j) % len(paragraphs)] for j in range(PARAGRAPHS_PER_ARTICLE)]
    day = FIRST_DAY + timedelta(days=number % DAYS)
    return f"date {day.isoformat()}\n" + "\n\n".join(f"{p} Archivnummer {number}-{j}." for j, p in enumerate(picked))


def write_articles(folder: Path, paragraphs: list[str], first: int, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(first, first + count):
        path = folder / f"a{number:07d}.txt"
        path.write_text(article(paragraphs, number), encoding="utf-8")
        paths.append(path)
    return paths


def bench_location(store: str | None, work: Path, chunks: int) -> Location:
    """Where a size is built: a folder in `work`, or a schema of its own in the database `store` names."""
    if store is None:
        return work / "index"
    conninfo, schema_name = split_schema(store)
    separator = "&" if "?" in conninfo else "?"
    return f"{conninfo}{separator}schema={schema_name}_bench_{chunks}"


def bench_size(chunks: int, paragraphs: list[str], questions: list[str], work: Path,
               on_progress: Callable[[str], None] | None = None, store: str | None = None) -> dict:
    """Build an index of about `chunks` chunks in `work` (or in the PostgreSQL database `store`),
    then time each operation on it."""
    embedder, settings = RandomEmbedder(), ChunkerSettings()
    per_article = _chunks_per_article(paragraphs, embedder, settings)
    articles = max(1, round(chunks / per_article))
    folder, index = work / "articles", bench_location(store, work, chunks)
    write_articles(folder, paragraphs, 0, articles)
    drop_store(index)
    try:
        started = time.perf_counter()
        report = build_store([folder], index, embedder, settings)
        build_seconds = time.perf_counter() - started
        if on_progress:
            on_progress(f"{report.chunks} chunks: built in {build_seconds:.1f} s")
        extra = work / "extra"
        add, remove = [], []
        for n, path in enumerate(write_articles(extra, paragraphs, articles + 1, REPEATS)):
            started = time.perf_counter()
            build_store([path], index, embedder, settings, add_only=True)
            add.append(time.perf_counter() - started)
            started = time.perf_counter()
            remove_from_store(index, [f"a{n:07d}"])  # an article of the original build
            remove.append(time.perf_counter() - started)
        if not is_database_url(index):
            _checkpoint(index)
        probe = _probe_in_new_process(index, questions)
        disk = store_bytes(index)
    finally:
        drop_store(index)
    vector_bytes = probe["chunks"] * embedder.dimension * 4
    return {"store": "postgresql" if store else "sqlite", "chunks": probe["chunks"], "documents": probe["documents"],
            "build_seconds": build_seconds, "add_one_seconds": statistics.median(add),
            "remove_one_seconds": statistics.median(remove), "open_seconds": probe["open_seconds"],
            "query_ms": probe["query_ms"], "dense_recall": probe["dense_recall"], "disk_bytes": disk,
            "vector_bytes": vector_bytes, "resident_bytes": probe["resident_bytes"],
            "resident_per_vector_byte": probe["resident_bytes"] / vector_bytes}


def _chunks_per_article(paragraphs: list[str], embedder: Embedder, settings: ChunkerSettings) -> float:
    from rag.text.chunking import chunk_document
    from rag.text.documents import Document

    sample = [chunk_document(Document(f"s{n}", article(paragraphs, n), "", ""), embedder.count_tokens, settings)
              for n in range(20)]
    return sum(map(len, sample)) / len(sample)


def _checkpoint(index_dir: Location) -> None:
    """Fold the write-ahead log into the database, so that the bytes on disk are the index's."""
    import sqlite3

    conn = sqlite3.connect(index_dir / DATABASE)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _probe_in_new_process(index_dir: Location, questions: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(questions, f)
    try:
        # the location goes by environment, not argv: a URL's password stays out of the process list
        done = subprocess.run([sys.executable, "-m", "rag.quality.indexbench", "probe", f.name],
                              capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "RAG_BENCH_INDEX": str(index_dir)})
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        raise RuntimeError(f"the probe failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def _resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def probe(index_dir: Location, questions: list[str]) -> dict:
    """Open the index and search it: seconds to open, resident bytes it added, query latencies, and
    where dense search is approximate (HNSW in PostgreSQL) its recall of the exact nearest chunks."""
    import faiss  # noqa: F401  (imported before measuring: the libraries' own memory is not the index's)
    import psycopg  # noqa: F401

    embedder = RandomEmbedder()
    embedder.embed(["warm"])
    before = _resident_bytes()
    started = time.perf_counter()
    index = open_store(index_dir, embedder.model_id)
    open_seconds = time.perf_counter() - started
    resident = _resident_bytes() - before
    retriever = Retriever(index, embedder, RetrievalSettings(k=5))
    queries = (questions * (QUERIES // max(len(questions), 1) + 1))[:QUERIES]
    exact = getattr(index, "has_approximate_search", lambda: False)()
    latencies: dict[str, list[float]] = {mode: [] for mode in ("dense", "lexical", "hybrid", "dense in a month",
                                                                "lexical in a month", "hybrid in a month")}
    if exact:
        latencies["dense exact"] = []
    found: dict[int, list[float]] = {10: [], 50: []}
    for query in queries:
        vector = embedder.embed_query([query])[0]
        results = {}
        for mode, run in (("dense", lambda: index.dense_search(vector, 50)),
                          ("dense exact", lambda: index.dense_search(vector, 50, exact=True)),
                          ("lexical", lambda: index.lexical_search(query, 50)),
                          ("hybrid", lambda: retriever.search(query)),
                          ("dense in a month", lambda: index.dense_search(vector, 50, period=MONTH)),
                          ("lexical in a month", lambda: index.lexical_search(query, 50, period=MONTH)),
                          ("hybrid in a month", lambda: retriever.search(query, period=MONTH))):
            if mode not in latencies:
                continue
            started = time.perf_counter()
            results[mode] = run()
            latencies[mode].append((time.perf_counter() - started) * 1000)
        if exact:
            for k in found:
                truth = {i for i, _ in results["dense exact"][:k]}
                found[k].append(len(truth & {i for i, _ in results["dense"][:k]}) / max(len(truth), 1))
    return {"chunks": index.chunk_count, "documents": len(index.documents), "open_seconds": open_seconds,
            "resident_bytes": resident,
            "dense_recall": {f"@{k}": float(np.mean(v)) if v else 1.0 for k, v in found.items()},
            "query_ms": {mode: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95))}
                         for mode, v in latencies.items()}}


def run_index_bench(sizes: list[int], paragraphs: list[str], questions: list[str],
                    on_progress: Callable[[str], None] | None = None, store: str | None = None) -> list[dict]:
    """One row per size; `store`: a PostgreSQL URL to build in (a schema per size, dropped after)."""
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="rag-bench-index-") as tmp:
            rows.append(bench_size(size, paragraphs, questions, Path(tmp), on_progress, store))
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["probe"]:
    print(json.dumps(probe(location(os.environ["RAG_BENCH_INDEX"]), json.loads(Path(sys.argv[2]).read_text()))))
