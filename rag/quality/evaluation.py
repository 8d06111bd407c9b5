"""Evaluation metrics, one implementation for `rag eval` and the XQuAD benchmarks.

>>> recall_at_k(["a", "b", "c"], {"b"}, 1), recall_at_k(["a", "b", "c"], {"b"}, 2)
(0.0, 1.0)
>>> reciprocal_rank(["a", "b", "b"], {"b"})
0.5
>>> round(token_f1("mehr als 20 Abkommen", "mehr als 20"), 3)
0.857
"""

from __future__ import annotations

import json
import re
import statistics
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rag.errors import RagError
from rag.quality.gate import ROW_KEYS, TOLERANCES
from rag.text.numbers import numbers_with_qualifiers

# SQuAD normalisation, with German articles removed too.
_ARTICLES = re.compile(r"\b(a|an|the|der|die|das|den|dem|des|ein|eine|einer|eines|einem|einen)\b")
_PUNCT = set(string.punctuation) | set("„“”«»‚‘’–—…")


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or not common:
        return float(pred == ref)
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains_answer(prediction: str, gold: str) -> float:
    return float(normalize_answer(gold) in normalize_answer(prediction))


def best_over(metric, prediction: str, golds: list[str]) -> float:
    return max((metric(prediction, g) for g in golds), default=0.0)


def recall_at_k(ranked_ids: list[str], gold_ids: set[str], k: int) -> float:
    """Share of gold ids among the first k ranked ids (1.0 when the only gold id is there)."""
    if not gold_ids:
        return 0.0
    return len(gold_ids & set(ranked_ids[:k])) / len(gold_ids)


def reciprocal_rank(ranked_ids: list[str], gold_ids: set[str]) -> float:
    for rank, item in enumerate(ranked_ids, start=1):
        if item in gold_ids:
            return 1.0 / rank
    return 0.0


def latency_summary(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"median": 0.0, "p95": 0.0}
    ordered = sorted(seconds)
    return {"median": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]}


def number_matches(prediction: str, value: int, qualifier: str | None) -> bool:
    return any(v == value and q == qualifier for v, q in numbers_with_qualifiers(prediction))


def alias_present(prediction: str, alias: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(normalize_answer(alias))}(?!\w)", normalize_answer(prediction)) is not None


# --- the seed evaluation set and the regression gate

REPORT_VERSION = 1
EXIT_REGRESSION = 1
@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    lang: str
    answerable: bool
    answers: list[str]
    sources: list[str]
    tags: list[str] = field(default_factory=list)
    number: dict | None = None
    all_of: list[list[str]] | None = None
    # Time (eval/temporal/): the day the question is read on, its kind (current, past, plan, since,
    # uncovered: reported as a tag) and the superseded or other-period values a stale answer gives.
    today: str | None = None
    kind: str | None = None
    stale: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.today:
            date.fromisoformat(self.today)
        if self.kind and self.kind not in self.tags:
            object.__setattr__(self, "tags", [*self.tags, self.kind])  # frozen: set once, here


def load_eval_set(path: Path) -> list[EvalQuestion]:
    questions = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            questions.append(EvalQuestion(**json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise RagError(f"{path}:{n}: not a valid evaluation question ({exc})") from None
    if not questions:
        raise RagError(f"{path} holds no questions")
    return questions


def answer_is_correct(q: EvalQuestion, answer: str, abstained: bool) -> bool:
    if not q.answerable:
        return abstained
    if abstained:
        return False
    if q.number:
        return number_matches(answer, q.number["value"], q.number.get("qualifier"))
    if q.all_of:
        return all(any(alias_present(answer, a) for a in group) for group in q.all_of)
    return any(alias_present(answer, a) for a in q.answers)


def score_question(q: EvalQuestion, answer: dict, k: int) -> dict:
    """Per-question scores from an answer in the `rag ask --json` schema (None: not applicable)."""
    ranked = [r["doc_id"] for r in answer["retrieved"]]
    sources = set(q.sources)
    shown = [c for c in answer["citations"] if c["verified"]]
    cited = {c["doc_id"] for c in shown}
    return {
        "id": q.id,
        "correct": answer_is_correct(q, answer["answer"], answer["abstained"]),
        "abstained": answer["abstained"],
        "answer": answer["answer"],
        "today": answer.get("today"),  # the reference date it was answered on
        "retrieval_hit": float(bool(sources & set(ranked[:k]))) if sources else None,
        "recall_at_k": recall_at_k(ranked, sources, k) if sources else None,
        "citation_precision": (sum(c["doc_id"] in sources for c in shown) / len(shown)) if shown and sources else None,
        "citation_recall": (len(cited & sources) / len(sources)) if sources else None,
        "verified_rate": (len(shown) / len(answer["citations"])) if answer["citations"] else None,
        "abstained_on_unanswerable": float(answer["abstained"]) if not q.answerable else None,
        "answered_answerable": float(not answer["abstained"]) if q.answerable else None,
        "seconds": answer["timings"].get("total", 0.0),
        # a superseded or other-period value given as the answer
        "stale": (not answer["abstained"] and not answer_is_correct(q, answer["answer"], False)
                  and any(alias_present(answer["answer"], v) for v in q.stale)) if q.stale else None,
        "in_period": in_period(answer),
        # what was quoted, where: a changed answer in a later report can be read against this one
        "citations": [{key: c.get(key) for key in ("doc_id", "start", "end", "quote", "verified")}
                      for c in answer["citations"]],
    }


def in_period(answer: dict) -> float | None:
    """The share of retrieved chunks published inside the period searched (None: no period)."""
    period, retrieved = answer.get("period"), answer["retrieved"]
    if not period or not retrieved:
        return None
    inside = [r.get("date") and period["since"] <= r["date"] <= period["until"] for r in retrieved]
    return sum(map(bool, inside)) / len(inside)


def summarize(rows: list[dict]) -> dict:
    def mean(key):
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(sum(values) / len(values), 4) if values else None

    summary = {"questions": len(rows)} | {metric: mean(ROW_KEYS.get(metric, metric)) for metric in TOLERANCES}
    summary["stale_answers"] = sum(bool(r.get("stale")) for r in rows)
    summary["seconds_per_question"] = mean("seconds")
    return summary


def by_tag(rows: list[dict], questions: list[EvalQuestion]) -> dict[str, dict]:
    tags = sorted({t for q in questions for t in q.tags})
    tagged = {q.id: set(q.tags) for q in questions}
    return {tag: summarize([r for r in rows if tag in tagged[r["id"]]]) for tag in tags}


def settings_note(report: dict, baseline: dict) -> str | None:
    """A note when the baseline was answered with other settings (e.g. a stricter --min-support).

    >>> settings_note({"settings": {"answer": {"k": 5, "min_support": 0.6}}},
    ...               {"settings": {"answer": {"k": 5, "min_support": 0.35}}})
    'the baseline was answered with other settings (answer.min_support: 0.35 there, 0.6 here): differences can come from them, not from the code'
    """
    old, new = baseline.get("settings") or {}, report.get("settings") or {}
    changed = [f"{stage}.{name}: {old[stage][name]} there, {value} here"
               for stage in sorted(set(old) & set(new)) for name, value in new[stage].items()
               if name in old[stage] and old[stage][name] != value]
    if not changed:
        return None
    return (f"the baseline was answered with other settings ({'; '.join(changed)}): "
            "differences can come from them, not from the code")


def without_timings(report: dict) -> dict:
    """The report with everything that depends on the clock removed (for determinism checks)."""
    clean = json.loads(json.dumps(report))
    clean.pop("created_at", None)
    clean.pop("wall_seconds", None)
    for row in clean["questions"]:
        row.pop("seconds", None)
    for section in [clean["summary"], *clean["tags"].values()]:
        section.pop("seconds_per_question", None)
    return clean


def run_eval(answerer, questions: list[EvalQuestion], on_done=None) -> dict:
    """Answer every question with one loaded answerer and build the report; a question with a
    `today` is read on that day, others on the answerer's reference date (`rag eval --today`)."""
    from dataclasses import asdict
    from datetime import datetime, timezone

    started = time.perf_counter()
    k = answerer.settings.k
    rows = []
    for q in questions:
        answer = answerer.ask(q.question, today=date.fromisoformat(q.today) if q.today else None).to_json()
        rows.append(score_question(q, answer, k))
        if on_done:
            on_done(rows[-1])
    return {
        "format_version": REPORT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "models": answerer.models,
        "runtime": answerer.generator.runtime,
        "index": {"content_sha256": answerer.index.content_sha256,
                  "embedder": answerer.index.manifest.embedder, "chunker": answerer.index.manifest.chunker},
        "settings": {"retrieval": asdict(answerer.retriever.settings), "answer": asdict(answerer.settings)},
        "summary": summarize(rows),
        "tags": by_tag(rows, questions),
        "questions": rows,
    }


def markdown_summary(report: dict, baseline: dict | None, problems: list[str], notes: list[str]) -> str:
    """The gate's outcome as Markdown, for a CI job page ($GITHUB_STEP_SUMMARY) or a pull request.

    >>> row = {"id": "q1", "correct": True, "answer": "Moskau", "seconds": 1.0}
    >>> report = {"summary": {"questions": 1, "answer_accuracy": 1.0}, "questions": [row], "wall_seconds": 3.0}
    >>> print(markdown_summary(report, None, [], []).splitlines()[0])
    ## rag eval: passed (no baseline to compare with)
    """
    if baseline is None:
        verdict = "passed (no baseline to compare with)"
    else:
        verdict = "**failed**" if problems else "passed"
    lines = [f"## rag eval: {verdict}", ""]
    old = (baseline or {}).get("summary", {})
    lines += ["| metric | baseline | this run | change |", "|---|---|---|---|"]
    for metric, value in report["summary"].items():
        if metric == "questions":
            continue
        before = old.get(metric)
        change = "" if value is None or before is None else f"{value - before:+.3f}"
        lines.append(f"| {metric} | {'-' if before is None else f'{before:.3f}'} | "
                     f"{'-' if value is None else f'{value:.3f}'} | {change} |")
    before = {r["id"]: r for r in (baseline or {}).get("questions", [])}
    worse = [r for r in report["questions"] if r["id"] in before and before[r["id"]]["correct"] and not r["correct"]]
    better = [r for r in report["questions"] if r["id"] in before and not before[r["id"]]["correct"] and r["correct"]]
    for title, rows in (("Right before, wrong now", worse), ("Wrong before, right now", better)):
        if rows:
            lines += ["", f"### {title} ({len(rows)})", "", "| question | baseline answer | this answer |", "|---|---|---|"]
            lines += [f"| {r['id']} | {_cell(before[r['id']]['answer'])} | {_cell(r['answer'])} |" for r in rows]
    metrics = [p for p in problems if not p.startswith("question ")]  # the questions are in the tables above
    if metrics:
        lines += ["", "### Metrics below their tolerance", ""] + [f"- {p}" for p in metrics]
    if notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", f"{report['summary']['questions']} questions in {report['wall_seconds']:.0f} s"
                  + (f" on {report['runtime']}" if report.get("runtime") else "") + "."]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
