import json

import pytest
from fakes import FakeEmbedder, FakeGenerator

from rag.app.pipeline import answerer_for
from rag.errors import RagError
from rag.quality.xquad import answer_benchmark, load_xquad, read_results
from rag.text.chunking import ChunkerSettings

PARAGRAPHS = [
    "Die Stadt Ulm liegt an der Donau. Das Ulmer Münster hat den höchsten Kirchturm der Welt mit 161 Metern.",
    "Der Bodensee ist der größte See Deutschlands. Am Ufer liegt die Stadt Konstanz mit ihrer Universität.",
]
QUESTIONS = [  # (paragraph, German question, German gold, English question, English gold)
    (0, "Wie hoch ist der Kirchturm des Ulmer Münsters?", "161 Metern", "How tall is the spire of Ulm Minster?",
     "161 metres"),
    (1, "Welche Stadt liegt am Ufer des Bodensees?", "Konstanz", "Which city lies on the shore of Lake Constance?",
     "Konstanz"),
]


def write_xquad(folder):
    """A two-paragraph XQuAD in its published layout (same ids and order in both files), loaded."""
    for lang, question_at, gold_at in (("de", 1, 2), ("en", 3, 4)):
        paragraphs = [{"context": text, "qas": [
            {"id": f"q{n}", "question": q[question_at], "answers": [{"text": q[gold_at], "answer_start": 0}]}
            for n, q in enumerate(QUESTIONS) if q[0] == p]} for p, text in enumerate(PARAGRAPHS)]
        (folder / f"xquad.{lang}.dev.json").write_text(json.dumps({"data": [{"paragraphs": paragraphs}]}))
    return load_xquad(folder)


@pytest.fixture
def xquad(tmp_path):
    return write_xquad(tmp_path)


def replies_from_sources(messages) -> str:
    """The answer an ideal reader gives: the gold fact, cited to the source that holds it."""
    user = messages[-1]["content"]
    if messages[0]["content"].startswith("Translate"):
        return user  # the fake translates nothing
    if "Question:" not in user:
        return "yes"
    sources, question = user.split("Question:")
    fact = "161 Metern" if "Kirchturm" in question or "spire" in question else "Konstanz"
    if fact not in sources:
        return "unknown [1]"
    return f"{fact} [{sources.split(fact)[0].count(chr(10) + '[')}]"


def run(xquad, generator, **kwargs):
    embedder = FakeEmbedder()
    return answer_benchmark(xquad, lambda index: answerer_for(index, embedder, generator), embedder,
                            ChunkerSettings(max_tokens=40, overlap_tokens=8), limit=None, **kwargs)


def test_scores_are_computed_per_language(xquad):
    rows = run(xquad, FakeGenerator(replies_from_sources))
    by_lang = {row.language: row for row in rows}
    assert by_lang["de"].questions == 2
    assert by_lang["de"].exact_match == 1.0 and by_lang["de"].f1 == 1.0
    assert by_lang["de"].citation_precision == 1.0 and by_lang["de"].verified_rate == 1.0
    # English gold "161 metres" against the German answer "161 Metern": half the tokens, no exact match.
    assert by_lang["en"].exact_match == 0.5
    assert by_lang["en"].f1 == pytest.approx((0.5 + 1.0) / 2)


def test_results_file_resumes_without_answering_again(xquad, tmp_path):
    results = tmp_path / "results.jsonl"
    first = run(xquad, FakeGenerator(replies_from_sources), results=results)
    lines = results.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "rag-bench-answers" and len(lines) == 1 + 4

    silent = FakeGenerator(lambda messages: pytest.fail("an answer already in the results file was asked again"))
    assert run(xquad, silent, results=results) == first
    assert silent.calls == []


def test_torn_last_line_is_answered_again(xquad, tmp_path):
    results = tmp_path / "results.jsonl"
    run(xquad, FakeGenerator(replies_from_sources), results=results)
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # a crash in the middle of the last line

    generator = FakeGenerator(replies_from_sources)
    rows = run(xquad, generator, results=results)
    assert generator.calls, "the torn answer was not asked again"
    assert {row.language: row.exact_match for row in rows}["en"] == 0.5
    assert len(read_results(results, json.loads(lines[0])["identity"])) == 4


def test_results_of_another_setup_are_refused(xquad, tmp_path):
    results = tmp_path / "results.jsonl"
    run(xquad, FakeGenerator(replies_from_sources), results=results)
    other_model = FakeGenerator(replies_from_sources)
    other_model.model_id = "another-generator@2"
    with pytest.raises(RagError, match="another setup.*models"):
        run(xquad, other_model, results=results)


def test_the_index_benchmark_measures_every_operation_at_each_size(xquad):
    from rag.quality.indexbench import run_index_bench

    paragraphs = list(xquad.paragraphs.values())
    rows = run_index_bench([20, 60], paragraphs, [q.question["de"] for q in xquad.questions])
    assert [r["chunks"] for r in rows][0] < [r["chunks"] for r in rows][1]
    for row in rows:
        assert row["documents"] >= 1 and row["build_seconds"] > 0
        assert 0 < row["add_one_seconds"] < 5 and 0 < row["remove_one_seconds"] < 5 and 0 < row["open_seconds"] < 5
        assert all(0 < row["query_ms"][m]["p50"] <= row["query_ms"][m]["p95"] for m in ("dense", "lexical", "hybrid", "dense in a month",
                                                                        "lexical in a month", "hybrid in a month"))
        assert row["disk_bytes"] > row["vector_bytes"] == row["chunks"] * 384 * 4 and row["resident_bytes"] > 0
