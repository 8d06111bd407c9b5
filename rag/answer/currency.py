"""The state now (docs/answering.md, "Time"): an answer about it rests on the newest article that
answers, and not on a value announced for a later date.

Both are checks after the answer, as the quotes are: the prompt keeps the sources in rank order,
since putting the newest first made this reader answer worse (timeframe.known_by_then).

>>> brandt = [("Dr. Julia Brandt übernimmt die Leitung zum 1. Dezember 2025.", "2025-10-20")]
>>> announced_later("Wer leitet derzeit das Klinikum?", brandt, date(2025, 11, 30))
'2025-12-01'
>>> announced_later("Wer leitet derzeit das Klinikum?", brandt, date(2025, 12, 1))
>>> announced_later("Wann soll die Brücke fertig sein?", [("Sie wird 2028 fertig.", "2025-10-08")], date(2025, 11, 30))
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from rag.search.retrieval import RetrievedChunk
from rag.text.chunking import Chunk, split_sentences
from rag.text.periods import asks_when, dated_expressions


def announced_later(question: str, quotes: list[tuple[str, str | None]], today: date) -> str | None:
    """The first day after `today` that a quote (text, its article's YYYY-MM-DD date) names: the
    value it gives holds only from then ("übernimmt zum 1. Dezember"), not on `today`. None for a
    question asking when: a later day is its answer ("Wann soll die Brücke fertig sein?")."""
    if asks_when(question):
        return None
    later = [period.start for text, published in quotes if published
             for period in dated_expressions(text, date.fromisoformat(published)) if period.start > today]
    return min(later).isoformat() if later else None


def quoted_paragraphs(citations: list, documents: dict) -> list[tuple[str, str | None]]:
    """The paragraph around each verified citation's quote, with its article's date: the day a
    value holds from is often the next sentence's, not the quote's ("... die Gebühr von derzeit 180
    Euro auf 210 Euro anzuheben. Die neuen Gebühren gelten ab dem 1. Januar 2026.", temporal set).

    >>> from types import SimpleNamespace as Doc
    >>> text = "Gebühren steigen\\n\\nDie Gebühr steigt auf 210 Euro. Sie gilt ab 2026.\\n\\nAnderes."
    >>> cite = Doc(verified=True, doc_id="a", start=18, end=48, date="2025-07-15")
    >>> quoted_paragraphs([cite], {"a": Doc(text=text)})
    [('Die Gebühr steigt auf 210 Euro. Sie gilt ab 2026.', '2025-07-15')]
    """
    paragraphs = []
    for citation in citations:
        if citation.verified:
            text = documents[citation.doc_id].text
            start, end = text.rfind("\n\n", 0, citation.start), text.find("\n\n", citation.end)
            paragraphs.append((text[start + 2 if start >= 0 else 0:end if end >= 0 else len(text)], citation.date))
    return paragraphs


def without_later_dates(sources: list[Chunk], documents: dict, today: date) -> list[Chunk]:
    """The sources without their sentences that name a day after `today`: each run of sentences
    between them a source of its own, with its document offsets, so that a quote of it verifies."""
    kept: list[Chunk] = []
    for chunk in sources:
        document = documents[chunk.doc_id]
        published = date.fromisoformat(document.date) if document.date else today
        run: list = []
        for span in split_sentences(document.text, chunk.start, chunk.end) + [None]:
            if span is not None and not any(p.start > today for p in dated_expressions(span.text, published)):
                run.append(span)
                continue
            if run:
                start, end = run[0].start, run[-1].end
                kept.append(replace(chunk, start=start, end=end, text=document.text[start:end]))
            run = []
    return kept


def newer_articles(retrieved: list[RetrievedChunk], dates: dict[str, str | None],
                   as_of: str) -> list[list[RetrievedChunk]]:
    """The retrieved chunks of articles published after `as_of`, an article's together in rank
    order, the newest article first."""
    by_article: dict[str, list[RetrievedChunk]] = {}
    for found in retrieved:
        if (dates.get(found.chunk.doc_id) or "") > as_of:
            by_article.setdefault(found.chunk.doc_id, []).append(found)
    return sorted(by_article.values(), key=lambda chunks: dates[chunks[0].chunk.doc_id], reverse=True)
