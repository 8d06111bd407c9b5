"""Lexical search: BM25 over German-stemmed terms, stored as plain JSON.

German analysis: lower-case, drop stop words, Snowball-stem, fold umlauts and ß (so
"Gespräch" and "Gespraech" meet). Documents also index the stems of the tails of long words,
so a question about "Abkommen" finds "Kooperationsabkommen"; queries are not split, so the
extra tails only ever match real query words.

>>> analyze("Die Kooperationsabkommen wurden unterzeichnet")
['kooperationsabkomm', 'wurd', 'unterzeichn']
>>> "abkomm" in analyze("Kooperationsabkommen", split_compounds=True)
True
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import Stemmer

LEXICAL_VERSION = 1
ANALYZER = "german-snowball+compound-tails-v1"
MIN_COMPOUND = 9  # letters in a word before its tails are indexed
MIN_HEAD = 5  # letters in the shortest tail

_STOP = frozenset(
    """aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch auf aus
    bei bin bis bist da damit dann das dass dasselbe dazu daß dein deine dem demselben den denn denselben der derer
    des desselben dessen dich die dies diese dieselbe dieselben diesem diesen dieser dieses dir doch dort du durch
    ein eine einem einen einer eines einig einige einigem einigen einiger einiges einmal er es etwas euch euer eure
    für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm ihn ihnen ihr ihre ihrem ihren ihrer
    ihres im in indem ins ist jede jedem jeden jeder jedes jene jenem jenen jener jenes jetzt kann kein keine keinem
    keinen keiner keines können könnte machen man manche manchem manchen mancher manches mein meine mich mir mit muss
    musste nach nicht nichts noch nun nur ob oder ohne sehr sein seine seinem seinen seiner seines selbst sich sie
    sind so solche solchem solchen solcher solches soll sollte sondern sonst über um und uns unser unsere unter
    viel vom von vor während war waren warst was weg weil weiter welche welchem welchen welcher welches wenn werde
    werden wie wieder will wir wird wirst wo wollen wollte würde würden zu zum zur zwar zwischen
    a about an and are as at be been by did do does for from had has have how in is it its of on or that the their
    them they this to was were what when where which who whom whose why will with would""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
_FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss"})
_stemmer = Stemmer.Stemmer("german")


def _stem(word: str) -> str:
    return _stemmer.stemWord(word).translate(_FOLD)


def analyze(text: str, split_compounds: bool = False) -> list[str]:
    """Terms of `text`; with split_compounds, also the stems of every tail of >= 5 letters."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    terms = [_stem(w) for w in words]
    if split_compounds:
        for word in words:
            if len(word) >= MIN_COMPOUND and word.isalpha():
                terms.extend({_stem(word[cut:]) for cut in range(3, len(word) - MIN_HEAD + 1)})
    return terms


@dataclass
class BM25Index:
    """Postings and lengths of the chunks, in chunk order."""

    postings: dict[str, list[list[int]]]  # term -> [[chunk index, term frequency], ...]
    lengths: list[int]
    k1: float = 1.2
    b: float = 0.75

    @classmethod
    def build(cls, texts: list[str], k1: float = 1.2, b: float = 0.75) -> "BM25Index":
        postings: dict[str, list[list[int]]] = {}
        lengths = []
        for i, text in enumerate(texts):
            counts = Counter(analyze(text, split_compounds=True))
            lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                postings.setdefault(term, []).append([i, tf])
        return cls(postings, lengths, k1, b)

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """Best (chunk index, score) pairs for `query`, highest first; ties keep chunk order."""
        n = len(self.lengths)
        if n == 0:
            return []
        avg = sum(self.lengths) / n or 1.0
        scores: dict[int, float] = {}
        for term in set(analyze(query)):
            plist = self.postings.get(term)
            if not plist:
                continue
            idf = math.log(1 + (n - len(plist) + 0.5) / (len(plist) + 0.5))
            for i, tf in plist:
                norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[i] / avg)
                scores[i] = scores.get(i, 0.0) + idf * tf * (self.k1 + 1) / norm
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    def feedback_terms(self, texts: list[str], count: int) -> list[str]:
        """The `count` terms of `texts` with the highest tf-idf (for pseudo-relevance feedback)."""
        n = len(self.lengths)
        weights: Counter = Counter()
        for text in texts:
            for term, tf in Counter(analyze(text)).items():
                weights[term] += tf * math.log(n / len(self.postings.get(term, [0])))
        return [term for term, _ in weights.most_common(count)]

    def to_json(self) -> dict:
        return {"version": LEXICAL_VERSION, "analyzer": ANALYZER, "k1": self.k1, "b": self.b,
                "lengths": self.lengths, "postings": self.postings}

    @classmethod
    def from_json(cls, data: dict) -> "BM25Index":
        if data.get("version") != LEXICAL_VERSION or data.get("analyzer") != ANALYZER:
            raise ValueError(f"lexical index version {data.get('version')}/{data.get('analyzer')} "
                             f"is not {LEXICAL_VERSION}/{ANALYZER}")
        return cls(data["postings"], data["lengths"], data["k1"], data["b"])
