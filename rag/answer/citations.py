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

from dataclasses import asdict, dataclass, replace
from typing import Callable

from rag.sources.fragments import source_link
from rag.text.chunking import Chunk, split_sentences
from rag.text.lexical import analyze
from rag.text.markers import cited_numbers, rewrite_markers

_QUOTES = {c: '"' for c in "„“”«»‟″"} | {c: "'" for c in "‚‘’‹›′`´"}
_DASHES = set("‐‑‒–—―−")


@dataclass(frozen=True)
class Citation:
    number: int  # the source number shown to the user
    doc_id: str
    chunk_id: str
    start: int  # document offsets of the quote
    end: int
    quote: str
    # The quote stands at start:end of the document and shares terms with the answer or, for an
    # answer in another language than its sources, is the cited chunk's sentence nearest to it in meaning.
    verified: bool
    date: str | None = None
    cited_as: int | None = None  # the number the model wrote, when the program moved the citation
    # The article's own metadata, where it came from the web or an export (docs/ingest.md).
    url: str | None = None
    title: str | None = None
    site: str | None = None
    published: str | None = None
    source_link: str | None = None  # url with a text fragment that highlights the quote on the publisher's page

    def to_dict(self) -> dict:
        return asdict(self)

    def with_source(self, document) -> "Citation":
        """This citation with its article's metadata and the link to the quote on the publisher's page."""
        meta = document.meta
        if not meta:
            return self
        url = meta.get("url")
        link = source_link(url, document.text, self.start, self.end) if url and self.verified else None
        return replace(self, url=url, title=meta.get("title"), site=meta.get("site"), published=meta.get("published"),
                       source_link=link)


def cited_days(citations: list[Citation]) -> list[str]:
    """The dates of the articles the verified citations quote (undated ones left out).

    >>> cite = lambda day, ok=True: Citation(1, "a", "a#0", 0, 1, "x", ok, day)
    >>> cited_days([cite("2025-03-14"), cite(None), cite("2025-10-02", ok=False)])
    ['2025-03-14']
    >>> max(cited_days([cite("2025-03-14"), cite("2025-10-02")]), default=None)
    '2025-10-02'
    """
    return [c.date for c in citations if c.verified and c.date]


@dataclass(frozen=True)
class CitationResult:
    text: str  # the answer, invented markers removed
    citations: list[Citation]
    invented: list[int]  # numbers the model cited but was never given


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


def best_quote(doc_text: str, chunk: Chunk, support: str, answer: str = "") -> tuple[int, int, float]:
    """The sentence of `chunk` that best supports the answer: (start, end, score).

    Score: shared terms with `support` (answer and question), plus 2 for each term of the answer
    itself, plus 2 for each shared number (decimals too: "5,5" is "5.5"); 0 means nothing in the
    chunk relates to the answer.
    A number counts however it is written: the answer "3" is in "drei Spielzüge", not only in "3:08".
    """
    wanted = _terms(support)
    answer_terms = _terms(answer)
    best = (chunk.start, chunk.end, 0.0)
    for sentence in split_sentences(doc_text, chunk.start, chunk.end):
        terms = _terms(sentence.text, split_compounds=True)
        shared = wanted & terms
        score = len(shared) + 2 * len(answer_terms & terms) + 2 * sum(t.replace(".", "", 1).isdigit() for t in shared)
        if score > best[2]:
            best = (sentence.start, sentence.end, score)
    return best


def _terms(text: str, split_compounds: bool = False) -> set[str]:
    """The text's lexical terms, and each number it states (in digits or words) as digits.

    >>> sorted(_terms("Drei Spielzüge"))
    ['3', 'drei', 'spielzug']
    """
    from rag.text.numbers import decimals_in, numbers_in  # here, as numbers imports this module

    return set(analyze(text, split_compounds=split_compounds)) | {str(n) for n in numbers_in(text) if n != 1} \
        | {str(d) for d in decimals_in(text)}


def resolve_citations(answer: str, sources: list[Chunk], documents: dict, question: str,
                      nearness: Callable[[list[str], str], list[float]] | None = None,
                      quote_by_meaning: bool = False) -> CitationResult:
    """Map the markers of `answer` onto `sources` (numbered from 1) and attach verified quotes.

    A small model often cites the wrong number. Each citation is checked: its quote is the
    sentence of the cited chunk that best supports the answer. If another source supports the
    answer strictly better, the citation moves there (the answer's marker is renumbered and the
    citation records the number the model wrote). An answer with no marker gets the
    best-supporting source, if any source shares a term with it (or, with `quote_by_meaning`,
    the source nearest in meaning). `nearness` (texts, text -> one score per text, e.g. a
    multilingual embedder's cosine) decides between sources that share as many terms with them:
    an English answer shares no words with the German sentence it comes from ("Spring" / "im
    Frühling"). When no cited chunk shares a term with the answer and question at all ("Brazil"
    / "Brasilien") and `quote_by_meaning` is set (for answers in another language than the
    sources), `nearness` picks each quote: the cited chunk's sentence nearest to them.
    """
    numbers = cited_numbers(answer)
    invented = [n for n in numbers if not 1 <= n <= len(sources)]
    valid = [n for n in numbers if n not in invented]
    answer_only = rewrite_markers(answer, {n: None for n in numbers})
    support = f"{answer_only} {question}"
    candidates = [best_quote(documents[c.doc_id].text, c, support, answer_only) for c in sources]
    scores = [score for _, _, score in candidates]
    if nearness and sources and len(set(scores)) < len(scores):
        rank = [(score, near) for score, near in zip(scores, nearness([c.text for c in sources], support))]
    else:
        rank = [(score, 0.0) for score in scores]
    best = max(range(len(sources)), key=lambda i: (rank[i], -i)) if sources else None
    mapping: dict[int, int | None] = {n: None for n in invented}
    citations: list[Citation] = []
    for number in valid:
        chosen = number
        if best is not None and rank[best] > rank[number - 1]:
            chosen = best + 1
        mapping[number] = chosen
        if all(c.number != chosen for c in citations):
            citations.append(_citation(chosen, sources, documents, candidates, cited_as=number))
    text = rewrite_markers(answer, mapping)
    by_meaning = quote_by_meaning and nearness is not None
    # Sharing no term, `best` is the source nearest in meaning (the tie-break above).
    if not valid and best is not None and (candidates[best][2] > 0 or by_meaning):
        citations.append(_citation(best + 1, sources, documents, candidates, cited_as=None))
        text = f"{text} [{best + 1}]"
    if by_meaning and citations and not any(c.verified for c in citations):
        citations = [_nearest_sentence(c, sources[c.number - 1], documents, support, nearness)
                     for c in citations]
    return CitationResult(text, [c.with_source(documents[c.doc_id]) for c in citations], invented)


def _citation(number: int, sources: list[Chunk], documents: dict, candidates: list, cited_as: int | None) -> Citation:
    chunk = sources[number - 1]
    doc = documents[chunk.doc_id]
    start, end, score = candidates[number - 1]
    verified = score > 0 and find_quote(doc.text, doc.text[start:end], chunk.start, chunk.end) == (start, end)
    return Citation(number, chunk.doc_id, chunk.chunk_id, start, end, doc.text[start:end], verified, doc.date,
                    None if cited_as == number else cited_as)


def _nearest_sentence(citation: Citation, chunk: Chunk, documents: dict, support: str,
                      nearness: Callable[[list[str], str], list[float]]) -> Citation:
    """The citation quoting the sentence of its chunk nearest in meaning to `support`."""
    doc = documents[chunk.doc_id]
    sentences = split_sentences(doc.text, chunk.start, chunk.end)
    if not sentences:
        return citation
    scores = nearness([s.text for s in sentences], support)
    nearest = sentences[max(range(len(sentences)), key=lambda i: (scores[i], -i))]
    verified = find_quote(doc.text, nearest.text, chunk.start, chunk.end) == (nearest.start, nearest.end)
    return replace(citation, start=nearest.start, end=nearest.end, quote=doc.text[nearest.start:nearest.end],
                   verified=verified)
