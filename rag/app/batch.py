"""Batch: answer a file of questions into JSON lines, loading the models once, resumable.

Input is .jsonl (`{"id", "question", ...}`, extra fields carried through), .txt (one question a
line) or .csv (a `question` column, optional `id`). Each answer is written and flushed as soon as
it exists, so an interrupted run loses nothing; re-running skips ids already in the output.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rag.answer.answering import QuestionAnswerer
from rag.errors import RagError
from rag.fileio import open_for_appending_lines, read_json_lines


@dataclass(frozen=True)
class BatchQuestion:
    id: str
    question: str
    line: int
    extra: dict = field(default_factory=dict)


@dataclass
class BatchSummary:
    answered: int = 0
    skipped_existing: int = 0
    failed: int = 0
    load_seconds: float = 0.0  # loading both models, before the first question
    answer_seconds: float = 0.0  # answering, models loaded

    @property
    def questions_per_minute(self) -> float | None:
        return 60 * self.answered / self.answer_seconds if self.answered and self.answer_seconds else None


def read_questions(path: Path) -> tuple[list[BatchQuestion], list[tuple[int, str]]]:
    """Questions of `path` and (line number, reason) for each line that could not be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RagError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read {path}: {exc}") from None
    suffix = path.suffix.lower()
    questions: list[BatchQuestion] = []
    problems: list[tuple[int, str]] = []
    if suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows:
            raise RagError(f"{path} has no questions")
        if "question" not in rows[0]:
            raise RagError(f"{path} has no 'question' column (columns: {', '.join(rows[0])})")
        for n, row in enumerate(rows, start=2):
            q = (row.pop("question") or "").strip()
            qid = (row.pop("id", None) or str(n - 1)).strip()
            if q:
                questions.append(BatchQuestion(qid, q, n, {k: v for k, v in row.items() if k}))
            else:
                problems.append((n, "empty question"))
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if suffix == ".jsonl":
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    problems.append((n, f"not valid JSON ({exc.msg})"))
                    continue
                if not isinstance(record, dict) or not str(record.get("question", "")).strip():
                    problems.append((n, "no \"question\" field"))
                    continue
                question = str(record.pop("question")).strip()
                qid = str(record.pop("id", n))
                questions.append(BatchQuestion(qid, question, n, record))
            else:
                questions.append(BatchQuestion(str(n), line.strip(), n))
        if not questions and not problems:
            raise RagError(f"{path} has no questions")
    ids = [q.id for q in questions]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        problems.extend((q.line, f"duplicate id {q.id!r}") for q in questions if q.id in duplicates)
        questions = [q for q in questions if q.id not in duplicates]
    return questions, problems


def answered_ids(output: Path) -> set[str]:
    """Ids already answered in `output`; a torn last line (from a crash) does not count."""
    return {str(record["id"]) for record in read_json_lines(output) if "id" in record}


def run_batch(answerer: QuestionAnswerer, questions: list[BatchQuestion], output: Path,
              on_done: Callable[[], None] | None = None) -> BatchSummary:
    summary = BatchSummary()
    done = answered_ids(output)
    if any(q.id not in done for q in questions):
        summary.load_seconds = sum(answerer.warm_up().values())
    started = time.perf_counter()
    with open_for_appending_lines(output) as sink:
        for q in questions:
            if q.id in done:
                summary.skipped_existing += 1
            else:
                try:
                    answer = answerer.ask(q.question)
                except (RagError, ValueError) as exc:
                    summary.failed += 1
                    record = {**q.extra, "id": q.id, "question": q.question, "error": str(exc)}
                else:
                    summary.answered += 1
                    record = {**answer.to_json(), "id": q.id} | {k: v for k, v in q.extra.items()}
                    done.add(q.id)
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()
            if on_done:
                on_done()
    summary.answer_seconds = time.perf_counter() - started
    return summary
