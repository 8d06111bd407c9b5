"""Answering through a real model server: llama-cpp-python's own OpenAI-compatible server
(`python -m llama_cpp.server`, the `server` extra) with the default model, on loopback ports."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import AGREEMENTS_DOC, SEEDS, LiveServer, free_port
from test_operations import scrape, value
from test_restarts import sigterm_during_a_streamed_answer

from rag.app import pipeline
from rag.app.http.server import create_app
from rag.app.service import AnswerService
from rag.errors import RagError
from rag.models.packages import resolve_model_path
from rag.models.remote import ServerGenerator
from rag.store.sqlite import build_index

pytestmark = pytest.mark.model
KEY = "test-key"


class LlamaServer:
    """`python -m llama_cpp.server` on a free loopback port, with an API key."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_model_path(None)), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", "4096", "--n_threads", "2", "--api_key", KEY],
            stdout=(folder / f"llama-server-{self.port}.log").open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, "llama_cpp.server exited"
            assert time.monotonic() < deadline, "llama_cpp.server did not start"
            try:
                if httpx.get(f"{self.url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp("remote") / "seeds"
    build_index([SEEDS], target, pipeline.make_embedder())
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = LlamaServer(tmp_path_factory.mktemp("llama-server"))
    yield running
    running.stop()


def test_seed_questions_through_a_model_server_with_a_key(server, index_dir):
    answerer = pipeline.open_answerer(index_dir, pipeline.ModelChoice(
        server=pipeline.ServerChoice(server.url, api_key=KEY)))
    answerer.warm_up()
    answer = answerer.ask("How many agreements were signed?")
    assert answer.answer.startswith("more than 20"), answer.answer
    [citation] = [c for c in answer.citations if c.verified]
    assert citation.doc_id == AGREEMENTS_DOC
    assert answerer.generator.logprobs is True and answerer.generator.tokenizer == "server /extras/tokenize"
    assert server.url in answer.models["generator"] and "model server" in answerer.generator.runtime
    unanswerable = answerer.ask("What is Xi Jinping's favourite food?")
    assert unanswerable.abstained and unanswerable.citations == []


def test_a_wrong_key_is_refused_in_one_line(server):
    with pytest.raises(RagError) as failure:
        ServerGenerator(server.url, model="m", api_key="wrong").generate([{"role": "user", "content": "Hi"}], 4)
    assert "refused the request (HTTP 401)" in str(failure.value) and "\n" not in str(failure.value)


def test_metrics_show_the_model_servers_failovers_tokens_and_stages(server, index_dir):
    """`rag serve`'s /metrics answering through two model-server URLs, the first one down: a
    request that starts there fails over to the other, and the URL's password is not shown."""
    down = f"http://rag:s3cret@127.0.0.1:{free_port()}"
    service = AnswerService(index_dir, pipeline.make_embedder(), ServerGenerator([down, server.url], api_key=KEY))
    live = LiveServer(create_app(service)).start()
    try:
        live.wait_ready(timeout=300)
        answer = httpx.post(f"{live.url}/v1/ask", json={"question": "How many agreements were signed?"},
                            timeout=600).json()
        samples = scrape(live.url)
    finally:
        live.stop()
    assert answer["answer"].startswith("more than 20"), answer
    shown = down.replace(":s3cret@", ":***@")
    failovers = value(samples, "rag_model_server_failovers_total", url=shown)
    assert failovers >= 1 and value(samples, "rag_model_server_errors_total", url=shown) == failovers
    assert value(samples, "rag_model_server_requests_total", url=server.url) >= 1
    assert value(samples, "rag_model_server_errors_total", url=server.url) == 0
    assert not any("s3cret" in str(labels) for _, labels in samples)
    assert value(samples, "rag_model_tokens_total", kind="prompt") == answer["tokens"]["prompt"] > 0
    assert value(samples, "rag_model_tokens_total", kind="generated") == answer["tokens"]["completion"] > 0
    assert value(samples, "rag_answer_stage_seconds_count", stage="model") == 1
    assert value(samples, "rag_citations_total", verified="true") >= 1


def test_sigterm_mid_answer_through_a_model_server_lets_it_finish_then_exits_0(server, index_dir, tmp_path):
    rag = Path(sys.executable).parent / "rag"
    command = [str(rag), "serve", "--index", str(index_dir), "--llm-url", server.url,
               "--grace-seconds", "600"]  # a slow machine's answer finishes: the grace's end is tested with fakes
    events, status, log = sigterm_during_a_streamed_answer(command, tmp_path, "How many agreements were signed?",
                                                           RAG_LLM_API_KEY=KEY)
    assert [name for name, _ in events][-2:] == ["answer", "done"], events[-3:]
    assert json.loads(dict(events)["answer"])["answer"].startswith("more than 20")
    assert status == 0 and "stopping: 1 answers in flight" in log, log[-2000:]


def test_a_batch_completes_when_one_of_two_servers_is_killed_midway(server, index_dir, tmp_path):
    first, second = LlamaServer(tmp_path), server
    try:
        questions = tmp_path / "questions.jsonl"
        asked = ["How many agreements were signed?", "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?",
                 "Wohin hat Putin Xi Jinping eingeladen?"]
        questions.write_text("".join(json.dumps({"id": f"q{n}", "question": q}) + "\n" for n, q in enumerate(asked)))
        output = tmp_path / "answers.jsonl"
        env = {**os.environ, "RAG_LLM_URL": f"{first.url},{second.url}", "RAG_LLM_API_KEY": KEY}
        batch = subprocess.Popen([str(Path(sys.executable).parent / "rag"), "batch", str(questions), "-o", str(output),
                                  "--index", str(index_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        deadline = time.monotonic() + 300
        while not output.exists() or not output.read_text().strip():
            assert batch.poll() is None and time.monotonic() < deadline, "the batch answered nothing"
            time.sleep(0.2)
        first.kill()  # in the middle of the batch: one answer written, the next under way
        printed, _ = batch.communicate(timeout=600)
        assert batch.returncode == 0, printed
        records = [json.loads(line) for line in output.read_text().splitlines()]
        assert sorted(r["id"] for r in records) == ["q0", "q1", "q2"], "each question answered exactly once"
        assert not any("error" in r for r in records), records
        assert records[0]["answer"].startswith("more than 20")
        # Failover happened: a request went to the killed server, failed there (a broken stream or a
        # refused connection; requests take the URLs in turn, so a later one starts there if none was
        # in flight) and was answered by the other.
        assert f"model server {first.url}: " in printed, printed
    finally:
        first.stop()
