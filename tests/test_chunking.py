import pytest
from fakes import FakeEmbedder

from rag.text.chunking import ChunkerSettings, chunk_document, split_sentences
from rag.text.documents import Document, load_documents


@pytest.mark.parametrize("text, expected", [
    ("Er kam z. B. am 3. März an. Sie ging.", ["Er kam z. B. am 3. März an.", "Sie ging."]),
    ("Haus Nr. 5 brannte. Dr. Müller half.", ["Haus Nr. 5 brannte.", "Dr. Müller half."]),
    ("Zum 80. Jahrestag kamen 26 Gäste. Danach ging es los.", ["Zum 80. Jahrestag kamen 26 Gäste.", "Danach ging es los."]),
    ("Das geschah Anfang 2022. Die Lage blieb.", ["Das geschah Anfang 2022.", "Die Lage blieb."]),
    ("Es gab u. a. Brot, d. h. genug. Prof. Meier sprach.", ["Es gab u. a. Brot, d. h. genug.", "Prof. Meier sprach."]),
    ("«Wir kommen.» Er sagte es laut! Wirklich?", ["«Wir kommen.»", "Er sagte es laut!", "Wirklich?"]),
    ("Er verdiente 5 Mio. Euro im Jahr.", ["Er verdiente 5 Mio. Euro im Jahr."]),
    ("Er wurde Nr. 1. Das war gut.", ["Er wurde Nr. 1.", "Das war gut."]),
    ("Überschrift ohne Punkt\nErster Satz.", ["Überschrift ohne Punkt", "Erster Satz."]),
])
def test_german_sentence_splitter(text, expected):
    spans = split_sentences(text)
    assert [s.text for s in spans] == expected
    assert all(text[s.start:s.end] == s.text for s in spans)


def test_chunk_offsets_reproduce_the_text_and_respect_the_token_budget(seeds):
    embedder = FakeEmbedder(max_tokens=64)
    settings = ChunkerSettings(max_tokens=40, overlap_tokens=10)
    for doc in load_documents([seeds]).documents:
        chunks = chunk_document(doc, embedder.count_tokens, settings)
        assert len(chunks) > 3
        for chunk in chunks:
            assert doc.text[chunk.start:chunk.end] == chunk.text
            assert embedder.count_tokens(chunk.text) <= settings.max_tokens
        # Every sentence is in some chunk, and consecutive chunks overlap or touch.
        covered = set()
        for c in chunks:
            covered.update(range(c.start, c.end))
        for s in split_sentences(doc.text):
            assert set(range(s.start, s.end)) <= covered
        assert any(b.start < a.end for a, b in zip(chunks, chunks[1:])), "some overlap expected"
        assert [c.chunk_id for c in chunks] == [f"{doc.doc_id}#{i}" for i in range(len(chunks))]


def test_a_sentence_longer_than_the_budget_is_cut_at_words():
    text = " ".join(f"Wort{i}" for i in range(100)) + "."
    doc = Document("long", text, "long.txt", "0")
    chunks = chunk_document(doc, lambda t: len(t.split()), ChunkerSettings(max_tokens=30, overlap_tokens=0))
    assert all(len(c.text.split()) <= 30 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_settings_are_validated_at_construction():
    with pytest.raises(ValueError):
        ChunkerSettings(max_tokens=8)
    with pytest.raises(ValueError):
        ChunkerSettings(max_tokens=100, overlap_tokens=60)
