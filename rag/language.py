"""Question language: German or English, from function words and umlauts (no model needed).

>>> detect_language("Wie viele Abkommen wurden unterzeichnet?"), detect_language("How many agreements were signed?")
('de', 'en')
"""

from __future__ import annotations

import re

_GERMAN = frozenset("""der die das den dem des ein eine einer eines einem einen und ist sind war waren wurde wurden
    wer wie was wo wann warum welche welcher welches wieviel viele hat haben mit von zu zum zur im auf für nicht
    auch sich bei nach aus über unter gegen sein seine ihr ihre es er sie wir""".split())
_ENGLISH = frozenset("""the a an and is are was were who what where when why which how many much did does do has
    have had with of to in on at for not also by from about his her its their they he she we it this that""".split())


def detect_language(text: str) -> str:
    words = re.findall(r"[a-zäöüß]+", text.lower())
    german = sum(w in _GERMAN for w in words) + 2 * len(re.findall(r"[äöüß]", text.lower()))
    english = sum(w in _ENGLISH for w in words)
    return "de" if german > english else "en"


LANGUAGE_NAMES = {"en": "English", "de": "German"}
