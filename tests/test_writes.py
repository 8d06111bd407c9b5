"""Writing over HTTP: `rag serve --admin-key` takes articles (POST /v1/documents) and removes them
(DELETE), for the admin key only, never fetching an address. A real uvicorn server, fake models."""

import json

import httpx
import pytest
from conftest import LiveServer
from fakes import FakeEmbedder, SlowGenerator
from newssite import NewsSite, article_page
from test_sources import seed_articles

from rag.app.http.server import ServerSettings, create_app
from rag.app.service import AnswerService
from rag.store.sqlite import build_index, open_index

READ, ADMIN = {"Authorization": "Bearer read-key"}, {"Authorization": "Bearer admin-key"}
ARTICLE = {"text": "Die Pinguine im Zoo von Leipzig bekamen einen neuen Teich. " * 12,
           "url": "https://www.tagesblick.de/leipzig/pinguine-101.html?utm_source=app", "title": "Neuer Teich",
           "date": "2025-10-02"}


@pytest.fixture
def server(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(max_tokens=256))
    service = AnswerService(tmp_path / "idx", FakeEmbedder(max_tokens=256), SlowGenerator("Ein Teich [1].", 0.0))
    live = LiveServer(create_app(service, ServerSettings(api_key="read-key", admin_key="admin-key"))).start()
    live.wait_ready()
    live.index_dir = tmp_path / "idx"
    yield live
    live.stop()


def test_only_the_admin_key_writes(server):
    for headers, status in (({}, 401), (READ, 403), ({"Authorization": "Bearer guess"}, 403)):
        refused = httpx.post(f"{server.url}/v1/documents", json=ARTICLE, headers=headers)
        assert refused.status_code == status and refused.json()["error"]["message"].count("\n") == 0, refused.text
        assert httpx.delete(f"{server.url}/v1/documents/000_81614b4d2948c4c6", headers=headers).status_code == status
    assert httpx.get(f"{server.url}/v1/documents/000_81614b4d2948c4c6", headers=ADMIN).status_code == 200  # reads too


def test_an_article_posted_is_searchable_at_the_next_request_and_a_deleted_one_is_gone(server):
    added = httpx.post(f"{server.url}/v1/documents", json=ARTICLE, headers=ADMIN)
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["doc_id"] == "tagesblick.de/leipzig/pinguine-101" and body["changed"] and body["documents"] == 3
    assert (body["url"], body["title"], body["published"]) == (
        "https://tagesblick.de/leipzig/pinguine-101.html", "Neuer Teich", "2025-10-02")
    found = httpx.post(f"{server.url}/v1/search", json={"query": "Pinguine Teich Leipzig", "k": 1}, headers=READ).json()
    assert found["results"][0]["doc_id"] == body["doc_id"] and found["results"][0]["title"] == "Neuer Teich"
    again = httpx.post(f"{server.url}/v1/documents", json=ARTICLE, headers=ADMIN).json()
    assert again["changed"] is False  # the same article again: nothing to do
    gone = httpx.delete(f"{server.url}/v1/documents/{body['doc_id']}", headers=ADMIN)
    assert gone.status_code == 200 and gone.json()["removed"]
    assert httpx.get(f"{server.url}/v1/documents/{body['doc_id']}", headers=READ).status_code == 404
    missing = httpx.delete(f"{server.url}/v1/documents/{body['doc_id']}", headers=ADMIN)
    assert missing.status_code == 404 and "no document" in missing.json()["error"]["message"]


def test_a_page_posted_is_read_as_given_and_its_address_is_never_fetched(server, tmp_path):
    with NewsSite() as site:
        page = article_page(seed_articles()[1], site.base)
        posted = httpx.post(f"{server.url}/v1/documents", headers=ADMIN, timeout=30,
                            json={"html": page, "url": f"{site.base}/politik/seed-1.html", "id": "videotelefonat"})
        assert posted.status_code == 201, posted.text
        assert site.log == []  # the server read the html it was given and asked the site for nothing
    assert posted.json()["doc_id"] == "videotelefonat"  # an id given wins over the address's
    text = httpx.get(f"{server.url}/v1/documents/videotelefonat", headers=READ).json()["text"]
    assert text == "\n\n".join(seed_articles()[1].paragraphs)


def test_bad_writes_are_refused_in_one_line(server):
    cases = [({"title": "kein Text"}, 422, "needs its text or its html"),
             ({"text": "x", "date": "morgen"}, 422, "is not a date"),
             ({"text": "x", "url": "file:///etc/passwd"}, 422, "is not an http(s) address"),
             ({"text": "ohne Adresse"}, 422, "needs an id"),
             ({"text": "x", "id": "a", "unknown": 1}, 422, "unknown"),
             ({"html": "<html><body><p>kurz</p></body></html>", "id": "kurz"}, 422, "not an article")]
    for body, status, message in cases:
        refused = httpx.post(f"{server.url}/v1/documents", json=body, headers=ADMIN)
        assert refused.status_code == status and message in refused.json()["error"]["message"], (body, refused.text)
    huge = httpx.post(f"{server.url}/v1/documents", headers={**ADMIN, "Content-Type": "application/json"},
                      content=json.dumps({"id": "big", "text": "Wort " * 1_200_000}))
    assert huge.status_code == 413 and "larger than 5120 KiB" in huge.json()["error"]["message"]
    assert len(open_index(server.index_dir).documents) == 2  # nothing was written


def test_a_server_without_an_admin_key_takes_no_writes(seeds, tmp_path):
    build_index([seeds], tmp_path / "idx", FakeEmbedder(max_tokens=256))
    service = AnswerService(tmp_path / "idx", FakeEmbedder(max_tokens=256), SlowGenerator("x", 0.0))
    live = LiveServer(create_app(service)).start()
    try:
        live.wait_ready()
        refused = httpx.post(f"{live.url}/v1/documents", json=ARTICLE)
        assert refused.status_code == 404 and "--admin-key" in refused.json()["error"]["message"]
    finally:
        live.stop()
