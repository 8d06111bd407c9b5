"""Restarts that drop no answer: a stop signal drains `rag serve` (readiness and new questions 503
at once, answers in flight finish, then exit 0); a second signal or the grace running out ends the
rest with a clear error. In process with the fake models (the signal handler called as the signal
calls it), as `rag serve` processes with real SIGTERMs, and two replicas on one PostgreSQL index
restarted in turn under `rag bench http`. The real models: tests/test_serve_real_models.py (in
process) and tests/test_remote_real_models.py (--llm-url).
"""

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import free_port, wait_for, wait_until_healthy
from fakes import FakeEmbedder, SlowGenerator
from postgres import running_postgres
from test_server import events_of

from rag.store.locations import build_store

HERE = Path(__file__).parent

QUESTION = "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?"


def stream_events(url: str) -> list[tuple[str | None, str]]:
    with httpx.stream("POST", f"{url}/v1/ask", json={"question": QUESTION, "stream": True}, timeout=60) as response:
        return events_of(response.read().decode())


def in_flight_at_the_signal(live, generator, pool):
    """A streamed answer under way (held by the generator) and a plain one waiting behind it, then
    the stop signal, as the signal calls the handler; the two pending answers."""
    streamed = pool.submit(stream_events, live.url)
    assert generator.busy.wait(30)
    waiting = pool.submit(httpx.post, f"{live.url}/v1/ask", json={"question": QUESTION}, timeout=60)
    wait_for(lambda: live.server.rag.queue.snapshot()["waiting"] == 1, "a second question waiting")
    live.server.handle_exit(signal.SIGTERM, None)
    return streamed, waiting


def test_a_stop_signal_drains_answers_in_flight_refuses_new_ones_and_ends_the_server(serve):
    generator = SlowGenerator("Mehr als 20 Abkommen [1].", 0.0)
    generator.hold(1)  # the first answer stays under way until the test lets it go
    live = serve(generator, draining=True)
    with ThreadPoolExecutor(2) as pool:
        streamed, waiting = in_flight_at_the_signal(live, generator, pool)
        health = httpx.get(f"{live.url}/health", timeout=10)
        assert health.status_code == 503 and health.json()["error"]["message"] == "stopping"
        refused = httpx.post(f"{live.url}/v1/ask", json={"question": QUESTION}, timeout=10)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "ask another replica" in refused.json()["error"]["message"]
        assert live.thread.is_alive()  # still answering what it took
        generator.let_go()
        events, answered = streamed.result(), waiting.result()
    assert [name for name, _ in events][-2:] == ["answer", "done"]
    assert answered.status_code == 200 and not answered.json()["abstained"]
    live.thread.join(30)
    assert not live.thread.is_alive(), "the server did not end once drained"


@pytest.mark.parametrize("ending", ["a second signal", "the grace running out"])
def test_answers_still_in_flight_end_with_a_clear_error(serve, ending):
    generator = SlowGenerator("Mehr als 20 Abkommen [1].", 0.0)
    generator.hold(1)  # never finishes by itself: only the stop can end it
    live = serve(generator, draining=True, grace_seconds=0.5 if ending == "the grace running out" else 30)
    with ThreadPoolExecutor(2) as pool:
        streamed, waiting = in_flight_at_the_signal(live, generator, pool)
        if ending == "a second signal":
            live.server.handle_exit(signal.SIGTERM, None)
        events, ended = streamed.result(), waiting.result()
    name, data = events[-1]
    assert name == "error" and "the server stopped before this answer was done" in json.loads(data)["error"]["message"]
    assert "answer" not in [n for n, _ in events]
    assert ended.status_code == 503 and "stopped before this answer was done" in ended.json()["error"]["message"]
    assert generator.stopped.is_set()  # the model was stopped, not left running
    live.thread.join(30)
    assert not live.thread.is_alive()


class Replica:
    """`rag serve` with the fake models (tests/fake_rag.py) on a fixed loopback port, JSON logs."""

    def __init__(self, index: str, folder, name: str):
        self.index, self.folder, self.name = index, folder, name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs: list = []
        self.process = None

    def start(self) -> None:
        self.logs.append(self.folder / f"{self.name}-{len(self.logs) + 1}.log")
        env = {**os.environ, "RAG_API_KEY": "", "FAKE_DELAY": "0.05"}
        with self.logs[-1].open("w") as output:
            self.process = subprocess.Popen([sys.executable, str(HERE / "fake_rag.py"), "serve", "--index", self.index,
                                             "--port", str(self.port), "--log-format", "json"],
                                            stdout=output, stderr=subprocess.STDOUT, env=env)
        wait_until_healthy(self.url, self.process, timeout=120)

    def in_flight(self) -> int:
        queue = httpx.get(f"{self.url}/v1/status", timeout=10).json()["queue"]
        return queue["running"] + queue["waiting"]

    def terminate(self) -> int:
        """SIGTERM, as systemd or Kubernetes stops a replica; its exit status (killed after 60 s)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def lines(self, run: int) -> list[dict]:
        return [json.loads(line) for line in self.logs[run].read_text().splitlines() if line.startswith("{")]


def feed(stream, stop: threading.Event, fed: list) -> None:
    """A steady stream of questions, five a second, until told to stop."""
    while not stop.wait(0.2):
        stream.write(QUESTION + "\n")
        stream.flush()
        fed.append(1)


def test_two_replicas_on_one_postgresql_index_restarted_in_turn_under_load_lose_no_answer(seeds, tmp_path):
    with running_postgres() as database:
        index = f"{database.url}?schema=restarts"
        build_store([seeds], index, FakeEmbedder(max_tokens=256))
        replicas = [Replica(index, tmp_path, name) for name in ("a", "b")]
        for replica in replicas:
            replica.start()
        rag = Path(sys.executable).parent / "rag"
        bench = subprocess.Popen([str(rag), "bench", "http", "--url", ",".join(r.url for r in replicas), "--set", "-",
                                  "--concurrency", "4", "--retry-other", "--json", str(tmp_path / "load.json")],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        stop, fed = threading.Event(), []
        feeder = threading.Thread(target=feed, args=(bench.stdin, stop, fed), daemon=True)
        feeder.start()
        try:
            for replica in replicas:  # a rolling restart: one at a time, the other answering meanwhile
                wait_for(lambda: replica.in_flight() >= 1, f"an answer in flight on {replica.name}", timeout=60)
                assert replica.terminate() == 0, replica.logs[-1].read_text()[-2000:]
                replica.start()
                wait_for(lambda: len([line for line in replica.lines(1) if line.get("status") == 200]) >= 2,
                         f"{replica.name} answering again after its restart", timeout=60)
        finally:
            stop.set()
            feeder.join(10)
            try:
                printed = bench.communicate(timeout=300)[0]  # closes its stdin: the stream ends, the bench stops
            finally:
                for replica in replicas:
                    replica.terminate()
    assert bench.returncode == 0, printed
    report = json.loads((tmp_path / "load.json").read_text())
    assert report["summary"]["statuses"] == {"200": len(fed)}, printed  # zero failed answers
    assert report["summary"]["retried"] >= 1, "no question met a stopped replica: the test proved nothing"
    for replica in replicas:
        first = replica.lines(0)
        stopping = next(n for n, line in enumerate(first) if line["message"].startswith("stopping:"))
        finished = [line for line in first[stopping:] if line.get("route") == "/v1/ask" and line.get("status") == 200]
        assert finished, f"{replica.name}: no answer in flight finished after SIGTERM"
        assert any(line.get("status") == 503 for line in first[stopping:]) or report["summary"]["retried"]


def sigterm_during_a_streamed_answer(command: list[str], folder, question: str, **env) -> tuple[list, int, str]:
    """Start `command` (a `rag serve`), stream `question`, send SIGTERM once the first token has
    arrived, read the stream to its end: (its events, the exit status, the server's log)."""
    port = free_port()
    log = folder / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen([*command, "--port", str(port)], stdout=output, stderr=subprocess.STDOUT,
                                   env={**os.environ, "RAG_API_KEY": "", **env})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        events, signalled = [], False
        with httpx.stream("POST", f"{url}/v1/ask", json={"question": question, "stream": True}, timeout=600) as response:
            for block in response.iter_text():
                events += events_of(block) if block.strip() else []
                if not signalled and any(name == "token" for name, _ in events):
                    process.send_signal(signal.SIGTERM)  # mid-answer, as a deploy would
                    signalled = True
        assert signalled, events
        return events, process.wait(60), log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
