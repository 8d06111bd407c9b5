"""The gate's verdict on a regression made on purpose: the focused retry switched off.

    python docs/bench/gate_regression.py INDEX_DIR [REPORT.json]

Answers the seed evaluation set as `rag eval` does, but with `focus_sentences=0`: after an
unsupported first answer, the retry on the sentences nearest the question never runs. Then holds
the run to `eval/baselines/` as the gate does, and prints the rule, the baselines and what it found.
Run it on each build (the portable and the fast one) to see the verdict on both.
"""

import json
import sys
from pathlib import Path

from rag.answer.answering import AnswerSettings
from rag.app import pipeline
from rag.quality.evaluation import load_eval_set, run_eval
from rag.quality.gate import judge, load_baselines

ROOT = Path(__file__).resolve().parents[2]


def main(index_dir: str, report_path: str | None = None) -> int:
    answerer = pipeline.open_answerer(Path(index_dir), answer=AnswerSettings(focus_sentences=0))
    answerer.warm_up()
    report = run_eval(answerer, load_eval_set(ROOT / "eval" / "questions.jsonl"))
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    verdict = judge(report, load_baselines(ROOT / "eval" / "baselines"))
    print(f"runtime: {report['runtime']}")
    print(f"accuracy without the focused retry: {report['summary']['answer_accuracy']:.3f} "
          f"({sum(r['correct'] for r in report['questions'])} of {len(report['questions'])})")
    print(verdict.describe())
    print(f"verdict: {'FAILED' if verdict.problems else 'passed'} ({len(verdict.problems)} problems)")
    for problem in verdict.problems:
        print(f"  - {problem}")
    return 1 if verdict.problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
