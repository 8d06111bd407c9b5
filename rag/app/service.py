"""The answering service behind `rag serve`: models loaded once, the live index followed, one
model answering one question at a time from a bounded first-in-first-out queue.

No HTTP here (that is `app/http/`): this is what any front end over the library needs.

- `AnswerService` owns the embedder and the generator and opens the index once. When `rag index`
  or `rag remove` commits a change, the next call answers from it; a call already running keeps
  the generation it started with (each answer reads one snapshot of the store, see store/base.py).
- `ModelQueue` runs model jobs one after another in a worker thread, in arrival order, with at
  most `max_waiting` waiting. A job cancelled while waiting is never run; one cancelled while
  running asks the generator to stop, which ends llama.cpp's work within a graph step.

>>> queue = ModelQueue(max_waiting=0)
>>> queue.snapshot()
{'running': 0, 'waiting': 0, 'max': 0}
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import anyio.to_thread
import numpy as np

from rag.answer.answering import AnswerSettings, QuestionAnswerer
from rag.app import pipeline
from rag.errors import RagError
from rag.models.embedding import Embedder
from rag.models.generation import Generator
from rag.search.retrieval import RetrievalResult, RetrievalSettings
from rag.store.base import Store
from rag.store.locations import Location, describe, location, open_store


class SerializedEmbedder(Embedder):
    """An embedder that one thread at a time may use: searches run beside a running answer, whose
    citation check embeds too, and the embedders' engines make no promise about threads."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # model_id, dimension, max_tokens, weights, ...
        return getattr(self.inner, name)

    @property
    def sha256(self) -> str:  # Embedder's own property would shadow __getattr__
        return getattr(self.inner, "sha256", "")

    def load(self) -> None:
        with self._lock:
            self.inner.load()

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return self.inner.count_tokens(text)

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self.inner.embed(texts)

    def embed_query(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self.inner.embed_query(texts)


class AnswerService:
    """One index folder and the models that answer over it; `load()` once, then any thread may call."""

    def __init__(self, index_dir: Location, embedder: Embedder, generator: Generator,
                 retrieval: RetrievalSettings = RetrievalSettings(), answer: AnswerSettings = AnswerSettings()):
        self.index_dir = location(index_dir)
        self.embedder = SerializedEmbedder(embedder)
        self.generator = generator
        self.retrieval = retrieval
        self.answer_settings = answer
        self._answerer: QuestionAnswerer | None = None
        self._reopen = threading.Lock()
        self.load_seconds: dict[str, float] = {}
        self._loaded = False

    @classmethod
    def from_choice(cls, index_dir: Location, choice: pipeline.ModelChoice = pipeline.ModelChoice(),
                    retrieval: RetrievalSettings = RetrievalSettings(), answer: AnswerSettings = AnswerSettings(),
                    progress: Callable[[int, int], None] | None = None) -> AnswerService:
        """Models resolved as the CLI resolves them; nothing is loaded yet."""
        return cls(index_dir, pipeline.make_embedder(choice.embedder),
                   pipeline.make_generator(choice.model, progress, choice.server), retrieval, answer)

    def load(self) -> None:
        """Open the index and load both models (slow: seconds). Raises RagError on a bad index or model."""
        self.load_seconds = self.answerer().warm_up()
        self._loaded = True

    @property
    def ready(self) -> bool:
        return self._loaded

    def answerer(self, min_support: float | None = None, generator: Generator | None = None) -> QuestionAnswerer:
        """The answerer over the index (which follows `rag index` by itself); with `min_support`, a
        copy that withdraws answers below that support instead; with `generator`, a copy answering
        through it (a fork, for requests answered at once)."""
        current = self._answerer
        if current is None:
            with self._reopen:
                current = self._answerer
                if current is None:
                    index = open_store(self.index_dir, self.embedder.model_id)
                    current = pipeline.answerer_for(index, self.embedder, self.generator, self.retrieval,
                                                    self.answer_settings)
                    self._answerer = current
        if (min_support is None or min_support == current.settings.min_support) and generator in (None, self.generator):
            return current
        variant = copy.copy(current)
        if min_support is not None:
            variant.settings = replace(current.settings, min_support=min_support)
        if generator is not None:
            variant.generator = generator
        return variant

    def search(self, query: str, k: int, mode: str | None = None) -> tuple[Store, RetrievalResult]:
        """Retrieval alone, no model call: the index searched and what it found."""
        answerer = self.answerer()
        return answerer.index, answerer.retriever.search(query, k=k, mode=mode)

    def status(self) -> dict:
        """Model and embedder ids and hashes, and the live index's size and build time (from one
        snapshot: a store that cannot be reached is StoreUnavailable, a 503)."""
        models = {"generator": self.generator.model_id, "generator_sha256": getattr(self.generator, "sha256", ""),
                  "embedder": self.embedder.model_id, "embedder_sha256": self.embedder.sha256}
        answerer = self._answerer
        if answerer is None:
            return {"models": models, "index": None}
        index = answerer.index
        with index.snapshot():
            manifest = index.manifest
            return {"models": models, "index": {
                "path": describe(self.index_dir), "generation": index.generation, "documents": len(index.documents),
                "chunks": index.chunk_count, "built_at": manifest.created_at, "updated_at": manifest.updated_at,
                "language": manifest.language}}


class QueueFull(RagError):
    """Every place in the queue is taken."""


class JobCancelled(Exception):
    """The job was cancelled (its client went away) before or while it ran."""


@dataclass(eq=False)  # each job is itself (hashable by identity)
class Job:
    """One piece of model work: `work(job)` runs in the worker thread; `result` is awaited."""

    work: Callable[[Job], Any]
    generator: Generator
    enqueued: float = field(default_factory=time.perf_counter)
    started: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    result: asyncio.Future | None = None
    running: bool = False

    @property
    def queue_seconds(self) -> float:
        return (self.started or time.perf_counter()) - self.enqueued

    def cancel(self) -> None:
        """Never start this job; if it runs, stop its model call at once."""
        self.cancelled.set()
        if self.running:
            self.generator.request_stop()

    def check(self) -> None:
        """Called between tokens: a cancelled job stops the model (the flag llama.cpp's abort callback reads)."""
        if self.cancelled.is_set():
            self.generator.request_stop()

    def run(self) -> Any:
        with self.generator.stoppable():
            self.running = True
            try:
                if self.cancelled.is_set():
                    raise JobCancelled
                return self.work(self)
            finally:
                self.running = False


class ModelQueue:
    """Model jobs `workers` at a time (one for an in-process model), first in first out, at most
    `max_waiting` waiting behind the running ones."""

    def __init__(self, max_waiting: int = 8, workers: int = 1):
        if max_waiting < 0 or workers < 1:
            raise ValueError("the queue length must be >= 0 and the workers >= 1")
        self.max_waiting = max_waiting
        self.workers = workers
        self._waiting: deque[Job] = deque()
        self._arrived: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self.running: set[Job] = set()
        self.mean_seconds: float | None = None  # of the jobs run so far, recent ones weighing most

    def waiting(self) -> int:
        """Jobs waiting to run (a cancelled one, skipped when its turn comes, does not count)."""
        return sum(1 for job in self._waiting if not job.cancelled.is_set())

    def snapshot(self) -> dict:
        return {"running": len(self.running), "waiting": self.waiting(), "max": self.max_waiting}

    def start(self) -> None:
        """Start the worker; call from the event loop that will submit jobs."""
        self._arrived = asyncio.Event()
        self._tasks = [asyncio.get_running_loop().create_task(self._work()) for _ in range(self.workers)]

    def cancel_all(self) -> int:
        """Cancel every job, stopping the running ones' model calls; how many there were."""
        jobs = [job for job in [*self.running, *self._waiting] if not job.cancelled.is_set()]
        for job in jobs:
            job.cancel()
        return len(jobs)

    def idle(self) -> bool:
        return not self.running and not self.waiting()

    async def stop(self) -> None:
        """Cancel every job, stopping the running one's model call, and end the worker."""
        self.cancel_all()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def submit(self, job: Job) -> Job:
        """Queue `job`; raises QueueFull when every worker is busy and `max_waiting` jobs already wait."""
        if self._arrived is None:
            raise RuntimeError("ModelQueue.start() was not called")
        waiting = self.waiting()
        if len(self.running) + waiting >= self.workers and waiting >= self.max_waiting:
            raise QueueFull(f"the queue is full ({self.max_waiting} waiting)")
        job.result = asyncio.get_running_loop().create_future()
        self._waiting.append(job)
        self._arrived.set()
        return job

    async def _work(self) -> None:
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            job = self._waiting.popleft()
            if job.cancelled.is_set():
                job.result.cancel()  # nobody waits for it any more
                continue
            job.started = time.perf_counter()
            self.running.add(job)
            value, error = None, None
            try:
                # Not abandoned on cancel: the model is free only once the thread is done.
                value = await anyio.to_thread.run_sync(job.run)
            except (JobCancelled, KeyboardInterrupt):
                error = JobCancelled()
            except Exception as exc:  # noqa: BLE001 (handed to the request that asked)
                error = exc
            finally:
                self.running.discard(job)
                took = time.perf_counter() - job.started
                self.mean_seconds = took if self.mean_seconds is None else 0.8 * self.mean_seconds + 0.2 * took
            if job.cancelled.is_set():
                job.result.cancel()
            elif error is None:
                job.result.set_result(value)
            else:
                job.result.set_exception(error)
