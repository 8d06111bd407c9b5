"""A news page's article: its main text and metadata, HTML in and `Document` out (no network).

trafilatura finds the main text: menus, cookie banners, teasers, related links, share bars,
comments and picture captions are left out, paragraphs kept. The text keeps the page's blocks:
paragraphs, headings and lists are separated by a blank line, a list's items by a line break,
as an article saved as `.txt` is. The metadata kept: canonical URL, title, site, author,
language, the publication date (htmldate's original date) and, where the page has a later one,
the modified date.

>>> page = "<html><head><title>T</title></head><body><article><p>" + "Ein Satz. " * 60 + "</p></article></body></html>"
>>> doc = read_page(page.encode(), "https://www.example.de/a.html?utm_source=x")
>>> doc.doc_id, doc.meta["url"], doc.text[:19]
('example.de/a', 'https://example.de/a.html', 'Ein Satz. Ein Satz.')
"""

from __future__ import annotations

import codecs
import json
import re
from datetime import date

from rag.fileio import sha256_bytes
from rag.sources.urls import canonical_url, document_id
from rag.text.documents import Document, decode_text

MIN_ARTICLE_CHARS = 400  # less is a teaser, a login or paywall page, or a section front
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# The blocks of trafilatura's output tree, and how their text is joined.
_BLOCKS = {"p", "head", "quote", "code", "list", "table"}


def decode_html(data: bytes, declared: str | None = None) -> tuple[str, str | None]:
    """The page's text and, when it was not plain UTF-8, how it was read. The charset comes from a
    byte order mark, the HTTP header (`declared`), or a `<meta>` in the first 4 KiB, as browsers take
    it (ISO-8859-1 read as Windows-1252); else UTF-8, else Windows-1252 (`text.documents.decode_text`).

    >>> decode_html('<meta charset="windows-1252"><p>Grüße</p>'.encode("cp1252"))
    ('<meta charset="windows-1252"><p>Grüße</p>', 'read as windows-1252 (declared in the page)')
    """
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return decode_text(data)
    found = _META_CHARSET.search(data[:4096])
    for charset, where in ((declared, "the HTTP header"), (found and found.group(1).decode("ascii"), "the page")):
        if not charset:
            continue
        name = _codec(charset)
        if name is None:
            continue
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        return text, None if name == "utf-8" else f"read as {charset.lower()} (declared in {where})"
    return decode_text(data)


def _codec(charset: str) -> str | None:
    try:
        name = codecs.lookup(charset.strip().lower()).name
    except LookupError:
        return None
    return "cp1252" if name in ("latin-1", "iso8859-1", "ascii") else name


def read_page(data: bytes, url: str | None = None, declared_charset: str | None = None, origin: str | None = None,
              min_chars: int = MIN_ARTICLE_CHARS) -> Document:
    """The article of the page `data` fetched from `url` (or read from the file `origin`); raises
    ValueError with the reason when the page holds no article."""
    import trafilatura

    html, note = decode_html(data, declared_charset)
    if not html.strip():
        raise ValueError("empty page")
    try:
        extracted = trafilatura.bare_extraction(
            html, url=url, with_metadata=True, include_comments=False, include_images=False, include_tables=True,
            favor_precision=True, date_extraction_params={"original_date": True, "extensive_search": True})
    except Exception as exc:  # noqa: BLE001 (lxml and trafilatura raise many kinds on broken pages)
        raise ValueError(f"no article could be read from the page ({type(exc).__name__})") from None
    text = article_text(extracted.body) if extracted is not None and extracted.body is not None else ""
    if not text:
        raise ValueError("no article text found on the page")
    if len(text) < min_chars:
        raise ValueError(f"not an article: {len(text)} characters of text, fewer than {min_chars} "
                         "(a teaser, a login or paywall page, or a section front)")
    address = canonical_url(extracted.url or url) if (extracted.url or url) else None
    published = _day(extracted.date)
    meta = {"url": address, "title": extracted.title, "site": extracted.sitename or extracted.hostname,
            "author": extracted.author, "language": extracted.language or _page_language(html),
            "published": published, "modified": _modified(html, published)}
    meta = {key: value for key, value in meta.items() if value}
    doc_id = document_id(address) if address else _file_id(origin)
    return article_document(doc_id, text, origin or address or "", meta, note)


def article_document(doc_id: str, text: str, path: str, meta: dict, note: str | None = None) -> Document:
    """A Document from an article's text and metadata; its sha256 covers both, so a changed title or
    date changes it as a changed text does."""
    identity = json.dumps({"text": text, "meta": meta}, sort_keys=True, ensure_ascii=False).encode()
    return Document(doc_id=doc_id, text=text, path=path, sha256=sha256_bytes(identity), date=meta.get("published"),
                    note=note, meta=meta)


def article_text(body) -> str:
    """The text of trafilatura's output tree: blocks apart by a blank line, list items by a line break."""
    blocks = []
    for element in body:
        if element.tag == "list":
            items = [_inline(item) for item in element.iter("item")]
            block = "\n".join(item for item in items if item)
        elif element.tag == "table":
            rows = [" | ".join(_inline(cell) for cell in row.iter("cell")) for row in element.iter("row")]
            block = "\n".join(row for row in rows if row.strip(" |"))
        else:
            block = _inline(element)
        if block:
            blocks.append(block)
    return "\n\n".join(blocks)


def _inline(element) -> str:
    return re.sub(r"[ \t\r\f\v\u00a0]+", " ", "".join(element.itertext())).strip()


def _day(value: str | None) -> str | None:
    """YYYY-MM-DD of a date htmldate found, if it is one."""
    try:
        return date.fromisoformat(value[:10]).isoformat() if value else None
    except ValueError:
        return None


def _modified(html: str, published: str | None) -> str | None:
    """The page's latest date (its dateModified and the like), when later than the publication."""
    from htmldate import find_date

    try:
        latest = _day(find_date(html, original_date=False, extensive_search=False))
    except Exception:  # noqa: BLE001 (htmldate on a broken page)
        return None
    return latest if latest and published and latest > published else None


def _page_language(html: str) -> str | None:
    found = re.search(r"<html[^>]*\blang\s*=\s*[\"']?([A-Za-z]{2})", html[:2000], re.I)
    return found.group(1).lower() if found else None


def _file_id(origin: str | None) -> str:
    from pathlib import Path

    return Path(origin).stem if origin else "page"
