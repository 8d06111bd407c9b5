"""Question language: German or English, from function words, umlauts and endings (no model needed).

Words both languages use ("in", "an", "was", "so") count for neither: "In welchem Jahr ...?" was
taken for English when "in" was an English word. German quotation marks and umlauts count
double. When the function words tie (a question can hold little else: "Was behinderte Kublais
zweite Invasion Japans?"), word endings decide: German "-te", "-ung", "-isch", English "-ed",
"-ing", "-ly".

>>> detect_language("Wie viele Abkommen wurden unterzeichnet?"), detect_language("How many agreements were signed?")
('de', 'en')
>>> detect_language("In welchem Format sendet Sky+HD sein Material?")
'de'
>>> detect_language("Was behinderte Kublais zweite Invasion Japans?"), detect_language("Was Kublai's invasion stopped?")
('de', 'en')
"""

from __future__ import annotations

import re

_BOTH = frozenset("in an was so also will man am um bin".split())
_GERMAN = frozenset("""der die das den dem des ein eine einer eines einem einen und ist sind waren wurde wurden
    wer wie wo wann warum wem wen wessen weshalb wieso wozu wofür womit wodurch woher wohin wovon worauf worin
    wogegen welche welcher welches welchem welchen wieviel viele einige manche oft zu zum zur im auf für nicht auch
    sich bei nach aus über unter gegen sein seine sei ihr ihre es er sie wir nur noch schon sehr dann denn
    zwischen während durch ohne oder aber als wenn dass seit bis vom beim hat haben mit von war""".split()) - _BOTH
_ENGLISH = frozenset("""the a and is are were who what where when why which how many much did does do has
    have had with of to on at for not by from about his her its their they he she we it this that whose whom
    into than or but after before during between""".split()) - _BOTH
_GERMAN_ENDING = re.compile(r"(?:te|ten|ung|ungen|isch|ische|lich|keit|heit)$")
_ENGLISH_ENDING = re.compile(r"(?:ed|ing|ly)$")


def detect_language(text: str) -> str:
    lowered = text.lower()
    words = re.findall(r"[a-zäöüß]+", lowered)
    german = sum(w in _GERMAN for w in words) + 2 * len(re.findall(r"[äöüß„]", lowered))
    english = sum(w in _ENGLISH for w in words)
    if german == english:
        german = sum(bool(_GERMAN_ENDING.search(w)) for w in words if len(w) > 4)
        english = sum(bool(_ENGLISH_ENDING.search(w)) for w in words if len(w) > 4)
    return "de" if german > english else "en"


LANGUAGE_NAMES = {"en": "English", "de": "German"}
