"""ASGI middleware of `rag serve`: request ids and log lines, JSON by default, the body limit."""

from __future__ import annotations

import logging
import re
import time
import uuid

from rag.app.http.errors import error_response

log = logging.getLogger("rag.server")

MAX_BODY_BYTES = 64 * 1024
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024  # POST /v1/documents: an article's page
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


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
