"""`rag serve`: the answering service over HTTP on a socket it binds itself."""

from __future__ import annotations

from typing import Optional

import typer

from rag.answer.answering import AnswerSettings
from rag.app import pipeline
from rag.app.cli.common import (
    EmbedderOption,
    IndexOption,
    KOption,
    LlmTimeoutOption,
    LlmUrlOption,
    MinSupportOption,
    ModelOption,
    RetrievalOption,
    app,
    assembly_progress,
    err,
    fail,
    friendly,
    model_choice,
)
from rag.search.retrieval import RetrievalSettings


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def start_metrics_server(registry, host: str, port: int) -> int:
    """/metrics alone on its own port, in a daemon thread (prometheus_client's server); its port."""
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(port, addr=host.strip("[]"), registry=registry)
    except OSError as exc:
        fail(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}")
    return server.server_port


@app.command(epilog="Example: $ rag serve --port 8000 --api-key \"$(cat key.txt)\"")
@friendly
def serve(index_dir: str = IndexOption,
          host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; another than loopback needs --api-key."),
          port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free one, printed)."),
          api_key: Optional[str] = typer.Option(None, "--api-key", envvar="RAG_API_KEY", show_envvar=True,
                                                help="Require 'Authorization: Bearer KEY' on every /v1 route."),
          admin_key: Optional[str] = typer.Option(None, "--admin-key", envvar="RAG_ADMIN_KEY", show_envvar=True,
                                                  help="Take writes (POST, DELETE /v1/documents) with this key only."),
          max_queue: int = typer.Option(8, "--max-queue", min=0, help="Questions that may wait for the model; more get 503."),
          cors_origin: list[str] = typer.Option([], "--cors-origin", help="Allow browsers from this origin (repeatable); off by default."),
          parallel: int = typer.Option(1, "--parallel", min=1, max=64,
                                       help="Questions answered at once; more than 1 needs a model server (--llm-url)."),
          k: int = KOption,
          min_support: float = MinSupportOption,
          model: Optional[str] = ModelOption,
          embedder: Optional[str] = EmbedderOption,
          retrieval: str = RetrievalOption,
          llm_url: Optional[str] = LlmUrlOption,
          llm_timeout: float = LlmTimeoutOption,
          metrics_port: Optional[int] = typer.Option(None, "--metrics-port", min=0, max=65535,
                                                     help="Also serve /metrics alone on this port, with no key (for scrapers)."),
          log_format: str = typer.Option("text", "--log-format", help="Log lines as 'text' or 'json' (one object a line)."),
          log_questions: bool = typer.Option(False, "--log-questions", help="Put each question's text in its log line."),
          grace_seconds: float = typer.Option(30.0, "--grace-seconds", min=0,
                                              help="On SIGTERM: seconds the answers in flight may take to finish.")):
    """Serve answers over HTTP: native /v1/ask and OpenAI-compatible /v1/chat/completions."""
    import socket

    from rag.app.http.server import DrainingServer, ServerSettings, create_app
    from rag.app.logs import FORMATS, configure_logging
    from rag.app.service import AnswerService
    from rag.store.locations import describe, open_store

    if not _is_loopback(host) and not api_key:
        fail(f"refusing to listen on {host} without an API key: pass --api-key KEY (or set RAG_API_KEY), "
             "or listen on 127.0.0.1")
    if log_format not in FORMATS:
        fail(f"--log-format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    if parallel > 1 and not pipeline.ServerChoice(llm_url).urls:
        fail("--parallel above 1 needs a model server (--llm-url): the in-process model answers one question at a time")
    open_store(index_dir)  # no index, or one of an older format: one line now, before the models load
    try:
        service = AnswerService.from_choice(index_dir, model_choice(model, embedder, llm_url, llm_timeout),
                                            RetrievalSettings(mode=retrieval), AnswerSettings(k=k, min_support=min_support),
                                            progress=assembly_progress())
    except ValueError as exc:
        fail(str(exc))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host.strip("[]"), port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    configure_logging(log_format, ("rag.server", "uvicorn.error"))  # one line per request, and the server's own news
    failure: list[str] = []
    server: DrainingServer | None = None

    def stop_on_failure(message: str) -> None:
        failure.append(message)
        server.should_exit = True

    settings = ServerSettings(api_key or None, max_queue, tuple(cors_origin), parallel, admin_key or None, log_questions,
                              grace_seconds)
    app_ = create_app(service, settings, stop_on_failure)
    if metrics_port is not None:
        scraped = start_metrics_server(app_.state.rag.metrics.registry, host, metrics_port)
        err.print(f"rag serve: metrics at http://{host}:{scraped}/metrics (no key)", soft_wrap=True)
    server = DrainingServer(app_)
    bound = listener.getsockname()[1]
    err.print(f"rag serve: http://{host}:{bound} (index {describe(index_dir)}); loading models, /health says 503 until ready",
              soft_wrap=True)
    server.run(sockets=[listener])
    if failure:
        fail(failure[0])
