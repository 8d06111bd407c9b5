"""Numbers with their qualifiers ("mehr als 20", "about twenty-six"), in English and German.

Used to score answers, and to keep a number in an answer as its source gives it:

>>> restore_qualifiers("20 [2]", ["Demnach unterzeichneten beide Seiten mehr als 20 Kooperationsabkommen."], "en")
'more than 20 [2]'
>>> spell_as_sources_do("4 [1]", ["Thomas Davis erzwang vier Fumbles."], "de")
'vier [1]'
"""

from __future__ import annotations

import re

from rag.text.markers import strip_markers

_ENGLISH_UNITS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                  "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
                  "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_ENGLISH_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                 "ninety": 90}
_UNITS = {**_ENGLISH_UNITS,
          "eins": 1, "ein": 1, "eine": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7,
          "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12, "dreizehn": 13, "vierzehn": 14,
          "fünfzehn": 15, "sechzehn": 16, "siebzehn": 17, "achtzehn": 18, "neunzehn": 19}
_TENS = {**_ENGLISH_TENS, "zwanzig": 20, "dreißig": 30, "dreissig": 30, "vierzig": 40, "fünfzig": 50,
         "sechzig": 60, "siebzig": 70, "achtzig": 80, "neunzig": 90}
_ENGLISH_WORDS = {value: word for word, value in [*_ENGLISH_UNITS.items(), *_ENGLISH_TENS.items()]}
_ENGLISH_WORDS |= {tens + unit: f"{_ENGLISH_WORDS[tens]}-{_ENGLISH_WORDS[unit]}"
                   for tens in _ENGLISH_TENS.values() for unit in range(1, 10)}
_DECIMAL = re.compile(r"(?<![\d.,])(\d+)[.,](\d{1,2}|\d{4,})(?![\d]|[.,]\d|\.)")
# Digits, with thousands groups ("5.500.000") or a decimal part ("1,5") kept together.
DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
# A number in digits standing alone: not part of a date, time, share, range or citation marker.
_BARE_NUMBER = re.compile(r"(?<![\w\[.,:/-])\d+(?![\w\].,:/%-])")
QUALIFIERS = {
    "more than": ("more than", "over", "upwards of", "mehr als", "über"),
    "at least": ("at least", "mindestens", "wenigstens"),
    "about": ("about", "around", "approximately", "roughly", "some", "rund", "etwa", "ungefähr", "circa", "ca"),
    "less than": ("less than", "fewer than", "under", "weniger als", "unter"),
    "nearly": ("nearly", "almost", "fast", "knapp", "beinahe"),
}


def word_number(word: str) -> int | None:
    """'26', 'twenty-six', 'sechsundzwanzig', 'zwanzig', '5.500.000', '5,500,000' -> int; None when it
    is no (whole) number."""
    word = re.sub(r"^(\d+)(st|nd|rd|th)$", r"\1", word.lower().strip("."))  # "80th" is 80
    if re.fullmatch(r"\d{1,3}([.,]\d{3})+", word):  # thousands grouped, the German or the English way
        word = re.sub(r"[.,]", "", word)
    if word.isdigit():
        return int(word)
    if word in _UNITS and word not in ("ein", "eine"):  # German articles are not the number one
        return _UNITS[word]
    if word in _TENS:
        return _TENS[word]
    for tens, value in _TENS.items():
        if word.startswith(tens + "-") and word[len(tens) + 1:] in _UNITS:
            return value + _UNITS[word[len(tens) + 1:]]
        if word.endswith("und" + tens) and word[: -len(tens) - 3] in _UNITS:
            return value + _UNITS[word[: -len(tens) - 3]]
    return None


def numbers_with_qualifiers(text: str) -> list[tuple[int, str | None]]:
    """Each number in `text` with the qualifier right before it.

    >>> numbers_with_qualifiers("Mehr als 20 Abkommen, twenty-six leaders")
    [(20, 'more than'), (26, None)]
    """
    words = re.findall(r"[\w.,-]*\w", text.lower().replace("twenty six", "twenty-six"))
    found = []
    for i, word in enumerate(words):
        value = word_number(word)
        if value is None:
            continue
        before = " ".join(words[max(0, i - 3):i])
        qualifier = next((name for name, phrases in QUALIFIERS.items()
                          if any(re.search(rf"\b{re.escape(p)}$", before) for p in phrases)), None)
        found.append((value, qualifier))
    return found


QUALIFIER_WORDS = {
    "en": {name: name for name in QUALIFIERS},
    "de": {"more than": "mehr als", "at least": "mindestens", "about": "rund", "less than": "weniger als",
           "nearly": "fast"},
}


def restore_qualifiers(answer: str, quotes: list[str], language: str) -> str:
    """`answer` with the qualifier its quotes give a bare number in digits ("20" -> "more than 20").

    Only a number that appears in a quote with exactly one qualifier is changed; the quotes are
    the verified sentences the answer cites, so this copies the source, it does not guess.
    """
    qualified: dict[int, set[str]] = {}
    for quote in quotes:
        for value, qualifier in numbers_with_qualifiers(quote):
            qualified.setdefault(value, set()).add(qualifier)
    words = QUALIFIER_WORDS.get(language, QUALIFIER_WORDS["en"])

    def qualify(match: re.Match) -> str:
        number = match.group(0)
        before = answer[:match.start()]
        found = qualified.get(int(number), set())
        if len(found) != 1 or None in found or numbers_with_qualifiers(f"{before[-30:]}{number}")[-1][1]:
            return number
        return f"{words[found.pop()]} {number}"

    return _BARE_NUMBER.sub(qualify, answer)


def spell_as_sources_do(answer: str, quotes: list[str], language: str) -> str:
    """`answer` with a number in digits written in words where its quotes write it in words only.

    The model writes "vier" of its source as "4"; the answer should say what the source says.
    A German answer takes the quote's own word, an English one the English word. A number the
    quotes also give in digits, or in several spellings, stays as it is; so does 1 (German "ein"
    is also the article).

    >>> spell_as_sources_do("2 [2]", ["Newcastle hat zwei Universitäten."], "en")
    'two [2]'
    >>> spell_as_sources_do("4 [1]", ["Vier Spieler, 4 Tore."], "en")
    '4 [1]'
    """
    spellings: dict[int, set[str]] = {}
    for quote in quotes:
        for value, spelling in spelled_numbers(quote):
            spellings.setdefault(value, set()).add(spelling)

    def spell(match: re.Match) -> str:
        number = match.group(0)
        found = spellings.get(int(number), set())
        if int(number) == 1 or len(found) != 1 or not next(iter(found)).isalpha():
            return number
        return found.pop() if language == "de" else _ENGLISH_WORDS.get(int(number), number)

    return _BARE_NUMBER.sub(spell, answer)


def ungrounded_numbers(answer: str, sources: list[str], question: str) -> set[int | float]:
    """Numbers the answer states in digits that neither `sources` (the texts it may take numbers
    from: its quotes, their dates) nor the question hold.

    A small model copies numbers from its instructions or makes them up; a number is one thing
    that can be checked across languages. Numbers in words are left aside, as they may translate
    a compound ("Dreiermenge": "set of three"), and so is 1 ("ein" is also the German article).

    >>> ungrounded_numbers("more than 20 [1]", ["Sie unterzeichneten mehr als zwanzig Abkommen."], "How many?")
    set()
    >>> ungrounded_numbers("More than 100 times [1]", ["Es ist um 12 % schwerer."], "How much heavier is oxygen 18?")
    {100}
    >>> ungrounded_numbers("Thirty Years' War [1]", ["Im Dreißigjährigen Krieg fiel die Stadt."], "Which war?")
    set()
    >>> ungrounded_numbers("23-16, 6 Grammys [1]", ["Sie siegten 23-16.", "Die sechs-malige Gewinnerin"], "?")
    set()
    >>> ungrounded_numbers("5,5% [1]", ["Die Quote ist auf 5,8 Prozent gesunken."], "Wie hoch?")
    {5.5}
    >>> ungrounded_numbers("53.4% [1]", ["Sie erhielt 53,4 Prozent der Stimmen."], "What share?")
    set()
    """
    texts = [*sources, question]
    grounded = set().union(*(numbers_in(text) | decimals_in(text) for text in texts))
    bare = strip_markers(answer)
    return (numbers_in_digits(bare) | decimals_in(bare)) - grounded - {None, 1}


def decimals_in(text: str) -> set[float]:
    """Each decimal number in digits, written the German or the English way ("5,5", "53.4"): one
    the whole-number reading leaves aside. Not a thousands group ("1.500") nor a date ("14.12.").

    >>> sorted(decimals_in("5,5 Prozent, 53.4 %, 1.500 Euro, am 14.12. oder 3.10.2025"))
    [5.5, 53.4]
    """
    return {float(f"{found[1]}.{found[2]}") for found in _DECIMAL.finditer(text)}


def numbers_in_digits(text: str) -> set[int | None]:
    """Each number written in digits, read alone: "23-16" holds 23 and 16, "3rd-and-9" 3 and 9."""
    return {word_number(digits) for digits in DIGITS.findall(text)}


def spelled_numbers(text: str) -> list[tuple[int, str]]:
    """Each number in `text` with its spelling, in digits or in words, also inside a compound
    joined by hyphens.

    >>> spelled_numbers("Die sechs-malige Siegerin, 23-16, twenty-six")
    [(23, '23'), (16, '16'), (6, 'sechs'), (26, 'twenty-six')]
    """
    words = DIGITS.findall(text)
    for compound in re.findall(r"[^\W\d_]+(?:-[^\W\d_]+)*", text.lower()):
        words += [compound] if word_number(compound) is not None else compound.split("-")
    return [(value, word) for word in words if (value := word_number(word)) is not None]


def numbers_in(text: str) -> set[int]:
    """Every number `text` states, however written."""
    return {value for value, _ in spelled_numbers(text)} | {value for value, _ in numbers_with_qualifiers(text)}
