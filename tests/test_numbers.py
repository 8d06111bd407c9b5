import pytest

from rag.text.numbers import restore_qualifiers, spell_as_sources_do

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


FUMBLES = "Thomas Davis erzwang in der Saison vier Fumbles."


@pytest.mark.parametrize("answer, quotes, language, expected", [
    ("4 [1]", [FUMBLES], "de", "vier [1]"),  # the quote's own word
    ("4 Fumbles [1]", [FUMBLES], "en", "four Fumbles [1]"),
    ("26 [1]", ["Es kamen sechsundzwanzig Gäste."], "de", "sechsundzwanzig [1]"),
    ("26 [1]", ["Es kamen sechsundzwanzig Gäste."], "en", "twenty-six [1]"),
    ("4 [1]", ["Vier Spieler schossen 4 Tore."], "de", "4 [1]"),  # digits in the source too: as the model wrote
    ("4 [1]", [FUMBLES, "Vierzehn Spiele, vier Siege."], "de", "vier [1]"),  # the same word twice
    ("3 [1]", [FUMBLES], "de", "3 [1]"),  # not in the quotes: the number check's business, not this one's
    ("1 [1]", ["Ein Spieler und eins."], "de", "1 [1]"),  # "ein" is also the article
    ("4:51 [1]", [FUMBLES, "Es blieben 51 Sekunden."], "de", "4:51 [1]"),  # a time, not a count
    ("4% [1]", [FUMBLES], "en", "4% [1]"),
    ("[4]", [FUMBLES], "de", "[4]"),  # a marker is no number of the answer
])
def test_a_number_the_quotes_write_in_words_is_written_in_words(answer, quotes, language, expected):
    assert spell_as_sources_do(answer, quotes, language) == expected


def test_a_restored_qualifier_keeps_the_sources_spelling():
    quotes = ["Beide Seiten unterzeichneten mehr als zwanzig Abkommen."]
    assert spell_as_sources_do(restore_qualifiers("20 [1]", quotes, "de"), quotes, "de") == "mehr als zwanzig [1]"
