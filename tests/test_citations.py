from rag.answer.citations import find_quote, resolve_citations
from rag.text.chunking import Chunk
from rag.text.documents import Document
from rag.text.markers import cited_numbers

TEXT = ("Die Präsidenten trafen sich in Peking. Beide Seiten unterzeichneten mehr als 20 Abkommen.\n"
        "Putin lud Xi im Frühling nach Moskau ein.")
DOC = Document("d", TEXT, "d.txt", "0", "2025-01-01")
FIRST = Chunk("d", "d#0", 0, 91, TEXT[0:91])
SECOND = Chunk("d", "d#1", 92, len(TEXT), TEXT[92:])


def test_markers_map_to_sources_and_quotes_stand_at_their_offsets():
    result = resolve_citations("Mehr als 20 Abkommen [1].", [FIRST, SECOND], {"d": DOC}, "Wie viele Abkommen?")
    assert result.invented == []
    [citation] = result.citations
    assert (citation.number, citation.chunk_id, citation.verified) == (1, "d#0", True)
    assert TEXT[citation.start:citation.end] == citation.quote == \
        "Beide Seiten unterzeichneten mehr als 20 Abkommen."


def test_invented_numbers_are_dropped_and_reported():
    result = resolve_citations("In Moskau [2][7].", [FIRST, SECOND], {"d": DOC}, "Wohin?")
    assert result.invented == [7]
    assert [c.number for c in result.citations] == [2]
    assert "[7]" not in result.text and "[2]" in result.text


def test_a_wrong_number_moves_to_the_source_that_supports_the_answer():
    result = resolve_citations("Moskau, im Frühling [1].", [FIRST, SECOND], {"d": DOC}, "Wohin lud Putin Xi ein?")
    [citation] = result.citations
    assert (citation.number, citation.cited_as, citation.chunk_id) == (2, 1, "d#1")
    assert result.text == "Moskau, im Frühling [2]."


def test_between_equally_related_sources_the_nearer_in_meaning_is_cited():
    # "Spring" shares no word with "im Frühling": both sentences share only "Putin" and "Xi"
    heading = Chunk("d", "d#0", 0, 13, "Putin und Xi.")
    visit = Chunk("d", "d#1", 14, 46, "Putin lud Xi im Frühling ein.")
    doc = Document("d", "Putin und Xi. Putin lud Xi im Frühling ein.", "d.txt", "0", None)
    by_meaning = lambda texts, text: [0.8 if "Frühling" in t else 0.2 for t in texts]  # noqa: E731 - as an embedder would
    moved = resolve_citations("Spring [1]", [heading, visit], {"d": doc}, "In which season did Putin invite Xi?",
                              nearness=by_meaning)
    [citation] = moved.citations
    assert (citation.number, citation.cited_as, citation.quote) == (2, 1, "Putin lud Xi im Frühling ein.")
    kept = resolve_citations("Spring [1]", [heading, visit], {"d": doc}, "In which season did Putin invite Xi?")
    assert kept.citations[0].number == 1, "without a measure of meaning the model's number stands"


def test_a_source_unrelated_to_the_answer_is_not_verified():
    unrelated = Chunk("d", "d#0", 0, 38, TEXT[0:38])
    result = resolve_citations("Zwölf Bananen [1].", [unrelated], {"d": DOC}, "Wie viele Bananen?")
    assert [c.verified for c in result.citations] == [False]


def test_cited_numbers_keep_first_appearance_order():
    assert cited_numbers("a [2] b [1, 2] c [3;1]") == [2, 1, 3]


def test_find_quote_tolerates_case_space_quotes_dashes_and_line_break_hyphens():
    text = "Er sagte: „Wir  kommen – bald.“ Die Zusammen-\narbeit wächst."
    assert find_quote(text, '"wir kommen - bald."') == (10, 31)
    start, end = find_quote(text, "zusammenarbeit wächst")
    assert text[start:end] == "Zusammen-\narbeit wächst"
    assert find_quote(text, "Wir gehen") is None
    assert find_quote(text, "wir kommen", start=20) is None


def near_peking(sentences: list[str], text: str) -> list[float]:
    """What a multilingual embedder would say of "Beijing": the sentence naming Peking is nearest."""
    return [0.9 if "Peking" in s else 0.1 for s in sentences]


def test_an_answer_sharing_no_word_with_its_source_quotes_the_sentence_nearest_in_meaning():
    # "Beijing" and "Where did they meet?" share no term with "Die Präsidenten trafen sich in Peking."
    [citation] = resolve_citations("Beijing [1]", [FIRST], {"d": DOC}, "Where did they meet?",
                                   nearness=near_peking, quote_by_meaning=True).citations
    assert citation.verified and citation.quote == "Die Präsidenten trafen sich in Peking."
    assert TEXT[citation.start:citation.end] == citation.quote
    [unchecked] = resolve_citations("Beijing [1]", [FIRST], {"d": DOC}, "Where did they meet?",
                                    nearness=near_peking).citations
    assert not unchecked.verified, "unless asked to quote by meaning, nothing backs it"


def test_an_unmarked_answer_sharing_no_word_cites_the_source_nearest_in_meaning():
    result = resolve_citations("Beijing", [SECOND, FIRST], {"d": DOC}, "Where did they meet?",
                               nearness=near_peking, quote_by_meaning=True)
    [citation] = result.citations
    assert (citation.number, citation.cited_as, citation.verified) == (2, None, True)
    assert citation.quote == "Die Präsidenten trafen sich in Peking." and result.text == "Beijing [2]"
    unmarked = resolve_citations("Beijing", [SECOND, FIRST], {"d": DOC}, "Where did they meet?", nearness=near_peking)
    assert unmarked.citations == [] and unmarked.text == "Beijing", "unless asked to quote by meaning, none"


def test_a_quote_found_by_shared_terms_is_not_replaced_by_meaning():
    [citation] = resolve_citations("Mehr als 20 Abkommen [1].", [FIRST], {"d": DOC}, "How many agreements?",
                                   nearness=near_peking, quote_by_meaning=True).citations
    assert citation.verified and citation.quote == "Beide Seiten unterzeichneten mehr als 20 Abkommen."


def test_a_count_quotes_the_sentence_that_states_it_in_words_not_a_digit_elsewhere():
    text = ("Denver erhielt eine 24-10 Führung mit 3:08 verbleibenden Minuten. "
            "Denvers Offensive wurde für drei Spielzüge aus der Endzone herausgehalten.")
    doc = Document("d", text, "d.txt", "0", None)
    chunk = Chunk("d", "d#0", 0, len(text), text)
    result = resolve_citations("3 [1]", [chunk], {"d": doc}, "Wie viele Spielzüge wurde Denver aus der Endzone gehalten?")
    [citation] = result.citations
    assert citation.verified and citation.quote.startswith("Denvers Offensive wurde für drei Spielzüge")
