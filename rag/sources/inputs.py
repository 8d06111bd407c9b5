"""What `rag index` is given, in any mix, read into documents: folders and files of articles
(.txt/.md as `text.documents` reads them, saved pages .html/.htm, exports .jsonl/.csv), feeds
and sitemaps (a file or an address: each article they list is fetched), and article addresses.

Every input that cannot be used is skipped with its reason and the rest goes on. The same article
reached twice (by two addresses, or in a feed and as an address) is read once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rag.sources.exports import SUFFIXES as EXPORT_SUFFIXES
from rag.sources.exports import read_export
from rag.sources.feeds import Link, Listing, kind_of, read_listing
from rag.sources.fetch import FetchError, Fetcher
from rag.sources.pages import MIN_ARTICLE_CHARS, read_page
from rag.sources.urls import canonical_url, is_web_address
from rag.text.documents import MAX_FILE_MB, SUFFIXES as TEXT_SUFFIXES
from rag.text.documents import Document, LoadReport, iter_article_paths, read_document

PAGE_SUFFIXES = (".html", ".htm")
LISTING_SUFFIXES = (".xml", ".rss", ".atom", ".gz")  # read when named, not when found in a folder
FOLDER_SUFFIXES = TEXT_SUFFIXES + PAGE_SUFFIXES + EXPORT_SUFFIXES
MAX_SITEMAP_DEPTH = 3


class Collector:
    """Reads inputs into one LoadReport; `fetcher` is made on first need (no network otherwise)."""

    def __init__(self, fetcher_factory: Callable[[], Fetcher] | None = None, max_file_mb: float = MAX_FILE_MB,
                 min_chars: int = MIN_ARTICLE_CHARS, on_read: Callable[[str], None] | None = None):
        self.report = LoadReport()
        self.max_file_mb, self.min_chars = max_file_mb, min_chars
        self._fetcher_factory, self._fetcher = fetcher_factory or Fetcher, None
        self._sources: dict[str, str] = {}  # doc id -> where it was read
        self._pages_seen: set[str] = set()  # canonical addresses already fetched
        self.on_read = on_read

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = self._fetcher_factory()
        return self._fetcher

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()

    def read(self, inputs: list[str]) -> LoadReport:
        for item in inputs:
            if is_web_address(item):
                self.read_address(item)
            elif "://" in item:
                self.skip(item, "not an http(s) address")
            else:
                self.read_path(Path(item))
        return self.report

    # ---- files ---------------------------------------------------------------------------------

    def read_path(self, path: Path) -> None:
        if path.is_dir():
            for file in iter_article_paths([path], self.report.skipped, FOLDER_SUFFIXES):
                self.read_file(file)
        else:
            self.read_file(path)

    def read_file(self, path: Path) -> None:
        suffix = path.suffix.lower()
        try:
            if suffix in TEXT_SUFFIXES:
                self.add(read_document(path, self.max_file_mb), str(path))
            elif suffix in PAGE_SUFFIXES:
                self.add(read_page(self._bytes(path), None, origin=str(path), min_chars=self.min_chars), str(path))
            elif suffix in EXPORT_SUFFIXES:
                self._bytes(path)  # the size limit applies to the export as a whole
                for found, where in read_export(path, self.min_chars):
                    self.add(found, where) if isinstance(found, Document) else self.skip(where, found)
            elif suffix in LISTING_SUFFIXES:
                self.read_listing(read_listing(self._bytes(path)), str(path), depth=0)
            else:
                self.skip(str(path), "not an article, page, export, feed or sitemap "
                                     f"({', '.join(FOLDER_SUFFIXES + LISTING_SUFFIXES)})")
        except ValueError as exc:
            self.skip(str(path), str(exc))

    def _bytes(self, path: Path) -> bytes:
        try:
            size = path.stat().st_size
            if size > self.max_file_mb * 1e6:
                raise ValueError(f"{size / 1e6:.1f} MB, above the limit of {self.max_file_mb:g} MB "
                                 "(raise it with --max-file-mb)")
            return path.read_bytes()
        except FileNotFoundError:
            raise ValueError("no such file") from None
        except IsADirectoryError:
            raise ValueError("is a directory") from None
        except OSError as exc:
            raise ValueError(f"unreadable ({exc.strerror})") from None

    # ---- the web -------------------------------------------------------------------------------

    def read_address(self, url: str, trusted: bool = True, listed: Link | None = None, depth: int = 0) -> None:
        """A page, feed or sitemap at `url`: an article is read, a listing's links followed."""
        canonical = canonical_url(url)
        if canonical in self._pages_seen:
            return
        self._pages_seen.add(canonical)
        try:
            fetched = self.fetcher.get(url, trusted=trusted)
            kind = kind_of(fetched.body)
            if kind is not None and listed is None:
                listing = read_listing(fetched.body, fetched.final_url)
            else:
                document = read_page(fetched.body, fetched.final_url, fetched.charset, min_chars=self.min_chars)
        except (FetchError, ValueError) as exc:
            self.skip(url, str(exc).removeprefix(f"{url}: "))
            return
        if kind is not None and listed is None:
            self.read_listing(listing, url, depth)
            return
        if listed is not None:  # what the feed or sitemap says fills in what the page does not
            document = with_listing_metadata(document, listed)
        self.add(document, url)

    def read_listing(self, listing: Listing, where: str, depth: int) -> None:
        """Follow a feed's or sitemap's links (addresses found there are not trusted: see `fetch`)."""
        if listing.note:
            self.report.notes.append((where, listing.note))
        for link, reason in listing.skipped:
            self.skip(f"{where} ({link})", reason)
        itself = canonical_url(where) if is_web_address(where) else None
        for sitemap in listing.sitemaps:
            if canonical_url(sitemap) == itself:
                self.skip(sitemap, "the sitemap lists itself")
            elif depth >= MAX_SITEMAP_DEPTH:
                self.skip(sitemap, f"sitemaps nested more than {MAX_SITEMAP_DEPTH} deep")
            else:
                self.read_address(sitemap, trusted=False, depth=depth + 1)
        for link in listing.links:
            if canonical_url(link.url) == itself:
                self.skip(link.url, f"the {listing.kind} lists itself")
            else:
                self.read_address(link.url, trusted=False, listed=link, depth=depth + 1)

    # ---- results -------------------------------------------------------------------------------

    def add(self, document: Document, where: str) -> None:
        if document.doc_id in self._sources:
            self.skip(where, f"duplicate document id {document.doc_id!r} (also {self._sources[document.doc_id]})")
            return
        self._sources[document.doc_id] = where
        self.report.documents.append(document)
        if self.on_read:
            self.on_read(where)

    def skip(self, where: str, reason: str) -> None:
        self.report.skipped.append((where, reason))


def with_listing_metadata(document: Document, link: Link) -> Document:
    """The page's document with the title and date of its feed entry or sitemap line where the page
    itself gave none (a page's own metadata wins: it is the publisher's latest word)."""
    from rag.sources.pages import article_document

    meta = dict(document.meta)
    for key, value in (("title", link.title), ("published", link.published)):
        if value and not meta.get(key):
            meta[key] = value
    if meta == document.meta:
        return document
    return article_document(document.doc_id, document.text, document.path, meta, document.note)


def collect(inputs: list[str], **options) -> LoadReport:
    """Read `inputs` (paths and addresses) into documents; see `Collector` for the options."""
    collector = Collector(**options)
    try:
        return collector.read(inputs)
    finally:
        collector.close()

