"""Citations: map the model's [n] markers to chunks and back every one with a verified quote.

The model cites sources by number. A number it was never given is dropped and reported. For
each real citation the program finds the sentence of the cited chunk that best supports the
answer and checks that this quote stands at its offsets in the document; `find_quote` checks a
quote tolerantly (case, white space, typographic quotes, dashes, line-break hyphens), nothing
looser.

>>> find_quote("Er sagte: „Wir  kommen.“", '"wir kommen."')
(10, 24)
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .chunking import Chunk, split_sentences
from .lexical import analyze

MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_QUOTES = {c: '"' for c in "„“”«»‟″"} | {c: "'" for c in "‚‘’‹›′`´"}
_DASHES = set("‐‑‒–—―−")


@dataclass(frozen=True)
class Citation:
    number: int  # the source number the model used
    doc_id: str
    chunk_id: str
    start: int  # document offsets of the quote
    end: int
    quote: str
    verified: bool
    date: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CitationResult:
    text: str  # the answer, invented markers removed
    citations: list[Citation]
    invented: list[int]  # numbers the model cited but was never given


def cited_numbers(text: str) -> list[int]:
    """Source numbers in order of first appearance: "a [2] b [1, 2]" -> [2, 1]."""
    seen: list[int] = []
    for match in MARKER.finditer(text):
        for number in re.split(r"\s*[,;]\s*", match.group(1)):
            if int(number) not in seen:
                seen.append(int(number))
    return seen


def remove_markers(text: str, numbers: set[int]) -> str:
    """Drop the given numbers from the markers of `text` (a marker left empty disappears)."""
    def keep(match: re.Match) -> str:
        kept = [n for n in re.split(r"\s*[,;]\s*", match.group(1)) if int(n) not in numbers]
        return f"[{', '.join(kept)}]" if kept else ""

    return re.sub(r"[ \t]+([.,;:!?])", r"\1", MARKER.sub(keep, text)).strip()


def normalize_with_map(text: str) -> tuple[str, list[int]]:
    """Text folded for quote matching, and for each folded char the index it came from."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch == "\u00ad":
            continue
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                where.append(i)
            continue
        ch = _QUOTES.get(ch, "-" if ch in _DASHES else ch.lower())
        # A line-break hyphen: "Zusammen- arbeit" reads as "Zusammenarbeit".
        if ch.islower() and len(out) >= 3 and out[-1] == " " and out[-2] == "-" and out[-3].isalpha() \
                and text[where[-1]] == "\n":
            del out[-2:], where[-2:]
        out.append(ch)
        where.append(i)
    return "".join(out), where


def find_quote(text: str, quote: str, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """Offsets of `quote` in text[start:end], matched after folding; None when it is not there."""
    end = len(text) if end is None else end
    haystack, where = normalize_with_map(text[start:end])
    needle, _ = normalize_with_map(quote.strip())
    needle = needle.strip()
    if not needle:
        return None
    at = haystack.find(needle)
    if at < 0:
        return None
    return start + where[at], start + where[at + len(needle) - 1] + 1


def best_quote(doc_text: str, chunk: Chunk, support: str) -> tuple[int, int, float]:
    """The sentence of `chunk` sharing most terms with `support` (answer and question): start, end, score."""
    wanted = set(analyze(support))
    best = (chunk.start, chunk.end, 0.0)
    for sentence in split_sentences(doc_text, chunk.start, chunk.end):
        terms = set(analyze(sentence.text, split_compounds=True))
        score = len(wanted & terms) + sum(0.5 for t in wanted & terms if t.isdigit())
        if score > best[2]:
            best = (sentence.start, sentence.end, score)
    return best


def resolve_citations(answer: str, sources: list[Chunk], documents: dict, question: str) -> CitationResult:
    """Map the markers of `answer` onto `sources` (numbered from 1) and attach verified quotes."""
    numbers = cited_numbers(answer)
    invented = [n for n in numbers if not 1 <= n <= len(sources)]
    citations = []
    support = f"{remove_markers(answer, set(numbers))} {question}"
    for number in numbers:
        if number in invented:
            continue
        chunk = sources[number - 1]
        doc = documents[chunk.doc_id]
        start, end, score = best_quote(doc.text, chunk, support)
        quote = doc.text[start:end]
        verified = score > 0 and find_quote(doc.text, quote, chunk.start, chunk.end) == (start, end)
        citations.append(Citation(number, chunk.doc_id, chunk.chunk_id, start, end, quote, verified, doc.date))
    return CitationResult(remove_markers(answer, set(invented)), citations, invented)
