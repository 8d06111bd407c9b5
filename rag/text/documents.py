"""Documents: find article files, read them safely and strip page furniture.

A document's id is its file stem; its text is the cleaned article, and every chunk offset
and citation offset refers to that cleaned text.

>>> clean_article("date 2025-09-02 Erster Satz.\\nAd\\n  • Punkt eins.\\nMehr zum Thema:\\nTagA TagB")
('Erster Satz.\\nPunkt eins.', '2025-09-02')
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from rag.fileio import sha256_bytes

SUFFIXES = (".txt", ".md")
MAX_FILE_MB = 5.0  # news articles are kilobytes; a file of megabytes is a dump, and embedding it takes hours

_DATE_LINE = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\b[ \t]*\n?")
_BULLET = re.compile(r"^\s*[•●▪▸►‣◦·\-–*]\s+")
# A photo caption with its agency credit, e.g. "Putin im Gespräch mit Xi - SPUTNIK/AFP".
_PHOTO_CREDIT = re.compile(r"^(?P<caption>.+?) - (?P<credit>[A-Z][A-Za-z]+(?:/[A-Z][A-Za-z]+)*)$")
_TRAILERS = ("Mehr zum Thema:", "Mehr zum Thema", "Weitere Artikel:")


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    path: str
    sha256: str
    date: str | None = None  # of publication, YYYY-MM-DD
    note: str | None = field(default=None, compare=False)  # how the file was read, when not plain UTF-8
    # What a web page or an export says of the article: url, title, site, author, language,
    # published, modified (docs/ingest.md), and an export's other fields under "fields".
    meta: dict = field(default_factory=dict, hash=False)


@dataclass
class LoadReport:
    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, how it was read), beside the documents'


def clean_article(raw: str) -> tuple[str, str | None]:
    """Return (article text without page furniture, date from a leading `date` line)."""
    raw = raw.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    date = None
    match = _DATE_LINE.match(raw)
    if match:
        date = match.group(1)
        raw = raw[match.end():]
    kept: list[str] = []
    for line in raw.split("\n"):
        stripped = line.strip()
        if stripped in _TRAILERS:
            break  # the trailer and the run-together tag line after it are navigation
        if stripped == "Ad":
            continue
        credit = _PHOTO_CREDIT.match(stripped)
        if credit and len(credit.group("credit")) <= 20:
            if kept and kept[-1].strip() == credit.group("caption").strip():
                kept.pop()  # the caption printed twice: once alone, once with its credit
            continue
        kept.append(_BULLET.sub("", line).rstrip())
    text = "\n".join(kept)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text, date


def iter_article_paths(paths: list[Path], skipped: list[tuple[str, str]] | None = None,
                       suffixes: tuple[str, ...] = SUFFIXES) -> list[Path]:
    """Files to index under `paths`: folders are walked in sorted order for files with `suffixes`,
    hidden entries left out, links to folders not followed (so no loops); a file link that leads
    nowhere or in a circle goes to `skipped` with its reason."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                file = Path(folder) / name
                if name.startswith(".") or file.suffix.lower() not in suffixes:
                    continue
                if file.is_symlink() and not file.exists():
                    if skipped is not None:
                        skipped.append((str(file), _broken_link_reason(file)))
                    continue
                found.append(file)
    return found


def _broken_link_reason(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
    return "broken symbolic link"


def decode_text(data: bytes) -> tuple[str, str | None]:
    """The text of an article file and, when it was not plain UTF-8, a note on how it was read.

    UTF-8 (with or without BOM) and UTF-16 with a BOM are read as they are. Bytes that are not
    UTF-8 are read as Windows-1252, the usual encoding of German text saved on Windows, unless the
    file is UTF-8 with a few damaged bytes (then those are replaced). Raises ValueError otherwise.

    >>> decode_text("Grüße".encode("cp1252"))
    ('Grüße', 'read as Windows-1252')
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "read as UTF-16"
        except UnicodeDecodeError as exc:
            raise ValueError(f"damaged UTF-16 (bad bytes at offset {exc.start})") from None
    if b"\x00" in data[:8192]:
        raise ValueError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    damaged = data.decode("utf-8", errors="replace")
    bad = damaged.count("\ufffd")
    if any(ord(c) > 127 and c != "\ufffd" for c in damaged) and bad <= max(3, len(data) // 1000):
        return damaged, f"replaced {bad} invalid UTF-8 byte{'s' if bad != 1 else ''}"
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise ValueError(f"not text: neither UTF-8 (bad byte at offset {first_bad}) nor Windows-1252") from None
    if sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f") > len(text) // 100:
        raise ValueError("binary file (control characters)")
    return text, "read as Windows-1252"


def read_document(path: Path, max_file_mb: float = MAX_FILE_MB) -> Document:
    """Read one article; raise ValueError with the reason it cannot be used."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file")
        if info.st_size > max_file_mb * 1e6:
            raise ValueError(f"{info.st_size / 1e6:.1f} MB, above the limit of {max_file_mb:g} MB for one article "
                             "(raise it with --max-file-mb)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("symbolic link loop") from None
        raise ValueError(f"unreadable ({exc.strerror})") from None
    if not data.strip():
        raise ValueError("empty file")
    raw, note = decode_text(data)
    text, date = clean_article(raw)
    if not text:
        raise ValueError("no article text")
    return Document(doc_id=path.stem, text=text, path=str(path), sha256=sha256_bytes(data), date=date, note=note)


def load_documents(paths: list[Path], max_file_mb: float = MAX_FILE_MB) -> LoadReport:
    """Load every article under `paths`; bad files are skipped with their reason, not fatal."""
    report = LoadReport()
    seen: dict[str, str] = {}
    for path in iter_article_paths(paths, report.skipped):
        if path.suffix.lower() not in SUFFIXES:
            report.skipped.append((str(path), "not a .txt or .md file"))
            continue
        try:
            doc = read_document(path, max_file_mb)
        except ValueError as exc:
            report.skipped.append((str(path), str(exc)))
            continue
        if doc.doc_id in seen:
            report.skipped.append((str(path), f"duplicate document id {doc.doc_id!r} (also {seen[doc.doc_id]})"))
            continue
        seen[doc.doc_id] = str(path)
        report.documents.append(doc)
    return report
