"""`rag serve`: the question-answering service over HTTP, native and OpenAI-compatible.

A thin FastAPI layer over `service.AnswerService`: the same answers, citations and checks as
`rag ask --json`. Routes:

    GET  /health                 200 {"status": "ok"} once loaded, 503 while loading; no key
    GET  /v1/status              models, index, queue
    GET  /v1/models              OpenAI's list shape
    POST /v1/search              retrieval only, no model call
    GET  /v1/documents/{doc_id}  a document's text, so a client can check a quote at its offsets
    POST /v1/ask                 the `rag ask --json` object; `stream: true` sends named SSE events
    POST /v1/chat/completions    OpenAI's chat completions, citations in `message.citations`
                                 and as `url_citation` annotations

One model answers one question at a time: model work waits in a first-in-first-out queue
(`service.ModelQueue`), and a request beyond it gets 503 with Retry-After. Everything else (the
health check, search, documents) runs beside it and never waits on the model. Errors are in
OpenAI's shape, `{"error": {"message", "type", "code"}}`; no traceback reaches a client.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.answer.answering import Answer
from rag.app.chat import ChatSession, conversation_from_messages
from rag.text.markers import MARKER
from rag.errors import RagError
from rag.search.retrieval import MODES, RetrievalResult
from rag.app.service import AnswerService, Job, JobCancelled, ModelQueue, QueueFull

log = logging.getLogger("rag.server")

MAX_BODY_BYTES = 64 * 1024
MAX_QUESTION_CHARS = 2000
MAX_K = 50
DISCONNECT_POLL_SECONDS = 0.1  # how often a waiting request checks that its client is still there
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
               503: "unavailable_error"}


@dataclass(frozen=True)
class ServerSettings:
    api_key: str | None = None
    max_queue: int = 8
    cors_origins: tuple[str, ...] = ()
    parallel: int = 1  # questions answered at once: more than 1 only through a model server, which batches


class ApiError(Exception):
    """An error for the client, in OpenAI's shape."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_body(status: int, message: str) -> dict:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "code": status}}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


# ---- request and response shapes -------------------------------------------------------------

Question = Field(min_length=1, max_length=MAX_QUESTION_CHARS)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Question
    k: int | None = Field(None, ge=0, le=MAX_K)
    min_support: float | None = Field(None, ge=0.0, le=1.0)
    stream: bool = False


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Question
    k: int = Field(5, ge=1, le=MAX_K)
    mode: Literal[MODES] = "hybrid"  # type: ignore[valid-type]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's request; sampling options (temperature, ...) are accepted and ignored: answers are greedy."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    k: int | None = Field(None, ge=0, le=MAX_K)
    min_support: float | None = Field(None, ge=0.0, le=1.0)


def citation_annotations(content: str, answer: Answer) -> list[dict]:
    """The verified citations as OpenAI `url_citation` annotations over the answer text.

    A citation's span is the text it backs: up to and including its "[n]" marker from the end of
    the previous marker, or the whole answer when the answer carries no marker for it.

    >>> from rag.answer.citations import Citation
    >>> c = Citation(1, "doc", "doc#0", 10, 20, "mehr als 20", True)
    >>> a = Answer("q", "more than 20", False, "en", [c], [], [], 1, "stop", {}, {})
    >>> citation_annotations(a.answer, a)[0]["url_citation"]["url"]
    'rag://doc/doc#char=10,20'
    """
    annotations = []
    markers = {int(n): m for m in MARKER.finditer(content) for n in re.split(r"\s*[,;]\s*", m.group(1))}
    previous_ends = sorted(m.end() for m in MARKER.finditer(content))
    for citation in answer.citations:
        if not citation.verified:
            continue
        marker = markers.get(citation.number)
        if marker is None:
            start, end = 0, len(content)
        else:
            start = max([e for e in previous_ends if e <= marker.start()], default=0)
            end = marker.end()
            start += len(content[start:end]) - len(content[start:end].lstrip())
        annotations.append({"type": "url_citation", "url_citation": {
            "start_index": start, "end_index": end,
            "url": f"rag://doc/{citation.doc_id}#char={citation.start},{citation.end}",
            "title": citation.doc_id + (f" ({citation.date})" if citation.date else "")}})
    return annotations


def retrieval_json(result: RetrievalResult) -> list[dict]:
    return [{"doc_id": r.chunk.doc_id, "chunk_id": r.chunk.chunk_id, "score": round(r.score, 6), "rank": r.rank,
             "start": r.chunk.start, "end": r.chunk.end, "text": r.chunk.text} for r in result.chunks]


def usage(answer: Answer) -> dict:
    """OpenAI's usage over every model call of the answer; prompt tokens read from a saved state
    count as cached, as OpenAI counts them."""
    work = answer.usage
    prompt = work.prompt + work.cached
    return {"prompt_tokens": prompt, "completion_tokens": work.completion, "total_tokens": prompt + work.completion,
            "prompt_tokens_details": {"cached_tokens": work.cached}}


def sse(data: Any, event: str | None = None) -> str:
    """One Server-Sent Event: `data` as JSON (a string as is), named when `event` is given."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


# ---- ASGI middleware: request ids and log lines, the body limit --------------------------------

class RequestLog:
    """Gives every request an id (the client's `X-Request-ID` when it is sane), echoes it in the
    response, and logs one line per request once its response is complete."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 500, "logged": False}

        def line() -> None:
            if status["logged"]:
                return
            status["logged"] = True
            wait = state.get("queue_seconds")
            log.info("%s %s %s %d %.3fs%s%s", request_id, scope["method"], scope["path"], status["code"],
                     time.perf_counter() - started, "" if wait is None else f" queue={wait:.3f}s",
                     " (client left)" if state.get("client_left") else "")

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = list(message.get("headers", [])) + [(b"x-request-id", request_id.encode())]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                line()

        try:
            await self.app(scope, receive, send_with_id)
        finally:  # also when the client left before the response was complete
            line()


class JsonByDefault:
    """A POST body sent without a JSON content type (curl's `-d` says form-urlencoded) is read as
    JSON, so `curl localhost:8000/v1/ask -d '{"question": "..."}'` works as typed."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            given = dict(scope["headers"]).get(b"content-type", b"")
            if not given or given.startswith(b"application/x-www-form-urlencoded"):
                scope = {**scope, "headers": headers + [(b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for a request body over `limit` bytes, by its Content-Length or, when sent in chunks,
    by what arrives (read up to the limit, then handed on whole)."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self.too_large(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await self.too_large(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when the client leaves

        await self.app(scope, replay, send)

    async def too_large(self, scope, receive, send):
        await error_response(413, f"the request body is larger than {self.limit // 1024} KiB")(scope, receive, send)


# ---- the application -------------------------------------------------------------------------

def create_app(service: AnswerService, settings: ServerSettings = ServerSettings(),
               on_load_failure=None) -> FastAPI:
    """The app; models and index load in a thread at startup, while /health says 503 "loading".

    `on_load_failure(message)` is called if loading fails (the CLI stops the server with it).
    """
    queue = ModelQueue(settings.max_queue, settings.parallel)
    loading: dict[str, str | None] = {"error": None}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        queue.start()

        def load() -> None:
            try:
                service.load()
                log.info("ready: %s, %s, index %s", service.generator.model_id, service.embedder.model_id,
                         service.index_dir)
            except (RagError, ValueError, OSError) as exc:
                loading["error"] = str(exc)
                log.error("could not load: %s", exc)
                if on_load_failure:
                    on_load_failure(str(exc))

        threading.Thread(target=load, name="rag-load", daemon=True).start()
        yield
        await queue.stop()

    app = FastAPI(title="rag", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "X-Queue-Seconds"])
    app.add_middleware(JsonByDefault)
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestLog)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError):
        return error_response(422, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        message = {404: "no such route", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("request %s failed", request.state.request_id)
        return error_response(500, f"internal error; the server log has it under request id "
                                   f"{request.state.request_id}")

    def require_key(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.api_key.encode()):
            raise ApiError(401, "a valid API key is required: Authorization: Bearer KEY",
                           {"WWW-Authenticate": "Bearer"})

    def require_ready() -> None:
        if loading["error"]:
            raise ApiError(503, f"the service could not load: {loading['error']}")
        if not service.ready:
            raise ApiError(503, "loading", {"Retry-After": "5"})

    @app.get("/health")
    async def health():
        if loading["error"]:
            return error_response(503, f"failed: {loading['error']}")
        if not service.ready:
            return error_response(503, "loading", {"Retry-After": "5"})
        return {"status": "ok"}

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])

    @v1.get("/status")
    async def status():
        return {**service.status(), "ready": service.ready, "queue": queue.snapshot()}

    @v1.get("/models")
    async def models():
        return {"object": "list", "data": [{"id": service.generator.model_id, "object": "model", "created": 0,
                                            "owned_by": "rag"}]}

    @v1.post("/search", dependencies=[Depends(require_ready)])
    async def search(body: SearchRequest):
        index, result = await anyio.to_thread.run_sync(service.search, body.query, body.k, body.mode)
        return {"query": body.query, "mode": body.mode, "generation": index.generation,
                "results": retrieval_json(result)}

    @v1.get("/documents/{doc_id}", dependencies=[Depends(require_ready)])
    async def document(doc_id: str):
        index = (await anyio.to_thread.run_sync(service.answerer)).index
        found = await anyio.to_thread.run_sync(index.document_and_chunks, doc_id)
        if found is None:
            raise ApiError(404, f"no document {doc_id!r} in the index")
        doc, chunks = found
        return {"doc_id": doc.doc_id, "text": doc.text, "date": doc.date, "sha256": doc.sha256, "path": doc.path,
                "chunks": [{"chunk_id": c.chunk_id, "start": c.start, "end": c.end} for c in chunks]}

    def submit(work) -> Job:
        """Queue model work, or refuse it with 503 when the queue is full."""
        try:
            return queue.submit(Job(work, service.generator.fork()))
        except QueueFull as exc:
            raise ApiError(503, str(exc), {"Retry-After": str(retry_after(queue))}) from None

    async def result_of(request: Request, job: Job):
        """The job's result, cancelling the job when the client goes away meanwhile."""
        try:
            while not job.result.done():
                await asyncio.wait({job.result}, timeout=DISCONNECT_POLL_SECONDS)
                if not job.result.done() and await request.is_disconnected():
                    job.cancel()
                    request.state.client_left = True
                    raise ApiError(499, "the client closed the connection")
        except asyncio.CancelledError:
            job.cancel()
            raise
        finally:
            request.state.queue_seconds = job.queue_seconds
        return job_value(job)

    def emitter(events: asyncio.Queue):
        loop = asyncio.get_running_loop()
        return lambda event, data: loop.call_soon_threadsafe(events.put_nowait, (event, data))

    def ask_work(question: str, k: int | None, min_support: float | None, emit=None,
                 history: list | None = None):
        """The model work of one question: a follow-up made standalone first when there is a history."""
        def work(job: Job) -> tuple[Answer, str]:
            answerer = service.answerer(min_support, job.generator)

            def on_token(piece: str) -> None:
                job.check()
                if emit:
                    emit("token", piece)

            on_retrieval = (lambda result: emit("retrieval", result)) if emit else None
            session = ChatSession(answerer, history=list(history or []), k=k)
            answer = session.ask(question, on_token=on_token, on_retrieval=on_retrieval)
            return answer, session.standalone_question or question

        return work

    @v1.post("/ask", dependencies=[Depends(require_ready)])
    async def ask(body: AskRequest, request: Request):
        if not body.stream:
            job = submit(ask_work(body.question, body.k, body.min_support))
            answer, _ = await result_of(request, job)
            return JSONResponse(answer.to_json(), headers={"X-Queue-Seconds": f"{job.queue_seconds:.3f}"})
        events: asyncio.Queue = asyncio.Queue()
        job = submit(ask_work(body.question, body.k, body.min_support, emitter(events)))

        async def stream():
            async for event, data in follow(request, job, events):
                if event == "retrieval":
                    yield sse({"retrieved": retrieval_json(data)}, "retrieval")
                elif event == "token":
                    yield sse({"delta": data}, "token")
                elif event == "result":
                    yield sse(data[0].to_json(), "answer")
                    yield sse({"queue_seconds": round(job.queue_seconds, 3)}, "done")
                elif event == "error":
                    yield sse(data, "error")

        return sse_response(stream())

    @v1.post("/chat/completions", dependencies=[Depends(require_ready)])
    async def chat_completions(body: ChatRequest, request: Request):
        try:
            history, question = conversation_from_messages([{"role": m.role, "content": m.text()}
                                                            for m in body.messages])
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        if not question.strip() or len(question) > MAX_QUESTION_CHARS:
            raise ApiError(422, f"the question must be 1 to {MAX_QUESTION_CHARS} characters")
        completion_id = f"chatcmpl-{request.state.request_id}"
        created = int(time.time())
        model = service.generator.model_id

        def completion(answer: Answer, searched: str) -> dict:
            message = {"role": "assistant", "content": answer.answer,
                       "citations": [c.to_dict() for c in answer.citations if c.verified],
                       "annotations": citation_annotations(answer.answer, answer)}
            return {"id": completion_id, "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(answer)}],
                    "usage": usage(answer),
                    "rag": {"abstained": answer.abstained, "support": answer.to_json()["support"],
                            "searched": searched}}

        if not body.stream:
            job = submit(ask_work(question, body.k, body.min_support, history=history))
            answer, searched = await result_of(request, job)
            return JSONResponse(completion(answer, searched), headers={"X-Queue-Seconds": f"{job.queue_seconds:.3f}"})

        events: asyncio.Queue = asyncio.Queue()
        job = submit(ask_work(question, body.k, body.min_support, emitter(events), history))

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            return sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

        async def stream():
            # The content is the checked answer, not the model's draft: a client joins the deltas
            # into the message, and a draft that the check withdraws could not be taken back.
            yield chunk({"role": "assistant", "content": ""})
            async for event, data in follow(request, job, events):
                if event == "result":
                    answer, searched = data
                    full = completion(answer, searched)
                    for piece in re.findall(r"\s*\S+", answer.answer):
                        yield chunk({"content": piece})
                    message = full["choices"][0]["message"]
                    yield chunk({"citations": message["citations"], "annotations": message["annotations"]})
                    yield chunk({}, finish_reason(answer), usage=full["usage"], rag=full["rag"])
                    yield sse("[DONE]")
                elif event == "error":
                    yield sse(data)

        return sse_response(stream())

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
                    request.state.client_left = True
                    job.cancel()
                    return
            request.state.queue_seconds = job.queue_seconds
            try:
                yield "result", job_value(job)
            except ApiError as exc:
                yield "error", error_body(exc.status, exc.message)
        finally:
            if not job.result.done():
                request.state.client_left = True
                job.cancel()

    app.include_router(v1)
    return app


def job_value(job: Job):
    """What a finished job returned, or the ApiError a client should get for how it failed."""
    try:
        return job.result.result()
    except (JobCancelled, asyncio.CancelledError):
        raise ApiError(499, "the request was cancelled") from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    except RagError as exc:
        raise ApiError(500, str(exc)) from None
    except Exception:
        log.exception("a model job failed")
        raise ApiError(500, "internal error; see the server log") from None


def finish_reason(answer: Answer) -> str:
    return "length" if answer.truncated else "stop"


def retry_after(queue: ModelQueue) -> int:
    """Seconds until a place in the queue is likely free: the mean answer time of the jobs so far."""
    return max(1, math.ceil(queue.mean_seconds or 10))


def sse_response(events) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def validation_message(exc: RequestValidationError) -> str:
    """One sentence for the first problem: 'malformed JSON ...' or 'question: String should ...'."""
    problems = exc.errors()
    if not problems:
        return "invalid request"
    first = problems[0]
    if first.get("type") == "json_invalid":
        return f"malformed JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return f"{where or 'body'}: {first.get('msg')}{more}"
