import pytest

from rag.numbers import restore_qualifiers

QUOTE = "Demnach unterzeichneten beide Seiten mehr als 20 Kooperationsabkommen."


@pytest.mark.parametrize("answer, quotes, language, expected", [
    ("20 [2]", [QUOTE], "en", "more than 20 [2]"),
    ("20 Abkommen [1]", [QUOTE], "de", "mehr als 20 Abkommen [1]"),
    ("mehr als 20 [1]", [QUOTE], "de", "mehr als 20 [1]"),  # already qualified
    ("more than 20 [1]", [QUOTE], "en", "more than 20 [1]"),
    ("26 [1]", ["Insgesamt werden 26 Staats- und Regierungschefs teilnehmen."], "en", "26 [1]"),  # none in the source
    ("20 [1]", [], "en", "20 [1]"),  # no verified quote, nothing to copy
    ("20 [1]", [QUOTE, "Rund 20 Minister reisten an."], "en", "20 [1]"),  # the sources disagree: leave it
    ("2025-09-02 [1]", ["Am 2025-09-02 kamen mehr als 2025 Gäste."], "en", "2025-09-02 [1]"),  # dates stay
])
def test_a_dropped_qualifier_is_copied_from_the_cited_quote(answer, quotes, language, expected):
    assert restore_qualifiers(answer, quotes, language) == expected
