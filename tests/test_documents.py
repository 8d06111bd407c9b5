import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import AGREEMENTS_DOC, VISIT_DOC

from rag.text.documents import clean_article, load_documents


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


def make_bad_and_good_files(folder: Path) -> None:
    """Beside two good articles, every kind of file a real folder of articles turns up."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.txt").write_text("Der Zoo von Leipzig bekam drei Pinguine.", encoding="utf-8")
    (folder / "also_good.md").write_text("Ein zweiter guter Artikel über Kraniche.", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.txt").write_text("Ad\n")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (folder / "windows.txt").write_bytes("Grüße aus Köln: Straßenbahn fährt.".encode("cp1252"))
    (folder / "utf16.txt").write_bytes("Grüße aus Köln über UTF-16.".encode("utf-16"))  # with its BOM
    (folder / "damaged_utf8.txt").write_bytes("Grüße aus Köln, ".encode() * 20 + b"\xff ein kaputtes Byte.")
    (folder / "not_text.txt").write_bytes(b"\x81\x8d\x8f\x90\x9d" * 10)
    with open(folder / "huge.txt", "wb") as f:  # 50 MB: sparse, so the test costs no disk
        f.truncate(50_000_000)
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    (folder / "dangling.txt").symlink_to(folder / "gone.txt")
    os.mkfifo(folder / "pipe.txt")  # reading it would block forever
    (folder / "locked.txt").write_text("Geheim.")
    (folder / "locked.txt").chmod(0)


EXPECTED_SKIPS = {
    "empty.txt": "empty file", "blank.txt": "no article text", "binary.txt": "binary file",
    "not_text.txt": "not text: neither UTF-8", "huge.txt": "50.0 MB, above the limit of 5 MB",
    "loop.txt": "symbolic link loop", "dangling.txt": "broken symbolic link", "pipe.txt": "not a regular file",
    "locked.txt": "unreadable (Permission denied)",
}
EXPECTED_NOTES = {"windows": ("Grüße aus Köln: Straßenbahn", "read as Windows-1252"),
                  "utf16": ("Grüße aus Köln über UTF-16.", "read as UTF-16"),
                  "damaged_utf8": ("Grüße aus Köln, Grüße", "replaced 1 invalid UTF-8 byte")}


def load_as_unprivileged_user(folder: Path) -> dict:
    """load_documents in a process that file permissions apply to (root reads a file of mode 000)."""
    script = ("import json, os, sys; from pathlib import Path; from rag.text.documents import load_documents; "
              "import encodings.utf_8_sig, encodings.utf_16, encodings.cp1252; "  # codecs load lazily
              "os.geteuid() == 0 and os.setuid(65534); "  # after the imports: the interpreter lives under /root
              "r = load_documents([Path(sys.argv[1])]); "
              "print(json.dumps({'docs': {d.doc_id: [d.text, d.note] for d in r.documents}, "
              "'skipped': {Path(p).name: why for p, why in r.skipped}}))")
    done = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_bad_files_are_skipped_with_their_reason_and_the_rest_is_read():
    top = Path(tempfile.mkdtemp())  # not under pytest's private tmp: the unprivileged reader must get in
    try:
        top.chmod(0o755)
        make_bad_and_good_files(top / "articles")
        (top / "articles").chmod(0o755)
        result = load_as_unprivileged_user(top / "articles")
    finally:
        shutil.rmtree(top)
    for name, reason in EXPECTED_SKIPS.items():
        assert reason in result["skipped"].get(name, ""), (name, result["skipped"])
    assert set(result["skipped"]) == set(EXPECTED_SKIPS)
    assert set(result["docs"]) == {"good", "also_good", *EXPECTED_NOTES}
    for doc_id, (start, note) in EXPECTED_NOTES.items():
        assert result["docs"][doc_id][0].startswith(start) and result["docs"][doc_id][1] == note
    assert result["docs"]["good"][1] is None


def test_the_size_limit_is_a_setting(tmp_path):
    (tmp_path / "big.txt").write_text("Ein langer Satz über Pinguine. " * 40_000)  # 1.3 MB (ü is two bytes)
    assert load_documents([tmp_path], max_file_mb=1).skipped[0][1].startswith("1.3 MB, above the limit of 1 MB")
    assert [d.doc_id for d in load_documents([tmp_path], max_file_mb=2).documents] == ["big"]


def test_duplicate_ids_from_two_folders_keep_the_first(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.txt").write_text(f"Text {folder}.")
    report = load_documents([tmp_path / "a", tmp_path / "b"])
    assert [d.text for d in report.documents] == ["Text a."]
    assert "duplicate document id" in report.skipped[0][1]
