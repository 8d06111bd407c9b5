"""Lexical search: BM25 over German-stemmed terms, with postings stored in segments.

The postings of a term are a list of segments (one per commit that added chunks holding it, see
store/sqlite/writer.py), each two little arrays: chunk ids and term frequencies. A search reads the segments
of the query's terms, drops the chunks no longer live, and scores with numpy; document frequency
and the average length are taken over live chunks at query time, so adding or removing a chunk
never touches another chunk's postings.

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

import numpy as np
import Stemmer

ANALYZER = "german-snowball+compound-tails-v1"
MIN_COMPOUND = 9  # letters in a word before its tails are indexed
MIN_HEAD = 5  # letters in the shortest tail
K1, B = 1.2, 0.75

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
                terms.extend(sorted({_stem(word[cut:]) for cut in range(3, len(word) - MIN_HEAD + 1)}))
    return terms


def chunk_terms(text: str) -> Counter:
    """Term frequencies a chunk is indexed under: its words' stems and the tails of long words.

    >>> sorted(chunk_terms("Neue Handelsabkommen, neue Abkommen").items())[:3]
    [('abkomm', 2), ('bkomm', 1), ('delsabkomm', 1)]
    """
    return Counter(analyze(text, split_compounds=True))


def encode_postings(ids: list[int], tfs: list[int]) -> tuple[bytes, bytes]:
    """One segment as stored: chunk ids (uint32) and term frequencies (uint16)."""
    return (np.asarray(ids, dtype="<u4").tobytes(),
            np.minimum(np.asarray(tfs, dtype=np.int64), 65535).astype("<u2").tobytes())


def decode_postings(ids: bytes, tfs: bytes) -> tuple[np.ndarray, np.ndarray]:
    return np.frombuffer(ids, dtype="<u4").astype(np.int64), np.frombuffer(tfs, dtype="<u2")


def bm25(postings: dict[str, list[tuple[bytes, bytes]]], live: np.ndarray, lengths: np.ndarray,
         limit: int, k1: float = K1, b: float = B) -> list[tuple[int, float]]:
    """The best (chunk id, score) pairs, highest first, ties by id; `live[id]` says which chunks
    count and `lengths[id]` how many terms each holds.

    >>> live, lengths = np.array([False, True, True]), np.array([0, 2, 4])
    >>> seg = {"pinguin": [encode_postings([1, 2], [1, 1])], "zoo": [encode_postings([2], [1])]}
    >>> [(i, round(s, 3)) for i, s in bm25(seg, live, lengths, 5)]
    [(2, 0.77), (1, 0.211)]
    """
    n = int(live.sum())
    if not n:
        return []
    avg = float(lengths[live].mean()) or 1.0
    scores = np.zeros(len(live))
    for segments in postings.values():
        ids, tfs = (np.concatenate(parts) for parts in zip(*(decode_postings(*s) for s in segments)))
        keep = (ids < len(live)) & live[np.minimum(ids, len(live) - 1)]  # removed chunks may lie beyond
        ids, tfs = ids[keep], tfs[keep].astype(np.float64)
        if not len(ids):
            continue
        idf = math.log(1 + (n - len(ids) + 0.5) / (len(ids) + 0.5))
        scores[ids] += idf * tfs * (k1 + 1) / (tfs + k1 * (1 - b + b * lengths[ids] / avg))
    hits = np.flatnonzero(scores)
    if len(hits) > limit:  # keep the best `limit`, and any tied with the last of them (ties go by id)
        threshold = np.partition(scores[hits], len(hits) - limit)[len(hits) - limit]
        hits = hits[scores[hits] >= threshold]
    order = sorted(hits.tolist(), key=lambda i: (-scores[i], i))[:limit]
    return [(i, float(scores[i])) for i in order]
