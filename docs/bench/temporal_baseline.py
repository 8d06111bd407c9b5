"""The temporal set (eval/temporal/) answered by the pipeline as it is: the record #55 asks for
before time enters retrieval and answering. Indexes the 30 articles with the default embedder,
answers the 43 questions with the default model, and counts by kind: right answers, stale ones
(a superseded or other-period value given as the answer), and withdrawn ones.

    RAG_HOME=… python docs/bench/temporal_baseline.py [REPORT.json]
"""

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

from rag.app import pipeline  # noqa: E402
from rag.fileio import atomic_write_json  # noqa: E402
from rag.quality.evaluation import alias_present  # noqa: E402
from rag.store.sqlite import build_index  # noqa: E402

SET = ROOT / "eval" / "temporal"


def judge(question: dict, answer: dict) -> str:
    """right, stale (another period's value given), withdrawn, or wrong."""
    if not question["answerable"]:
        if answer["abstained"]:
            return "right"
        return "stale" if any(alias_present(answer["answer"], v) for v in question["stale"]) else "wrong"
    if answer["abstained"]:
        return "withdrawn"
    if any(alias_present(answer["answer"], a) for a in question["answers"]):
        return "right"
    return "stale" if any(alias_present(answer["answer"], v) for v in question["stale"]) else "wrong"


def main(report: str | None = None) -> None:
    questions = [json.loads(line) for line in (SET / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    index = Path(tempfile.mkdtemp(prefix="rag-temporal-")) / "index"
    build_index([SET / "articles"], index, pipeline.make_embedder())
    answerer = pipeline.open_answerer(index)
    rows = []
    for question in questions:
        answer = answerer.ask(question["question"]).to_json()
        verdict = judge(question, answer)
        rows.append({"id": question["id"], "kind": question["kind"], "verdict": verdict, "answer": answer["answer"],
                     "as_of": answer["as_of"], "cited": [c["doc_id"] for c in answer["citations"] if c["verified"]]})
        print(f"{question['id']:24} {question['kind']:9} {verdict:9} {answer['answer'][:70]}", flush=True)
    print(f"runtime: {answerer.generator.runtime}")
    print("| kind | questions | right | stale | withdrawn | wrong |\n|---|---|---|---|---|---|")
    for kind in ("current", "past", "plan", "since", "uncovered", "all"):
        chosen = [r for r in rows if kind in ("all", r["kind"])]
        counts = Counter(r["verdict"] for r in chosen)
        print(f"| {kind} | {len(chosen)} | {counts['right']} | {counts['stale']} | {counts['withdrawn']} | "
              f"{counts['wrong']} |")
    if report:
        atomic_write_json(Path(report), {"runtime": answerer.generator.runtime, "rows": rows})


if __name__ == "__main__":
    main(*sys.argv[1:2])
