"""Answer shaping: the fact alone, without the words around it, with the answer's markers kept.

Pure text functions over an answer, its question and its quotes; the model calls that use them
(the shortener, the answer translation) are in `answering`. Nothing here adds a word the answer
did not have.

>>> without_restated_question("Xi Jinping wurde im Frühling nach Moskau eingeladen. [1]",
...                           "Wer wurde im Frühling nach Moskau eingeladen?")
'Xi Jinping [1]'
"""

from __future__ import annotations

import re

from rag.answer.citations import find_quote
from rag.text.lexical import analyze
from rag.text.markers import MARKER, strip_markers
from rag.text.numbers import DIGITS, QUALIFIERS, word_number

# A sentence ends after a word or a number, not after an initial ("Frederick W. Mote").
_SENTENCE_END = re.compile(r"(?:(?<=\w\w[.!?])|(?<=\d[.!?]))\s+(?=[A-ZÄÖÜ])")


def markers_of(answer: str) -> str:
    """The answer's source markers, in order, each once: "Moskau [1] und Peking [2] [1]" -> "[1] [2]"."""
    return " ".join(dict.fromkeys(m.group(0) for m in MARKER.finditer(answer)))


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]{3,}", text.lower()))


def copied_words(answer: str, quotes: list[str], question: str) -> set[str]:
    """Words of the answer that stand in the quotes but not in the question.

    >>> sorted(copied_words("Im Frühling [2]", ["Putin lud Xi im Frühling ein."], "In which season?"))
    ['frühling']
    """
    return words_of(strip_markers(answer)) & words_of(" ".join(quotes)) - words_of(question)


def quoted_words(quotes: list[str]) -> set[str]:
    """Words inside quotation marks: what someone said, which an answer may keep as said.

    >>> sorted(quoted_words(['Putin nannte Xi einen "lieben Freund".']))
    ['freund', 'lieben']
    """
    return words_of(" ".join(re.findall(r'["„“”«»]([^"„“”«»]{1,200})["„“”«»]', " ".join(quotes))))


def direct_part(answer: str, reply: str, question: str) -> str | None:
    """The part of `answer` (markers aside) that `reply` copies, with the answer's markers after it.

    The reply may list several parts ("Biodiversität, Kohlenstoffspeicher"): each must be a
    whole-word span of the answer, so nothing new can enter it. None when the reply is no such
    part, is not shorter than the answer, or only repeats the question's own terms (the shortener
    picked the subject, not the answer).

    >>> direct_part("Die Biodiversität wird verloren gehen. [2]", "Biodiversität", "Was geht verloren?")
    'Biodiversität [2]'
    >>> direct_part("Sie fürchten um die Biodiversität und den Kohlenstoffspeicher. [1]",
    ...             "Biodiversität, Kohlenstoffspeicher", "Worum fürchten sie?")
    'Biodiversität, Kohlenstoffspeicher [1]'
    >>> direct_part("Fort Caroline was rebuilt in 1964. [1]", "Fort Matanzas", "Which fort?") is None
    True
    >>> direct_part("The talks took place at the summit of the United Nations. [3]", "UN", "Where?") is None
    True
    >>> direct_part("Zwillingsprimzahlen sind Paare von Primzahlen. [1]", "Zwillingsprimzahlen",
    ...             "Was ist eine Zwillingsprimzahl?") is None
    True
    """
    bare = strip_markers(answer)
    reply = reply.strip().strip('"„“”«».,;:').strip()
    spans = [whole_word_span(bare, part) for part in re.split(r"\s*[,;]\s*(?:(?:and|und)\s+)?", reply)]
    if not reply or None in spans:
        return None
    picked = bare[spans[0][0]:spans[0][1]] if len(spans) == 1 else reply
    if len(picked) >= len(bare.rstrip(".!? ")) or set(analyze(picked)) <= set(analyze(question)):
        return None
    return f"{picked} {markers_of(answer)}".strip()


def without_restated_question(answer: str, question: str, min_words: int = 5) -> str | None:
    """The first sentence of a sentence-long answer without the words that restate the question.

    The model often wraps the fact in the question's own words; a run of two or more words at
    either end whose terms all stand in the question, at least one of them not a stop word, is
    dropped ("auf einem" before "hohen Niveau" restates nothing). None when the answer is shorter
    than `min_words` words (there "Fort" of "Fort Caroline" would go) or nothing would change;
    the answer's markers are kept.

    >>> without_restated_question("Zwillingsprimzahlen sind Paare von Primzahlen mit der Differenz 2. Mehr dazu. [1]",
    ...                           "Was sind Zwillingsprimzahlen?")
    'Paare von Primzahlen mit der Differenz 2 [1]'
    >>> without_restated_question("Fort Caroline was rebuilt in 1964. [1]", "Which fort was rebuilt in 1964?")
    'Fort Caroline [1]'
    >>> without_restated_question("Many had status, as Frederick W. Mote explains. [1]", "What status had many?")
    'Frederick W. Mote explains [1]'
    >>> without_restated_question("auf einem beispiellos hohen Niveau [1]", "Auf welchem Niveau sind die Beziehungen?") is None
    True
    >>> without_restated_question("State Route 99 [2]", "Which State Route was upgraded?") is None
    True
    """
    bare = strip_markers(answer)
    first = _SENTENCE_END.split(bare)[0].rstrip(".!? ")
    words = first.split()
    if len(words) < min_words:
        return None
    asked = set(analyze(question))
    terms = [set(analyze(word)) for word in words]

    def restating_run(order: list[int]) -> int:
        """How many words, taken in `order`, restate the question (0 unless two or more)."""
        run = next((n for n, i in enumerate(order) if not terms[i] <= asked), len(order))
        return run if run >= 2 and any(terms[i] for i in order[:run]) else 0

    lead = restating_run(list(range(len(words))))
    trail = restating_run(list(range(len(words) - 1, lead - 1, -1)))
    kept = " ".join(words[lead:len(words) - trail]).strip(",;: ")
    if not kept or kept == bare.rstrip(".!? "):
        return None
    return f"{kept} {markers_of(answer)}".strip()


# "How many points ...?": the question names what it counts. "How old ...?": it counts years.
_COUNTING = re.compile(r"\b(?:wie\s+viele?n?|how\s+many)\b", re.IGNORECASE)
_AGE = re.compile(r"\b(?:wie\s+alt|how\s+old)\b", re.IGNORECASE)
_AGE_WORDS = frozenset({"jahr", "jahre", "jahren", "alt", "year", "years", "old"})
# Units of measure belong to a quantity ("7.000.000 Quadratkilometer"); a counted noun does not.
_UNIT = re.compile(r"meter|meile|mile|tonne|\bton|gramm|\bgram|liter|litre|quadrat|square|prozent|percent|"
                   r"hektar|hectare|acre|grad\b|degree|dollar|euro|pfund|pound|\bkm|kilo", re.IGNORECASE)
_QUALIFIER_PHRASES = frozenset(phrase for phrases in QUALIFIERS.values() for phrase in phrases)


def count_alone(answer: str, question: str) -> str | None:
    """A count without the noun its question already names, the qualifier before it kept.

    Asked "how many points", the model often answers "308 points", and asked how old someone
    was, "39 years". The count is the answer: the words after the number are dropped when the
    question names them (stems, compound tails) or, asked for an age, when they are years. A unit
    of measure stays ("7.000.000 Quadratkilometer"). None when the answer is not a number (with a
    qualifier at most) followed by such words; the markers are kept.

    >>> count_alone("308 Punkte [1]", "Wie viele Punkte gab die Verteidigung der Panthers ab?")
    '308 [1]'
    >>> count_alone("mehr als 20 Abkommen [2]", "Wie viele Kooperationsabkommen wurden unterzeichnet?")
    'mehr als 20 [2]'
    >>> count_alone("39 years old [1]", "How old was Peyton Manning when he played in Super Bowl 50?")
    '39 [1]'
    >>> count_alone("7.000.000 Quadratkilometer [1]", "Wie viele Quadratkilometer umfasst das Amazonasbecken?") is None
    True
    >>> count_alone("24 Interceptions [1]", "Wie viele Sacks hatte Short?") is None
    True
    """
    age = bool(_AGE.search(question))
    if not age and not _COUNTING.search(question):
        return None
    words = strip_markers(answer).rstrip(".").split()
    at = next((i for i, word in enumerate(words)
               if word_number(word.strip(",;:")) is not None or DIGITS.fullmatch(word.removesuffix("½"))), None)
    if at is None or at == len(words) - 1 or (at and " ".join(words[:at]).lower() not in _QUALIFIER_PHRASES):
        return None
    rest = [word.strip(",;:").lower() for word in words[at + 1:]]
    if any(_UNIT.search(word) for word in rest):
        return None
    if age:
        named = set(rest) <= _AGE_WORDS
    else:
        asked = set(analyze(question, split_compounds=True))
        terms = [set(analyze(word)) for word in rest]
        named = any(terms) and all(t <= asked for t in terms)
    if not named:
        return None
    return f"{' '.join(words[:at + 1]).strip(',;:')} {markers_of(answer)}".strip()


def within_source_words(answer: str, sources: list[str]) -> str | None:
    """The answer without the words at either end that the sources it cites do not hold.

    For an answer in the language of its sources: the model tacks words of the question or of
    its own onto the fact ("Nationalhymne gesungen", "globaler Ebene zeigen, wie beschreibt").
    The answer keeps the run from its first to its last word whose terms stand in the sources
    (stems, so an inflected form counts, and a compound by its tail), with the stop words the
    sources have just before it; a word with a digit, or at the end a capital, always stays.
    None when fewer than half of the answer's words (stop words aside) stand in the sources, or
    nothing would change; the markers are kept.

    >>> within_source_words("Nationalhymne gesungen [1]", ["Lady Gaga führte die Nationalhymne auf."])
    'Nationalhymne [1]'
    >>> within_source_words("auf globaler Ebene zeigen, wie beschreibt [2]", ["Eine Methode auf globaler Ebene."])
    'auf globaler Ebene [2]'
    >>> within_source_words("Am 1. März [1]", ["Der Dienst startet im März."])
    '1. März [1]'
    >>> within_source_words("Hmong [1].", ["Die Gruppen sind Hmong."]) is None
    True
    >>> within_source_words("Unjustified forms of authority [1]", ["Formen der Autorität."]) is None
    True
    >>> within_source_words("Sender aus vielen Ländern [1]", ["Sender aus vielen Staaten."]) is None
    True
    >>> within_source_words("Luftfahrtabkommen genannt [1]", ["Abkommen zu Energie und Luftfahrt."])
    'Luftfahrtabkommen [1]'
    """
    words = strip_markers(answer).split()
    source_words = {_bare(word) for word in " ".join(sources).split()}
    source_terms = set(analyze(" ".join(sources), split_compounds=True))

    def stands_in_sources(word: str) -> bool:
        terms = set(analyze(word))
        # A compound the model made of the sources' words ("Luftfahrtabkommen") counts by its tail.
        tails = set(analyze(word, split_compounds=True)) - terms
        return any(ch.isdigit() for ch in word) or bool(terms) and (
            _bare(word) in source_words or terms <= source_terms or bool(tails & source_terms))

    kept = [i for i, word in enumerate(words) if stands_in_sources(word)]
    content = [word for word in words if analyze(word) or any(ch.isdigit() for ch in word)]
    # Mostly other words: not an answer made of the sources (one in another language, say), whose
    # few look-alikes ("forms" for "Formen") would be all that is left.
    if not kept or 2 * len(kept) < len(content):
        return None
    first = kept[0]
    # A German noun the sources lack still says something ("Sendern aus mehreren Ländern"): the
    # end is cut only back to the last capitalised word.
    last = max([kept[-1]] + [i for i in range(kept[-1], len(words)) if words[i][:1].isupper()])
    while first > 0 and not analyze(words[first - 1]) and _bare(words[first - 1]) in source_words:
        first -= 1
    dropped = words[:first] + words[last + 1:]
    if not any(_bare(word) for word in dropped):
        return None  # nothing, or only punctuation ("20 Abkommen [1]." keeps its full stop)
    return f"{' '.join(words[first:last + 1]).strip(',;:')} {markers_of(answer)}".strip()


def _bare(word: str) -> str:
    """A word lower-cased without the punctuation around it: "(Zweige)," -> "zweige"."""
    return re.sub(r"^\W+|\W+$", "", word.lower())


def whole_word_span(text: str, part: str) -> tuple[int, int] | None:
    """Offsets of `part` in `text` as whole words (matched as quotes are); None otherwise.

    >>> whole_word_span("United Nations", "Nations"), whole_word_span("United Nations", "UN")
    ((7, 14), None)
    """
    found = find_quote(text, part) if part else None
    if found is None:
        return None
    start, end = found
    if (start > 0 and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum()):
        return None  # "UN" inside "United": a part of a word is no answer
    return found
