"""What the routes share: the server's state, the key and readiness checks, and model jobs.

Model work goes through `service.ModelQueue`, first in first out; a job whose client leaves is
cancelled, which stops the model at its next token. `ServerState` lives on `app.state.rag`, and
the routes reach it through FastAPI dependencies (`server_state`, `require_key`, `require_ready`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from rag.answer.answers import Answer
from rag.answer.timeframe import TimeFrame
from rag.app.chat import ChatSession
from rag.app.http.errors import ApiError, error_body
from rag.app.http.metrics import ServerMetrics
from rag.app.service import AnswerService, Job, JobCancelled, ModelQueue, QueueFull
from rag.errors import RagError
from rag.store.base import StoreUnavailable

log = logging.getLogger("rag.server")

DISCONNECT_POLL_SECONDS = 0.1  # how often a waiting request checks that its client is still there
ENDING_SECONDS = 10  # after the grace: how long ended answers may take to stop before the server exits anyway


@dataclass(frozen=True)
class ServerSettings:
    api_key: str | None = None
    max_queue: int = 8
    cors_origins: tuple[str, ...] = ()
    parallel: int = 1  # questions answered at once: more than 1 only through a model server, which batches
    admin_key: str | None = None  # writes (POST and DELETE /v1/documents) need it; reads take it too
    log_questions: bool = False  # the question's text in the log line (off: it may be personal)
    grace_seconds: float = 30.0  # on SIGTERM: how long answers in flight may take to finish


@dataclass
class ServerState:
    service: AnswerService
    settings: ServerSettings
    queue: ModelQueue
    load_error: str | None = None  # why loading the models or the index failed, once it has
    metrics: ServerMetrics | None = None
    stopping_since: float | None = None  # monotonic time of the stop signal: draining since then
    forced: bool = False  # the answers still in flight were ended (a second signal, or the grace ran out)

    def __post_init__(self) -> None:
        if self.metrics is None:
            self.metrics = ServerMetrics(self)

    @property
    def stopping(self) -> bool:
        return self.stopping_since is not None

    def begin_stop(self) -> None:
        """Readiness and new questions answer 503 from now on; the answers in flight go on."""
        self.stopping_since = time.monotonic()
        queue = self.queue.snapshot()
        log.warning("stopping: %d answers in flight and %d waiting may finish within %g s; new questions get 503",
                    queue["running"], queue["waiting"], self.settings.grace_seconds)

    def force_stop(self, why: str = "a second stop signal") -> None:
        if not self.forced:
            self.forced = True
            ended = self.queue.cancel_all()
            log.warning("stopping now (%s): %d answers in flight ended with an error", why, ended)

    def drained(self) -> bool:
        """While stopping: True once no answer is in flight (the grace ending them first if it runs out)."""
        waited = time.monotonic() - self.stopping_since
        if waited > self.settings.grace_seconds:
            self.force_stop(f"the grace of {self.settings.grace_seconds:g} s ran out")
        return self.queue.idle() or (self.forced and waited > self.settings.grace_seconds + ENDING_SECONDS)


def server_state(request: Request) -> ServerState:
    return request.app.state.rag


def bearer(request: Request) -> str | None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


def _matches(given: str | None, key: str | None) -> bool:
    return given is not None and key is not None and hmac.compare_digest(given.encode(), key.encode())


def require_key(request: Request) -> None:
    """401 unless the request carries the server's key (when it has one), or the admin key, as a bearer token."""
    settings = server_state(request).settings
    if settings.api_key is None or _matches(bearer(request), settings.api_key) or \
            _matches(bearer(request), settings.admin_key):
        return
    raise ApiError(401, "a valid API key is required: Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"})


def require_admin(request: Request) -> None:
    """Writes: 401 without a key, 403 with any key but the admin key (404 when the server takes no writes)."""
    settings = server_state(request).settings
    if settings.admin_key is None:
        raise ApiError(404, "this server takes no writes; start it with --admin-key KEY")
    given = bearer(request)
    if given is None:
        raise ApiError(401, "writing needs the admin key: Authorization: Bearer ADMIN_KEY", {"WWW-Authenticate": "Bearer"})
    if not _matches(given, settings.admin_key):
        raise ApiError(403, "this key may read but not write; writing needs the admin key")


def require_ready(request: Request) -> None:
    """503 while the models load, for good when loading failed, and once the server is stopping
    (a client or load balancer asks another replica)."""
    state = server_state(request)
    if state.stopping:
        raise ApiError(503, "this server is stopping; ask another replica", {"Retry-After": "1", "Connection": "close"})
    if state.load_error:
        raise ApiError(503, f"the service could not load: {state.load_error}")
    if not state.service.ready:
        raise ApiError(503, "loading", {"Retry-After": "5"})


def submit(state: ServerState, work) -> Job:
    """Queue model work, or refuse it with 503 when the queue is full."""
    try:
        return state.queue.submit(Job(work, state.service.generator.fork()))
    except QueueFull as exc:
        state.metrics.queue_full.inc()
        raise ApiError(503, str(exc), {"Retry-After": str(retry_after(state.queue))}) from None


def ask_work(service: AnswerService, question: str, k: int | None, min_support: float | None, emit=None,
             history: list | None = None, frame: TimeFrame = TimeFrame()):
    """The model work of one question: a follow-up made standalone first when there is a history."""
    def work(job: Job) -> tuple[Answer, str]:
        answerer = service.answerer(min_support, job.generator)

        def on_token(piece: str) -> None:
            job.check()
            if emit:
                emit("token", piece)

        def on_event(name: str):
            return (lambda data: emit(name, data)) if emit else None

        session = ChatSession(answerer, history=list(history or []), k=k, frame=frame)
        answer = session.ask(question, on_token=on_token, on_retrieval=on_event("retrieval"),
                             on_rewrite=on_event("rewrite"), on_stage=on_event("stage"))
        return answer, session.standalone_question or question

    return work


async def result_of(request: Request, job: Job):
    """The job's result, cancelling the job when the client goes away meanwhile."""
    try:
        while not job.result.done():
            await asyncio.wait({job.result}, timeout=DISCONNECT_POLL_SECONDS)
            if not job.result.done() and await request.is_disconnected():
                client_left(request, job)
                raise ApiError(499, "the client closed the connection")
    except asyncio.CancelledError:
        job.cancel()
        raise
    return settled(request, job)


def emitter(events: asyncio.Queue):
    """A callback for the model's thread that puts (event, data) on this loop's queue."""
    loop = asyncio.get_running_loop()
    return lambda event, data: loop.call_soon_threadsafe(events.put_nowait, (event, data))


async def follow(request: Request, job: Job, events: asyncio.Queue):
    """The job's events as they come, then ("result", value) or ("error", body); the job is
    cancelled when the client goes away (the stream is closed, or its connection is found gone)."""
    try:
        while True:
            try:
                yield await asyncio.wait_for(events.get(), DISCONNECT_POLL_SECONDS)
                continue
            except asyncio.TimeoutError:
                pass
            if job.result.done() and events.empty():
                break
            if await request.is_disconnected():
                client_left(request, job)
                return
        try:
            yield "result", settled(request, job)
        except ApiError as exc:
            yield "error", error_body(exc.status, exc.message)
    finally:
        if not job.result.done():
            client_left(request, job)


def client_left(request: Request, job: Job) -> None:
    """The client went away: the job is cancelled, and counted and logged as such (once)."""
    if getattr(request.state, "client_left", False):
        return
    request.state.client_left = True
    request.state.queue_seconds = job.queue_seconds
    job.cancel()
    server_state(request).metrics.observe_failure(499, job.queue_seconds if job.started else None)


def settled(request: Request, job: Job):
    """What a finished job returned, or the ApiError its client gets; counted in the metrics, and
    kept on the request for its log line."""
    metrics = server_state(request).metrics
    request.state.queue_seconds = job.queue_seconds
    try:
        value = job_value(job)
    except ApiError as exc:
        metrics.observe_failure(exc.status, job.queue_seconds if job.started else None)
        if exc.status == 499 and server_state(request).forced:  # ended by the stop, not by its client
            raise ApiError(503, "the server stopped before this answer was done; ask again",
                           {"Retry-After": "1"}) from None
        raise
    request.state.answer = value[0]
    metrics.observe_answer(value[0], job.queue_seconds)
    return value


def job_value(job: Job):
    """What a finished job returned, or the ApiError a client should get for how it failed."""
    try:
        return job.result.result()
    except (JobCancelled, asyncio.CancelledError):
        raise ApiError(499, "the request was cancelled") from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    except StoreUnavailable as exc:
        raise ApiError(503, str(exc), {"Retry-After": "5"}) from None
    except RagError as exc:
        raise ApiError(500, str(exc)) from None
    except Exception:
        log.exception("a model job failed")
        raise ApiError(500, "internal error; see the server log") from None


def retry_after(queue: ModelQueue) -> int:
    """Seconds until a place in the queue is likely free: the mean answer time of the jobs so far."""
    return max(1, math.ceil(queue.mean_seconds or 10))


def sse(data: Any, event: str | None = None) -> str:
    """One Server-Sent Event: `data` as JSON (a string as is), named when `event` is given.

    >>> sse({"delta": "Mehr"}, "token")
    'event: token\\ndata: {"delta": "Mehr"}\\n\\n'
    """
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


def sse_response(events) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
