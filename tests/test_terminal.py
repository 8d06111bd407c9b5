"""What a person sees: `rag ask` in a pseudo-terminal, its final screen read through a terminal
emulator (pyte) after all of the program's redraws."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pyte


FAKE_RAG = str(Path(__file__).parent / "fake_rag.py")
QUESTION = "Wie viele Kooperationsabkommen unterzeichneten beide Seiten?"
DRAFT = "20 Abkommen [1]."  # checked: "mehr als 20 [n]" (the qualifier its quote has, the noun asked for dropped)


def final_screen(args: list[str], env: dict) -> tuple[list[str], str]:
    """The screen's lines once the program has exited, and everything it wrote."""
    child = pexpect.spawn(sys.executable, [FAKE_RAG, *args], env=env, dimensions=(30, 120), timeout=60)
    written = child.read()
    child.close()
    assert child.exitstatus == 0, written.decode(errors="replace")
    screen = pyte.Screen(120, 30)
    pyte.ByteStream(screen).feed(written.replace(b"\n", b"\r\n") if b"\r\n" not in written else written)
    return [line.rstrip() for line in screen.display if line.strip()], written.decode(errors="replace")


def test_the_terminal_ends_with_the_checked_answer_once_and_never_the_draft(index_dir):
    env = {**os.environ, "FAKE_REPLY": DRAFT, "FAKE_DELAY": "0.1", "TERM": "xterm-256color", "COLUMNS": "120"}
    lines, written = final_screen(["ask", QUESTION, "--index", str(index_dir)], env)
    assert "20 Abkommen" in written, "the draft was shown while the model wrote"
    assert "checking the sources" in written
    assert re.fullmatch(r"mehr als 20 \[\d\]", lines[0]), lines
    assert not any("Abkommen [" in line for line in lines), lines
    assert lines.count(lines[0]) == 1
    assert lines[1] == "Sources:" and "000_81614b4d2948c4c6" in lines[2]

    piped = subprocess.run([sys.executable, FAKE_RAG, "ask", QUESTION, "--index", str(index_dir)], env=env,
                           capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[0] == lines[0]
    assert "\x1b[" not in piped.stdout and "20 Abkommen" not in piped.stdout


def test_a_withdrawn_answer_leaves_the_refusal_and_why(index_dir):
    env = {**os.environ, "FAKE_REPLY": "Mehr als 200 Abkommen [1].", "FAKE_DELAY": "0.05", "TERM": "xterm-256color"}
    lines, _ = final_screen(["ask", QUESTION, "--index", str(index_dir)], env)
    assert lines == ["Die Quellen beantworten diese Frage nicht.", "(withdrawn: 200 is not in the sources)"]
