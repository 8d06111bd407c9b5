"""The temporal evaluation set (eval/temporal/) holds together: every answer and every stale value
is in an article, every source exists and is dated, and the set has the size and kinds #55 asks for."""

import json
import re
from pathlib import Path

from rag.text.documents import clean_article

HERE = Path(__file__).resolve().parent.parent / "eval" / "temporal"
KINDS = {"current", "past", "plan", "since", "uncovered"}


def articles() -> dict[str, tuple[str, str | None]]:
    return {path.stem: clean_article(path.read_text(encoding="utf-8")) for path in sorted((HERE / "articles").glob("*.txt"))}


def questions() -> list[dict]:
    return [json.loads(line) for line in (HERE / "questions.jsonl").read_text(encoding="utf-8").splitlines()]


def test_the_set_has_thirty_dated_articles_and_forty_questions_of_five_kinds_in_both_languages():
    found, asked = articles(), questions()
    assert len(found) >= 30 and all(re.fullmatch(r"2025-\d\d-\d\d", date or "") for _, date in found.values())
    assert len(asked) >= 40 and {q["kind"] for q in asked} == KINDS
    assert {q["lang"] for q in asked} == {"de", "en"} and len({q["id"] for q in asked}) == len(asked)
    assert all(q["today"] == "2025-11-30" for q in asked)


def test_each_answer_and_each_stale_value_stands_in_the_articles():
    found = articles()
    texts = " ".join(text for text, _ in found.values())
    for q in questions():
        assert set(q["sources"]) <= set(found), q["id"]
        assert q["answerable"] == bool(q["answers"]) == (q["kind"] != "uncovered"), q["id"]
        sourced = " ".join(found[s][0] for s in q["sources"])
        assert not q["answers"] or any(a in sourced for a in q["answers"]), (q["id"], q["answers"])
        # a stale value lists its English spellings too: at least one of them stands in an article
        assert not q["stale"] or any(v in texts for v in q["stale"]), (q["id"], q["stale"])


def test_rag_eval_reads_the_set_and_reports_each_kind_as_a_tag():
    from rag.quality.evaluation import load_eval_set

    loaded = load_eval_set(HERE / "questions.jsonl")
    assert {q.kind for q in loaded} == KINDS and all(q.kind in q.tags for q in loaded)
    assert all(q.today == "2025-11-30" for q in loaded)
