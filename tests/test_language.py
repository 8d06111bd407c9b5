import pytest

from rag.text.language import detect_language


@pytest.mark.parametrize("question", [
    "In welchem Jahr unterzeichneten beide Seiten das Abkommen?",  # "in" is German too
    "In welchen Bereichen wurden Abkommen geschlossen?",
    "Wer hat den Bericht The State of the World verfasst?",  # an English title inside
    "Was machten einige Delegationen?",
    "Wie oft reiste Xi nach Moskau?",
    "Was behinderte Xis Reise?",  # only "was", which both languages have: the ending "-te" decides
    "Was bedeutet „Nichteinmischung“?",
    "Was war Xinhua?",
])
def test_german_questions_are_german(question):
    assert detect_language(question) == "de"


@pytest.mark.parametrize("question", [
    "How many agreements were signed?",
    "Was the agreement signed in Moscow?",
    "In which year did the parade take place?",
    "Who won the war?",
    "When did he die?",
    "Was Xi invited?",
    "When did England declare war?",
])
def test_english_questions_are_english(question):
    assert detect_language(question) == "en"
