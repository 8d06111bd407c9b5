"""Chunking: German-aware sentence splitting, then sentences packed into token-bounded chunks.

Sentences never break at abbreviations ("z. B.", "Nr.", "Dr.") or ordinals ("3. März",
"80. Jahrestag"); chunks are bounded by the embedder's own tokenizer and overlap by whole
sentences. Every chunk keeps `document.text[start:end] == chunk.text`.

>>> [s.text for s in split_sentences("Am 3. März kam z. B. Nr. 5 an. Dann ging er.")]
['Am 3. März kam z. B. Nr. 5 an.', 'Dann ging er.']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from rag.text.documents import Document

CHUNKER_VERSION = 1

# Lower-cased, without the final period. Single letters ("z", "B", "u", "a") are handled apart.
ABBREVIATIONS = frozenset(
    """abb abs abt allg bzgl bzw ca chr co dipl dr dt ebd engl etc evtl exkl fa ff frl geb gebr gegr
    ggf hl hr hrn hrsg inkl jh jr kap kfz kl lt max min mio mrd mr mrs ms nr nachf o.ä od orig
    pkt prof pt rd rel s sen sog spez st std str tel u.a usw v vgl vs wg zb zt zzgl
    jan feb febr mär apr jun jul aug sep sept okt nov dez""".split()
)
MONTHS = frozenset(
    "januar februar märz april mai juni juli august september oktober november dezember jänner".split()
)
# Words that start a new sentence after a small number ("Er wurde Nr. 1. Das war gut.").
SENTENCE_STARTERS = frozenset(
    "der die das den dem des ein eine er sie es wir ich ihr man dann doch aber und auch zudem so da "
    "dies diese dieser im in am an auf als nach seit mit bei the a an it he she they this".split()
)

# A candidate boundary: terminal punctuation, optional closing quotes/brackets, then space.
_BOUNDARY = re.compile(r"[.!?…]+[\"'»«“”‘’)\]]*(?=\s)")
_WORD_BEFORE = re.compile(r"([\w.]+)$")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    chunk_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ChunkerSettings:
    """Sizes in tokens of the embedder. 140 E5 tokens are about 400 characters of German news
    text: on XQuAD this found the right paragraph first more often than 200 (R@1 0.92 vs 0.90)
    and keeps each source in the answer prompt at ~120 model tokens."""

    max_tokens: int = 140
    overlap_tokens: int = 30

    def __post_init__(self):
        if self.max_tokens < 16:
            raise ValueError("max_tokens must be at least 16")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError("overlap_tokens must be >= 0 and less than half of max_tokens")

    def identity(self) -> dict:
        return {"version": CHUNKER_VERSION, "max_tokens": self.max_tokens, "overlap_tokens": self.overlap_tokens}


def _is_boundary(text: str, punct_start: int, punct: str, next_start: int) -> bool:
    if punct[0] != ".":
        return True
    word = _WORD_BEFORE.search(text, max(0, punct_start - 80), punct_start)  # a window: whole-text searches made long articles quadratic
    if not word:
        return True
    token = word.group(1)
    bare = token.strip(".").lower()
    following = text[next_start:next_start + 30]
    next_word = re.match(r"[\"'»«„“]?(\w+)", following)
    next_token = next_word.group(1) if next_word else ""
    if len(bare) == 1 and bare.isalpha():
        return False  # initials and "z. B.", "u. a.", "d. h."
    if bare in ABBREVIATIONS or "." in token.strip("."):
        return False
    if bare.isdigit():
        if next_token.lower() in MONTHS:
            return False  # "3. März"
        if len(bare) <= 3 and next_token.lower() not in SENTENCE_STARTERS:
            return False  # ordinal: "80. Jahrestag", "2. Bundesliga"; years (4 digits) end sentences
    if next_token[:1].islower():
        return False  # a sentence starts with a capital; lower case means we are mid-sentence
    return True


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Split text[start:end] into sentence spans; line breaks always end a sentence."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    for line in re.finditer(r"[^\n]+", text[start:end]):
        line_start = start + line.start()
        line_end = start + line.end()
        cursor = line_start
        for match in _BOUNDARY.finditer(text, line_start, line_end):
            next_start = match.end()
            while next_start < line_end and text[next_start].isspace():
                next_start += 1
            if next_start >= line_end:
                break
            if _is_boundary(text, match.start(), match.group(), next_start):
                spans.append(_trimmed(text, cursor, match.end()))
                cursor = next_start
        spans.append(_trimmed(text, cursor, line_end))
    return [s for s in spans if s.text]


def _trimmed(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end, text[start:end])


def chunk_document(doc: Document, count_tokens: Callable[[str], int], settings: ChunkerSettings) -> list[Chunk]:
    """Pack the document's sentences into chunks of at most settings.max_tokens tokens.

    Consecutive chunks share whole trailing sentences up to settings.overlap_tokens. A sentence
    longer than the budget is cut at word boundaries.
    """
    text = doc.text
    units: list[Span] = []
    for sentence in split_sentences(text):
        units.extend(_fit(text, sentence, count_tokens, settings.max_tokens))
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j = i + 1
        while j < len(units) and count_tokens(text[units[i].start:units[j].end]) <= settings.max_tokens:
            j += 1
        start, end = units[i].start, units[j - 1].end
        chunks.append(Chunk(doc.doc_id, f"{doc.doc_id}#{len(chunks)}", start, end, text[start:end]))
        if j >= len(units):
            break
        # Step back over whole sentences that fit in the overlap, but always move forward.
        k = j
        while k - 1 > i and count_tokens(text[units[k - 1].start:units[j - 1].end]) <= settings.overlap_tokens:
            k -= 1
        i = k
    return chunks


def _fit(text: str, span: Span, count_tokens: Callable[[str], int], max_tokens: int) -> list[Span]:
    """Cut a span that is over budget into word-bounded pieces that fit."""
    if count_tokens(span.text) <= max_tokens:
        return [span]
    words = list(re.finditer(r"\S+", text[span.start:span.end]))
    pieces: list[Span] = []
    first = 0
    while first < len(words):
        last = first + 1
        while last < len(words) and count_tokens(
                text[span.start + words[first].start():span.start + words[last].end()]) <= max_tokens:
            last += 1
        s, e = span.start + words[first].start(), span.start + words[last - 1].end()
        pieces.append(Span(s, e, text[s:e]))
        first = last
    return pieces
