"""Prometheus metrics of `rag serve`: `GET /metrics` on the server's port (with the key, when one
is set), or alone on `--metrics-port` (no key, for scrapers inside a cluster). docs/operations.md
says what each means and holds alert rules and a dashboard built on them.

Two kinds, both in one registry per app (so two apps in one process never mix their counts):

- counted as they happen (`ServerMetrics`): HTTP requests, each answer's stages, tokens, outcome
  and citations, queue waits and refusals;
- read when scraped (`LiveState`): the queue, the model servers' requests, errors and failovers,
  the index's size and age, and the follower's sources (its state is kept in the index, so a
  `rag follow` on the same index shows here without talking to this process).

Labels stay bounded: routes as their templates, stages, outcomes, model-server URLs with the
password stripped, followed feeds; never a question, a key or a document id.

>>> answer_stages({"translation": 0.1, "retrieval": 0.2, "generation": 1.5, "citations": 0.05, "total": 1.9})
{'retrieval': 0.30000000000000004, 'model': 1.5, 'check': 0.05, 'total': 1.9}
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from rag.answer.answers import Answer
from rag.errors import RagError
from rag.store.locations import read_follow_state

log = logging.getLogger("rag.server")

# Which stage each of an answer's timings belongs to (answer/answering.py names them).
STAGE_OF_TIMING = {
    "rewrite": "rewrite",  # a follow-up made standalone (app/chat.py)
    "translation": "retrieval", "retrieval": "retrieval", "prompt_building": "retrieval",
    "prompt_processing": "model", "generation": "model", "shortening": "model", "answer_translation": "model",
    "citations": "check", "support_check": "check", "likelier_reply_check": "check",
    "focused_attempt": "retry",  # a withdrawn answer asked again over fewer sentences
    "nearest_evidence": "retry",  # nothing in the period answered: asked again over the whole index
    "current_state": "retry",  # about now: asked again over newer articles, or without later dates
    "total": "total",
}
STAGES = ("rewrite", "retrieval", "model", "check", "retry", "total")
# answer.Answer.withdrawal_kind
WITHDRAWAL_KINDS = ("outside_period", "announced_later", "ungrounded_numbers", "unsupported", "weak_support")
SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)


def answer_stages(timings: dict[str, float]) -> dict[str, float]:
    """An answer's timings summed by stage (rewrite, retrieval, model, check, retry, total)."""
    stages: dict[str, float] = {}
    for name, seconds in timings.items():
        stage = STAGE_OF_TIMING.get(name)
        if stage:
            stages[stage] = stages.get(stage, 0.0) + seconds
    return stages


class ServerMetrics:
    """The counters and histograms of one app, and what is read when scraped (`LiveState`)."""

    def __init__(self, state) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("rag_http_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=r)
        self.request_seconds = Histogram("rag_http_request_duration_seconds", "Seconds from request to the "
                                         "response's last byte, by route template", ["route"],
                                         buckets=SECONDS_BUCKETS, registry=r)
        self.stage_seconds = Histogram("rag_answer_stage_seconds", "Seconds an answer spent per stage: rewrite, "
                                       "retrieval, model, check, retry, and total", ["stage"],
                                       buckets=SECONDS_BUCKETS, registry=r)
        self.tokens = Counter("rag_model_tokens", "Tokens of the answers' model calls: prompt (evaluated), "
                              "cached (reused from a saved state), generated", ["kind"], registry=r)
        self.answers = Counter("rag_answers", "Answers by outcome: answered, withdrawn, failed, cancelled",
                               ["outcome"], registry=r)
        self.withdrawn = Counter("rag_answers_withdrawn", "Withdrawn answers by reason: "
                                 + ", ".join(WITHDRAWAL_KINDS), ["reason"], registry=r)
        self.citations = Counter("rag_citations", "Citations of the answers, verified at their offsets or not",
                                 ["verified"], registry=r)
        self.queue_wait = Histogram("rag_queue_wait_seconds", "Seconds a question waited for the model",
                                    buckets=SECONDS_BUCKETS, registry=r)
        self.queue_full = Counter("rag_queue_full", "Questions refused with 503 because the queue was full",
                                  registry=r)
        # Every known label value from the start: a rate over a series that does not exist yet is no rate.
        for counter, values in ((self.answers, ("answered", "withdrawn", "failed", "cancelled")),
                                (self.withdrawn, WITHDRAWAL_KINDS), (self.citations, ("true", "false")),
                                (self.tokens, ("prompt", "cached", "generated")), (self.stage_seconds, STAGES)):
            for value in values:
                counter.labels(value)
        r.register(LiveState(state))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)

    def observe_answer(self, answer: Answer, queue_seconds: float) -> None:
        self.queue_wait.observe(queue_seconds)
        for stage, seconds in answer_stages(answer.timings).items():
            self.stage_seconds.labels(stage).observe(seconds)
        usage = answer.usage
        self.tokens.labels("prompt").inc(usage.prompt)
        self.tokens.labels("cached").inc(usage.cached)
        self.tokens.labels("generated").inc(usage.completion)
        self.answers.labels("withdrawn" if answer.abstained else "answered").inc()
        if answer.abstained:
            self.withdrawn.labels(answer.withdrawal_kind).inc()
        verified = sum(1 for c in answer.citations if c.verified)
        self.citations.labels("true").inc(verified)
        self.citations.labels("false").inc(len(answer.citations) - verified)

    def observe_failure(self, status: int, queue_seconds: float | None) -> None:
        """An answer that ended without one: cancelled (its client left, 499) or failed."""
        if queue_seconds is not None:
            self.queue_wait.observe(queue_seconds)
        self.answers.labels("cancelled" if status == 499 else "failed").inc()


class LiveState:
    """A collector read at each scrape: the queue, the model servers, the index and the follower."""

    def __init__(self, state) -> None:
        self.state = state

    def describe(self):
        return []  # nothing to check at registration; collect() reads live state

    def collect(self):
        state, service = self.state, self.state.service
        yield gauge("rag_ready", "1 once the models and the index are loaded, else 0", int(service.ready))
        queue = state.queue.snapshot()
        yield gauge("rag_queue_waiting", "Questions waiting for the model", queue["waiting"])
        yield gauge("rag_queue_running", "Questions being answered", queue["running"])
        yield gauge("rag_queue_capacity", "Questions that may wait (--max-queue)", queue["max"])
        yield from model_server_families(getattr(service.generator, "stats", None))
        if service.ready:
            yield from self._index()

    def _index(self):
        try:
            index = self.state.service.status()["index"]
            follow = read_follow_state(self.state.service.index_dir, fetched=False)
        except RagError as exc:  # a store out of reach: the scrape still answers, and says so
            log.warning("metrics: the index cannot be read: %s", exc)
            yield gauge("rag_index_readable", "1 when the index could be read at this scrape", 0)
            return
        yield gauge("rag_index_readable", "1 when the index could be read at this scrape", 1)
        yield gauge("rag_index_documents", "Articles in the index", index["documents"])
        yield gauge("rag_index_chunks", "Chunks in the index", index["chunks"])
        yield gauge("rag_index_generation", "The index's generation (one more per committed change)",
                    index["generation"])
        changed = datetime.fromisoformat(index["updated_at"]).timestamp()
        yield gauge("rag_index_last_change_timestamp_seconds", "When the index last changed (Unix time)", changed)
        yield gauge("rag_index_seconds_since_change", "Seconds since the index last changed", time.time() - changed)
        if follow is not None and follow.sources:
            yield from follower_families(follow.sources)


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def model_server_families(stats):
    """Per model-server URL (password stripped): requests, errors and failovers; nothing in process."""
    if stats is None:
        return
    counts = stats.snapshot()
    for kind, documentation in (("requests", "Requests sent to each model server"),
                                ("errors", "Requests that failed at each model server"),
                                ("failovers", "Failed requests tried again at another model server")):
        family = CounterMetricFamily(f"rag_model_server_{kind}", documentation, labels=["url"])
        for url, row in counts.items():
            family.add_metric([url], row[kind])
        yield family


def follower_families(sources: dict[str, dict]):
    """The follower's sources, as `rag follow` keeps them in the index."""
    counters = {"polls": "Polls of each followed feed or sitemap", "unchanged": "Polls answered 304 (unchanged)",
                "added": "Articles added or changed from each source"}
    for column, documentation in counters.items():
        family = CounterMetricFamily(f"rag_follow_{column}", documentation, labels=["source"])
        for source, row in sources.items():
            family.add_metric([source], row[column] or 0)
        yield family
    failing = GaugeMetricFamily("rag_follow_failing_polls", "Polls in a row that failed (0: the last one worked)",
                                labels=["source"])
    success = GaugeMetricFamily("rag_follow_last_success_timestamp_seconds", "When each source last answered",
                                labels=["source"])
    gone = GaugeMetricFamily("rag_follow_gone", "1 for a source that answered 410 and is no longer asked",
                             labels=["source"])
    for source, row in sources.items():
        failing.add_metric([source], row["failures"] or 0)
        gone.add_metric([source], int(bool(row["gone"])))
        if row["last_success"]:
            success.add_metric([source], datetime.fromisoformat(row["last_success"]).timestamp())
    yield from (failing, success, gone)
