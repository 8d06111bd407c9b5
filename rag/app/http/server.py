"""`rag serve`: the question-answering service over HTTP, native and OpenAI-compatible.

A thin FastAPI layer over `app.service.AnswerService`: the same answers, citations and checks as
`rag ask --json`. The routes live in `native.py` (health, status, models, search, documents, ask)
and `chat_completions.py` (OpenAI's chat completions); what they share in `jobs.py`. `page.py`
serves the browser page at `/` (`app/web/`).

One model answers one question at a time: model work waits in a first-in-first-out queue
(`service.ModelQueue`), and a request beyond it gets 503 with Retry-After. Everything else (the
health check, search, documents) runs beside it and never waits on the model. Errors are in
OpenAI's shape, `{"error": {"message", "type", "code"}}`; no traceback reaches a client.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from typing import AsyncIterator

import uvicorn
from fastapi import FastAPI

from rag.app.http import chat_completions, native, page, writes
from rag.app.http.errors import add_error_handlers
from rag.app.http.jobs import ServerSettings, ServerState
from rag.app.http.middleware import BodyLimit, JsonByDefault, RequestLog
from rag.app.service import AnswerService, ModelQueue
from rag.errors import RagError
from rag.store.locations import describe

log = logging.getLogger("rag.server")

__all__ = ["DrainingServer", "ServerSettings", "create_app"]
FLUSH_SECONDS = 10  # once drained: how long uvicorn waits for responses still being written (a stream's last events)


def create_app(service: AnswerService, settings: ServerSettings = ServerSettings(),
               on_load_failure=None) -> FastAPI:
    """The app; models and index load in a thread at startup, while /health says 503 "loading".

    `on_load_failure(message)` is called if loading fails (the CLI stops the server with it).
    """
    state = ServerState(service, settings, ModelQueue(settings.max_queue, settings.parallel))

    def load() -> None:
        try:
            service.load()
            log.info("ready: %s, %s, index %s", service.generator.model_id, service.embedder.model_id,
                     describe(service.index_dir))
        except (RagError, ValueError, OSError) as exc:
            state.load_error = str(exc)
            log.error("could not load: %s", exc)
            if on_load_failure:
                on_load_failure(str(exc))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.queue.start()
        threading.Thread(target=load, name="rag-load", daemon=True).start()
        yield
        await state.queue.stop()

    app = FastAPI(title="rag", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.rag = state
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "X-Queue-Seconds"])
    app.add_middleware(JsonByDefault)
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestLog, state=state)
    add_error_handlers(app)
    app.include_router(native.health)
    app.include_router(native.metrics)
    app.include_router(native.v1)
    app.include_router(writes.router)
    app.include_router(chat_completions.router)
    app.include_router(page.router)
    return app


class DrainingServer(uvicorn.Server):
    """uvicorn's server, stopping as a replica behind a load balancer should. The first SIGTERM or
    Ctrl-C starts a drain: `/health` and every new question answer 503 at once (the balancer and
    the client go to another replica), while the answers in flight, streams included, go on. Once
    none is left the server exits, 0. A second signal, or `grace_seconds` running out, ends the
    remaining ones with a clear error (a 503, an `error` event in a stream) and exits.

    uvicorn's own handling would close the socket at once and, after the exit, raise the signal
    again (the process then ends by it, not with 0); this one does neither.
    """

    def __init__(self, app: FastAPI, **config) -> None:
        self.rag: ServerState = app.state.rag
        super().__init__(uvicorn.Config(app, log_config=None, access_log=False,
                                        timeout_graceful_shutdown=FLUSH_SECONDS, **config))

    def handle_exit(self, sig, frame) -> None:  # called in the main thread, between two steps of the loop
        if not self.rag.stopping:
            self.rag.begin_stop()
        else:
            self.rag.force_stop()

    async def on_tick(self, counter: int) -> bool:  # every 0.1 s: True ends the server
        if self.rag.stopping and self.rag.drained():
            return True
        return await super().on_tick(counter)
