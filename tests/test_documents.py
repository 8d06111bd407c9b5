from pathlib import Path

from conftest import AGREEMENTS_DOC, VISIT_DOC
from rag.documents import clean_article, load_documents


def test_seed_articles_lose_page_furniture_but_keep_sentences(seeds):
    report = load_documents([seeds])
    docs = {d.doc_id: d for d in report.documents}
    assert set(docs) == {AGREEMENTS_DOC, VISIT_DOC} and not report.skipped
    visit = docs[VISIT_DOC].text
    assert "\nAd\n" not in visit and not visit.endswith("Ad")
    assert "Mehr zum Thema" not in visit and "PutinXi" not in visit
    assert "•" not in visit
    assert "Putin will vermehrt mit China zusammenarbeiten, was das Militär angeht." in visit
    assert "SPUTNIK/AFP" not in visit and "Keystone" not in visit
    assert visit.rstrip().endswith("zuletzt haben sich die beiden bei einem Gipfel in Usbekistan im Herbst getroffen.")


def test_leading_date_line_becomes_metadata(seeds):
    doc = {d.doc_id: d for d in load_documents([seeds]).documents}[AGREEMENTS_DOC]
    assert doc.date == "2025-09-02"
    assert doc.text.startswith('Die Beziehungen seien auf einem "beispiellos hohen Niveau"')


def test_clean_article_keeps_a_sentence_that_merely_contains_a_dash():
    text, date = clean_article("Putin wird - wie Kim auch - am Mittwoch kommen.\nAd\n")
    assert text == "Putin wird - wie Kim auch - am Mittwoch kommen." and date is None


def test_bad_files_are_skipped_with_a_reason_and_the_rest_is_loaded(tmp_path):
    (tmp_path / "good.txt").write_text("Ein Satz.")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "latin1.md").write_bytes("Stra\xdfe".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("Ad\n")
    report = load_documents([tmp_path])
    assert [d.doc_id for d in report.documents] == ["good"]
    reasons = {Path(p).name: r for p, r in report.skipped}
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.md"]
    assert "no article text" in reasons["empty.txt"]


def test_duplicate_ids_from_two_folders_keep_the_first(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.txt").write_text(f"Text {folder}.")
    report = load_documents([tmp_path / "a", tmp_path / "b"])
    assert [d.text for d in report.documents] == ["Text a."]
    assert "duplicate document id" in report.skipped[0][1]
