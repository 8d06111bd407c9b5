"""`rag serve` over a real uvicorn server on a free loopback port, with fake models for speed.

The model is not the point here: the HTTP contract, the queue, cancellation, security and
index reloads are. tests/test_real_models.py asks the real models through a `rag serve` process.
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import AGREEMENTS_DOC, VISIT_DOC, wait_for
from fakes import FakeEmbedder, SlowGenerator
from test_operations import scrape, value
from typer.testing import CliRunner

from rag.app.chat import REWRITE_SYSTEM
from rag.app.cli import app as cli_app
from rag.app.service import AnswerService
from rag.quality.loadtest import run_load
from rag.store.sqlite import build_index

QUESTION = "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?"
REPLY = "Mehr als 20 Abkommen [1]."


def events_of(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) of each Server-Sent Event in `text`."""
    found = []
    for block in text.strip().split("\n\n"):
        name = next((line[7:] for line in block.splitlines() if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        found.append((name, data))
    return found


def status_of(live) -> dict:
    return httpx.get(f"{live.url}/v1/status", timeout=30).json()


def open_request(live, body: dict):
    """POST /v1/ask on a raw socket, left open: closing it is the client leaving, at a moment the
    test chooses (an httpx timeout would choose it by the clock)."""
    import socket

    host, port = live.url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    connection = socket.create_connection((host, int(port)))
    connection.sendall(f"POST /v1/ask HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    return connection


# ---- the routes --------------------------------------------------------------------------------

def test_health_says_loading_until_the_models_are_loaded_then_ok(index_dir, serve):
    release = threading.Event()

    class SlowLoading(AnswerService):
        def load(self):
            release.wait(10)
            super().load()

    live = serve(ready=False, service=SlowLoading(index_dir, FakeEmbedder(max_tokens=256), SlowGenerator(REPLY, 0.0)))
    response = httpx.get(f"{live.url}/health")
    assert response.status_code == 503
    assert response.json() == {"error": {"code": 503, "message": "loading", "type": "unavailable_error"}}
    assert httpx.post(f"{live.url}/v1/ask", json={"question": QUESTION}).status_code == 503
    release.set()
    live.wait_ready()
    assert httpx.get(f"{live.url}/health").json() == {"status": "ok"}


def test_status_models_search_and_documents(serve):
    live = serve()
    status = httpx.get(f"{live.url}/v1/status").json()
    assert status["models"]["generator"] == "fake-generator@1" and status["models"]["embedder"] == "fake-embedder@1"
    assert status["index"]["documents"] == 2 and status["index"]["chunks"] > 0 and status["index"]["built_at"]
    assert status["queue"] == {"running": 0, "waiting": 0, "max": 8}
    models = httpx.get(f"{live.url}/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["fake-generator@1"]

    found = httpx.post(f"{live.url}/v1/search", json={"query": "Kooperationsabkommen unterzeichnet", "k": 2}).json()
    assert len(found["results"]) == 2 and found["results"][0]["doc_id"] == AGREEMENTS_DOC
    assert set(found["results"][0]) >= {"doc_id", "chunk_id", "score", "start", "end", "text"}
    assert live.service.generator.calls == []  # retrieval alone: no model call

    hit = found["results"][0]
    document = httpx.get(f"{live.url}/v1/documents/{hit['doc_id']}").json()
    assert document["text"][hit["start"]:hit["end"]] == hit["text"]
    missing = httpx.get(f"{live.url}/v1/documents/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_ask_returns_the_cli_json_object_with_a_verified_citation_a_client_can_check(serve):
    live = serve()
    response = httpx.post(f"{live.url}/v1/ask", json={"question": QUESTION})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert {"question", "answer", "abstained", "citations", "retrieved", "timings", "models", "tokens"} <= set(answer)
    assert "20" in answer["answer"] and not answer["abstained"]
    [citation] = answer["citations"]
    assert citation["doc_id"] == AGREEMENTS_DOC and citation["verified"]
    assert answer["as_of"] == citation["date"] == "2025-09-02"  # the newest article cited
    text = httpx.get(f"{live.url}/v1/documents/{AGREEMENTS_DOC}").json()["text"]
    assert text[citation["start"]:citation["end"]] == citation["quote"]
    assert float(response.headers["x-queue-seconds"]) >= 0


def test_ask_streams_retrieval_tokens_the_checked_answer_and_done(serve):
    live = serve()
    with httpx.stream("POST", f"{live.url}/v1/ask", json={"question": QUESTION, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = events_of(response.read().decode())
    names = [name for name, _ in events]
    assert names[0] == "retrieval" and names[-3:] == ["stage", "answer", "done"]
    assert set(names[1:-3]) == {"token"}
    assert json.loads(events[-3][1]) == {"stage": "checking"}  # the draft is written; its quotes are checked
    assert "".join(json.loads(data)["delta"] for name, data in events if name == "token") == REPLY
    assert json.loads(events[0][1])["retrieved"][0]["doc_id"] == AGREEMENTS_DOC
    answer = json.loads(events[-2][1])
    assert answer["citations"][0]["doc_id"] == AGREEMENTS_DOC


def test_ask_with_earlier_turns_makes_a_follow_up_standalone_and_says_what_it_searched(serve):
    rewritten = "Wie viele Abkommen unterzeichneten Putin und Xi?"
    live = serve(SlowGenerator(lambda messages: rewritten if messages[0]["content"] == REWRITE_SYSTEM else REPLY, 0.0))
    history = [{"question": "Was unterzeichneten Putin und Xi?", "answer": "Abkommen"}]
    with httpx.stream("POST", f"{live.url}/v1/ask",
                      json={"question": "Und wie viele?", "history": history, "stream": True}) as response:
        events = events_of(response.read().decode())
    assert events[0] == ("rewrite", json.dumps({"searched": rewritten}, ensure_ascii=False))
    assert json.loads(next(data for name, data in events if name == "answer"))["question"] == rewritten
    plain = httpx.post(f"{live.url}/v1/ask", json={"question": "Und wie viele?", "history": history}).json()
    assert plain["question"] == rewritten and plain["answer"].startswith("Mehr als 20")
    too_long = httpx.post(f"{live.url}/v1/ask", json={"question": "Und?", "history": history * 21})
    assert too_long.status_code == 422 and "history" in too_long.json()["error"]["message"]
    odd = httpx.post(f"{live.url}/v1/ask", json={"question": "Und?", "history": [{"question": "a", "role": "user"}]})
    assert odd.status_code == 422


def test_a_withdrawn_answer_streams_its_draft_and_then_the_refusal(serve):
    live = serve(SlowGenerator("Zweihundert Panzer [1].", 0.0, support=0.0))
    with httpx.stream("POST", f"{live.url}/v1/ask", json={"question": QUESTION, "stream": True}) as response:
        events = events_of(response.read().decode())
    answer = json.loads(next(data for name, data in events if name == "answer"))
    assert answer["abstained"] and answer["citations"] == []
    assert answer["answer"] == "Die Quellen beantworten diese Frage nicht."


def test_min_support_per_request_withdraws_what_the_default_would_let_stand(serve):
    live = serve(SlowGenerator(REPLY, 0.0, support=0.6))
    assert not httpx.post(f"{live.url}/v1/ask", json={"question": QUESTION}).json()["abstained"]
    assert httpx.post(f"{live.url}/v1/ask", json={"question": QUESTION, "min_support": 0.9}).json()["abstained"]


# ---- OpenAI-compatible chat completions ---------------------------------------------------------

def test_the_openai_package_reads_answer_and_citations(serve):
    from openai import OpenAI

    live = serve(api_key="secret")
    client = OpenAI(base_url=f"{live.url}/v1", api_key="secret", max_retries=0)
    model = client.models.list().data[0].id
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}])
    message = completion.choices[0].message
    assert "20" in message.content and completion.choices[0].finish_reason == "stop"
    [citation] = message.model_extra["citations"]
    assert citation["doc_id"] == AGREEMENTS_DOC and citation["verified"]
    [annotation] = message.annotations
    assert annotation.type == "url_citation"
    assert annotation.url_citation.url == f"rag://doc/{AGREEMENTS_DOC}#char={citation['start']},{citation['end']}"
    assert 0 <= annotation.url_citation.start_index < annotation.url_citation.end_index <= len(message.content)
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0


def test_the_openai_package_streams_text_then_citations_once_then_usage(serve):
    from openai import OpenAI

    live = serve()
    client = OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
    chunks = list(client.chat.completions.create(model="rag", stream=True,
                                                 messages=[{"role": "user", "content": QUESTION}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    with_citations = [c for c in chunks if (c.choices[0].delta.model_extra or {}).get("citations")]
    assert len(with_citations) == 1, "citations come once, not in every chunk"
    [citation] = with_citations[0].choices[0].delta.model_extra["citations"]
    assert citation["doc_id"] == AGREEMENTS_DOC
    assert chunks.index(with_citations[0]) > max(i for i, c in enumerate(chunks) if c.choices[0].delta.content)
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage.total_tokens > 0
    plain = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": QUESTION}])
    assert text == plain.choices[0].message.content


def test_a_follow_up_is_rewritten_from_the_earlier_turns_as_rag_chat_does(serve):
    def reply(messages):
        if messages[0]["content"] == REWRITE_SYSTEM:
            return "Wohin lud Putin Xi Jinping zu einem Staatsbesuch ein?"
        return "Nach Moskau [1]."

    live = serve(SlowGenerator(reply, 0.0))
    response = httpx.post(f"{live.url}/v1/chat/completions", json={"model": "rag", "messages": [
        {"role": "user", "content": "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?"},
        {"role": "assistant", "content": "Mehr als 20"},
        {"role": "user", "content": "Und wohin lud er ihn ein?"}]})
    body = response.json()
    assert body["rag"]["searched"] == "Wohin lud Putin Xi Jinping zu einem Staatsbesuch ein?"
    rewrite = live.service.generator.calls[0]
    assert "Mehr als 20" in rewrite[1]["content"] and "Und wohin lud er ihn ein?" in rewrite[1]["content"]
    assert body["choices"][0]["message"]["citations"][0]["doc_id"] == VISIT_DOC


def test_a_first_question_is_asked_as_it_is(serve):
    live = serve()
    body = httpx.post(f"{live.url}/v1/chat/completions",
                      json={"messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": [{"type": "text", "text": QUESTION}]}]}).json()
    assert body["rag"]["searched"] == QUESTION
    assert all(call[0]["content"] != REWRITE_SYSTEM for call in live.service.generator.calls)


def test_an_error_during_a_stream_is_a_final_error_event_not_answer_text(serve):
    class Failing(SlowGenerator):
        def generate(self, *args, **kwargs):
            raise RuntimeError("the model broke")

    live = serve(Failing())
    with httpx.stream("POST", f"{live.url}/v1/chat/completions",
                      json={"stream": True, "messages": [{"role": "user", "content": QUESTION}]}) as response:
        events = events_of(response.read().decode())
    contents = [json.loads(d)["choices"][0]["delta"].get("content") for _, d in events[:-1]]
    assert contents == [""]  # the opening chunk only: no error text pasted into the answer
    error = json.loads(events[-1][1])["error"]
    assert error["code"] == 500 and "the model broke" not in error["message"] and "Traceback" not in error["message"]
    assert httpx.get(f"{live.url}/health").status_code == 200


# ---- the queue and cancellation -----------------------------------------------------------------

def test_a_full_queue_answers_503_with_retry_after_and_a_new_request_never_interrupts(serve):
    generator = SlowGenerator(REPLY, 0.0)
    generator.hold()  # the first answer cannot finish until the test lets it: the queue is full by construction
    live = serve(generator, max_queue=1)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(httpx.post, f"{live.url}/v1/ask", json={"question": QUESTION}, timeout=60)
        assert generator.busy.wait(30)
        second = pool.submit(httpx.post, f"{live.url}/v1/ask", json={"question": QUESTION}, timeout=60)
        wait_for(lambda: status_of(live)["queue"] == {"running": 1, "waiting": 1, "max": 1}, "one running, one waiting")
        third = httpx.post(f"{live.url}/v1/ask", json={"question": QUESTION}, timeout=30)
        assert third.status_code == 503 and int(third.headers["retry-after"]) >= 1
        assert third.json()["error"]["type"] == "unavailable_error"
        during = scrape(live.url)  # what an operator sees meanwhile
        generator.let_go()
        first, second = first.result(), second.result()
    assert first.status_code == second.status_code == 200
    assert first.json()["answer"] == second.json()["answer"]  # neither was cut off by the other
    assert not generator.stopped.is_set()
    assert [value(during, name) for name in ("rag_queue_running", "rag_queue_waiting", "rag_queue_capacity")] == [1, 1, 1]
    assert value(during, "rag_queue_full_total") == 1
    assert value(during, "rag_http_requests_total", route="/v1/ask", method="POST", status="503") == 1
    assert value(scrape(live.url), "rag_answers_total", outcome="answered") == 2


@pytest.mark.parametrize("parallel", [1, 3])
def test_parallel_answers_as_many_at_once_as_asked(serve, parallel):
    generator = SlowGenerator(REPLY, 0.0)
    generator.hold()  # every answer that starts stays under way until the test lets them go
    live = serve(generator, parallel=parallel)
    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(run_load, live.url, [QUESTION] * 6, concurrency=6)
        wait_for(lambda: status_of(live)["queue"]["waiting"] == 6 - parallel and generator.writing == parallel,
                 f"{parallel} answers under way and the rest waiting")
        generator.let_go()
        report = load.result()
    assert report.statuses == {200: 6}
    assert generator.most_at_once == parallel


def test_health_answers_while_the_model_is_busy(serve):
    """/health is not queued behind the model: it answers while an answer cannot finish."""
    generator = SlowGenerator(REPLY, 0.0)
    generator.hold()
    live = serve(generator)
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(httpx.post, f"{live.url}/v1/ask", json={"question": QUESTION}, timeout=60)
        assert generator.busy.wait(30)
        for _ in range(5):
            assert httpx.get(f"{live.url}/health", timeout=30).status_code == 200
        assert generator.busy.is_set() and not busy.done(), "the model was busy throughout"
        generator.let_go()
        assert busy.result().status_code == 200


def test_a_client_leaving_mid_stream_stops_the_model_within_a_token(serve):
    generator = SlowGenerator(" ".join(["Wort"] * 200), 0.0)
    generator.hold(1)  # one word, then the model waits: the client leaves after reading it
    live = serve(generator)
    with httpx.stream("POST", f"{live.url}/v1/ask", json={"question": QUESTION, "stream": True}) as response:
        for line in response.iter_lines():
            if line.startswith("event: token"):
                break
    assert generator.stopped.wait(30), "the model kept writing for a client that left"
    assert generator.words_written == 1  # not a word after the one the client read
    generator.reply = REPLY
    generator.let_go()
    assert httpx.post(f"{live.url}/v1/ask", json={"question": QUESTION}, timeout=30).status_code == 200  # free
    assert generator.words_written == 1 + len(REPLY.split())


def test_a_client_leaving_a_plain_request_stops_the_model_and_a_queued_one_never_runs(serve):
    generator = SlowGenerator(" ".join(["Wort"] * 200), 0.0)
    generator.hold()
    live = serve(generator)
    running = open_request(live, {"question": QUESTION})
    assert generator.busy.wait(30)
    queued = open_request(live, {"question": "Und der zweite?"})
    wait_for(lambda: status_of(live)["queue"]["waiting"] == 1, "the second question waiting")
    queued.close()
    wait_for(lambda: status_of(live)["queue"]["waiting"] == 0, "the server to see the second client leave")
    running.close()
    assert generator.stopped.wait(30), "the model kept writing for a client that left"
    generator.reply = REPLY
    generator.let_go()
    # First in, first out: had the left question stayed queued, it would run before this one.
    after = httpx.post(f"{live.url}/v1/ask", json={"question": "Und der dritte?"}, timeout=30)
    assert after.status_code == 200
    asked = [call[-1]["content"] for call in generator.calls]
    assert generator.replies_started == 2 and not any("Und der zweite?" in text for text in asked), asked
    assert status_of(live)["queue"] == {"running": 0, "waiting": 0, "max": 8}


# ---- security and limits ------------------------------------------------------------------------

def test_a_key_guards_every_v1_route_but_not_health(serve):
    live = serve(api_key="s3cret")
    assert httpx.get(f"{live.url}/health").status_code == 200
    for method, path, body in [("GET", "/v1/status", None), ("GET", "/v1/models", None),
                               ("POST", "/v1/search", {"query": "Xi"}), ("POST", "/v1/ask", {"question": QUESTION}),
                               ("GET", f"/v1/documents/{AGREEMENTS_DOC}", None),
                               ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Xi?"}]})]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            response = httpx.request(method, f"{live.url}{path}", json=body, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json()["error"]["type"] == "authentication_error"
        ok = httpx.request(method, f"{live.url}{path}", json=body, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200, (path, ok.text)


def test_limits_answer_413_and_422_in_openai_shape(serve):
    live = serve()
    big = httpx.post(f"{live.url}/v1/ask", content=b'{"question": "' + b"x" * 70_000 + b'"}',
                     headers={"Content-Type": "application/json"})
    assert big.status_code == 413 and big.json()["error"]["code"] == 413

    def chunked():
        yield b'{"question": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}'

    assert httpx.post(f"{live.url}/v1/ask", content=chunked()).status_code == 413
    long = httpx.post(f"{live.url}/v1/ask", json={"question": "x" * 2001})
    assert long.status_code == 422 and "question" in long.json()["error"]["message"]
    bad = httpx.post(f"{live.url}/v1/ask", content=b'{"question": ', headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("malformed JSON")
    last = httpx.post(f"{live.url}/v1/chat/completions",
                      json={"messages": [{"role": "user", "content": "Xi?"}, {"role": "assistant", "content": "Ja"}]})
    assert last.status_code == 422 and "last message" in last.json()["error"]["message"]
    assert httpx.get(f"{live.url}/v1/nothing").json()["error"]["code"] == 404


def test_request_ids_are_echoed_and_cors_is_off_unless_asked(serve):
    live = serve()
    response = httpx.get(f"{live.url}/health", headers={"X-Request-ID": "abc-123", "Origin": "http://example.org"})
    assert response.headers["x-request-id"] == "abc-123"
    assert "access-control-allow-origin" not in response.headers
    assert len(httpx.get(f"{live.url}/health").headers["x-request-id"]) == 16
    cors = serve(cors_origins=("http://localhost:3000",))
    preflight = httpx.options(f"{cors.url}/v1/ask", headers={"Origin": "http://localhost:3000",
                                                             "Access-Control-Request-Method": "POST"})
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_serve_refuses_another_address_without_a_key(index_dir):
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--index", str(index_dir)])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in result.output
    assert "Traceback" not in result.output


# ---- the index changing under a running server ----------------------------------------------------

def test_an_index_rebuilt_while_serving_is_used_by_the_next_request(serve, seeds, index_dir):
    live = serve()
    before = httpx.get(f"{live.url}/v1/status").json()["index"]
    (seeds / "009_new.txt").write_text("date 2025-10-01\nDer Zoo von Leipzig bekam drei Pinguine aus Chile.\n",
                                       encoding="utf-8")
    build_index([seeds], index_dir, FakeEmbedder(max_tokens=256))
    found = httpx.post(f"{live.url}/v1/search", json={"query": "Pinguine Zoo Leipzig", "k": 1}).json()
    assert found["results"][0]["doc_id"] == "009_new"
    after = httpx.get(f"{live.url}/v1/status").json()["index"]
    assert after["documents"] == before["documents"] + 1 and after["generation"] != before["generation"]


def test_a_request_in_flight_finishes_on_the_generation_it_started_with(serve, seeds, index_dir):
    live = serve(SlowGenerator(" ".join(["Mehr als 20 Abkommen"] * 5) + " [1].", 0.05))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(httpx.post, f"{live.url}/v1/ask", json={"question": QUESTION}, timeout=30)
        assert live.service.generator.busy.wait(30)
        (seeds / f"{AGREEMENTS_DOC}.txt").unlink()
        build_index([seeds], index_dir, FakeEmbedder(max_tokens=256))
        answer = running.result().json()
    assert answer["citations"][0]["doc_id"] == AGREEMENTS_DOC  # cited from the generation it started on
    assert httpx.get(f"{live.url}/v1/documents/{AGREEMENTS_DOC}").status_code == 404  # gone from the next


# ---- a bounded load test ------------------------------------------------------------------------

def test_load_within_and_beyond_the_queue_loses_nothing_and_stays_healthy(serve):
    generator = SlowGenerator(REPLY, 0.005)
    live = serve(generator, max_queue=8)
    steady = run_load(live.url, [QUESTION] * 20, concurrency=4)
    assert steady.statuses == {200: 20}
    assert {o.answer for o in steady.outcomes} == {steady.outcomes[0].answer}
    # Beyond the queue, by construction: the model held, one answer running and 8 waiting, then a burst
    # of 41 more: every one of those is refused at once, and the 9 admitted are answered once let go.
    generator.hold()
    with ThreadPoolExecutor(1) as pool:
        admitted = pool.submit(run_load, live.url, [QUESTION] * 9, concurrency=9)
        wait_for(lambda: status_of(live)["queue"] == {"running": 1, "waiting": 8, "max": 8}, "the queue full")
        refused = run_load(live.url, [QUESTION] * 41, concurrency=41)
        generator.let_go()
        admitted = admitted.result()
    assert refused.statuses == {503: 41} and admitted.statuses == {200: 9}
    assert all(o.answer for o in admitted.answered)
    assert httpx.get(f"{live.url}/health").json() == {"status": "ok"}
    assert status_of(live)["queue"] == {"running": 0, "waiting": 0, "max": 8}
