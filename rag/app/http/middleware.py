"""ASGI middleware of `rag serve`: request ids, log lines and request metrics, JSON by default, the body limit."""

from __future__ import annotations

import logging
import re
import time
import uuid

from rag.app.http.errors import error_response
from rag.app.http.metrics import answer_stages

log = logging.getLogger("rag.server")

MAX_BODY_BYTES = 64 * 1024
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024  # POST /v1/documents: an article's page
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestLog:
    """Gives every request an id (the client's `X-Request-ID` when it is sane), echoes it in the
    response, and once its response is complete counts it in the metrics and logs one line. The
    line's fields ride on the log record (`fields`, see `request_fields`): JSON logs print them
    all, text logs the usual line."""

    def __init__(self, app, state=None):
        self.app = app
        self.state = state  # jobs.ServerState: its metrics and settings

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
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"  # a template: bounded
            if self.state is not None:
                self.state.metrics.observe_request(route, scope["method"], status["code"], seconds)
            log_questions = self.state is not None and self.state.settings.log_questions
            fields = request_fields(request_id, scope["method"], route, status["code"], seconds, state, log_questions)
            wait = state.get("queue_seconds")
            log.info("%s %s %s %d %.3fs%s%s", request_id, scope["method"], scope["path"], status["code"], seconds,
                     "" if wait is None else f" queue={wait:.3f}s", " (client left)" if state.get("client_left") else "",
                     extra={"fields": fields})

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


def request_fields(request_id: str, method: str, route: str, status: int, seconds: float, state: dict,
                   log_questions: bool = False) -> dict:
    """A request's log fields: never the key (headers are not logged) nor, unless asked, the question.

    >>> request_fields("a1", "GET", "/health", 200, 0.0012, {})
    {'request_id': 'a1', 'method': 'GET', 'route': '/health', 'status': 200, 'seconds': 0.001}
    """
    fields = {"request_id": request_id, "method": method, "route": route, "status": status, "seconds": round(seconds, 3)}
    if state.get("queue_seconds") is not None:
        fields["queue_seconds"] = round(state["queue_seconds"], 3)
    if state.get("client_left"):
        fields["client_left"] = True
    answer = state.get("answer")
    if answer is not None:
        verified = sum(1 for c in answer.citations if c.verified)
        fields.update({"stages": {k: round(v, 3) for k, v in answer_stages(answer.timings).items()},
                       "tokens": {"prompt": answer.usage.prompt, "cached": answer.usage.cached,
                                  "generated": answer.usage.completion},
                       "abstained": answer.abstained, "withdrawal": answer.withdrawal_kind,
                       "citations": len(answer.citations), "verified_citations": verified})
        if log_questions:
            fields["question"] = answer.question
    return fields


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
    """413 for a request body over `limit` bytes (`larger` for the paths it names: an article's page
    is bigger than a question), by its Content-Length or, when sent in chunks, by what arrives
    (read up to the limit, then handed on whole)."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES, larger: dict[str, int] | None = None):
        self.app = app
        self.limit = limit
        self.larger = larger if larger is not None else {"/v1/documents": MAX_DOCUMENT_BYTES}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        limit = self.larger.get(scope["path"], self.limit)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await self.too_large(scope, receive, send, limit)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return await self.too_large(scope, receive, send, limit)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when the client leaves

        await self.app(scope, replay, send)

    async def too_large(self, scope, receive, send, limit: int):
        await error_response(413, f"the request body is larger than {limit // 1024} KiB")(scope, receive, send)
