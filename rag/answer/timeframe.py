"""What a question asks of time, and how the articles' dates shape its answer (docs/answering.md, "Time").

A question is read against a reference date, today unless a command is given another: the period
it names (or `--since/--until`) filters the search; a period that begins after the reference date
is a plan ("ab Januar 2026") and filters nothing, since nothing is published then yet. A question
about the state now ("derzeit", "latest") leaves out articles published after the reference date,
and its answer says as of when ("(Stand: 14. März 2025)").

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
from rag.text.periods import EARLIEST, Period, asks_for_current, find_period

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
    current: bool = False  # asks for the state now: nothing published later, the answer dated


def read_scope(question: str, today: date, since: date | None = None, until: date | None = None) -> TimeScope:
    """The question's time scope on `today`; `since`/`until` (both inclusive) replace a period it names."""
    TimeFrame(today, since, until)  # refuses since after until
    if since or until:
        period = Period(since or EARLIEST, until or date.max, "given")
        return TimeScope(today, period, True, False)
    named = find_period(question, today)
    # A plan ("ab Januar 2026") is reported before it happens, so its period filters nothing; nor
    # is it about now, though German asks it in the present ("Wer übernimmt ab Dezember 2025 …?").
    period = None if named is not None and named.start > today else named
    return TimeScope(today, period, False, named is None and asks_for_current(question))


# The words that tie a period to a question ("im", "in the"): they go with it.
_LEAD = r"(?:\b(?:im|in|am|an|vom|von|zum|seit|bis|in the|during|on|at|as of)\s+)?"


def without_period(question: str, period: Period | None) -> str:
    """The question's content without the period it names, for judging whether sentences answer
    it: the search already kept to the period, and a sentence rarely restates its article's month.

    >>> p = Period(date(2025, 8, 1), date(2025, 8, 31), "august 2025")
    >>> without_period("Wie viel kostete ein Liter Diesel im August 2025?", p)
    'Wie viel kostete ein Liter Diesel?'
    >>> without_period("What did diesel cost in the region in August 2025 there?", p)
    'What did diesel cost in the region there?'
    """
    if period is None or not period.text:
        return question
    found = re.search(_LEAD + re.escape(period.text).replace(r"\ ", r"\s+"), question, re.IGNORECASE)
    if not found:
        return question
    rest = (question[:found.start()].rstrip() + " " + question[found.end():].lstrip()).strip()
    return re.sub(r"\s+([?.!,])", r"\1", rest) or question


def known_by_then(retrieved: list[RetrievedChunk], dates: dict[str, str | None],
                  scope: TimeScope) -> list[RetrievedChunk]:
    """For the state now, the retrieved chunks without the articles published after the reference
    date (what was known then), in rank order.

    Not reordered by date: the prompt shows each source's date, and putting the newest first
    made the 1.5B reader answer worse (9 of the temporal set's 16 questions about now right, 12 in
    rank order; oldest first for "since when": 2 of 5 against 3, docs/answering.md "Time")."""
    if not scope.current:
        return retrieved
    today = scope.today.isoformat()
    return [r for r in retrieved if not (dates[r.chunk.doc_id] or "") > today]


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
