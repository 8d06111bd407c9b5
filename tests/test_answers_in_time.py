"""Time in answering, over the temporal set's dated articles with a stand-in model that answers
with the first sentence of the first source it is shown: the period a question names (or
since/until) decides what the model sees, a period nothing in the index answers gets the no-match
answer naming the nearest dated evidence, a question about the state now sees nothing published
after its reference date and its answer is dated. The real model on the whole set: `rag eval --set eval/temporal`."""

import re
import shutil
from datetime import date
from pathlib import Path

import pytest
from fakes import FakeEmbedder, FakeGenerator

from rag.answer.answering import AnswerSettings, QuestionAnswerer
from rag.answer.timeframe import day_text, read_scope
from rag.search.retrieval import RetrievalSettings, Retriever
from rag.store.sqlite import build_index, open_index
from rag.text.chunking import ChunkerSettings

TEMPORAL = Path(__file__).parents[1] / "eval" / "temporal" / "articles"
TODAY = date(2025, 11, 30)


def first_sentence_of_source_one(messages) -> str:
    user = messages[-1]["content"]
    found = re.search(r"\[1\][^\n]*\n(.+?[.!?])(?:\s|$)", user, re.S)
    return f"{found[1]} [1]" if found else ""


def source_dates(messages) -> list[str]:
    return re.findall(r"^\[\d+\] \((\d{4}-\d\d-\d\d)\)$", messages[-1]["content"], re.M)


@pytest.fixture(scope="module")
def answerer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("temporal")
    shutil.copytree(TEMPORAL, folder / "articles")
    embedder = FakeEmbedder()
    build_index([folder / "articles"], folder / "index", embedder, ChunkerSettings(max_tokens=64, overlap_tokens=8))
    index = open_index(folder / "index", embedder.model_id)
    generator = FakeGenerator(first_sentence_of_source_one)
    return QuestionAnswerer(index, Retriever(index, embedder, RetrievalSettings()), generator,
                            AnswerSettings(k=5, prompt_sources=3, shorten_after_words=0, focus_sentences=0,
                                           alternative_replies=0))


def answer_calls(answerer):
    return [c for c in answerer.generator.calls if "news excerpts" in c[0]["content"]]


def test_a_period_in_the_question_decides_what_the_model_sees(answerer):
    answerer.generator.calls.clear()
    answer = answerer.ask("Wie hoch war die Arbeitslosenquote im Kreis Rheinfeld im Juli?", today=TODAY)
    [call] = answer_calls(answerer)
    assert source_dates(call) and all(d.startswith("2025-07") for d in source_dates(call)), source_dates(call)
    assert answer.citations[0].date.startswith("2025-07") and not answer.abstained
    assert answer.to_json()["period"] == {"since": "2025-07-01", "until": "2025-07-31", "from": "question"}
    assert answer.to_json()["today"] == "2025-11-30"
    assert all(answerer.index.documents[r.chunk.doc_id].date.startswith("2025-07") for r in answer.retrieved)
    # The quotes are judged on what is asked: the search kept to July already.
    [judged] = [c[-1]["content"] for c in answerer.generator.calls if "Does the sentence answer" in c[-1]["content"]]
    assert "Question: Wie hoch war die Arbeitslosenquote im Kreis Rheinfeld?" in judged


def test_since_and_until_replace_the_period_the_question_names(answerer):
    answerer.generator.calls.clear()
    answer = answerer.ask("Wie hoch war die Arbeitslosenquote im Kreis Rheinfeld im Juli?", today=TODAY,
                          since=date(2025, 10, 1), until=date(2025, 10, 31))
    assert set(source_dates(answer_calls(answerer)[0])) <= {f"2025-10-{d:02}" for d in range(1, 32)}
    assert answer.to_json()["period"] == {"since": "2025-10-01", "until": "2025-10-31", "from": "given"}
    with pytest.raises(ValueError, match="after until"):
        answerer.ask("Arbeitslosenquote?", since=date(2025, 10, 2), until=date(2025, 10, 1))


def test_a_period_no_article_covers_says_so_and_names_the_nearest_evidence(answerer):
    answerer.generator.calls.clear()
    answer = answerer.ask("Wie viel kostete ein Liter Diesel in der Region Rheinfeld im Jahr 2024?", today=TODAY)
    assert answer.abstained and answer.citations == [] and answer.retrieved == []
    # No article of 2024: no answer drafted from it; one answer over the whole index finds the nearest.
    [call] = answer_calls(answerer)
    nearest = min(source_dates(call))
    assert answer.nearest == nearest
    assert re.fullmatch(r"Kein Artikel aus dem Zeitraum 2024 beantwortet das\. Der nächste ist vom \d+\. \w+ 2025\.",
                        answer.answer), answer.answer
    data = answer.to_json()
    assert data["nearest"] == nearest and data["withdrawal"].startswith("withdrawn: no article from 2024 answers this")
    assert answer.withdrawal_kind == "outside_period"


def test_a_question_about_now_sees_nothing_published_after_its_reference_date_and_is_dated(answerer):
    question = "Wie hoch ist die Arbeitslosenquote im Kreis Rheinfeld aktuell?"
    answerer.generator.calls.clear()
    answer = answerer.ask(question, today=date(2025, 8, 15))
    dates = source_dates(answer_calls(answerer)[0])
    assert max(dates) <= "2025-08-15" and len(set(dates)) > 1, dates
    later = answerer.ask(question, today=TODAY)  # the October article is known by then
    assert max(source_dates(answer_calls(answerer)[-1])) > "2025-08-15"
    assert answer.citations[0].date == dates[0] == answer.as_of
    assert answer.answer.endswith(f" (Stand: {day_text(dates[0], 'de')}) [1]"), answer.answer
    assert answer.to_json()["period"] is None and later.to_json()["today"] == "2025-11-30"


def test_a_plan_for_a_later_date_filters_nothing(answerer):
    assert read_scope("Wie hoch wird die Kita-Gebühr ab Januar 2026 sein?", TODAY).period is None
    scope = read_scope("Seit wann ist Sabine Hoffmann Oberbürgermeisterin?", TODAY)
    assert scope.period is None and not scope.current
    answerer.generator.calls.clear()
    answerer.ask("Wie hoch wird die Kita-Gebühr in Rheinfeld ab Januar 2026 sein?", today=TODAY)
    assert source_dates(answer_calls(answerer)[0])  # answered from what was found, whatever its date


@pytest.fixture
def temporal_index(tmp_path, monkeypatch):
    """The temporal set indexed with the fake embedder; the CLI's models are the stand-ins."""
    from rag.app import pipeline

    generator = FakeGenerator(first_sentence_of_source_one)
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    monkeypatch.setattr(pipeline, "make_generator", lambda path=None, progress=None, server=None: generator)
    build_index([TEMPORAL], tmp_path / "idx", FakeEmbedder(max_tokens=256))
    return tmp_path / "idx", generator


def test_the_answering_commands_take_today_since_and_until(temporal_index, tmp_path):
    import json

    from typer.testing import CliRunner

    from rag.app.cli import app

    index, generator = temporal_index
    runner = CliRunner()
    ask = ["ask", "Wie hoch ist die Arbeitslosenquote im Kreis Rheinfeld?", "--index", str(index)]
    data = json.loads(runner.invoke(app, [*ask, "--json", "--since", "2025-04-01", "--until", "2025-04-30",
                                          "--today", "2025-06-01"]).stdout)
    assert data["today"] == "2025-06-01" and data["period"]["from"] == "given"
    assert {r["date"] for r in data["retrieved"]} and all(r["date"].startswith("2025-04") for r in data["retrieved"])
    shown = runner.invoke(app, ["ask", "Wie hoch war die Arbeitslosenquote im Kreis Rheinfeld im Jahr 2023?",
                                "--index", str(index), "--today", "2025-11-30"])
    assert shown.exit_code == 0 and shown.stdout.startswith("Kein Artikel aus dem Zeitraum 2023 beantwortet das. "
                                                             "Der nächste ist vom "), shown.stdout
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "Wie hoch ist die Arbeitslosenquote aktuell?"}\n')
    result = runner.invoke(app, ["batch", str(questions), "-o", str(tmp_path / "out.jsonl"), "--index", str(index),
                                 "--today", "2025-05-15"])
    [line] = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert result.exit_code == 0 and line["today"] == "2025-05-15"
    assert line["citations"] and all(c["date"] <= "2025-05-15" for c in line["citations"]), line
    assert line["as_of"] <= "2025-05-15" and "(Stand: " in line["answer"]
    refused = runner.invoke(app, [*ask, "--since", "2025-05-02", "--until", "2025-05-01"])
    assert refused.exit_code == 2 and refused.stderr == "error: since (2025-05-02) is after until (2025-05-01)\n"
    not_a_day = runner.invoke(app, [*ask, "--today", "2025-13-01"])  # click's usage error
    assert not_a_day.exit_code == 2 and "'2025-13-01' does not match" in not_a_day.stderr


def test_the_api_takes_today_since_and_until_and_refuses_since_after_until(tmp_path):
    import httpx
    from conftest import LiveServer

    from rag.app.http.server import ServerSettings, create_app
    from rag.app.service import AnswerService

    build_index([TEMPORAL], tmp_path / "idx", FakeEmbedder(max_tokens=256))
    service = AnswerService(tmp_path / "idx", FakeEmbedder(max_tokens=256), FakeGenerator(first_sentence_of_source_one))
    live = LiveServer(create_app(service, ServerSettings()), False).start()
    try:
        live.wait_ready()
        question = "Wie hoch war die Arbeitslosenquote im Kreis Rheinfeld?"
        answer = httpx.post(f"{live.url}/v1/ask", json={"question": question, "since": "2025-07-01",
                                                        "until": "2025-07-31", "today": "2025-08-01"}, timeout=30).json()
        assert answer["period"] == {"since": "2025-07-01", "until": "2025-07-31", "from": "given"}
        assert answer["today"] == "2025-08-01" and all(r["date"].startswith("2025-07") for r in answer["retrieved"])
        chat = httpx.post(f"{live.url}/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "Wie hoch war die Arbeitslosenquote im Jahr 2023?"}],
            "today": "2025-11-30"}, timeout=30).json()
        assert chat["choices"][0]["message"]["content"].startswith("Kein Artikel aus dem Zeitraum 2023")
        refused = httpx.post(f"{live.url}/v1/ask", json={"question": question, "since": "2025-08-01",
                                                         "until": "2025-07-01"}, timeout=30)
        assert refused.status_code == 422 and "is after until" in refused.json()["error"]["message"]
    finally:
        live.stop()


def named_in_sources(*names):
    """A stand-in model that answers with the first of `names` its sources hold, citing that source."""
    def reply(messages) -> str:
        user = messages[-1]["content"]
        blocks = re.findall(r"^\[(\d+)\][^\n]*\n(.*?)(?=\n\n\[\d+\]|\n</sources>)", user, re.S | re.M)
        return next((f"{name} [{number}]" for name in names for number, text in blocks if name in text), "")
    return reply


def test_about_now_the_newest_article_that_answers_takes_precedence(answerer):
    question = "Wann soll die Rheinbrücke Nord nach aktuellem Stand fertig sein?"
    answer = answerer.ask(question, today=TODAY)
    dated = sorted(d for d in answer.dates.values() if d and d <= TODAY.isoformat())
    assert len(set(dated)) > 1 and answer.as_of == dated[-1], (answer.as_of, dated)
    assert answer.answer.endswith(f"(Stand: {day_text(dated[-1], 'de')}) [1]"), answer.answer
    # The newest does not answer (the support check says no to it): the next newest does.
    newest_text = answerer.index.documents[next(i for i, d in answer.dates.items() if d == dated[-1])].text
    sceptic = QuestionAnswerer(answerer.index, answerer.retriever,
                               FakeGenerator(first_sentence_of_source_one,
                                             support=lambda m: 0.0 if m[-1]["content"].split("\n")[0][10:40]
                                             in newest_text else 1.0), answerer.settings)
    older = sceptic.ask(question, today=TODAY)
    assert not older.abstained and older.as_of < dated[-1], older.as_of


def test_about_now_a_newer_article_answering_with_its_own_date_alone_does_not_take_precedence(answerer):
    def the_date_of_source_one_if_newest(messages) -> str:  # the model copies the source's date
        dates = source_dates(messages)
        return f"{dates[0]} [1]" if len(dates) == 1 and dates[0] > "2025-10-20" else \
            first_sentence_of_source_one(messages)
    dated = QuestionAnswerer(answerer.index, answerer.retriever, FakeGenerator(the_date_of_source_one_if_newest),
                             answerer.settings)
    answer = dated.ask("Wann soll die Rheinbrücke Nord nach aktuellem Stand fertig sein?", today=TODAY)
    newer = [c for c in dated.generator.calls if "news excerpts" in c[0]["content"] and len(source_dates(c)) == 1]
    assert any(source_dates(c)[0] > "2025-10-20" for c in newer), "a newer article must have been asked"
    assert not re.match(r"\d{4}-\d\d-\d\d", answer.answer) and answer.as_of <= "2025-10-20", answer.answer


def test_about_now_a_value_announced_for_a_later_day_is_not_the_answer(answerer):
    generator = FakeGenerator(named_in_sources("Julia Brandt", "Petra Lang", "Martin Vogel"))
    clinic = QuestionAnswerer(answerer.index, answerer.retriever, generator, answerer.settings)
    question = "Wer leitet derzeit das Klinikum Rheinfeld?"
    before = clinic.ask(question, today=TODAY)  # Brandt takes over on 1 December 2025
    assert before.answer.startswith("Petra Lang (Stand: 20. Oktober 2025)") and before.as_of == "2025-10-20", \
        before.answer
    assert any("Julia Brandt" in c[-1]["content"] for c in answer_calls(clinic))  # asked, then checked
    after = clinic.ask(question, today=date(2025, 12, 5))
    assert after.answer.startswith("Julia Brandt (Stand: 20. Oktober 2025)"), after.answer
    # Nothing but the announced value: withdrawn, saying why.
    stubborn = QuestionAnswerer(answerer.index, answerer.retriever, FakeGenerator(named_in_sources("Julia Brandt")),
                                answerer.settings)
    withdrawn = stubborn.ask(question, today=TODAY)
    assert withdrawn.abstained and withdrawn.withdrawal_kind == "announced_later", withdrawn.answer
    assert withdrawn.withdrawal_reason() == ("withdrawn: its source gives the value from 1 December 2025, "
                                             "after the reference date 30 November 2025")


def test_about_now_a_later_day_about_something_else_leaves_the_answer_standing(answerer):
    """The cost's sentence also names the bridge's later completion ("Kosten steigen auf 74 Millionen
    Euro, Fertigstellung erst 2028"): asked again without it, the same value stands elsewhere, and
    the answer stands even where the support check doubts that other sentence (as the real model did)."""
    doubting_the_body = lambda m: 0.2 if "Nach der jüngsten Schätzung" in m[-1]["content"] else 1.0  # noqa: E731
    cost = QuestionAnswerer(answerer.index, answerer.retriever,
                            FakeGenerator(named_in_sources("74 Millionen Euro"), support=doubting_the_body),
                            answerer.settings)
    answer = cost.ask("Wie viel soll die Rheinbrücke Nord inzwischen kosten?", today=TODAY)
    assert answer.answer.startswith("74 Millionen Euro (Stand: 8. Oktober 2025)") and not answer.abstained, answer.answer
    without = [c for c in answer_calls(cost) if "74 Millionen" in c[-1]["content"] and "2028" not in c[-1]["content"]]
    assert without and "2028" in answer.citations[0].quote  # asked again without it; the first quote stands


def test_about_now_a_value_whose_day_the_next_sentence_names_is_not_the_answer(answerer):
    """"... die monatliche Gebühr von derzeit 180 Euro auf 210 Euro anzuheben. Die neuen Gebühren
    gelten ab dem 1. Januar 2026.": the quote names no day, its paragraph does. Asked again without
    that sentence, the model gives 210 again from the same paragraph (as the real model did): withdrawn."""
    fee = QuestionAnswerer(answerer.index, answerer.retriever, FakeGenerator(named_in_sources("210 Euro")),
                           answerer.settings)
    question = "Wie hoch ist die monatliche Kita-Gebühr für einen Ganztagsplatz in Rheinfeld derzeit?"
    answer = fee.ask(question, today=TODAY)
    assert answer.abstained and answer.withdrawal_kind == "announced_later", answer.answer
    assert answer.announced_later == "2026-01-01"
    asked = [c[-1]["content"] for c in answer_calls(fee) if "210 Euro" in c[-1]["content"]]
    assert any("1. Januar 2026" not in text for text in asked)  # asked again without the later day
    after = fee.ask(question, today=date(2026, 1, 2))
    assert after.answer.startswith("210 Euro (Stand: 15. Juli 2025)") and not after.abstained, after.answer


def test_about_now_a_later_day_asks_the_cited_article_again_before_the_older_ones(answerer):
    """The headline gives October's cost with the later completion ("Kosten steigen auf 74 Millionen
    Euro, Fertigstellung erst 2028"). Without that sentence, a model shown all sources gave
    January's "48 Millionen Euro", and October's article, asked next as the newer one, was doubted
    by the support check (as with the real model, in English): the cited article alone, without the
    headline, gives 74 again, and that stands."""
    def headline_else_oldest(messages) -> str:
        if "Fertigstellung erst 2028" in messages[-1]["content"]:
            return named_in_sources("74 Millionen Euro")(messages)
        return named_in_sources("48 Millionen Euro", "74 Millionen Euro")(messages)
    doubting_the_body = lambda m: 0.2 if "Nach der jüngsten Schätzung" in m[-1]["content"] else 1.0  # noqa: E731
    cost = QuestionAnswerer(answerer.index, answerer.retriever,
                            FakeGenerator(headline_else_oldest, support=doubting_the_body), answerer.settings)
    answer = cost.ask("Wie viel kostet die Rheinbrücke Nord?", today=TODAY)
    assert answer.answer.startswith("74 Millionen Euro (Stand: 8. Oktober 2025)") and not answer.abstained, answer.answer
    asked_again = [c[-1]["content"] for c in answer_calls(cost) if "Fertigstellung erst 2028" not in c[-1]["content"]]
    assert asked_again and "48 Millionen" not in asked_again[0]  # the cited article alone first
