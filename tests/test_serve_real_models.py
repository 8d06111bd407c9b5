"""`rag serve` as a user starts it: a separate process with the real default models, asked over
HTTP as curl asks and through the official `openai` package."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import AGREEMENTS_DOC, SEEDS, free_port, stop_server, wait_until_healthy
from test_restarts import sigterm_during_a_streamed_answer

from rag.app import pipeline
from rag.store.sqlite import build_index

pytestmark = pytest.mark.model
QUESTION = "How many agreements were signed?"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp("serve-index") / "seeds"
    build_index([SEEDS], target, pipeline.make_embedder())
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory, index_dir):
    folder = tmp_path_factory.mktemp("serve")
    port = free_port()
    rag = Path(sys.executable).parent / "rag"
    process = subprocess.Popen([str(rag), "serve", "--index", str(index_dir), "--port", str(port)],
                               stdout=(folder / "serve.log").open("w"), stderr=subprocess.STDOUT,
                               env={**os.environ, "RAG_API_KEY": ""})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url
    finally:
        stop_server(process)


def test_curl_and_the_openai_package_get_the_same_verified_answer(server):
    # As `curl -s localhost:8000/v1/ask -d '{"question": ...}'` sends it: no JSON content type.
    response = httpx.post(f"{server}/v1/ask", content=f'{{"question": "{QUESTION}"}}',
                          headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=120)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["answer"].startswith("more than 20"), answer["answer"]
    [citation] = answer["citations"]
    assert citation["doc_id"] == AGREEMENTS_DOC and citation["verified"]
    document = httpx.get(f"{server}/v1/documents/{AGREEMENTS_DOC}").json()
    assert document["text"][citation["start"]:citation["end"]] == citation["quote"]

    from openai import OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=120)
    message = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": QUESTION}]
                                             ).choices[0].message
    assert message.content == answer["answer"]
    assert message.model_extra["citations"] == answer["citations"]


def test_an_unanswerable_question_abstains_over_http(server):
    answer = httpx.post(f"{server}/v1/ask", json={"question": "What is Xi Jinping's favourite food?"},
                        timeout=120).json()
    assert answer["abstained"] and answer["citations"] == []


def test_the_page_marks_the_verified_quote_of_a_real_answer_in_its_article(server):
    """The page in Debian's Chromium: the seed question, its chip clicked, the <mark>'s text equal to
    the article's characters at the chip's offsets."""
    from browser import OpenPage, launched_browser

    with launched_browser() as browser:
        opened = OpenPage(browser, server)
        page = opened.page
        page.goto(server + "/")
        page.get_by_label("Question").fill(QUESTION)
        page.get_by_label("Question").press("Enter")
        chip = page.locator(".chip").first
        chip.wait_for(timeout=180_000)
        assert page.inner_text(".answer-text").startswith("more than 20")
        chip.click()
        mark = page.locator("#reader-text mark").first
        mark.wait_for()
        start, end = int(chip.get_attribute("data-start")), int(chip.get_attribute("data-end"))
        document = httpx.get(f"{server}/v1/documents/{chip.get_attribute('data-doc-id')}").json()
        assert mark.inner_text() == document["text"][start:end]
        assert page.locator("#reader-warning").is_hidden()
        assert opened.foreign_requests() == [] and not opened.errors
        opened.close()


def test_chat_completions_stream_the_real_answer_with_its_citations_once(server):
    """/v1/chat/completions with stream: true, through the openai package: the text is the
    non-streamed answer's, the citations come once, after the text, and verify."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=300)
    messages = [{"role": "user", "content": QUESTION}]
    chunks = list(client.chat.completions.create(model="rag", messages=messages, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    with_citations = [c for c in chunks if c.choices and (c.choices[0].delta.model_extra or {}).get("citations")]
    assert len(with_citations) == 1, "citations come once"
    citations = with_citations[0].choices[0].delta.model_extra["citations"]
    assert chunks.index(with_citations[0]) > max(i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.content)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1, "it streamed"
    assert text.startswith("more than 20") and chunks[-1].choices[0].finish_reason == "stop"
    plain = client.chat.completions.create(model="rag", messages=messages).choices[0].message
    assert text == plain.content and citations == plain.model_extra["citations"]
    verified = [c for c in citations if c["verified"]]
    document = httpx.get(f"{server}/v1/documents/{AGREEMENTS_DOC}").json()
    assert verified and all(document["text"][c["start"]:c["end"]] == c["quote"] for c in verified)


def test_sigterm_mid_answer_lets_the_answer_finish_then_exits_0(index_dir, tmp_path):
    rag = Path(sys.executable).parent / "rag"
    events, status, log = sigterm_during_a_streamed_answer([str(rag), "serve", "--index", str(index_dir),
                                                            "--grace-seconds", "600"], tmp_path,
                                                           QUESTION)
    names = [name for name, _ in events]
    assert names[-2:] == ["answer", "done"], events[-3:]
    assert json.loads(dict(events)["answer"])["answer"].startswith("more than 20")
    assert status == 0 and "stopping: 1 answers in flight" in log, log[-2000:]
