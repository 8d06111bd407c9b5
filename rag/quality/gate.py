"""The regression gate: which recorded baseline a run is held to, and by which rule.

Answers repeat exactly only on the same llama.cpp build (the `runtime` a report records): an
AVX-512 build rounds differently from an AVX2 one, enough to answer a few questions differently.
So the gate keeps one baseline per build (`eval/baselines/*.json`) and picks its rule by the run's:

- **same build**: a baseline recorded with this run's `runtime` exists. Exact: every summary
  metric within its tolerance (`TOLERANCES`) and every question that baseline answered right is
  answered right now.
- **another build**: none matches. The run is held to all recorded builds at once: of the
  questions *every* recorded build answered right (rounding did not move them), at most
  `CROSS_BUILD_FLIPS` may be wrong now; each summary metric at least the lowest any of them
  reached, less its tolerance, the spread between them and what that many questions move it
  (stale answers at most the most any reached, plus as much). A build's rounding moves the
  questions on a knife's edge, which the recorded builds already disagree on; a regression of the
  program loses others.

>>> q = lambda i, ok: {"id": i, "correct": ok, "answer": "x"}
>>> avx2 = {"runtime": "avx2", "summary": {"answer_accuracy": 0.5}, "questions": [q("a", True), q("b", False)]}
>>> avx512 = {"runtime": "avx512", "summary": {"answer_accuracy": 1.0}, "questions": [q("a", True), q("b", True)]}
>>> run = {"runtime": "avx512", "summary": {"answer_accuracy": 0.5}, "questions": [q("a", True), q("b", False)]}
>>> judge(run, [("avx2.json", avx2), ("avx512.json", avx512)]).problems
['answer_accuracy fell from 1.000 to 0.500', "question b was answered correctly and now is not: 'x'"]
>>> judge(run | {"runtime": "avx512-no-vnni"}, [("avx2.json", avx2), ("avx512.json", avx512)]).problems
[]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

# How far a summary metric may fall below the baseline before the gate fails. Answers are
# deterministic on one build, so the only slack is for metrics averaged over few citations.
TOLERANCES = {
    "answer_accuracy": 0.0,
    "retrieval_hit": 0.0,
    "recall_at_k": 0.0,
    "citation_precision": 0.02,
    "citation_recall": 0.02,
    "verified_rate": 0.0,
    "abstained_on_unanswerable": 0.0,
    "answered_answerable": 0.0,
    "period_precision": 0.0,
}
# Summaries are rounded to 4 places: two of them differ by up to this much more than their means.
ROUNDING = 1e-4
# The report rows' field a metric is the mean of, where it is not the metric's own name.
ROW_KEYS = {"answer_accuracy": "correct", "period_precision": "in_period"}
# Counts where lower is better, and how far they may rise: answers giving a superseded or
# other-period value (the temporal set, eval/temporal/).
CEILINGS = {"stale_answers": 0}
# Questions right on every recorded build that another build may answer wrongly. Measured
# (docs/answering.md): a third build (AVX-512 without VBMI/VNNI/BF16) lost none of the 44 settled
# ones; 1 leaves room for a knife-edge question, while a regression of 2 answers still fails.
CROSS_BUILD_FLIPS = 1
SAME_BUILD, ANOTHER_BUILD = "same build", "another build"


@dataclass
class Verdict:
    rule: str  # SAME_BUILD or ANOTHER_BUILD
    held_to: list[str]  # the baselines' files
    reference: dict  # the baseline the report's tables compare with
    problems: list[str]
    runtime: str = ""  # this run's build

    def describe(self) -> str:
        """One line for the report: which baseline, which rule."""
        if self.rule == SAME_BUILD:
            return f"gate: {self.held_to[0]}, recorded on this build: exact (every question right there is right here)"
        return (f"gate: no baseline recorded on this build ({self.runtime or 'not recorded'}), so held to "
                f"{', '.join(self.held_to)}: each metric within the recorded builds' spread, and at most "
                f"{CROSS_BUILD_FLIPS} of the questions right on every one of them may be wrong")


def load_baselines(path: Path) -> list[tuple[str, dict]]:
    """The recorded reports: `path` itself, or every `*.json` in the folder `path`. Raises
    FileNotFoundError when there is none, ValueError (one line, naming the file) for one that
    cannot be read or is not a report."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path] if path.exists() else []
    if not files:
        raise FileNotFoundError(path)
    baselines = []
    for file in files:
        try:
            report = json.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read the baseline {file}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ValueError(f"the baseline {file} is not a report: not JSON ({exc})") from None
        if not isinstance(report, dict) or not {"summary", "questions"} <= set(report):
            raise ValueError(f"the baseline {file} is not a report: it has no summary and questions")
        baselines.append((str(file), report))
    return baselines


def baseline_name(runtime: str) -> str:
    """The file a build's baseline is recorded in (matching is by the full `runtime`, not the name).

    >>> baseline_name("llama-cpp-python 0.3.36 (SSE3 AVX AVX2 F16C FMA BMI2 LLAMAFILE OPENMP REPACK)")
    'llama-cpp-python-0.3.36-avx2.json'
    >>> baseline_name("llama-cpp-python 0.3.36 (AVX AVX2 FMA AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 OPENMP)")
    'llama-cpp-python-0.3.36-avx512-vbmi-vnni-bf16.json'
    >>> baseline_name("llama-cpp-python 0.3.36 (AVX AVX_VNNI AVX2 AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 OPENMP)")
    'llama-cpp-python-0.3.36-avx512-vbmi-vnni-bf16-avx_vnni.json'
    """
    name, _, features = runtime.partition(" (")
    widest = [f.lower() for f in features.rstrip(")").split() if re.fullmatch(r"AVX\w*|AMX\w*", f)]
    if any(f.startswith("avx512") for f in widest):
        widest = ["avx512"] + [f.removeprefix("avx512_") for f in widest if f.startswith("avx512_")] + \
                 [f for f in widest if f == "avx_vnni" or f.startswith("amx")]
    else:
        widest = widest[-1:]
    return "-".join(re.sub(r"[^\w.]+", "-", part).strip("-") for part in [name, *widest] if part) + ".json"


def judge(report: dict, baselines: list[tuple[str, dict]]) -> Verdict:
    """Hold `report` to the baseline of its own build if one is recorded, else to all of them."""
    for file, baseline in baselines:
        if baseline.get("runtime") and baseline.get("runtime") == report.get("runtime"):
            return Verdict(SAME_BUILD, [file], baseline, compare_exact(report, baseline))
    reference = max(baselines, key=lambda fb: _same_answers(report, fb[1]))[1]
    return Verdict(ANOTHER_BUILD, [f for f, _ in baselines], reference,
                   compare_across_builds(report, [b for _, b in baselines]), report.get("runtime", ""))


def compare_exact(report: dict, baseline: dict) -> list[str]:
    """What regressed: summary metrics below tolerance, and questions that were right and are now wrong."""
    problems = _metrics_below(report, {m: baseline["summary"].get(m) for m in TOLERANCES}, {})
    problems += _counts_above(report, {m: baseline["summary"].get(m) for m in CEILINGS}, {})
    before = {r["id"]: r["correct"] for r in baseline["questions"]}
    for row in report["questions"]:
        if before.get(row["id"]) and not row["correct"]:
            problems.append(f"question {row['id']} was answered correctly and now is not: {row['answer']!r}")
    return problems


def compare_across_builds(report: dict, baselines: list[dict]) -> list[str]:
    """The rule for a build no baseline was recorded on (see the module's docstring)."""
    floors, floor_slack, ceilings, ceiling_slack = {}, {}, {}, {}
    for metric in [*TOLERANCES, *CEILINGS]:
        values = [b["summary"][metric] for b in baselines if b["summary"].get(metric) is not None]
        if not values:
            continue
        if metric in CEILINGS:
            ceilings[metric], ceiling_slack[metric] = max(values), max(values) - min(values) + CROSS_BUILD_FLIPS
        else:  # a question moves a mean over n rows by at most 1/n
            rows = sum(r.get(ROW_KEYS.get(metric, metric)) is not None for r in report["questions"])
            floors[metric] = min(values)
            floor_slack[metric] = max(values) - min(values) + CROSS_BUILD_FLIPS / max(rows, 1)
    problems = _metrics_below(report, floors, floor_slack) + _counts_above(report, ceilings, ceiling_slack)
    settled = set.intersection(*({r["id"] for r in b["questions"] if r["correct"]} for b in baselines))
    lost = [row for row in report["questions"] if row["id"] in settled and not row["correct"]]
    if len(lost) > CROSS_BUILD_FLIPS:
        problems += [f"question {row['id']} was answered correctly on every recorded build and now is not: "
                     f"{row['answer']!r}" for row in lost]
    return problems


def _metrics_below(report: dict, floors: dict, slack: dict) -> list[str]:
    problems = []
    for metric, old in floors.items():
        new = report["summary"].get(metric)
        if old is not None and (new is None or new < old - TOLERANCES[metric] - slack.get(metric, 0.0) - ROUNDING):
            problems.append(f"{metric} fell from {old:.3f} to {new if new is None else format(new, '.3f')}")
    return problems


def _counts_above(report: dict, ceilings: dict, slack: dict) -> list[str]:
    problems = []
    for metric, old in ceilings.items():
        new = report["summary"].get(metric)
        if old is not None and (new is None or new > old + CEILINGS[metric] + slack.get(metric, 0)):
            problems.append(f"{metric} rose from {old} to {new}")
    return problems


def _same_answers(report: dict, baseline: dict) -> int:
    before = {r["id"]: r.get("answer") for r in baseline["questions"]}
    return sum(before.get(r["id"]) == r.get("answer") for r in report["questions"])
