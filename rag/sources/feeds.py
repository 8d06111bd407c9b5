"""RSS and Atom feeds, and sitemaps (news sitemaps too): the article addresses they list, with the
dates and titles they give (bytes in, links out; no network).

Feeds are read by feedparser; sitemaps by lxml with entities and network access off. A feed
that feedparser finds malformed (`bozo`) is refused when it yields no entry, and read with a
note when it still does.

>>> feed = b'''<rss version="2.0"><channel><title>T</title><item><title>A</title>
... <link>https://www.example.de/a-1.html</link><pubDate>Tue, 02 Sep 2025 10:00:00 +0200</pubDate></item>
... </channel></rss>'''
>>> read_listing(feed, "https://example.de/feed.xml").links
[Link(url='https://www.example.de/a-1.html', title='A', published='2025-09-02', modified=None)]
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urljoin

from rag.sources.exports import parse_day
from rag.sources.urls import is_web_address

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
MAX_LINKS = 50_000  # a sitemap's own limit


@dataclass(frozen=True)
class Link:
    url: str
    title: str | None = None
    published: str | None = None
    modified: str | None = None  # a sitemap's lastmod


@dataclass
class Listing:
    """What a feed or sitemap lists: article links, and (a sitemap index) further sitemaps."""

    kind: str  # "feed", "sitemap" or "sitemap index"
    links: list[Link] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (link, reason)
    note: str | None = None


def kind_of(data: bytes) -> str | None:
    """"feed", "sitemap" or None (a page, or anything else), from the document's root element.

    >>> kind_of(b'<?xml version="1.0"?><urlset xmlns="x"/>'), kind_of(b"<feed>"), kind_of(b"<html>")
    ('sitemap', 'feed', None)
    """
    head = _inflate(data)[:2048].lstrip().lower()
    for marker, kind in ((b"<urlset", "sitemap"), (b"<sitemapindex", "sitemap"), (b"<rss", "feed"),
                         (b"<feed", "feed"), (b"<rdf:rdf", "feed")):
        if marker in head and (b"<html" not in head or head.index(marker) < head.index(b"<html")):
            return kind
    return None


def read_listing(data: bytes, base_url: str | None = None) -> Listing:
    """The links of a feed or sitemap; ValueError when it is neither or cannot be read."""
    data = _inflate(data)
    kind = kind_of(data)
    if kind == "feed":
        return _read_feed(data, base_url)
    if kind == "sitemap":
        return _read_sitemap(data, base_url)
    raise ValueError("neither a feed (RSS, Atom) nor a sitemap")


def _inflate(data: bytes, limit: int = 50_000_000) -> bytes:
    """A gzipped sitemap's XML (`sitemap.xml.gz`), inflated to at most `limit` bytes."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as packed:
        inflated = packed.read(limit + 1)
    if len(inflated) > limit:
        raise ValueError(f"inflates to more than {limit // 1_000_000} MB")
    return inflated


def _read_feed(data: bytes, base_url: str | None) -> Listing:
    import feedparser

    headers = {"content-type": "application/xml", **({"content-location": base_url} if base_url else {})}
    parsed = feedparser.parse(data, response_headers=headers)
    listing = Listing("feed")
    benign = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    if parsed.bozo and not isinstance(getattr(parsed, "bozo_exception", None), benign):
        problem = str(getattr(parsed, "bozo_exception", "")).splitlines()[0][:120] or "malformed"
        if not parsed.entries:
            raise ValueError(f"malformed feed ({problem})")
        listing.note = f"malformed feed read as far as it goes ({problem})"
    for entry in parsed.entries[:MAX_LINKS]:
        link = entry.get("link") or (entry.get("id") if is_web_address(entry.get("id") or "") else None)
        if not link:
            listing.skipped.append((entry.get("title") or "an entry", "the entry has no link"))
            continue
        listing.links.append(Link(urljoin(base_url or "", link.strip()), (entry.get("title") or "").strip() or None,
                                  _feed_day(entry, "published") or _feed_day(entry, "updated")))
    return listing


def _feed_day(entry, key: str) -> str | None:
    """The entry's day as the publisher wrote it (its own time zone), else as feedparser read it (UTC)."""
    written = parse_day(entry.get(key) or "")
    parsed = entry.get(f"{key}_parsed")
    return written or (date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday).isoformat() if parsed else None)


def _read_sitemap(data: bytes, base_url: str | None) -> Listing:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"malformed sitemap ({exc})") from None
    ns = {"s": SITEMAP_NS, "n": NEWS_NS}
    if etree.QName(root).localname == "sitemapindex":
        listing = Listing("sitemap index")
        for loc in root.findall("s:sitemap/s:loc", ns)[:MAX_LINKS]:
            address = urljoin(base_url or "", (loc.text or "").strip())
            if address and address not in listing.sitemaps:
                listing.sitemaps.append(address)
        return listing
    listing = Listing("sitemap")
    for entry in root.findall("s:url", ns)[:MAX_LINKS]:
        address = urljoin(base_url or "", (entry.findtext("s:loc", "", ns) or "").strip())
        if not address:
            continue
        listing.links.append(Link(address, (entry.findtext("n:news/n:title", "", ns) or "").strip() or None,
                                  parse_day(entry.findtext("n:news/n:publication_date", "", ns) or ""),
                                  parse_day(entry.findtext("s:lastmod", "", ns) or "")))
    return listing
