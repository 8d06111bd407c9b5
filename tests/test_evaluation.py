import json

import pytest
from conftest import ROOT
from fakes import FakeEmbedder, FakeGenerator
from typer.testing import CliRunner

from rag.app import pipeline
from rag.app.cli import app
from rag.quality.gate import CROSS_BUILD_FLIPS, SAME_BUILD, baseline_name, compare_exact, judge
from rag.quality.evaluation import (
    EvalQuestion,
    answer_is_correct,
    load_eval_set,
    number_matches,
    numbers_with_qualifiers,
    score_question,
    settings_note,
    token_f1,
    without_timings,
)


@pytest.mark.parametrize("text, value, qualifier, expected", [
    ("More than 20 agreements were signed.", 20, "more than", True),
    ("20 agreements were signed.", 20, "more than", False),
    ("Es wurden mehr als zwanzig Abkommen unterzeichnet.", 20, "more than", True),
    ("über 20 Abkommen", 20, "more than", True),
    ("sechsundzwanzig Staats- und Regierungschefs", 26, None, True),
    ("twenty-six leaders", 26, None, True),
    ("about 26 leaders", 26, None, False),
    ("Zum 80. Jahrestag", 80, None, True),
    ("the 80th anniversary", 80, None, True),
])
def test_numbers_understand_words_digits_and_qualifiers(text, value, qualifier, expected):
    assert number_matches(text, value, qualifier) is expected


def test_german_article_ein_is_not_the_number_one():
    assert numbers_with_qualifiers("Ein Treffen in Peking") == []


def test_token_f1_drops_german_articles():
    assert token_f1("die Panthers", "Panthers") == 1.0


def test_correctness_rules():
    listed = EvalQuestion("l", "?", "en", True, [], ["d"], ["list"], all_of=[["Peking", "Beijing"], ["Moskau"]])
    assert answer_is_correct(listed, "Beijing and Moskau", False)
    assert not answer_is_correct(listed, "Beijing only", False)
    none = EvalQuestion("u", "?", "en", False, [], [], ["unanswerable"])
    assert answer_is_correct(none, "The sources do not answer this question.", True)
    assert not answer_is_correct(none, "26", False)


def test_scores_citations_and_retrieval_against_sources():
    q = EvalQuestion("a", "?", "en", True, ["Moskau"], ["B"], ["entity"])
    answer = {"answer": "Moskau [1]", "abstained": False, "timings": {"total": 1.0},
              "retrieved": [{"doc_id": "A"}, {"doc_id": "B"}],
              "citations": [{"doc_id": "B", "verified": True}, {"doc_id": "A", "verified": False}]}
    row = score_question(q, answer, k=1)
    assert row["correct"] and row["retrieval_hit"] == 0.0
    assert score_question(q, answer, k=2)["retrieval_hit"] == 1.0
    assert row["citation_precision"] == 1.0 and row["citation_recall"] == 1.0 and row["verified_rate"] == 0.5
    assert [(c["doc_id"], c["verified"]) for c in row["citations"]] == [("B", True), ("A", False)]


def test_gate_names_metric_drops_and_flipped_questions():
    base = {"summary": {"answer_accuracy": 1.0, "citation_precision": 1.0}, "questions": [{"id": "a", "correct": True}]}
    new = {"summary": {"answer_accuracy": 0.5, "citation_precision": 0.99}, "questions": [{"id": "a", "correct": False, "answer": "x"}]}
    problems = compare_exact(new, base)
    assert any("answer_accuracy fell from 1.000 to 0.500" in p for p in problems)
    assert any("question a was answered correctly" in p for p in problems)
    assert not any("citation_precision" in p for p in problems)  # within tolerance


def gate_report(runtime: str, right: set[str], n: int = 60) -> dict:
    """A report of `n` questions of which those in `right` were answered right."""
    rows = [{"id": f"q{i:02d}", "correct": f"q{i:02d}" in right, "answer": "right" if f"q{i:02d}" in right else "wrong"}
            for i in range(n)]
    return {"runtime": runtime, "questions": rows, "summary": {"answer_accuracy": len(right) / n}}


def test_the_gate_holds_each_build_to_its_own_baseline_and_a_new_build_to_all_of_them():
    """Two recorded builds that disagree on 3 knife-edge questions (q00-q02), as the AVX2 and
    AVX-512 builds do: each passes against its own, a third build passes against both, and a
    regression that loses 2 answers fails on all three."""
    settled = {f"q{i:02d}" for i in range(3, 45)}
    avx2, avx512 = gate_report("AVX2", settled | {"q00"}), gate_report("AVX512", settled | {"q01", "q02"})
    recorded = [("avx2.json", avx2), ("avx512.json", avx512)]
    third = gate_report("AVX512 no VNNI", settled | {"q02"})
    for run, rule in ((avx2, SAME_BUILD), (avx512, SAME_BUILD), (third, "another build")):
        verdict = judge(run, recorded)
        assert verdict.rule == rule and verdict.problems == [], verdict
        assert (verdict.held_to == ["avx512.json"]) == (run is avx512)
        regressed = run | {"questions": [r | {"correct": r["correct"] and r["id"] not in {"q10", "q11"}}
                                         for r in run["questions"]],
                           "summary": {"answer_accuracy": run["summary"]["answer_accuracy"] - 2 / 60}}
        problems = judge(regressed, recorded).problems
        assert any("q10" in p for p in problems) and any("q11" in p for p in problems), (rule, problems)
    one_flip = gate_report("AVX512 no VNNI", settled - {"q20"} | {"q00", "q01"})
    assert CROSS_BUILD_FLIPS == 1 and judge(one_flip, recorded).problems == []
    verdict = judge(one_flip, recorded)
    assert "no baseline recorded on this build (AVX512 no VNNI)" in verdict.describe()
    assert "avx2.json, avx512.json" in verdict.describe()


def test_where_the_recorded_builds_agree_a_new_build_may_flip_one_question_and_give_one_more_stale_answer():
    """The temporal set's two builds answer alike: the metric floors leave room for the one flip
    the question rule allows (one question moves a mean over n rows by 1/n), and for one more stale
    answer; two flips, or two more stale answers, fail. On the same build nothing may move."""
    settled = {f"q{i:02d}" for i in range(30)}
    recorded = [(f"{b}.json", gate_report(b, settled, n=43) | {"summary": {"answer_accuracy": 30 / 43, "stale_answers": 1}})
                for b in ("AVX2", "AVX512")]
    for lost, stale, problems in [(set(), 2, []), ({"q05"}, 2, []), ({"q05", "q06"}, 1, 3), (set(), 3, 1)]:
        run = gate_report("AVX512 with AMX", settled - lost, n=43)
        run["summary"] |= {"stale_answers": stale}
        found = judge(run, recorded).problems
        assert len(found) == problems if problems else found == [], (lost, stale, found)
    same = gate_report("AVX2", settled, n=43)
    same["summary"] |= {"stale_answers": 2}
    assert judge(same, recorded).problems == ["stale_answers rose from 1 to 2"]


def test_a_broken_retriever_fails_the_gate_on_any_build():
    settled = {f"q{i:02d}" for i in range(3, 45)}
    recorded = [("avx2.json", gate_report("AVX2", settled)), ("avx512.json", gate_report("AVX512", settled | {"q01"}))]
    for runtime in ("AVX2", "AVX512", "AVX512 no VNNI"):
        problems = judge(gate_report(runtime, set()), recorded).problems
        assert problems[0].startswith("answer_accuracy fell") and len(problems) > 40


def test_baseline_files_are_named_by_the_widest_instructions():
    assert baseline_name("llama-cpp-python 0.3.36 (SSE3 AVX AVX2 FMA)") == "llama-cpp-python-0.3.36-avx2.json"
    assert baseline_name("model server qwen at http://127.0.0.1:8811") == "model-server-qwen-at-http-127.0.0.1-8811.json"


def test_the_committed_evaluation_set_meets_its_spec():
    questions = load_eval_set(ROOT / "eval" / "questions.jsonl")
    tags = [t for q in questions for t in q.tags]
    assert len(questions) >= 30
    assert tags.count("unanswerable") >= 5 and tags.count("german") >= 8 and tags.count("multi-doc") >= 3
    assert all(q.answerable == bool(q.sources) for q in questions)
    assert len({q.id for q in questions}) == len(questions)
    for q in questions:
        if q.answerable:
            assert q.answers or q.all_of or q.number, q.id


def test_eval_cli_passes_then_fails_on_regression(monkeypatch, seeds, tmp_path):
    """The whole gate with fake models: baseline, a clean rerun (exit 0), and k=0 (exit 1)."""
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    monkeypatch.setattr(pipeline, "make_generator", lambda path=None, progress=None, server=None: FakeGenerator(
        lambda messages: "Moskau [1]." if "Moskau" in messages[1]["content"] else ""))
    runner = CliRunner()
    qset = tmp_path / "q.jsonl"
    qset.write_text(json.dumps({"id": "city", "question": "Wohin lud Putin Xi zum Staatsbesuch ein?", "lang": "de",
                                "answerable": True, "answers": ["Moskau"], "sources": ["003_f1e7237187863abb"],
                                "tags": ["german"]}) + "\n")
    common = ["--set", qset, "--index", tmp_path / "idx", "--baseline", tmp_path / "base.json"]
    assert runner.invoke(app, ["index", str(seeds), "--index", str(tmp_path / "idx")]).exit_code == 0
    first = runner.invoke(app, ["eval", *map(str, common), "--report", str(tmp_path / "r1.json"), "--update-baseline"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["eval", *map(str, common), "--report", str(tmp_path / "r2.json"),
                                 "--summary", str(tmp_path / "passed.md")])
    assert second.exit_code == 0 and "no regression (same build" in second.stdout
    passed = (tmp_path / "passed.md").read_text()
    assert passed.startswith("## rag eval: passed") and "| answer_accuracy | 1.000 | 1.000 | +0.000 |" in passed
    r1, r2 = (json.loads((tmp_path / f).read_text()) for f in ("r1.json", "r2.json"))
    assert without_timings(r1) == without_timings(r2)
    base = json.loads((tmp_path / "base.json").read_text())
    (tmp_path / "base.json").write_text(json.dumps(base | {"runtime": "another build"}))
    other = runner.invoke(app, ["eval", *map(str, common), "--report", str(tmp_path / "r4.json")])
    assert other.exit_code == 0 and "gate: no baseline recorded on this build" in other.stdout
    (tmp_path / "base.json").write_text(json.dumps(base))
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    broken = runner.invoke(app, ["eval", *map(str, common), "--report", str(tmp_path / "r3.json"), "--k", "0"])
    assert broken.exit_code == 1
    assert "question city was answered correctly and now is not" in broken.stderr
    failed = step_summary.read_text()
    assert failed.startswith("earlier step\n## rag eval: **failed**")  # appended, as GitHub Actions expects
    assert "| answer_accuracy | 1.000 | 0.000 | -1.000 |" in failed
    assert "### Right before, wrong now (1)" in failed and "| city | Moskau [1]. |" in failed


def test_a_baseline_answered_with_other_settings_is_noted():
    baseline = {"settings": {"answer": {"k": 5, "min_support": 0.35}, "retrieval": {"mode": "hybrid"}}}
    assert settings_note(baseline, baseline) is None
    stricter = {"settings": {"answer": {"k": 5, "min_support": 0.6}, "retrieval": {"mode": "hybrid"}}}
    note = settings_note(stricter, baseline)
    assert "answer.min_support: 0.35 there, 0.6 here" in note and "k:" not in note and "mode" not in note
    assert settings_note(stricter, {}) is None, "a baseline that does not say is not guessed about"


def test_eval_with_a_missing_or_unreadable_baseline_says_so_in_one_line(monkeypatch, seeds, tmp_path):
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    generator = FakeGenerator("Moskau [1].")
    monkeypatch.setattr(pipeline, "make_generator", lambda path=None, progress=None, server=None: generator)
    runner = CliRunner()
    qset = tmp_path / "q.jsonl"
    qset.write_text(json.dumps({"id": "city", "question": "Wohin lud Putin Xi ein?", "lang": "de", "answerable": True,
                                "answers": ["Moskau"], "sources": ["003_f1e7237187863abb"], "tags": []}) + "\n")
    assert runner.invoke(app, ["index", str(seeds), "--index", str(tmp_path / "idx")]).exit_code == 0
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.json").write_text('{"summary": ')
    (tmp_path / "latin1.json").write_bytes('{"summary": "Prüfung"}'.encode("latin-1"))
    (tmp_path / "other.json").write_text('{"answers": []}')
    (tmp_path / "folder" / "unreadable.json").mkdir(parents=True)  # unreadable whoever runs this (root reads any file)
    for baseline, reason in [(tmp_path / "nothing.json", "no baseline at"), (tmp_path / "empty", "no baseline at"),
                             (tmp_path / "broken.json", "broken.json is not a report: not JSON"),
                             (tmp_path / "latin1.json", "latin1.json is not a report: not JSON"),
                             (tmp_path / "other.json", "other.json is not a report: it has no summary"),
                             (tmp_path / "folder", "cannot read the baseline " + str(tmp_path / "folder"))]:
        result = runner.invoke(app, ["eval", "--set", str(qset), "--index", str(tmp_path / "idx"), "--baseline",
                                     str(baseline), "--report", str(tmp_path / "r.json")])
        assert result.exit_code == 2, (baseline, result.output)
        assert result.stderr.startswith("error: ") and reason in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and isinstance(result.exception, SystemExit)
    assert generator.calls == [], "it says so before answering anything"
    assert not (tmp_path / "r.json").exists()
