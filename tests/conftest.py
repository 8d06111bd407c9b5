import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
AGREEMENTS_DOC = "000_81614b4d2948c4c6"
VISIT_DOC = "003_f1e7237187863abb"


@pytest.fixture
def seeds(tmp_path) -> Path:
    """A private copy of the seed articles."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


# The gate picks its rule by the llama.cpp build it runs on (rag/quality/gate.py). Tests about one
# rule set that rule up themselves; the rest must pass under either. RAG_TEST_UNRECORDED_BUILD=1
# shows it: every real model then reports a build no baseline in eval/baselines/ was recorded on.
UNRECORDED_BUILD = " TEST_UNRECORDED_BUILD"


@pytest.fixture(autouse=True, scope="session")
def unrecorded_build_when_asked():
    if os.environ.get("RAG_TEST_UNRECORDED_BUILD", "") not in ("", "0"):
        from rag.models.llama import LlamaGenerator

        recorded = LlamaGenerator.runtime.fget
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(LlamaGenerator, "runtime", property(lambda self: recorded(self) + UNRECORDED_BUILD))
            yield
    else:
        yield


@pytest.fixture(autouse=True, scope="session")
def models_rag_home(tmp_path_factory):
    """The real-model tests' own $RAG_HOME, one for the run: the default model is assembled into it
    from its packages once (about 5 s), and nothing depends on what earlier runs left in the user's
    cache (saved prompt states among it) or writes there. Subprocesses inherit it."""
    home = tmp_path_factory.mktemp("rag-home-models")
    before = os.environ.get("RAG_HOME")
    os.environ["RAG_HOME"] = str(home)
    yield home
    if before is None:
        os.environ.pop("RAG_HOME", None)
    else:
        os.environ["RAG_HOME"] = before


@pytest.fixture(autouse=True)
def private_rag_home(request, tmp_path, monkeypatch):
    """Unit tests get a $RAG_HOME of their own each; model tests share the run's (models_rag_home)."""
    if request.node.get_closest_marker("model") is None:
        monkeypatch.setenv("RAG_HOME", str(tmp_path / "rag-home"))
        monkeypatch.delenv("RAG_MODEL", raising=False)
        monkeypatch.delenv("RAG_EMBEDDER", raising=False)
    for variable in ("RAG_LLM_URL", "RAG_LLM_MODEL", "RAG_LLM_API_KEY", "RAG_API_KEY"):  # every test, models too
        monkeypatch.delenv(variable, raising=False)


def wait_until_healthy(url: str, process=None, timeout: float = 180) -> None:
    """Wait until `rag serve` at `url` answers /health with 200; fail if `process` exits first."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert process is None or process.poll() is None, "rag serve exited before it was ready"
        assert time.monotonic() < deadline, f"rag serve at {url} did not become ready in {timeout} s"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_server(process) -> None:
    """Stop a `rag serve` process as Ctrl-C does; kill it if it has not ended in 15 s."""
    import signal
    import subprocess

    process.send_signal(signal.SIGINT)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_for(condition, what: str, timeout: float = 30) -> None:
    """Wait until `condition()` holds: a state the test brings about, bounded for a stuck server."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.01)


class LiveServer:
    """A real uvicorn server in a thread, on a port the OS picked."""

    def __init__(self, app, draining: bool = False):
        import socket
        import threading

        import uvicorn

        from rag.app.http.server import DrainingServer

        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        # draining: as `rag serve` runs it (a stop signal drains); else stopped at once by the test
        self.server = DrainingServer(app) if draining else \
            uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def start(self) -> "LiveServer":
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        return self

    def wait_ready(self, timeout: float = 10) -> None:
        wait_until_healthy(self.url, timeout=timeout)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def index_dir(seeds, tmp_path):
    """The seed articles indexed with the fake embedder."""
    from fakes import FakeEmbedder

    from rag.store.sqlite import build_index

    target = tmp_path / "idx"
    build_index([seeds], target, FakeEmbedder(max_tokens=256))
    return target


@pytest.fixture
def serve(index_dir):
    """serve(generator, **settings) -> a ready LiveServer over the fake seed index (fake models)."""
    from fakes import FakeEmbedder, SlowGenerator

    from rag.app.http.server import ServerSettings, create_app
    from rag.app.service import AnswerService

    started = []

    def start(generator=None, ready=True, service=None, draining=False, **settings):
        service = service or AnswerService(index_dir, FakeEmbedder(max_tokens=256),
                                           generator or SlowGenerator("Mehr als 20 Abkommen [1].", 0.0))
        live = LiveServer(create_app(service, ServerSettings(**settings)), draining).start()
        started.append(live)
        if ready:
            live.wait_ready()
        live.service = service
        return live

    yield start
    for live in started:
        live.stop()
