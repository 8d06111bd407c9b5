import json
import re

import pytest
from conftest import AGREEMENTS_DOC, VISIT_DOC
from fakes import FakeEmbedder, FakeGenerator
from typer.testing import CliRunner

from rag.app import pipeline
from rag.app.cli import app

runner = CliRunner()


@pytest.fixture
def fakes(monkeypatch):
    """The CLI with deterministic models; returns the generator to script its replies."""
    generator = FakeGenerator("Mehr als 20 Abkommen [1].")
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    monkeypatch.setattr(pipeline, "make_generator", lambda path=None, progress=None, server=None: generator)
    return generator


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_index_then_ask_json(fakes, seeds, tmp_path):
    idx = tmp_path / "idx"
    result = run("index", seeds, "--index", idx)
    assert result.exit_code == 0, result.output
    assert "indexed 2 documents" in result.stdout
    again = run("index", seeds, "--index", idx)
    assert "up to date" in again.stdout and "nothing to embed" in again.stdout
    result = run("ask", "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?", "--index", idx, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["citations"][0]["doc_id"] == AGREEMENTS_DOC
    assert set(data["citations"][0]) >= {"doc_id", "chunk_id", "start", "end", "quote"}
    assert data["models"]["generator"] == "fake-generator@1"


def test_ask_prints_the_answer_and_lists_sources(fakes, seeds, tmp_path):
    run("index", seeds, "--index", tmp_path / "idx")
    result = run("ask", "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?", "--index", tmp_path / "idx")
    assert result.exit_code == 0
    assert re.match(r"Mehr als 20 \[\d\]\n", result.stdout)
    assert re.search(rf"\[\d\] {AGREEMENTS_DOC}, 2025-09-02", result.stdout)


def test_invented_citation_is_reported(fakes, seeds, tmp_path):
    fakes.reply = "Mehr als 20 Abkommen [1][9]."
    run("index", seeds, "--index", tmp_path / "idx")
    result = run("ask", "Wie viele Abkommen?", "--index", tmp_path / "idx")
    assert result.exit_code == 0, result.output
    assert "dropped citation [9]" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["ask", "Wie viele?", "--index", "{tmp}/none"], "no index at"),
    (["ask", "   ", "--index", "{tmp}/idx"], "the question is empty"),
    (["index", "{tmp}/missing-folder", "--index", "{tmp}/idx"], "does not exist"),
    (["ask", "Wie?", "--retrieval", "magic", "--index", "{tmp}/idx"], "retrieval mode must be one of"),
])
def test_user_errors_are_one_line_without_traceback(fakes, seeds, tmp_path, args, message):
    run("index", seeds, "--index", tmp_path / "idx")
    result = run(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert message in result.stderr
    # CliRunner keeps an uncaught exception in result.exception (exit 1); a clean exit 2 is a SystemExit.
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.count("\n") == 1, result.stderr


def test_index_built_with_another_embedder_is_refused(monkeypatch, fakes, seeds, tmp_path):
    run("index", seeds, "--index", tmp_path / "idx")
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(model_id="other@2", max_tokens=256))
    result = run("ask", "Wie viele?", "--index", tmp_path / "idx")
    assert result.exit_code == 2 and "was built with embedder fake-embedder@1" in result.stderr


def test_missing_or_corrupted_model_file_is_a_clear_error(seeds, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    run("index", seeds, "--index", tmp_path / "idx")
    result = run("ask", "Wie viele?", "--index", tmp_path / "idx", "--model", tmp_path / "nope.gguf")
    assert result.exit_code == 2 and "does not exist" in result.stderr
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all")
    monkeypatch.setenv("RAG_MODEL", str(junk))
    result = run("ask", "Wie viele?", "--index", tmp_path / "idx")
    assert result.exit_code == 2 and "is not a GGUF file" in result.stderr


def test_bad_input_files_are_skipped_and_named(fakes, seeds, tmp_path):
    (seeds / "broken.txt").write_bytes(b"\x00\xff\x00")
    result = run("index", seeds, "--index", tmp_path / "idx")
    assert result.exit_code == 0
    assert "skipped" in result.stderr and "broken.txt" in result.stderr
    assert "indexed 2 documents" in result.stdout


def test_batch_writes_one_object_per_valid_line_and_resumes(fakes, seeds, tmp_path):
    run("index", seeds, "--index", tmp_path / "idx")
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "Wie viele Abkommen?", "topic": "x"}\n'
                         '{"id": "b", "question": broken\n'
                         '{"id": "c", "question": "Wohin lud Putin Xi ein?"}\n')
    out = tmp_path / "out.jsonl"
    result = run("batch", questions, "-o", out, "--index", tmp_path / "idx")
    assert result.exit_code == 1
    assert "q.jsonl:2" in result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["a", "c"]
    assert lines[0]["topic"] == "x" and "citations" in lines[0] and "answer" in lines[0]
    assert "questions per minute" in result.stdout
    calls = len(fakes.calls)
    rerun = run("batch", questions, "-o", out, "--index", tmp_path / "idx")
    assert len(fakes.calls) == calls and len(out.read_text().splitlines()) == 2
    assert "already in" in rerun.stdout and "questions per minute" not in rerun.stdout


def test_piped_ask_prints_only_the_checked_answer(fakes, seeds, tmp_path):
    fakes.reply = "20 Abkommen [1]."
    run("index", seeds, "--index", tmp_path / "idx")
    result = run("ask", "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?", "--index", tmp_path / "idx")
    assert result.exit_code == 0, result.output
    assert re.match(r"mehr als 20 \[\d\]\n\nSources:\n", result.stdout)
    assert "20 Abkommen" not in result.stdout  # the model's draft is not a second answer
    assert "As of 2025-09-02 (the newest article cited)" in result.stdout


def test_a_withdrawn_answer_is_the_refusal_and_one_line_saying_why(fakes, seeds, tmp_path):
    fakes.reply, fakes.support = "26 [1]", 0.1
    run("index", seeds, "--index", tmp_path / "idx")
    result = run("ask", "Wie viele Staats- und Regierungschefs kommen zur Parade?", "--index", tmp_path / "idx")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("Die Quellen beantworten diese Frage nicht.\n"
                             "(withdrawn: the sources support the model's answer too weakly (support 0.10))\n")


def test_a_number_not_in_the_sources_is_named_when_the_answer_is_withdrawn(fakes, seeds, tmp_path):
    fakes.reply = "Mehr als 200 Abkommen [1]."
    run("index", seeds, "--index", tmp_path / "idx")
    result = run("ask", "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?", "--index", tmp_path / "idx")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Die Quellen beantworten diese Frage nicht.\n(withdrawn: 200 is not in the sources)\n"


@pytest.mark.parametrize("command", ["ask", "batch"])
def test_min_support_decides_which_answers_stand(fakes, seeds, tmp_path, command):
    fakes.support = 0.5  # the support check's verdict on every answer
    run("index", seeds, "--index", tmp_path / "idx")
    question = "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?"
    (tmp_path / "q.txt").write_text(question + "\n")

    def abstained(*options) -> bool:
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}.jsonl"  # a new file: batch skips answered ids
        args = ["ask", question, "--json"] if command == "ask" else ["batch", tmp_path / "q.txt", "-o", out]
        result = run(*args, "--index", tmp_path / "idx", *options)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout if command == "ask" else out.read_text())["abstained"]

    assert not abstained() and not abstained("--min-support", 0.5)
    assert abstained("--min-support", 0.6)


def test_min_support_outside_0_to_1_is_refused(fakes, seeds, tmp_path):
    result = run("ask", "Wie viele?", "--min-support", 1.5)
    assert result.exit_code == 2 and "--min-support" in result.output and "Traceback" not in result.output


def test_index_reports_what_changed_and_remove_takes_ids(fakes, seeds, tmp_path):
    idx = tmp_path / "idx"
    run("index", seeds, "--index", idx)
    (tmp_path / "more").mkdir()
    extra = tmp_path / "more" / "009_pinguine.txt"
    extra.write_text("Der Zoo von Leipzig bekam drei Pinguine aus Chile.", encoding="utf-8")
    added = run("index", "--add", extra, "--index", idx)
    assert added.exit_code == 0 and "indexed 3 documents" in added.stdout and "added or changed 1" in added.stdout
    (seeds / f"{AGREEMENTS_DOC}.txt").unlink()
    synced = run("index", seeds, "--index", idx)
    assert "indexed 2 documents" in synced.stdout and "removed 1" in synced.stdout
    listed = run("documents", "--index", idx, "--json")
    assert [json.loads(line)["doc_id"] for line in listed.stdout.splitlines()] == [VISIT_DOC, "009_pinguine"]
    removed = run("remove", "009_pinguine", "--index", idx)
    assert removed.exit_code == 0 and re.match(r"removed 1 document \(1 chunk\) from ", removed.stdout)
    unknown = run("remove", "009_pinguine", "--index", idx)
    assert unknown.exit_code == 2 and "no document '009_pinguine' in the index" in unknown.stderr
    from rag.store.sqlite import open_index

    assert open_index(idx).lexical_search("Pinguine Leipzig", 5) == []


def test_index_skips_bad_files_with_reasons_and_indexes_the_rest(fakes, seeds, tmp_path):
    (seeds / "empty.txt").write_bytes(b"")
    (seeds / "windows.txt").write_bytes("Grüße aus Köln über die Straßenbahn.".encode("cp1252"))
    (seeds / "loop.txt").symlink_to(seeds / "loop.txt")
    (seeds / "big.txt").write_text("Ein Satz. " * 200_000)  # 2 MB
    result = run("index", seeds, "--index", tmp_path / "idx", "--max-file-mb", "1")
    assert result.exit_code == 0, result.output
    assert "indexed 3 documents" in result.stdout
    assert re.search(r"skipped \S*empty.txt: empty file", result.stderr)
    assert re.search(r"skipped \S*loop.txt: symbolic link loop", result.stderr)
    assert re.search(r"skipped \S*big.txt: 2.0 MB, above the limit of 1 MB", result.stderr)
    assert re.search(r"\S*windows.txt: read as Windows-1252", result.stderr)


def test_a_second_writer_with_no_wait_fails_in_one_line(fakes, seeds, tmp_path):
    from rag.store.locking import writer_lock

    run("index", seeds, "--index", tmp_path / "idx")
    with writer_lock(tmp_path / "idx"):
        result = run("index", seeds, "--index", tmp_path / "idx", "--no-wait")
        removed = run("remove", AGREEMENTS_DOC, "--index", tmp_path / "idx", "--no-wait")
    for outcome in (result, removed):
        assert outcome.exit_code == 2 and "another rag is writing the index at" in outcome.stderr
        assert "Traceback" not in outcome.output


def test_an_old_format_index_says_how_to_convert_it(fakes, seeds, tmp_path):
    (tmp_path / "idx" / "gen-000001").mkdir(parents=True)
    (tmp_path / "idx" / "CURRENT").write_text("gen-000001\n")
    result = run("ask", "Wie viele?", "--index", tmp_path / "idx")
    assert result.exit_code == 2 and "older rag (version 1); run `rag index` on its articles" in result.stderr


def test_ctrl_c_while_embedding_leaves_the_index_as_it_was(monkeypatch, fakes, seeds, tmp_path):
    run("index", seeds, "--index", tmp_path / "idx")

    class Interrupted(FakeEmbedder):
        def embed(self, texts):
            raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: Interrupted(max_tokens=256))
    (seeds / "009_pinguine.txt").write_text("Der Zoo von Leipzig bekam drei Pinguine.", encoding="utf-8")
    result = run("index", seeds, "--index", tmp_path / "idx")
    assert result.exit_code == 130 and "interrupted: the index at" in result.stderr
    from rag.store.sqlite import open_index

    assert "009_pinguine" not in open_index(tmp_path / "idx").documents
