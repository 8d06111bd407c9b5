import pytest
from typer.testing import CliRunner

from conftest import VISIT_DOC
from fakes import FakeEmbedder, FakeGenerator
from rag import pipeline
from rag.chat import ChatSession
from rag.cli import app
from test_answering import make_answerer


def scripted(messages):
    """Rewrites follow-ups, answers from the sources."""
    system, user = messages[0]["content"], messages[1]["content"]
    if system.startswith("Rewrite"):
        return "In which season did Putin invite Xi Jinping to Moscow?"
    if system.startswith("Translate"):
        return user
    if "Frühling" in user and "season" in user:
        return "In spring (Frühling) [1]."
    return "Moskau [1]."


def test_follow_up_is_rewritten_before_retrieval_and_reset_forgets(seeds, tmp_path):
    session = ChatSession(make_answerer(seeds, tmp_path, FakeGenerator(scripted)))
    rewrites = []
    first = session.ask("To which city did Putin invite Xi?", on_rewrite=rewrites.append)
    assert rewrites == [] and "Moskau" in first.answer
    second = session.ask("And in which season?", on_rewrite=rewrites.append)
    assert rewrites == ["In which season did Putin invite Xi Jinping to Moscow?"]
    assert second.question == rewrites[0] and "spring" in second.answer
    assert VISIT_DOC in {c.doc_id for c in second.citations}
    assert "characters" in session.sources_text()
    session.command("/reset")
    assert session.history == [] and session.standalone("And then?") == "And then?"


def test_a_rewrite_in_another_language_is_not_used(seeds, tmp_path):
    session = ChatSession(make_answerer(seeds, tmp_path, FakeGenerator(scripted)))
    session.ask("To which city did Putin invite Xi?")
    # scripted() rewrites every follow-up in English
    assert session.standalone("Und in welcher Jahreszeit?") == "Und in welcher Jahreszeit?"
    assert session.standalone("And in which season?") == "In which season did Putin invite Xi Jinping to Moscow?"


@pytest.mark.parametrize("line, expected", [("/k 2", "Retrieving 2"), ("/k zero", "Usage"), ("/help", "/sources"),
                                            ("/nope", "Unknown command"), ("/sources", "No answer yet")])
def test_commands(seeds, tmp_path, line, expected):
    session = ChatSession(make_answerer(seeds, tmp_path, FakeGenerator()))
    assert expected in session.command(line)
    assert session.command("/quit") is None


def test_piped_chat_prints_plain_text(monkeypatch, seeds, tmp_path):
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    monkeypatch.setattr(pipeline, "make_generator", lambda path=None, progress=None: FakeGenerator(scripted))
    runner = CliRunner()
    runner.invoke(app, ["index", str(seeds), "--index", str(tmp_path / "idx")])
    result = runner.invoke(app, ["chat", "--index", str(tmp_path / "idx")],
                           input="To which city did Putin invite Xi?\nAnd in which season?\n/sources\n")
    assert result.exit_code == 0, result.output
    assert "Moskau [1]." in result.stdout and "In spring (Frühling) [1]." in result.stdout
    assert "(searching: In which season did Putin invite Xi Jinping to Moscow?)" in result.stdout
    assert "\x1b[" not in result.stdout
    assert result.stdout.count(f"] {VISIT_DOC}") >= 3  # after each answer, and for /sources


def test_a_withdrawn_answer_in_chat_says_so_on_its_own_line(monkeypatch, seeds, tmp_path):
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    monkeypatch.setattr(pipeline, "make_generator", lambda path=None, progress=None: FakeGenerator("26 [1]", support=0.1))
    runner = CliRunner()
    runner.invoke(app, ["index", str(seeds), "--index", str(tmp_path / "idx")])
    result = runner.invoke(app, ["chat", "--index", str(tmp_path / "idx")],
                           input="Wie viele Soldaten marschierten bei der Parade?\n")
    assert result.exit_code == 0, result.output
    assert "26 [1]\n(checked against the sources: withdrawn) Die Quellen beantworten diese Frage nicht." in result.stdout
