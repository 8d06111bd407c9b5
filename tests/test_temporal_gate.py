"""The temporal set (eval/temporal/: dated articles about facts that change, questions about now,
a past period, a plan, since when and a period no article covers), gated as CI gates the seed set:
`rag eval` with each question's fixed reference date, held to the baselines recorded per build
(eval/temporal/baselines/), stale answers included. Slow: the real models answer 57 questions."""

import json

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from rag.app.cli import app

pytestmark = pytest.mark.model
TEMPORAL = ROOT / "eval" / "temporal"


def test_the_temporal_set_passes_its_gate_with_no_more_stale_answers_and_only_articles_of_the_asked_period(tmp_path):
    runner = CliRunner()
    index = tmp_path / "temporal-index"
    assert runner.invoke(app, ["index", str(TEMPORAL / "articles"), "--index", str(index)]).exit_code == 0
    report_file = tmp_path / "report.json"
    result = runner.invoke(app, ["eval", "--set", str(TEMPORAL / "questions.jsonl"), "--index", str(index),
                                 "--baseline", str(TEMPORAL / "baselines"), "--report", str(report_file)])
    print(result.stdout, result.stderr)
    assert result.exit_code == 0 and "no regression" in result.stdout, result.stderr
    report = json.loads(report_file.read_text())
    questions = {json.loads(line)["id"]: json.loads(line) for line in (TEMPORAL / "questions.jsonl").open()}
    # Each question was answered as of its own reference date, not the machine's clock.
    assert {row["id"]: row["today"] for row in report["questions"]} == {i: q["today"] for i, q in questions.items()}
    assert report["summary"]["period_precision"] >= 0.95, report["summary"]
    recorded = [json.loads(f.read_text())["summary"]["stale_answers"] for f in (TEMPORAL / "baselines").glob("*.json")]
    assert report["summary"]["stale_answers"] <= max(recorded) + 1, report["summary"]
