"""A bounded load test of a running `rag serve`: a fixed list of questions, a fixed concurrency.

Every request gets a timeout and the run ends when the list is done, so it always stops by
itself. It reports what a capacity plan needs: answers per minute, latency and queue wait (the
server's `X-Queue-Seconds`) at the median and p95, and the status of every request, so that
"nothing lost" can be checked: each question has exactly one outcome.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable

from rag.quality.evaluation import latency_summary


@dataclass
class Outcome:
    question: str
    status: int  # 0: no response (connection failed or timed out)
    seconds: float
    queue_seconds: float | None = None
    answer: str | None = None
    error: str | None = None
    server: str = ""  # which of the URLs answered it
    retried_from: str | None = None  # the replica that refused it first (connection refused or 503), with retry_other


@dataclass
class LoadReport:
    concurrency: int
    wall_seconds: float
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def statuses(self) -> dict[int, int]:
        return dict(sorted(Counter(o.status for o in self.outcomes).items()))

    @property
    def answered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200]

    def summary(self) -> dict:
        answered = self.answered
        waits = [o.queue_seconds for o in answered if o.queue_seconds is not None]
        return {"requests": len(self.outcomes), "concurrency": self.concurrency, "statuses": self.statuses,
                "answered": len(answered), "wall_seconds": round(self.wall_seconds, 3),
                "answered_by": dict(sorted(Counter(o.server for o in answered).items())),
                "retried": sum(1 for o in self.outcomes if o.retried_from),
                "answers_per_minute": round(60 * len(answered) / self.wall_seconds, 2) if self.wall_seconds else None,
                "latency_seconds": latency_summary([o.seconds for o in answered]) if answered else None,
                "queue_seconds": latency_summary(waits) if waits else None}


def run_load(url: str | list[str], questions: Iterable[str], concurrency: int = 4, api_key: str | None = None,
             timeout: float = 600.0, retry_other: bool = False) -> LoadReport:
    """POST each question to `url`/v1/ask, `concurrency` at a time; one Outcome per question, in order.
    `questions` may be a stream (lines as they come): each is asked once it arrives.
    Several URLs (replicas) take the questions in turn, as a round-robin load balancer would; with
    `retry_other`, a question refused by one (no connection, or 503) is asked once of the next, as
    a client behind a balancer retries during a rolling restart."""
    urls = [url] if isinstance(url, str) else list(url)
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def ask_at(client: httpx.Client, server: str, question: str) -> Outcome:
        started = time.perf_counter()
        try:
            response = client.post(f"{server.rstrip('/')}/v1/ask", json={"question": question}, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(question, 0, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}",
                           server=server)
        seconds = time.perf_counter() - started
        wait = response.headers.get("x-queue-seconds")
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        return Outcome(question, response.status_code, seconds, float(wait) if wait else None,
                       body.get("answer"), (body.get("error") or {}).get("message"), server)

    def ask(client: httpx.Client, number: int, question: str) -> Outcome:
        first = ask_at(client, urls[number % len(urls)], question)
        if not retry_other or len(urls) < 2 or first.status not in (0, 503):
            return first
        second = ask_at(client, urls[(number + 1) % len(urls)], question)
        second.retried_from, second.seconds = first.server, first.seconds + second.seconds
        return second

    started = time.perf_counter()
    with httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=concurrency)) as client, \
            ThreadPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(pool.map(lambda numbered: ask(client, *numbered), enumerate(questions)))
    return LoadReport(concurrency, time.perf_counter() - started, outcomes)
