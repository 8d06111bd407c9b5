"""Whether a question is in the present tense: asked without a period, "Wer ist Bürgermeister von
Rheinfeld?" asks about the state now, as "Wer ist derzeit …?" does (docs/answering.md, "Time").

Rules, not a tagger: a question is in the present unless it holds a past or future form. English:
was, were, did, had, will, would, a past participle after "has"/"have", a verb in "-ed" (not after
"is"/"are": "Where is it planned?" is present), one of the common irregular pasts, or a German
weak past in a question of mixed words ("How many Abkommen unterzeichneten …?"). German: a
past or future auxiliary or a common strong past (war, wurde, hatte, gab, wird, sollte), a weak past
("unterzeichneten": a lower-case word in -te/-ten, nouns being capitalised), or the perfect (a form
of haben or sein with a participle closing the question: "Wohin hat Putin Xi eingeladen?").

>>> [in_present_tense(q, "de") for q in ("Wer ist Bürgermeister von Talheim?", "Wie viel kostet ein Liter Diesel?",
...  "Wer leitete das Klinikum?", "Wohin hat Putin Xi eingeladen?", "Wie hoch wird die Gebühr sein?")]
[True, True, False, False, False]
>>> [in_present_tense(q, "en") for q in ("Who runs the Klinikum?", "How many people live in Rheinfeld?",
...  "How many agreements were signed?", "Who won the match?", "Which war does the parade mark?")]
[True, True, False, False, True]
"""

from __future__ import annotations

import re

_ENGLISH_NOT_PRESENT = re.compile(
    r"\b(was|were|did|had|will|would|shall|used to|going to|won|met|said|took|made|went|came|saw|gave|got|held|"
    r"led|ran|began|told|found|left|paid|sold|spoke|sent|brought|bought|thought)\b|\b(?<!is )(?<!are )\w{3,}ed\b"
    r"|\b(has|have)\b.*\b(been|\w+ed|\w+en)\b"
    # a German past in a question taken for English: "How many Kooperationsabkommen unterzeichneten …?"
    r"|\b\w{5,}ten\b|\b\w{6,}ete\b", re.I)
# "soll" is not here: "Wie viel soll die Brücke kosten?" asks for today's estimate.
_GERMAN_NOT_PRESENT = re.compile(
    r"\b(war|waren|warst|wurde|wurden|hatte|hatten|gab|fand|fanden|kam|kamen|nahm|nahmen|sprach|sprachen|traf|"
    r"trafen|lud|ging|gingen|hieß|stieg|stiegen|fiel|fielen|lag|lagen|stand|standen|begann|begannen|geschah|"
    r"geschahen|beschloss|gewann|wuchs|galt|blieb|schrieb|rief|lief|hielt|erhielt|verlor|entschied|starb|sank|"
    r"trat|zog|bot|sah|wäre|wären|hätte|hätten|wird|werden|würde|würden|sollte|sollten)\b", re.I)
# Lower-case words in -te/-ten that are not verbs: ordinals, superlatives (not "-sste": "fasste"),
# a few adjectives and adverbs.
_NOT_VERBS = re.compile(r"(erste|zweite|dritte|vierte|letzte|nächste|wievielte|\w+(?<!s)ste|gute|hohe|weite|"
                        r"breite|späte|heute)n?")
_GERMAN_PERFECT_AUXILIARY = re.compile(r"\b(hat|haben|habe|hast|habt|ist|sind|bin|bist|seid)\b")


def in_present_tense(question: str, language: str) -> bool:
    """True unless the question holds a past or future form (the module's rules)."""
    if language != "de":
        return not _ENGLISH_NOT_PRESENT.search(question)
    words = re.findall(r"[^\W\d]+", question)
    if _GERMAN_NOT_PRESENT.search(question):
        return False
    if any(w.islower() and w.endswith(("te", "ten")) and not _NOT_VERBS.fullmatch(w) for w in words):
        return False
    last = words[-1] if words else ""
    return not (_GERMAN_PERFECT_AUXILIARY.search(question) and last.islower() and last.endswith(("t", "en")))
