"""Answering through a model server: what happens when it is down, silent, or refuses.

The answers themselves through a real server (llama-cpp-python's own `llama_cpp.server` with the
default model) are in tests/test_remote_real_models.py.
"""

import socket
import threading
import time

import pytest
from conftest import free_port
from fakes import FakeEmbedder
from typer.testing import CliRunner

from rag.app import pipeline
from rag.app.cli import app
from rag.errors import RagError
from rag.models.remote import ServerGenerator

QUESTION = [{"role": "user", "content": "Wohin lud Putin Xi ein?"}]


@pytest.fixture
def silent_server():
    """A server that accepts connections and never answers: the case a timeout is for."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_server_that_is_down_is_a_one_line_error_naming_it_at_once():
    url = f"http://127.0.0.1:{free_port()}"
    generator = ServerGenerator(url, model="m", timeout=30)
    started = time.monotonic()
    with pytest.raises(RagError) as failure:
        generator.generate(QUESTION, max_tokens=8)
    assert time.monotonic() - started < 10, "a refused connection needs no timeout (30 s here)"
    assert url in str(failure.value) and "\n" not in str(failure.value)


def test_a_server_that_never_answers_is_an_error_within_the_timeout(silent_server):
    generator = ServerGenerator(silent_server, model="m", timeout=4)
    started = time.monotonic()
    with pytest.raises(RagError) as failure:
        generator.yes_probability(QUESTION)
    took = time.monotonic() - started
    # The timeout is one deadline for all tries (two rounds here): a timeout per try would take 8 s
    # and more. It cannot end sooner than the timeout; 3 s over it leaves room for a loaded machine.
    assert 4 <= took < 7, took
    assert silent_server in str(failure.value) and "within" in str(failure.value)


def test_every_url_is_tried_and_named(silent_server):
    dead = f"http://127.0.0.1:{free_port()}"
    generator = ServerGenerator(f"{dead},{silent_server}", model="m", timeout=1.5)
    with pytest.raises(RagError) as failure:
        generator.generate(QUESTION, max_tokens=8)
    assert dead in str(failure.value) and silent_server in str(failure.value)


def test_urls_come_from_the_option_or_the_environment(monkeypatch):
    assert pipeline.ServerChoice().urls is None
    monkeypatch.setenv("RAG_LLM_URL", "http://a:1/v1, http://b:2")
    monkeypatch.setenv("RAG_LLM_API_KEY", "k")
    choice = pipeline.ServerChoice()
    generator = pipeline.make_generator(server=choice)
    assert generator.urls == ["http://a:1", "http://b:2"] and generator.api_key == "k"
    assert pipeline.make_generator(server=pipeline.ServerChoice("http://c:3")).urls == ["http://c:3"]


def test_rag_ask_with_a_dead_server_exits_with_one_line_within_the_timeout(monkeypatch, seeds, tmp_path, silent_server):
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    runner = CliRunner()
    assert runner.invoke(app, ["index", str(seeds), "--index", str(tmp_path / "idx")]).exit_code == 0
    dead = f"http://127.0.0.1:{free_port()}"
    for url, timeout, bound in ((dead, "30", 10), (silent_server, "4", 7)):  # bounds: as in the tests above
        started = time.monotonic()
        result = runner.invoke(app, ["ask", "Wohin lud Putin Xi ein?", "--index", str(tmp_path / "idx"),
                                     "--llm-url", url, "--llm-timeout", timeout])
        assert time.monotonic() - started < bound
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: no model server answered") and url in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_parallel_answers_need_a_model_server(seeds, tmp_path):
    result = CliRunner().invoke(app, ["serve", "--parallel", "2", "--index", str(tmp_path)])
    assert result.exit_code == 2 and "--parallel above 1 needs a model server" in result.stderr
