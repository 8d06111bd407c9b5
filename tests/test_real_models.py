"""Questions on the seed articles, answered by the real default models (slow: ~10 s each)."""

import pytest

from conftest import AGREEMENTS_DOC, SEEDS, VISIT_DOC
from rag import pipeline
from rag.index import build_index

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def answerer(tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("real") / "seeds"
    build_index([SEEDS], index_dir, pipeline.make_embedder())
    qa = pipeline.open_answerer(index_dir)
    qa.warm_up()
    return qa


ANSWERABLE = [
    ("How many agreements were signed?", ["20"], AGREEMENTS_DOC),
    ("Wie viele Kooperationsabkommen unterzeichneten beide Seiten?", ["20"], AGREEMENTS_DOC),
    ("To which city did Putin invite Xi Jinping for a state visit?", ["Moskau", "Moscow"], VISIT_DOC),
    ("How many heads of state and government will attend the parade?", ["26"], AGREEMENTS_DOC),
    ("Wie bezeichnete Xi Putin?", ["alten Freund", "old friend"], AGREEMENTS_DOC),
]
UNANSWERABLE = [
    "What is Xi Jinping's favourite food?",
    "Wie heißt der Präsident von Frankreich?",
]


@pytest.mark.parametrize("question, accepted, doc_id", ANSWERABLE)
def test_answerable_questions_are_answered_with_a_verified_citation(answerer, question, accepted, doc_id):
    answer = answerer.ask(question)
    assert not answer.abstained, answer.answer
    assert any(a.lower() in answer.answer.lower() for a in accepted), answer.answer
    verified = [c for c in answer.citations if c.verified]
    assert doc_id in {c.doc_id for c in verified}, answer.to_json()["citations"]
    for c in verified:
        assert answerer.index.documents[c.doc_id].text[c.start:c.end] == c.quote


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_unanswerable_questions_abstain(answerer, question):
    answer = answerer.ask(question)
    assert answer.abstained and not answer.citations, answer.answer


def test_answers_repeat_exactly(answerer):
    question = ANSWERABLE[0][0]
    assert answerer.ask(question).answer == answerer.ask(question).answer
