"""What a question asks of time, and how the articles' dates shape its answer (docs/answering.md, "Time").

A question is read against a reference date, today unless a command is given another: the period
it names (or `--since/--until`) filters the search; a period that begins after the reference date
is a plan ("ab Januar 2026") and filters nothing, since nothing is published then yet. A question
about the state now ("derzeit", "latest") puts the newest dated sources first and leaves out
articles published after the reference date; "seit wann" puts the oldest first.

>>> scope = read_scope("Wie hoch war die Arbeitslosenquote im Juli?", date(2025, 11, 30))
>>> scope.period.start, scope.period.end, scope.current
(datetime.date(2025, 7, 1), datetime.date(2025, 7, 31), False)
>>> day_text("2025-03-14", "de"), span_text(scope.period, "en")
('14. März 2025', 'July 2025')
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from rag.search.retrieval import RetrievedChunk
from rag.text.periods import EARLIEST, Period, asks_for_current, asks_for_first, find_period

MONTH_NAMES = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"],
}
NO_ARTICLE = {
    "en": "No article from {span} answers this.",
    "de": "Kein Artikel aus dem Zeitraum {span} beantwortet das.",
}
NEAREST = {"en": " The nearest is from {day}.", "de": " Der nächste ist vom {day}."}
AS_OF = {"en": "(as of {day})", "de": "(Stand: {day})"}


@dataclass(frozen=True)
class TimeFrame:
    """A command's time settings: the reference date (None: the day of each question) and the
    period to search (None: the one each question names)."""

    today: date | None = None
    since: date | None = None
    until: date | None = None

    def __post_init__(self):
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")


@dataclass(frozen=True)
class TimeScope:
    today: date  # the reference date
    period: Period | None = None  # only articles published in it are candidates
    given: bool = False  # the period came from since/until, not from the question's words
    current: bool = False  # asks for the state now: the newest evidence wins
    first: bool = False  # asks since when: the earliest evidence wins


def read_scope(question: str, today: date, since: date | None = None, until: date | None = None) -> TimeScope:
    """The question's time scope on `today`; `since`/`until` (both inclusive) replace a period it names."""
    TimeFrame(today, since, until)  # refuses since after until
    first = asks_for_first(question)
    if since or until:
        period = Period(since or EARLIEST, until or date.max, "given")
        return TimeScope(today, period, True, False, first)
    period = find_period(question, today)
    if period is not None and period.start > today:
        period = None  # a plan: reported before it happens, so its period filters nothing
    return TimeScope(today, period, False, period is None and asks_for_current(question), first)


def in_time_order(retrieved: list[RetrievedChunk], dates: dict[str, str | None],
                  scope: TimeScope) -> list[RetrievedChunk]:
    """The retrieved chunks in the order the question's scope wants: for the state now, articles
    published after the reference date left out and the dated chunks newest first; for "since
    when", oldest first. Undated chunks keep their places: nothing says where they belong."""
    if not (scope.current or scope.first):
        return retrieved
    today = scope.today.isoformat()
    if scope.current:
        retrieved = [r for r in retrieved if not (dates[r.chunk.doc_id] or "") > today]
    slots = [i for i, r in enumerate(retrieved) if dates[r.chunk.doc_id]]
    dated = sorted((retrieved[i] for i in slots), key=lambda r: dates[r.chunk.doc_id], reverse=scope.current)
    ordered = list(retrieved)
    for slot, chunk in zip(slots, dated):  # sorted() is stable: same-day chunks keep their rank order
        ordered[slot] = chunk
    return ordered


def day_text(day: str, language: str) -> str:
    """A YYYY-MM-DD date as a reader writes it: "14. März 2025", "14 March 2025"."""
    parsed = date.fromisoformat(day)
    month = MONTH_NAMES[language if language in MONTH_NAMES else "en"][parsed.month - 1]
    return f"{parsed.day}. {month} {parsed.year}" if language == "de" else f"{parsed.day} {month} {parsed.year}"


def span_text(period: Period, language: str) -> str:
    """A period in words: "2025", "July 2025", "3. Juni 2024", "since 1 May 2025", "1 May 2025 to 3 June 2025"."""
    start, end = period.start, period.end
    if start == EARLIEST:
        return ("bis " if language == "de" else "until ") + day_text(end.isoformat(), language)
    if end == date.max:
        return ("seit " if language == "de" else "since ") + day_text(start.isoformat(), language)
    if (start.month, start.day, end.month, end.day) == (1, 1, 12, 31) and start.year == end.year:
        return str(start.year)
    if start.day == 1 and (start.year, start.month) == (end.year, end.month) \
            and end.day == calendar.monthrange(end.year, end.month)[1]:
        return f"{MONTH_NAMES[language if language in MONTH_NAMES else 'en'][start.month - 1]} {start.year}"
    if start == end:
        return day_text(start.isoformat(), language)
    return day_text(start.isoformat(), language) + (" bis " if language == "de" else " to ") + \
        day_text(end.isoformat(), language)


def no_match_text(period: Period, nearest: str | None, language: str) -> str:
    """The answer when nothing published in the period answers: it says so, and names the nearest
    dated evidence found outside it, if any."""
    language = language if language in NO_ARTICLE else "en"
    text = NO_ARTICLE[language].format(span=span_text(period, language))
    return text + (NEAREST[language].format(day=day_text(nearest, language)) if nearest else "")


def nearest_day(days: list[str], period: Period) -> str | None:
    """Of these YYYY-MM-DD dates (all outside the period), the nearest to it."""
    def distance(day: str) -> int:
        parsed = date.fromisoformat(day)
        return (period.start - parsed).days if parsed < period.start else (parsed - period.end).days
    return min(days, key=lambda day: (distance(day), day), default=None)


def with_as_of(answer: str, as_of: str | None, language: str) -> str:
    """An answer about the state now with the date it holds as of, before its source markers.

    >>> with_as_of("2,4 Prozent. [1]", "2025-03-14", "de")
    '2,4 Prozent (Stand: 14. März 2025) [1]'
    """
    if not as_of:
        return answer
    text, markers = re.fullmatch(r"(.*?)((?:\s*\[\d+\])*)\s*", answer, re.S).groups()
    language = language if language in AS_OF else "en"
    return f"{text.rstrip().rstrip('.').rstrip()} {AS_OF[language].format(day=day_text(as_of, language))}{markers}"
