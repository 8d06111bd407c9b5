import re

import pytest
from conftest import VISIT_DOC
from fakes import FakeEmbedder, FakeGenerator
from test_answering import make_answerer
from typer.testing import CliRunner

from rag.answer.prompts import SYSTEM_PROMPT
from rag.app import pipeline
from rag.app.chat import ChatSession
from rag.app.cli import app


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
    monkeypatch.setattr(pipeline, "make_generator", lambda path=None, progress=None, server=None: FakeGenerator(scripted))
    runner = CliRunner()
    runner.invoke(app, ["index", str(seeds), "--index", str(tmp_path / "idx")])
    result = runner.invoke(app, ["chat", "--index", str(tmp_path / "idx")],
                           input="To which city did Putin invite Xi?\nAnd in which season?\n/sources\n")
    assert result.exit_code == 0, result.output
    first, second = result.stdout.split("› ")[1:3]
    assert re.search(r"\nMoskau.* \[\d\]\n", first) and re.search(r"\nIn spring \(Frühling\).* \[\d\]\n", second)
    assert "(searching: In which season did Putin invite Xi Jinping to Moscow?)" in result.stdout
    assert "\x1b[" not in result.stdout
    assert result.stdout.count(f"] {VISIT_DOC}") >= 3  # after each answer, and for /sources


def test_a_withdrawn_answer_in_chat_says_so_on_its_own_line(monkeypatch, seeds, tmp_path):
    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    monkeypatch.setattr(pipeline, "make_generator", lambda path=None, progress=None, server=None: FakeGenerator("26 [1]", support=0.1))
    runner = CliRunner()
    runner.invoke(app, ["index", str(seeds), "--index", str(tmp_path / "idx")])
    result = runner.invoke(app, ["chat", "--index", str(tmp_path / "idx")],
                           input="Wie viele Soldaten marschierten bei der Parade?\n")
    assert result.exit_code == 0, result.output
    assert ("Die Quellen beantworten diese Frage nicht.\n(withdrawn: the sources support the model's answer too "
            "weakly (support 0.10))") in result.stdout
    assert "26" not in result.stdout.split("›", 2)[1]


def test_ctrl_c_stops_the_answer_under_way_and_the_next_question_is_answered(monkeypatch, seeds, tmp_path):
    """Ctrl-C only asks the model to stop (a handler raising inside a llama.cpp callback would be
    swallowed); the answer then ends as stopped, and the next question starts afresh."""
    import signal

    handler_before = signal.getsignal(signal.SIGINT)  # ignored, not the default, under `nohup ... &`
    answers = []

    def pressed_during_the_first_answer(messages):
        if messages[0]["content"] == SYSTEM_PROMPT:
            answers.append(messages)
            if len(answers) == 1:
                signal.raise_signal(signal.SIGINT)
        return scripted(messages)

    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    monkeypatch.setattr(pipeline, "make_generator",
                        lambda path=None, progress=None, server=None: FakeGenerator(pressed_during_the_first_answer))
    runner = CliRunner()
    runner.invoke(app, ["index", str(seeds), "--index", str(tmp_path / "idx")])
    result = runner.invoke(app, ["chat", "--index", str(tmp_path / "idx")],
                           input="To which city did Putin invite Xi?\nTo which city did Putin invite Xi?\n")
    assert result.exit_code == 0, result.output
    assert len(answers) == 2 and result.stderr.count("(stopped)") == 1
    first, second = result.stdout.split("› To which city did Putin invite Xi?")[1:]
    assert "Sources:" not in first and "Sources:" in second and re.search(r"\nMoskau.* \[\d\]\n", second)
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_a_stop_request_ends_its_own_block_only():
    model = FakeGenerator("Moskau [1].")
    with pytest.raises(KeyboardInterrupt), model.stoppable():
        model.request_stop()
        assert model.stop_requested
    assert not model.stop_requested
    with model.stoppable():  # the next block starts without the old request
        assert model.generate([{"role": "user", "content": "?"}], max_tokens=8).text == "Moskau [1]."


def test_chat_that_cannot_start_says_why_in_one_line(monkeypatch, seeds, tmp_path):
    """A missing index, and a model server nobody answers at: exit 2, one line, no traceback."""
    from conftest import free_port

    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    runner = CliRunner()
    assert runner.invoke(app, ["index", str(seeds), "--index", str(tmp_path / "idx")]).exit_code == 0
    dead = f"http://127.0.0.1:{free_port()}"
    for arguments, reason in [(["--index", str(tmp_path / "none")], "no index at"),
                              (["--index", str(tmp_path / "idx"), "--llm-url", dead, "--llm-timeout", "5"],
                               "no model server answered")]:
        result = runner.invoke(app, ["chat", *arguments], input="Wohin lud Putin Xi ein?\n")
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: {reason}") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
