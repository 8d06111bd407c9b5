"""The README's quickstart, run top to bottom as a new user would, on a folder of their own
articles (a copy of the seeds), with the real default models."""

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import AGREEMENTS_DOC, ROOT, free_port, wait_until_healthy

pytestmark = pytest.mark.model
BIN = Path(sys.executable).parent


def quickstart_commands() -> list[list[str]]:
    """The `rag ...` lines of the README's quickstart block, comments dropped."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart on your own articles", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("rag ")]


def test_the_quickstart_answers_over_a_folder_of_ones_own(tmp_path, seeds):
    commands = quickstart_commands()
    assert [c[1] for c in commands] == ["index", "ask", "chat", "batch", "serve"]
    articles = seeds  # "~/articles": a folder of the user's own
    (tmp_path / "questions.txt").write_text("How many agreements were signed?\n", encoding="utf-8")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAG_API_KEY": ""}

    def argv(command: list[str]) -> list[str]:
        return [str(articles) if part == "~/articles" else part for part in command]

    def run(command: list[str], stdin: str = "") -> str:
        done = subprocess.run(argv(command), cwd=tmp_path, env=env, input=stdin, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    index, ask, chat, batch, serve = commands
    assert "indexed 2 documents" in run(index)
    answered = run(ask)  # the README's question, about the seeds' agreements
    answer, sources = answered.split("Sources:")
    assert "20" in answer and AGREEMENTS_DOC in sources, answered
    assert "Sources:" in run(chat, stdin="How many agreements were signed?\n")
    run(batch)
    assert "more than 20" in (tmp_path / "answers.jsonl").read_text()

    port = free_port()
    server = subprocess.Popen(argv(serve) + ["--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", server, timeout=120)
        found = httpx.post(f"http://127.0.0.1:{port}/v1/search", json={"query": "Kooperationsabkommen"}).json()
        assert found["results"], found
        asked = httpx.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": ask[2]}, timeout=300).json()
        assert "20" in asked["answer"] and not asked["abstained"], asked
        cited = [c for c in asked["citations"] if c["verified"] and c["doc_id"] == AGREEMENTS_DOC]
        text = httpx.get(f"http://127.0.0.1:{port}/v1/documents/{AGREEMENTS_DOC}").json()["text"]
        assert cited and all(text[c["start"]:c["end"]] == c["quote"] for c in cited), asked
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
