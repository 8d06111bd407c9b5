"""What operators see of `rag serve`: Prometheus metrics and JSON log lines, over a real uvicorn
server (in process, or a `rag serve` process) with the fake models. The same through a real model
server is in tests/test_remote_real_models.py; a full queue in tests/test_server.py, the follower's
sources in tests/test_follow.py.
"""

import json

import httpx
import pytest
from browser import served_fake_rag
from conftest import AGREEMENTS_DOC, wait_for
from fakes import SlowGenerator
from prometheus_client.parser import text_string_to_metric_families

QUESTION = "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?"


def scrape(url: str, **headers) -> dict[tuple[str, tuple], float]:
    """GET /metrics parsed by prometheus_client's own parser: {(sample name, sorted labels): value}."""
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_answers_withdrawals_citations_stages_and_the_index(serve, seeds):
    generator = SlowGenerator("Mehr als 20 Abkommen [1].", 0.0, support=0.6)
    live = serve(generator)
    before = scrape(live.url)
    assert value(before, "rag_answers_total", outcome="answered") == 0 and value(before, "rag_ready") == 1
    assert value(before, "rag_index_documents") == len(list(seeds.glob("*.txt")))
    assert value(before, "rag_index_chunks") >= value(before, "rag_index_documents")
    assert 0 <= value(before, "rag_index_seconds_since_change") < 3600
    answered = httpx.post(f"{live.url}/v1/ask", json={"question": QUESTION}, timeout=60).json()
    withdrawn = httpx.post(f"{live.url}/v1/ask", json={"question": QUESTION, "min_support": 0.9}, timeout=60).json()
    assert not answered["abstained"] and withdrawn["abstained"]
    after = scrape(live.url)
    assert value(after, "rag_http_requests_total", route="/v1/ask", method="POST", status="200") == 2
    assert value(after, "rag_http_requests_total", route="/metrics", method="GET", status="200") == 1  # the first scrape
    assert value(after, "rag_answers_total", outcome="answered") == 1
    assert value(after, "rag_answers_total", outcome="withdrawn") == 1
    assert value(after, "rag_answers_withdrawn_total", reason="weak_support") == 1
    verified = sum(1 for c in answered["citations"] if c["verified"])
    assert verified >= 1 and value(after, "rag_citations_total", verified="true") == verified
    for stage in ("retrieval", "model", "check", "total"):
        assert value(after, "rag_answer_stage_seconds_count", stage=stage) == 2, stage
    assert value(after, "rag_model_tokens_total", kind="generated") == \
        answered["tokens"]["completion"] + withdrawn["tokens"]["completion"] > 0
    assert value(after, "rag_queue_wait_seconds_count") == 2
    labels = " ".join(str(key[1]) for key in after)
    assert QUESTION not in labels and AGREEMENTS_DOC not in labels  # bounded labels: no question, no document id


def test_a_client_that_leaves_is_a_cancelled_answer(serve):
    generator = SlowGenerator("Mehr als 20 Abkommen [1].", 0.0)
    generator.hold(1)
    live = serve(generator)
    with httpx.stream("POST", f"{live.url}/v1/ask", json={"question": QUESTION, "stream": True}, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("event: token"):
                break  # one word written: the client leaves mid-answer
    assert generator.stopped.wait(30)
    wait_for(lambda: value(scrape(live.url), "rag_answers_total", outcome="cancelled") == 1,
             "the answer counted as cancelled once the server saw its client go")
    assert value(scrape(live.url), "rag_answers_total", outcome="answered") == 0


def test_metrics_need_the_key_and_the_metrics_port_serves_them_alone_without_one(index_dir, tmp_path):
    log = tmp_path / "serve.log"
    with served_fake_rag(index_dir, log, "--api-key", "k3y", "--metrics-port", "0") as url:
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert value(scrape(url, Authorization="Bearer k3y"), "rag_ready") == 1
        metrics_url = log.read_text().split("metrics at ")[1].split("/metrics")[0]
        assert metrics_url != url and value(scrape(metrics_url), "rag_ready") == 1
        assert "k3y" not in httpx.get(f"{metrics_url}/metrics").text


def json_lines(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


@pytest.mark.parametrize("log_questions", [False, True])
def test_json_logs_give_one_object_a_line_with_the_request_and_its_answer(index_dir, tmp_path, log_questions):
    log = tmp_path / "serve.log"
    options = ["--log-format", "json", "--api-key", "s3cret-key"] + (["--log-questions"] if log_questions else [])
    with served_fake_rag(index_dir, log, *options, FAKE_DELAY=0) as url:
        response = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60,
                              headers={"Authorization": "Bearer s3cret-key", "X-Request-ID": "req-42"})
        assert response.status_code == 200
        httpx.get(f"{url}/health")
    lines = json_lines(log)
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [asked] = [line for line in lines if line.get("route") == "/v1/ask"]
    assert asked["request_id"] == "req-42" and asked["status"] == 200 and asked["method"] == "POST"
    assert asked["seconds"] >= asked["queue_seconds"] >= 0
    assert set(asked["stages"]) >= {"retrieval", "model", "check", "total"}
    assert asked["tokens"]["generated"] == response.json()["tokens"]["completion"] > 0
    assert asked["abstained"] is False and asked["verified_citations"] >= 1
    text = log.read_text()
    assert "s3cret-key" not in text
    assert (QUESTION in text) is log_questions and asked.get("question") == (QUESTION if log_questions else None)


def test_an_unknown_log_format_is_one_line(index_dir):
    from typer.testing import CliRunner

    from rag.app.cli import app

    result = CliRunner().invoke(app, ["serve", "--index", str(index_dir), "--log-format", "xml"])
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0
    assert "--log-format must be one of text, json" in result.stderr
