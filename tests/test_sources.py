"""News as it comes: pages, feeds, sitemaps and exports read into the index (rag/sources), against
a real HTTP server on a loopback port (tests/newssite.py). Fake embedders: ingestion is the subject."""

import csv
import gzip
import json
import re
import time
from datetime import datetime
from email.utils import format_datetime

import pytest
from conftest import SEEDS
from fakes import FakeEmbedder
from newssite import FURNITURE, LOGIN_TEASER, SECTION_FRONT, Article, NewsSite, article_page, atom, news_sitemap, \
    paragraphs_of, rss
from typer.testing import CliRunner

from rag.app import pipeline
from rag.app.cli import app
from rag.sources.exports import read_export
from rag.sources.fetch import FetchError, Fetcher
from rag.sources.pages import read_page
from rag.sources.urls import document_id
from rag.store.sqlite import open_index
from rag.text.documents import clean_article

SEED_FILES = sorted(SEEDS.glob("*.txt"))


def seed_articles() -> list[Article]:
    """The seed articles as a site publishes them: the text rag indexes from the .txt as paragraphs."""
    articles = []
    for n, path in enumerate(SEED_FILES):
        text, day = clean_article(path.read_text(encoding="utf-8"))
        # A page says when it was published where the .txt does (its date line), and only then.
        articles.append(Article(f"/politik/seed-{n}.html", f"Putin und Xi: Bericht {n + 1}", paragraphs_of(text),
                                day and f"{day}T10:15:00+02:00", day and f"{day}T18:40:00+02:00"))
    return articles


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))


def rag(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# ---- pages, ids and exports (no network) -------------------------------------------------------------

@pytest.mark.parametrize("article", seed_articles(), ids=["agreements", "visit"])
def test_a_page_gives_the_article_text_without_furniture_and_its_metadata(article):
    page = article_page(article, "https://www.tagesblick.de").encode()
    doc = read_page(page, "https://www.tagesblick.de" + article.path + "?utm_source=rss")
    assert doc.text == "\n\n".join(article.paragraphs)  # every paragraph, and the lists' lines, as the .txt has them
    assert [f for f in FURNITURE if f in doc.text] == []
    assert doc.doc_id == "tagesblick.de" + article.path.removesuffix(".html")
    assert doc.meta["url"] == "https://tagesblick.de" + article.path and doc.meta["title"] == article.title
    assert (doc.meta["site"], doc.meta["author"], doc.meta["language"]) == ("Tagesblick", "Anna Beispiel", "de")
    assert doc.date == doc.meta.get("published") == (article.published and article.published[:10])
    assert "modified" not in doc.meta  # modified the same day: no later date
    if article.published:
        later = Article(**{**article.__dict__, "modified": "2025-10-01T09:00:00+02:00"})
        assert read_page(article_page(later, "https://tagesblick.de").encode()).meta["modified"] == "2025-10-01"


def test_one_article_reached_by_several_addresses_has_one_id():
    same = ["https://www.tagesblick.de/politik/putin-xi-101.html", "https://tagesblick.de/politik/putin-xi-101.html/",
            "https://m.tagesblick.de/politik/putin-xi-101.html?utm_source=twitter&utm_medium=social",
            "https://amp.tagesblick.de/politik/putin-xi-101.html", "http://www.tagesblick.de/politik/putin-xi-101.html",
            "https://www.tagesblick.de/politik/putin-xi-101.html#kommentare",
            "https://www.tagesblick.de/politik/putin-xi-101.html/amp?fbclid=abc"]
    assert {document_id(url) for url in same} == {"tagesblick.de/politik/putin-xi-101"}
    assert document_id("https://tagesblick.de/artikel?id=1") != document_id("https://tagesblick.de/artikel?id=2")


def test_exports_in_jsonl_and_csv_keep_their_fields_and_skip_bad_records_with_reasons(tmp_path):
    text = (SEEDS / SEED_FILES[0].name).read_text(encoding="utf-8").split("\n", 1)[1]
    records = [{"url": "https://www.tagesblick.de/politik/a-1.html", "headline": "Abkommen", "date": "2025-09-02",
                "text": text, "ressort": "Politik", "words": 321},
               {"link": "https://www.tagesblick.de/politik/a-2.html", "title": "Seite", "published_at":
                "2025-09-03T08:00:00+02:00", "html": article_page(seed_articles()[1], "https://www.tagesblick.de")},
               {"title": "kein Text"}, {"url": "ftp://tagesblick.de/a", "text": "x"}, {"text": "ok", "date": "bald"}]
    export = tmp_path / "scraped.jsonl"
    export.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n{not json\n")
    read = list(read_export(export))
    docs = [d for d, _ in read if not isinstance(d, str)]
    reasons = {where.rsplit(":", 1)[1]: d for d, where in read if isinstance(d, str)}
    assert [d.doc_id for d in docs] == ["tagesblick.de/politik/a-1", "tagesblick.de/politik/a-2"]
    assert docs[0].meta == {"url": "https://tagesblick.de/politik/a-1.html", "title": "Abkommen",
                            "published": "2025-09-02", "fields": {"ressort": "Politik", "words": 321}}
    assert docs[1].meta["published"] == "2025-09-03" and docs[1].meta["title"] == "Seite"
    assert "Kremlchef Putin" not in docs[1].text and "Videotelefonat" in docs[1].text
    assert "no text or html field" in reasons["3"] and "not an http(s) address" in reasons["4"]
    assert "is not a date" in reasons["5"] and reasons["6"].startswith("not JSON")
    csv_file = tmp_path / "scraped.csv"
    with csv_file.open("w", encoding="utf-8", newline="") as out:  # quotes and line breaks inside a cell
        csv.writer(out).writerows([["url", "title", "date", "text", "ressort"],
                                   ["https://www.tagesblick.de/politik/a-1.html", "Abkommen", "02.09.2025", text,
                                    "Politik"]])
    [(doc, _)] = list(read_export(csv_file))
    assert doc.text == docs[0].text and doc.meta == docs[0].meta | {"fields": {"ressort": "Politik"}}


# ---- over HTTP: a feed, a sitemap, pages -------------------------------------------------------------

@pytest.fixture
def site():
    with NewsSite() as running:
        items = []
        for article in seed_articles():
            running.page(article)
            items.append((article.path, article.title, article.published))
        running.routes["/feed.rss"] = (200, {"Content-Type": "application/rss+xml"}, rss(
            [(p, t, d and format_datetime(datetime.fromisoformat(d))) for p, t, d in items]
            + [("/intern/geheim.html", "Intern", "Tue, 02 Sep 2025 11:00:00 +0200")], running.base).encode())
        running.routes["/news-sitemap.xml"] = (200, {"Content-Type": "application/xml"},
                                               news_sitemap(items, running.base).encode())
        running.routes["/atom.xml"] = (200, {"Content-Type": "application/atom+xml"}, atom(items, running.base).encode())
        running.routes["/intern/geheim.html"] = (200, {"Content-Type": "text/html"}, b"<p>intern</p>")
        yield running


def test_rag_index_reads_a_feed_fetching_each_article_and_keeps_their_metadata(fakes, site, tmp_path):
    indexed = rag("index", f"{site.base}/feed.rss", "--index", tmp_path / "idx", "--allow-private-hosts",
                  "--delay", "0", "--contact", "ops@example.de")
    assert indexed.exit_code == 0, indexed.output
    assert "indexed 2 documents" in indexed.stdout
    assert f"skipped {site.base}/intern/geheim.html?utm_source=rss&utm_medium=feed: disallowed by {site.base}/robots.txt" \
        in indexed.stderr
    assert site.requests_for("/intern/geheim.html") == []  # robots.txt is asked first, and obeyed
    agents = {entry[3]["User-Agent"] for entry in site.log}
    assert agents == {"rag/0.1.0 (+offline news question answering; ops@example.de)"}
    rows = [json.loads(line) for line in rag("documents", "--index", tmp_path / "idx", "--json").stdout.splitlines()]
    host = site.base.removeprefix("http://").replace(":", "-")
    assert [r["doc_id"] for r in rows] == [f"{host}/politik/seed-0", f"{host}/politik/seed-1"]
    first = rows[0]
    assert first["url"] == f"{site.base}/politik/seed-0.html"  # the page's canonical address, no tracking
    assert {key: first.get(key) for key in ("title", "site", "author", "published", "date", "language")} == {
        "title": "Putin und Xi: Bericht 1", "site": "Tagesblick", "author": "Anna Beispiel", "published": "2025-09-02",
        "date": "2025-09-02", "language": "de"}
    assert rows[1]["date"] is None and "published" not in rows[1]  # neither the page nor the feed says: undated
    index = open_index(tmp_path / "idx")
    assert index.documents[first["doc_id"]].text == "\n\n".join(seed_articles()[0].paragraphs)
    again = rag("index", f"{site.base}/news-sitemap.xml", "--index", tmp_path / "idx", "--allow-private-hosts",
                "--delay", "0")
    assert again.exit_code == 0 and "is up to date" in again.stdout, again.output  # the same articles, one id each
    atom_feed = rag("index", f"{site.base}/atom.xml", "--index", tmp_path / "idx", "--allow-private-hosts", "--delay", "0")
    assert atom_feed.exit_code == 0 and "is up to date" in atom_feed.stdout, atom_feed.output  # relative links too


def test_links_in_a_feed_to_private_addresses_are_refused_without_the_flag(fakes, site, tmp_path):
    refused = rag("index", f"{site.base}/feed.rss", "--index", tmp_path / "idx", "--delay", "0")
    assert refused.exit_code == 2 and "no article to index" in refused.stderr
    assert "127.0.0.1 is a private or local address" in refused.output
    assert all(entry[2] in ("/robots.txt", "/feed.rss") for entry in site.log)  # no article was fetched


def test_an_address_given_by_the_user_is_read_and_an_article_counts_once(fakes, site, tmp_path):
    page = f"{site.base}/politik/seed-1.html"
    done = rag("index", page, page + "?utm_campaign=x", f"{site.base}/feed.rss", "--index", tmp_path / "idx",
               "--delay", "0", "--allow-private-hosts")
    assert done.exit_code == 0, done.output
    assert "indexed 2 documents" in done.stdout and len(site.requests_for("/politik/seed-1.html")) == 1


# ---- the fetcher's manners ------------------------------------------------------------------------------

def test_the_fetcher_keeps_its_delay_per_host_obeys_crawl_delay_and_asks_conditionally(site):
    fetcher = Fetcher(delay=0.3, allow_private=True)
    for path in ("/politik/seed-0.html", "/politik/seed-1.html", "/feed.rss"):
        fetcher.get(site.base + path)
    sent = [entry[0] for entry in site.log]  # robots.txt first, then the three
    assert len(sent) == 4 and all(later - earlier >= 0.3 for earlier, later in zip(sent, sent[1:]))
    first = fetcher.get(site.base + "/politik/seed-0.html")
    again = fetcher.get(site.base + "/politik/seed-0.html", etag=first.etag, last_modified=first.last_modified)
    assert again.not_modified and again.body == b"" and first.body
    assert site.log[-1][3]["If-None-Match"] == first.etag
    with NewsSite(robots="User-agent: *\nCrawl-delay: 1\n") as slow:
        slow.page(seed_articles()[0])
        polite = Fetcher(delay=0, allow_private=True)
        polite.get(slow.base + "/politik/seed-0.html")
        polite.get(slow.base + "/politik/seed-0.html")
        times = [entry[0] for entry in slow.log]
        assert times[2] - times[1] >= 1.0 and times[1] - times[0] >= 1.0


def test_retry_after_is_honoured_and_410_says_gone(site):
    answers = iter([(429, {"Retry-After": "1"}, b"slow down"), (200, {"Content-Type": "text/plain"}, b"ok")])
    site.routes["/busy"] = lambda handler: next(answers)
    site.routes["/gone.rss"] = (410, {}, b"")
    fetcher = Fetcher(delay=0, allow_private=True)
    assert fetcher.get(site.base + "/busy").body == b"ok"
    tries = [entry[0] for entry in site.requests_for("/busy")]
    assert len(tries) == 2 and tries[1] - tries[0] >= 1.0
    with pytest.raises(FetchError) as gone:
        fetcher.get(site.base + "/gone.rss")
    assert gone.value.gone


def bad_inputs(site: NewsSite, folder) -> dict[str, str]:
    """Each bad input of issue #54 as the site serves it (or a file), with the reason rag must give."""
    site.routes["/politik/"] = (200, {"Content-Type": "text/html; charset=utf-8"}, SECTION_FRONT.encode())
    site.routes["/plus/exklusiv.html"] = (200, {"Content-Type": "text/html; charset=utf-8"}, LOGIN_TEASER.encode())
    site.routes["/loop/a"] = (302, {"Location": "/loop/b"}, b"")
    site.routes["/loop/b"] = (302, {"Location": "/loop/a"}, b"")
    site.routes["/huge.html"] = (200, {"Content-Type": "text/html"}, (b"<p>" + b"x" * 1_000_000 + b"</p>"
                                                                      for _ in range(50)))
    bomb = gzip.compress(b"<p>" + b"A" * 60_000_000 + b"</p>", 9)
    site.routes["/bomb.html"] = (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb)
    site.routes["/malformed.rss"] = (200, {"Content-Type": "application/rss+xml"}, b"<rss><channel><title>x &amp; </ch")
    site.routes["/self-sitemap.xml"] = (200, {"Content-Type": "application/xml"}, (
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>'
        f"{site.base}/self-sitemap.xml</loc></sitemap></sitemapindex>").encode())
    agreements, visit = seed_articles()
    broken = article_page(Article(**{**agreements.__dict__, "path": "/politik/kaputt.html"}), site.base)
    (folder / "broken.html").write_text(broken.replace("</p>", "").replace("</div>", "")[:-40], encoding="utf-8")
    latin = article_page(Article(**{**visit.__dict__, "path": "/politik/latin.html"}), site.base).replace(
        '<meta charset="utf-8">', '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">')
    (folder / "latin.html").write_bytes(latin.encode("cp1252"))
    return {f"{site.base}/politik/": "not an article", f"{site.base}/plus/exklusiv.html": "not an article",
            f"{site.base}/loop/a": "a redirect loop", f"{site.base}/huge.html": "more than 10 MB",
            f"{site.base}/bomb.html": "more than 10 MB once decompressed", f"{site.base}/malformed.rss": "malformed feed",
            f"{site.base}/self-sitemap.xml": "the sitemap lists itself", "ftp://tagesblick.de/a.html":
            "not an http(s) address", f"{site.base}/gone.rss": "HTTP 410"}


def test_bad_inputs_are_skipped_with_their_reason_and_the_rest_is_indexed(fakes, site, tmp_path):
    folder = tmp_path / "pages"
    folder.mkdir()
    site.routes["/gone.rss"] = (410, {}, b"")
    expected = bad_inputs(site, folder)
    started = time.monotonic()
    done = rag("index", folder, *expected, f"{site.base}/politik/seed-0.html", "--index", tmp_path / "idx",
               "--delay", "0", "--allow-private-hosts")
    assert done.exit_code == 0, done.output
    assert time.monotonic() - started < 120
    for where, reason in expected.items():
        line = next((line for line in done.stderr.splitlines() if line.startswith(f"skipped {where}")), None)
        assert line is not None and reason in line, (where, reason, done.stderr)
    index = open_index(tmp_path / "idx")
    ids = {name: document_id(f"{site.base}/politik/{name}.html") for name in ("kaputt", "latin", "seed-0")}
    assert sorted(index.documents) == sorted(ids.values())  # saved pages are known by their canonical address
    latin = index.documents[ids["latin"]]
    assert latin.text == "\n\n".join(seed_articles()[1].paragraphs)  # umlauts and «» read right
    assert "latin.html: read as windows-1252 (declared in the page)" in done.stderr
    assert index.documents[ids["kaputt"]].text.startswith(seed_articles()[0].paragraphs[0])


# ---- the metadata everywhere, and the link back to the publisher's sentence ------------------------------

@pytest.fixture
def web_index(site, tmp_path, monkeypatch):
    """The seeds as the site publishes them, indexed from its feed, with fake models that cite [1]."""
    from fakes import FakeGenerator

    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    monkeypatch.setattr(pipeline, "make_generator", lambda path=None, progress=None, server=None:
                        FakeGenerator("Mehr als 20 Kooperationsabkommen [1]."))
    done = rag("index", f"{site.base}/feed.rss", "--index", tmp_path / "idx", "--allow-private-hosts", "--delay", "0")
    assert done.exit_code == 0, done.output
    return tmp_path / "idx"


def test_citations_carry_the_article_and_a_link_to_the_quote_in_every_interface(site, web_index):
    import httpx
    from conftest import LiveServer
    from fakes import FakeGenerator

    from rag.app.http.server import create_app
    from rag.app.service import AnswerService

    question = "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?"
    answer = json.loads(rag("ask", question, "--index", web_index, "--json").stdout)
    [citation] = answer["citations"]
    doc_id = document_id(f"{site.base}/politik/seed-0.html")
    assert citation["doc_id"] == doc_id and citation["verified"]
    assert (citation["url"], citation["title"], citation["site"], citation["published"]) == (
        f"{site.base}/politik/seed-0.html", "Putin und Xi: Bericht 1", "Tagesblick", "2025-09-02")
    assert citation["source_link"].startswith(f"{site.base}/politik/seed-0.html#:~:text=")
    printed = rag("ask", question, "--index", web_index).stdout
    assert re.search(r"\[\d\] Putin und Xi: Bericht 1 · Tagesblick · 2025-09-02 \(chars \d+-\d+\)", printed), printed
    assert citation["source_link"] in printed
    live = LiveServer(create_app(AnswerService(web_index, FakeEmbedder(max_tokens=256),
                                               FakeGenerator("Mehr als 20 Kooperationsabkommen [1].")))).start()
    try:
        live.wait_ready()
        served = httpx.get(f"{live.url}/v1/documents/{doc_id}").json()  # an id with slashes
        assert (served["url"], served["title"], served["site"], served["published"]) == (
            citation["url"], citation["title"], citation["site"], citation["published"])
        assert served["text"][citation["start"]:citation["end"]] == citation["quote"]
        found = httpx.post(f"{live.url}/v1/search", json={"query": "Kooperationsabkommen Landwirtschaft"}).json()
        hit = next(r for r in found["results"] if r["doc_id"] == doc_id)
        assert {k: hit[k] for k in ("url", "title", "site", "published")} == {
            "url": citation["url"], "title": citation["title"], "site": "Tagesblick", "published": "2025-09-02"}
        undated = next(r for r in found["results"] if r["doc_id"] != doc_id)
        assert "published" not in undated and undated["site"] == "Tagesblick"
        over_http = httpx.post(f"{live.url}/v1/ask", json={"question": question}).json()["citations"][0]
        assert over_http == citation
        completion = httpx.post(f"{live.url}/v1/chat/completions",
                                json={"messages": [{"role": "user", "content": question}]}).json()
        [annotation] = completion["choices"][0]["message"]["annotations"]
        assert annotation["url_citation"]["url"] == citation["source_link"]
        assert annotation["url_citation"]["title"].startswith("Putin und Xi: Bericht 1")
    finally:
        live.stop()


def test_following_a_source_link_in_chromium_brings_the_quoted_sentence_into_view(site):
    """The browser's own text-fragment matching, on the publisher's page (a loopback copy): the
    quote's paragraph scrolls into view; where its first words stand earlier in the article, the
    link names its own occurrence, not the first."""
    import httpx
    from browser import launched_browser

    from rag.sources.fragments import source_link

    agreements = seed_articles()[0]
    repeated = Article("/politik/wiederholt.html", "Zweimal gesagt", [
        "Putin sagte: Die Beziehungen sind gut. " + "Ein Satz über etwas anderes. " * 12]
        + ["Ein Absatz dazwischen, der lang ist. " * 10] * 6
        + ["Xi sagte: Die Beziehungen sind gut. Das war am Dienstag."], "2025-09-03T08:00:00+02:00")
    site.page(repeated)
    with launched_browser() as browser:
        page = browser.new_page(viewport={"width": 800, "height": 500})
        for article, find, form in ((agreements, 'Xi bezeichnete Putin als "alten Freund".', "the quote"),
                                    (agreements, "China gilt als Russlands wichtigster Rückhalt", "start,end"),
                                    (repeated, "Die Beziehungen sind gut.", "prefix-,quote")):
            doc = read_page(httpx.get(site.base + article.path).content, site.base + article.path)
            start = doc.text.rindex(find)
            end = doc.text.index(".", start + len(find) - 1) + 1 if not find.endswith(".") else start + len(find)
            link = source_link(doc.meta["url"], doc.text, start, end)
            directive = link.split("#:~:text=")[1]
            assert {"the quote": "," not in directive, "start,end": directive.count(",") == 1 and "-," not in directive,
                    "prefix-,quote": directive.startswith("Xi%20sagte:-,")}[form], link
            page.goto(site.base + article.path)  # without the fragment: the quote is below the fold
            assert not in_view(page, find)
            page.goto(link)
            page.wait_for_function("() => window.scrollY > 0", timeout=10_000)
            assert in_view(page, find), link


def in_view(page, text: str) -> bool:
    """Whether the last paragraph holding `text` is inside the viewport."""
    return page.evaluate("""(text) => {
        const holders = [...document.querySelectorAll('p')].filter(p => p.textContent.includes(text));
        const box = holders[holders.length - 1].getBoundingClientRect();
        return box.bottom > 0 && box.top < window.innerHeight; }""", text)


def test_an_index_of_the_previous_format_is_refused_by_readers_and_converted_by_a_writer(fakes, tmp_path):
    """Format 2 (no article metadata): a reader says how to convert it, in one line; `rag index`
    converts it in place, keeping its articles and vectors (nothing embedded again)."""
    import sqlite3

    from rag.store.sqlite import DATABASE, FORMAT_VERSION

    assert rag("index", SEEDS, "--index", tmp_path / "idx").exit_code == 0
    database = sqlite3.connect(tmp_path / "idx" / DATABASE)
    database.execute("ALTER TABLE documents DROP COLUMN meta")
    database.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    database.commit()
    database.close()
    refused = rag("ask", "Wie viele Abkommen?", "--index", tmp_path / "idx")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "has format version 2, this rag reads version 3; `rag index` or `rag remove` on it converts it" \
        in refused.stderr
    converted = rag("index", SEEDS, "--index", tmp_path / "idx")
    assert converted.exit_code == 0 and "is up to date" in converted.stdout, converted.output
    index = open_index(tmp_path / "idx")
    assert index.manifest.format_version == FORMAT_VERSION and len(index.documents) == 2
    assert all(doc.meta == {} for doc in index.documents.values())


def test_the_seeds_as_web_pages_index_to_the_chunks_of_the_seed_files(fakes, site, tmp_path):
    """The seeds served as news pages and indexed through their feed hold every sentence of the
    seeds and none of the furniture, in the very chunks (text and offsets) the .txt files give:
    so retrieval, prompts and answers are the same (docs/ingest.md has the 60-question run)."""
    assert rag("index", SEEDS, "--index", tmp_path / "files").exit_code == 0
    assert rag("index", f"{site.base}/feed.rss", "--index", tmp_path / "web", "--allow-private-hosts",
               "--delay", "0").exit_code == 0
    files, web = open_index(tmp_path / "files"), open_index(tmp_path / "web")
    for path, article in zip(SEED_FILES, seed_articles()):
        page_id = document_id(site.base + article.path)
        assert web.documents[page_id].text == files.documents[path.stem].text
        assert [f for f in FURNITURE if f in web.documents[page_id].text] == []
        assert [(c.chunk_id.split("#")[1], c.start, c.end, c.text) for c in web.chunks_of(page_id)] == \
            [(c.chunk_id.split("#")[1], c.start, c.end, c.text) for c in files.chunks_of(path.stem)]
        assert web.documents[page_id].date == files.documents[path.stem].date  # dates enter the prompt


def test_the_same_report_on_two_sites_is_two_documents_but_one_search_result(fakes, tmp_path):
    from rag.search.retrieval import RetrievalSettings, Retriever
    from rag.text.duplicates import near_duplicates

    report = (SEEDS / SEED_FILES[0].name).read_text(encoding="utf-8").split("\n", 1)[1]
    records = [{"url": "https://www.tagesblick.de/politik/putin-xi.html", "title": "Putin und Xi", "text": report},
               {"url": "https://www.morgenpost.example/welt/putin-xi-treffen.html", "title": "Treffen in Peking",
                "text": report.replace("Peking", "Peking (dpa)", 1)}]
    export = tmp_path / "agency.jsonl"
    export.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")
    assert rag("index", export, "--index", tmp_path / "idx").exit_code == 0
    index = open_index(tmp_path / "idx")
    assert len(index.documents) == 2
    found = Retriever(index, FakeEmbedder(max_tokens=256), RetrievalSettings(k=5)).search(
        "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?").chunks
    passages = len(index.chunks_of("tagesblick.de/politik/putin-xi"))
    assert 1 < passages < 5 and len(found) == passages  # each passage once, though 2 x passages chunks match
    texts = [r.chunk.text for r in found]
    assert not any(near_duplicates(a, b) for n, a in enumerate(texts) for b in texts[n + 1:])


def test_the_page_shows_a_web_article_with_its_title_site_date_and_opens_the_quote_at_the_source(site, tmp_path):
    """In Chromium: an answer citing a page from the web; its chip names the title, the reader pane
    shows title, site and date with a link to the original, and "Open at the source" leads to the
    publisher's page (the loopback site) with the quoted sentence in view."""
    import subprocess
    import sys

    from browser import HERE, OpenPage, launched_browser, serious_violations, served_fake_rag

    index_dir = tmp_path / "idx"
    done = subprocess.run([sys.executable, str(HERE / "fake_rag.py"), "index", f"{site.base}/feed.rss", "--index",
                           str(index_dir), "--delay", "0", "--allow-private-hosts"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    with served_fake_rag(index_dir, tmp_path / "serve.log", FAKE_REPLY="Mehr als 20 Kooperationsabkommen [1].",
                         FAKE_DELAY=0) as server, launched_browser() as browser:
        opened = OpenPage(browser, server, viewport={"width": 1280, "height": 800})
        page = opened.page
        page.goto(server + "/")
        page.get_by_label("Question").fill("Wie viele Kooperationsabkommen unterzeichneten beide Seiten?")
        page.get_by_label("Question").press("Enter")
        chip = page.locator(".chip").first
        chip.wait_for(timeout=60_000)
        assert "Putin und Xi: Bericht 1 · Tagesblick · 2025-09-02" in chip.inner_text()
        chip.click()
        page.locator("#reader-text mark").first.wait_for()
        assert page.inner_text("#reader-title") == "Putin und Xi: Bericht 1"
        assert page.inner_text("#reader-meta").startswith("Tagesblick · 2025-09-02 · ")
        assert page.get_attribute("#reader-original", "href") == f"{site.base}/politik/seed-0.html"
        source = page.locator("#reader-source")
        assert source.is_visible() and source.inner_text() in ("Open at the source", "An der Quelle öffnen")
        link = source.get_attribute("href")
        answer = httpx_answer(server)
        assert link == answer["citations"][0]["source_link"]
        assert serious_violations(page) == []
        assert opened.foreign_requests() == [] and not opened.errors  # nothing fetched from the site by the page
        opened.close()
        publisher = browser.new_page(viewport={"width": 800, "height": 500})
        publisher.goto(link)
        publisher.wait_for_function("() => window.scrollY > 0", timeout=10_000)
        quote = answer["citations"][0]["quote"]
        assert in_view(publisher, quote[:60])


def httpx_answer(server: str) -> dict:
    import httpx

    return httpx.post(f"{server}/v1/ask", json={"question": "Wie viele Kooperationsabkommen unterzeichneten beide "
                                                            "Seiten?"}, timeout=60).json()
