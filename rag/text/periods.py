"""Time in a question, German or English, as a range of days: what "im September 2025", "letzte
Woche", "vor drei Wochen", "KW 40", "seit 2024" or "bis Ende August" ask about, read against a
reference date (today, or the one a command is given). Rules of our own: dateparser reads about
two thirds of these forms and gives a point, not a range (docs/answering.md has both measured).

>>> today = date(2025, 10, 15)
>>> find_period("Wie hoch war die Inflation im September 2025?", today)
Period(start=datetime.date(2025, 9, 1), end=datetime.date(2025, 9, 30), text='september 2025')
>>> find_period("What did the minister say last week?", today)
Period(start=datetime.date(2025, 10, 6), end=datetime.date(2025, 10, 12), text='last week')
>>> find_period("Wer führt derzeit die Partei?", today) is None, asks_for_current("Wer führt derzeit die Partei?")
(True, True)
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

from rag.text.language import detect_language
from rag.text.tense import in_present_tense

EARLIEST = date(1900, 1, 1)  # "bis August": everything up to then

MONTHS = {
    "januar": 1, "jänner": 1, "january": 1, "jan": 1, "februar": 2, "february": 2, "feb": 2, "märz": 3, "maerz": 3,
    "march": 3, "mär": 3, "mar": 3, "april": 4, "apr": 4, "mai": 5, "may": 5, "juni": 6, "june": 6, "jun": 6,
    "juli": 7, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9, "oktober": 10,
    "october": 10, "okt": 10, "oct": 10, "november": 11, "nov": 11, "dezember": 12, "december": 12, "dez": 12,
    "dec": 12,
}
NUMBERS = {"ein": 1, "eine": 1, "einem": 1, "einen": 1, "einer": 1, "a": 1, "an": 1, "one": 1, "zwei": 2, "two": 2,
           "drei": 3, "three": 3, "vier": 4, "four": 4, "fünf": 5, "five": 5, "sechs": 6, "six": 6, "sieben": 7,
           "seven": 7, "acht": 8, "eight": 8, "neun": 9, "nine": 9, "zehn": 10, "ten": 10, "elf": 11, "eleven": 11,
           "zwölf": 12, "twelve": 12}
ORDINALS = {"ersten": 1, "erste": 1, "first": 1, "1.": 1, "zweiten": 2, "zweite": 2, "second": 2, "2.": 2,
            "dritten": 3, "dritte": 3, "third": 3, "3.": 3, "vierten": 4, "vierte": 4, "fourth": 4, "4.": 4}
UNITS = {"tag": "day", "tagen": "day", "tage": "day", "day": "day", "days": "day", "woche": "week", "wochen": "week",
         "week": "week", "weeks": "week", "monat": "month", "monaten": "month", "monate": "month", "month": "month",
         "months": "month", "jahr": "year", "jahren": "year", "jahre": "year", "year": "year", "years": "year"}
# Words that ask for the state now (the newest evidence wins), and for the first evidence.
CURRENT = re.compile(r"\b(aktuell\w*|derzeit\w*|zurzeit|inzwischen|neueste\w*|zuletzt|noch|mittlerweile|jetzt|"
                     r"latest|current\w*|now|still|presently|at present)\b", re.I)
EARLIEST_ASKED = re.compile(r"\b(seit wann|since when|when did .{1,60}\bfirst|erstmals|zum ersten mal|"
                            r"for the first time)\b", re.I)
# A question whose answer is a time: "wann", "bis wann", "in welchem Jahr", "when", "what year", "by what date".
WHEN_ASKED = re.compile(r"\b(wann|when|(?:welche[mnrs]?|what|which) (?:jahr|year|monat|month|tag|day|datum|date))\b",
                        re.I)

_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_YEAR = r"(?:19|20)\d\d"
_NUMBER = r"\d{1,3}|" + "|".join(sorted(NUMBERS, key=len, reverse=True))
_ORDINAL = "|".join(re.escape(o) for o in sorted(ORDINALS, key=len, reverse=True))
_UNIT = "|".join(sorted(UNITS, key=len, reverse=True))


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    text: str  # the words it was read from (lower case)

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


def month_span(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def week_span(day: date) -> tuple[date, date]:
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def shift_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def ago(today: date, count: int, unit: str) -> date:
    if unit == "day":
        return today - timedelta(days=count)
    if unit == "week":
        return today - timedelta(weeks=count)
    return shift_months(today, -count * (12 if unit == "year" else 1))


def unit_span(day: date, unit: str) -> tuple[date, date]:
    """The calendar day, week (Monday to Sunday), month or year holding `day`."""
    if unit == "day":
        return day, day
    if unit == "week":
        return week_span(day)
    if unit == "month":
        return month_span(day.year, day.month)
    return date(day.year, 1, 1), date(day.year, 12, 31)


def number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBERS[word]


def latest_year(month: int, day: int, today: date) -> int:
    """The year of a month (and day) named without one: this year's, unless that is still to come."""
    return today.year if (month, day) <= (today.month, today.day) else today.year - 1


# ---- points: a day, a month, a part of a month, a week, a quarter, a year ------------------------

@dataclass(frozen=True)
class Point:
    """A span read at one place of the text; `span(year)` rebuilds it in another year (for a range
    whose other end names the year: "zwischen Mai und Juli 2024")."""
    start: date
    end: date
    length: int  # characters read
    has_year: bool
    span: Callable[[int], tuple[date, date]]


def _day(year: int, month: int, day: int) -> tuple[date, date]:
    return date(year, month, day), date(year, month, day)


def _part_of_year(word: str, year: int) -> tuple[date, date]:
    """Anfang 2025: its first quarter; Mitte: April to September; Ende: its last quarter."""
    if word in ("anfang", "early", "beginning of", "start of", "the beginning of", "the start of"):
        return date(year, 1, 1), date(year, 3, 31)
    if word in ("mitte", "mid", "mid-", "the middle of", "middle of"):
        return date(year, 4, 1), date(year, 9, 30)
    return date(year, 10, 1), date(year, 12, 31)


def _part_of_month(word: str, year: int, month: int) -> tuple[date, date]:
    first, last = month_span(year, month)
    if word in ("anfang", "early", "beginning of", "start of", "the beginning of", "the start of"):
        return first, date(year, month, 10)
    if word in ("mitte", "mid", "mid-", "the middle of", "middle of"):
        return date(year, month, 11), date(year, month, 20)
    return date(year, month, 21), last


def _quarter(q: int, year: int) -> tuple[date, date]:
    return date(year, 3 * q - 2, 1), month_span(year, 3 * q)[1]


def _half(h: int, year: int) -> tuple[date, date]:
    return (date(year, 1, 1), date(year, 6, 30)) if h == 1 else (date(year, 7, 1), date(year, 12, 31))


def _iso_week(week: int, year: int) -> tuple[date, date]:
    monday = date.fromisocalendar(year, week, 1)
    return monday, monday + timedelta(days=6)


_PART = r"(anfang|mitte|ende|early|mid-|mid|late|(?:the )?(?:beginning|start|middle|end) of)"
POINT_RULES: list[tuple[re.Pattern, Callable]] = [
    (re.compile(r"(\d{4})-(\d\d)-(\d\d)\b"), lambda m, t: (lambda y: _day(y, int(m[2]), int(m[3])), int(m[1]), True)),
    (re.compile(rf"(\d{{1,2}})\.(\d{{1,2}})\.({_YEAR})\b"),
     lambda m, t: (lambda y: _day(y, int(m[2]), int(m[1])), int(m[3]), True)),
    (re.compile(rf"(?:dem |den )?(\d{{1,2}})\. ?({_MONTH})\.?(?: ({_YEAR}))?\b"),
     lambda m, t: (lambda y: _day(y, MONTHS[m[2]], int(m[1])),
                   int(m[3]) if m[3] else latest_year(MONTHS[m[2]], int(m[1]), t), bool(m[3]))),
    (re.compile(rf"(?:the )?(\d{{1,2}})(?:st|nd|rd|th)? (?:of )?({_MONTH})\.?(?:,? ({_YEAR}))?\b"),
     lambda m, t: (lambda y: _day(y, MONTHS[m[2]], int(m[1])),
                   int(m[3]) if m[3] else latest_year(MONTHS[m[2]], int(m[1]), t), bool(m[3]))),
    (re.compile(rf"({_MONTH})\.? (\d{{1,2}})(?:st|nd|rd|th)?(?:,? ({_YEAR}))?\b(?!\.?\d)"),
     lambda m, t: (lambda y: _day(y, MONTHS[m[1]], int(m[2])),
                   int(m[3]) if m[3] else latest_year(MONTHS[m[1]], int(m[2]), t), bool(m[3]))),
    (re.compile(rf"{_PART} ?({_MONTH})\.?(?: ({_YEAR}))?\b"),
     lambda m, t: (lambda y: _part_of_month(m[1], y, MONTHS[m[2]]),
                   int(m[3]) if m[3] else latest_year(MONTHS[m[2]], 1, t), bool(m[3]))),
    (re.compile(rf"{_PART} ?({_YEAR})\b"), lambda m, t: (lambda y: _part_of_year(m[1], y), int(m[2]), True)),
    (re.compile(rf"(?:kw|kalenderwoche|(?:calendar )?week) ?(\d{{1,2}})(?:(?:/| |, )({_YEAR}))?\b"),
     lambda m, t: (lambda y: _iso_week(int(m[1]), y), int(m[2]) if m[2] else
                   (t.year if int(m[1]) <= t.isocalendar()[1] else t.year - 1), bool(m[2]))),
    (re.compile(rf"(?:im |in the |the )?({_ORDINAL}) (?:quartal|quarter)(?: (?:of )?({_YEAR}))?\b"),
     lambda m, t: (lambda y: _quarter(ORDINALS[m[1]], y), int(m[2]) if m[2] else
                   (t.year if 3 * ORDINALS[m[1]] - 2 <= t.month else t.year - 1), bool(m[2]))),
    (re.compile(rf"q([1-4])(?:[ /]({_YEAR}))?\b"),
     lambda m, t: (lambda y: _quarter(int(m[1]), y), int(m[2]) if m[2] else
                   (t.year if 3 * int(m[1]) - 2 <= t.month else t.year - 1), bool(m[2]))),
    (re.compile(rf"(?:im |in the |the )?(ersten|zweiten|first|second) (?:halbjahr|half)(?: (?:of )?({_YEAR}))?\b"),
     lambda m, t: (lambda y: _half(ORDINALS[m[1]], y), int(m[2]) if m[2] else
                   (t.year if ORDINALS[m[1]] == 1 or t.month > 6 else t.year - 1), bool(m[2]))),
    (re.compile(rf"({_MONTH})\.? ({_YEAR})\b"), lambda m, t: (lambda y: month_span(y, MONTHS[m[1]]), int(m[2]), True)),
    (re.compile(rf"({_MONTH})\b"), lambda m, t: (lambda y: month_span(y, MONTHS[m[1]]),
                                                latest_year(MONTHS[m[1]], 1, t), False)),
    (re.compile(rf"(?:dem jahr |the year |jahr )?({_YEAR})\b"),
     lambda m, t: (lambda y: (date(y, 1, 1), date(y, 12, 31)), int(m[1]), True)),
]
AMBIGUOUS_MONTHS = {"may", "march", "mar", "jun", "jan", "aug", "sep", "dec", "nov", "oct", "apr", "feb", "jul"}  # words too


def point_at(text: str, pos: int, today: date) -> Point | None:
    """The time expression that starts at `pos`, if one does: a relative one ("letzte Woche") or a
    point ("3. Oktober", "KW 40", "2025")."""
    for pattern, build in RELATIVE_RULES:
        found = pattern.match(text, pos)
        if found:
            start, end = build(found, today)
            return Point(start, end, found.end() - pos, True, lambda _, span=(start, end): span)
    for pattern, build in POINT_RULES:
        found = pattern.match(text, pos)
        if not found or not _month_allowed(text, found):
            continue
        try:
            span, year, has_year = build(found, today)
            start, end = span(year)
        except ValueError:  # the 31st of a 30-day month, week 54: not a date
            continue
        return Point(start, end, found.end() - pos, has_year, span)
    return None


def _month_allowed(text: str, found: re.Match) -> bool:
    """A bare month word that is also an ordinary word ("may", "mar") counts only after a word of time."""
    word = found.group(0).strip(". ")
    if word not in AMBIGUOUS_MONTHS:
        return True
    before = text[:found.start()].split()[-1:] or [""]
    return before[0] in ("in", "im", "since", "seit", "until", "bis", "from", "von", "between", "zwischen", "of",
                         "and", "und", "to", "early", "mid", "late", "end", "ende", "anfang", "mitte", "last", "this")


# ---- relative expressions, all against today ------------------------------------------------

def _relative_rules() -> list[tuple[re.Pattern, Callable[[re.Match, date], tuple[date, date]]]]:
    last = r"(?:letzte|letzten|letzter|letztes|vergangene|vergangenen|vergangenes|vorige|vorigen|voriges|last)"
    this = r"(?:diese|diesen|dieser|dieses|this|in diesem|im laufenden|laufenden)"
    nxt = r"(?:nächste|nächsten|nächstes|kommende|kommenden|kommendes|next|coming)"
    return [
        (re.compile(r"(?:vorgestern|the day before yesterday)\b"), lambda m, t: (t - timedelta(2),) * 2),
        (re.compile(r"(?:gestern|yesterday)\b"), lambda m, t: (t - timedelta(1),) * 2),
        (re.compile(r"(?:übermorgen|the day after tomorrow)\b"), lambda m, t: (t + timedelta(2),) * 2),
        (re.compile(r"(?:morgen|tomorrow)\b"), lambda m, t: (t + timedelta(1),) * 2),
        (re.compile(r"(?:heute|today)\b"), lambda m, t: (t, t)),
        (re.compile(rf"(?:in den |in the |during the |over the |for the )?(?:letzten|vergangenen|last|past) ({_NUMBER}) "
                    rf"({_UNIT})\b"), lambda m, t: (ago(t, number(m[1]), UNITS[m[2]]), t)),
        (re.compile(r"(?:the )?past (week|month|year)\b"), lambda m, t: (ago(t, 1, UNITS[m[1]]), t)),
        (re.compile(rf"{last} (woche|week)\b"), lambda m, t: week_span(t - timedelta(weeks=1))),
        (re.compile(rf"{last} (monat|month)\b"), lambda m, t: unit_span(shift_months(t, -1), "month")),
        (re.compile(rf"(?:im )?{last} (jahr|year)\b"), lambda m, t: unit_span(date(t.year - 1, 1, 1), "year")),
        (re.compile(rf"{this} (woche|week)\b"), lambda m, t: (week_span(t)[0], t)),
        (re.compile(rf"{this} (monat|month)\b"), lambda m, t: (date(t.year, t.month, 1), t)),
        (re.compile(rf"{this} (jahr|year)\b"), lambda m, t: (date(t.year, 1, 1), t)),
        (re.compile(rf"{nxt} (woche|week)\b"), lambda m, t: week_span(t + timedelta(weeks=1))),
        (re.compile(rf"{nxt} (monat|month)\b"), lambda m, t: unit_span(shift_months(t, 1), "month")),
        (re.compile(rf"{nxt} (jahr|year)\b"), lambda m, t: unit_span(date(t.year + 1, 1, 1), "year")),
        (re.compile(rf"vor ({_NUMBER}) ({_UNIT})\b"), lambda m, t: unit_span(ago(t, number(m[1]), UNITS[m[2]]),
                                                                           UNITS[m[2]])),
        (re.compile(rf"({_NUMBER}) ({_UNIT}) ago\b"), lambda m, t: unit_span(ago(t, number(m[1]), UNITS[m[2]]),
                                                                           UNITS[m[2]])),
        (re.compile(rf"seit ({_NUMBER}) ({_UNIT})\b"), lambda m, t: (ago(t, number(m[1]), UNITS[m[2]]), t)),
    ]


RELATIVE_RULES = _relative_rules()
RANGE_START = re.compile(r"(?:zwischen|between|von|vom|from) (?:dem |the )?")
RANGE_JOIN = re.compile(r" ?(?:und|and|bis|to|until|till|through|-|–) (?:zum |zur |dem |the )?")
SINCE = re.compile(r"(?:seit|since|ab|from|starting) (?:dem |der |den |the )?")
UNTIL = re.compile(r"(?:bis|until|till|by|up to|before|vor) (?:zum |zur |dem |den |der |the )?")


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("\u00a0", " ")).strip()


def find_period(question: str, today: date) -> Period | None:
    """The period a question asks about, read against `today`; None when it names none."""
    text = normalize(question)
    if EARLIEST_ASKED.search(text) and not re.search(_YEAR, text):
        return None  # "seit wann": asks for the first evidence, names no period
    for position in _word_starts(text):
        found = _period_at(text, position, today)
        if found:
            return found
    return None


def dated_expressions(text: str, reference: date) -> list[Period]:
    """The time expressions of a news sentence that fix their own day, month or year, read against
    its article's date: "zum 1. Dezember 2025", "2028", "nächstes Jahr". One without a year
    ("ab Januar", "im Frühjahr") is left out: in an article, unlike a question, it may be either side.

    >>> [(p.start.isoformat(), p.text) for p in dated_expressions("Sie übernimmt zum 1. Dezember 2025, "
    ...  "die Brücke ist ab Januar 2027 frei, im Frühjahr beginnt der Bau.", date(2025, 10, 20))]
    [('2025-12-01', '1. dezember 2025'), ('2027-01-01', 'januar 2027')]
    """
    text, found, after = normalize(text), [], 0
    for position in _word_starts(text):
        point = point_at(text, position, reference) if position >= after else None
        if point and point.has_year:
            found.append(Period(point.start, point.end, text[position:position + point.length]))
            after = position + point.length
    return found


def _word_starts(text: str) -> list[int]:
    return [m.start() for m in re.finditer(r"(?<![\w.])[\w-]", text)]


def _period_at(text: str, pos: int, today: date) -> Period | None:
    for rule in (_range_at, _since_at, _until_at):
        found = rule(text, pos, today)
        if found:
            return found
    point = point_at(text, pos, today)
    return Period(point.start, point.end, text[pos:pos + point.length]) if point else None


def _range_at(text: str, pos: int, today: date) -> Period | None:
    opening = RANGE_START.match(text, pos)
    if not opening:
        return None
    first = point_at(text, opening.end(), today) or _day_of_the_second(text, opening.end())
    if not first:
        return None
    join = RANGE_JOIN.match(text, opening.end() + first.length)
    second = join and point_at(text, join.end(), today)
    if not second:
        return None
    if first.start is None:  # "vom 1. bis 15. Oktober": the day in the second end's month
        try:
            start = second.start.replace(day=first.length_day)
        except ValueError:
            return None
        return Period(start, second.end, text[pos:join.end() + second.length])
    start = first.start
    if not first.has_year:  # "zwischen Mai und Juli 2024": the year the second end names
        start = first.span(second.start.year)[0]
        if start > second.start:
            start = first.span(second.start.year - 1)[0]
    return Period(start, second.end, text[pos:join.end() + second.length])


@dataclass(frozen=True)
class _BareDay:
    """A day number alone, the first end of "vom 1. bis 15. Oktober": its month is the second end's."""
    length: int
    length_day: int
    start: None = None


def _day_of_the_second(text: str, pos: int) -> _BareDay | None:
    found = re.compile(r"(\d{1,2})(?:\.|st|nd|rd|th)?").match(text, pos)
    return _BareDay(found.end() - pos, int(found[1])) if found else None


def _since_at(text: str, pos: int, today: date) -> Period | None:
    opening = SINCE.match(text, pos)
    point = opening and point_at(text, opening.end(), today)
    if not point:
        return None
    return Period(point.start, max(today, point.start), text[pos:opening.end() + point.length])


def _until_at(text: str, pos: int, today: date) -> Period | None:
    opening = UNTIL.match(text, pos)
    point = opening and point_at(text, opening.end(), today)
    if not point:
        return None
    if text.startswith(("before", "vor"), pos):
        return Period(EARLIEST, point.start - timedelta(days=1), text[pos:opening.end() + point.length])
    return Period(EARLIEST, point.end, text[pos:opening.end() + point.length])


def asks_for_current(question: str) -> bool:
    """About the state now: a word asking for it (aktuell, derzeit, noch, latest, current, still, …),
    or the present tense, unless asking since when (the earliest evidence answers that).

    >>> asks_for_current("Wer ist Bürgermeister?"), asks_for_current("Who was the mayor?")
    (True, False)
    >>> asks_for_current("Seit wann ist sie Bürgermeisterin?"), asks_for_current("Wer war zuletzt Bürgermeister?")
    (False, True)
    """
    if CURRENT.search(question):
        return True
    return not asks_for_first(question) and in_present_tense(question, detect_language(question))


def asks_when(question: str) -> bool:
    """"Wann", "when", "in welchem Jahr", "by what date": the answer is a time, even a later one.

    >>> asks_when("Wann soll die Brücke fertig sein?"), asks_when("Wer leitet derzeit das Klinikum?")
    (True, False)
    """
    return bool(WHEN_ASKED.search(question))


def asks_for_first(question: str) -> bool:
    """"Seit wann", "since when", "when did … first": the earliest evidence answers."""
    return bool(EARLIEST_ASKED.search(normalize(question)))
