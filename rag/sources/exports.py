"""Scrapers' exports: JSON lines or CSV, one article a record (no network).

A record needs `text` (the article's plain text) or `html` (its page, read as `pages.read_page`
reads one); `url`, `title` and `date` are kept when present. Each field is found under any of
the names in FIELDS, the first that has a value; every other field is kept as it is under
`meta["fields"]`. The document id comes from the URL (`urls.document_id`), else from an `id`
field, else from the file and the record's line.

>>> import tempfile, pathlib
>>> export = pathlib.Path(tempfile.mkdtemp()) / "news.jsonl"
>>> _ = export.write_text('{"link": "https://www.example.de/a-1.html", "headline": "A", "pubDate": '
...                       '"Tue, 02 Sep 2025 10:00:00 +0200", "content": "Ein Satz.", "ressort": "Politik"}\\n')
>>> [(d.doc_id, d.date, d.meta["title"], d.meta["fields"]) for d, _ in read_export(export)]
[('example.de/a-1', '2025-09-02', 'A', {'ressort': 'Politik'})]
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Iterator

from rag.sources.pages import MIN_ARTICLE_CHARS, article_document, read_page
from rag.sources.urls import canonical_url, document_id, is_web_address
from rag.text.documents import clean_article, decode_text

SUFFIXES = (".jsonl", ".ndjson", ".csv")
# Accepted names of each field, in the order they are looked for (docs/ingest.md lists them).
FIELDS = {
    "url": ("url", "link", "href", "canonical_url", "source_url", "article_url"),
    "title": ("title", "headline", "name"),
    "date": ("date", "published", "published_at", "publication_date", "pubDate", "datePublished", "date_published",
             "pub_date", "time"),
    "text": ("text", "content", "body", "article", "maintext", "article_text", "description"),
    "html": ("html", "raw_html", "content_html", "page"),
    "id": ("id", "doc_id", "guid"),
}
csv.field_size_limit(50_000_000)  # an article's page in one cell


def read_export(path: Path, min_chars: int = MIN_ARTICLE_CHARS) -> Iterator[tuple[object, str]]:
    """(Document, where) for each usable record, or (reason, where) for each that is not, `where`
    naming the file and line; raises ValueError when the file as a whole cannot be read."""
    text, _ = decode_text(path.read_bytes())
    if path.suffix.lower() == ".csv":
        rows = ((n + 2, row) for n, row in enumerate(csv.DictReader(io.StringIO(text, newline=""))))
    else:
        rows = _json_lines(text)
    for line, record in rows:
        where = f"{path}:{line}"
        if isinstance(record, str):
            yield record, where
            continue
        try:
            yield record_document(record, f"{path.stem}-{line}", str(path), min_chars), where
        except ValueError as exc:
            yield str(exc), where


def _json_lines(text: str) -> Iterator[tuple[int, dict | str]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            yield line, f"not JSON ({exc.msg} at column {exc.colno})"
            continue
        yield line, record if isinstance(record, dict) else "not a JSON object"


def record_document(record: dict, fallback_id: str, origin: str, min_chars: int = MIN_ARTICLE_CHARS):
    """The article of one record (see the module's docstring); ValueError says why there is none."""
    found, rest = {}, dict(record)
    for name, aliases in FIELDS.items():
        for alias in aliases:
            value = rest.get(alias)
            if value not in (None, "") and name not in found:
                found[name] = rest.pop(alias)
    url = str(found.get("url", "")).strip()
    if url and not is_web_address(url):
        raise ValueError(f"the url {url[:80]!r} is not an http(s) address")
    if found.get("html"):
        page = read_page(str(found["html"]).encode("utf-8"), url or None, "utf-8", origin, min_chars)
        text, meta = page.text, dict(page.meta)
    elif found.get("text"):
        text, _ = clean_article(str(found["text"]))
        meta = {}
    else:
        raise ValueError("no text or html field (" + ", ".join(FIELDS["text"] + FIELDS["html"]) + ")")
    if not text:
        raise ValueError("the article text is empty")
    if url:
        meta["url"] = canonical_url(url)
    if found.get("title"):
        meta["title"] = str(found["title"]).strip()
    if found.get("date"):
        meta["published"] = parse_day(str(found["date"]))
        if meta["published"] is None:
            raise ValueError(f"the date {str(found['date'])[:40]!r} is not a date")
    if rest:
        meta["fields"] = rest
    meta = {key: value for key, value in meta.items() if value}
    doc_id = document_id(meta["url"]) if meta.get("url") else clean_id(found.get("id")) or fallback_id
    return article_document(doc_id, text, origin, meta)


def clean_id(value) -> str | None:
    """A record's own id as a document id: letters, digits and `._~-` kept, the rest one `-`.

    >>> clean_id("Politik/Meldung 7"), clean_id("")
    ('Politik-Meldung-7', None)
    """
    return re.sub(r"[^A-Za-z0-9._~-]+", "-", str(value)).strip("-")[:120] or None if value not in (None, "") else None


def parse_day(text: str) -> str | None:
    """YYYY-MM-DD of a date as exports write them: ISO 8601, RFC 2822 (feeds), German `2.9.2025`.

    >>> parse_day("2025-09-02T10:00:00Z"), parse_day("Tue, 02 Sep 2025 10:00:00 +0200"), parse_day("2.9.2025")
    ('2025-09-02', '2025-09-02', '2025-09-02')
    >>> parse_day("gestern") is None
    True
    """
    text = text.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    german = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", text)
    if german:
        try:
            return date(int(german[3]), int(german[2]), int(german[1])).isoformat()
        except ValueError:
            return None
    return None
