"""Documents: find article files, read them safely and strip page furniture.

A document's id is its file stem; its text is the cleaned article, and every chunk offset
and citation offset refers to that cleaned text.

>>> clean_article("date 2025-09-02 Erster Satz.\\nAd\\n  • Punkt eins.\\nMehr zum Thema:\\nTagA TagB")
('Erster Satz.\\nPunkt eins.', '2025-09-02')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .fileio import sha256_bytes

SUFFIXES = (".txt", ".md")

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
    date: str | None = None


@dataclass
class LoadReport:
    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


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


def iter_article_paths(paths: list[Path]) -> list[Path]:
    """Files to index under `paths` (folders are walked, sorted for a stable order)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in SUFFIXES
                         and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            found.append(path)
    return found


def read_document(path: Path) -> Document:
    """Read one article; raise ValueError with the reason it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except IsADirectoryError:
        raise ValueError("is a directory") from None
    except OSError as exc:
        raise ValueError(f"unreadable ({exc.strerror})") from None
    if b"\x00" in data[:8192]:
        raise ValueError("binary file (contains NUL bytes)")
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (bad byte at offset {exc.start})") from None
    text, date = clean_article(raw)
    if not text:
        raise ValueError("no article text")
    return Document(doc_id=path.stem, text=text, path=str(path), sha256=sha256_bytes(data), date=date)


def load_documents(paths: list[Path]) -> LoadReport:
    """Load every article under `paths`; bad files are skipped with their reason, not fatal."""
    report = LoadReport()
    seen: dict[str, str] = {}
    for path in iter_article_paths(paths):
        if path.suffix.lower() not in SUFFIXES:
            report.skipped.append((str(path), "not a .txt or .md file"))
            continue
        try:
            doc = read_document(path)
        except ValueError as exc:
            report.skipped.append((str(path), str(exc)))
            continue
        if doc.doc_id in seen:
            report.skipped.append((str(path), f"duplicate document id {doc.doc_id!r} (also {seen[doc.doc_id]})"))
            continue
        seen[doc.doc_id] = str(path)
        report.documents.append(doc)
    return report
