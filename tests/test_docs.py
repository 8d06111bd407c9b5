"""The documents users copy from: the CI workflow, the README's limits and links, every --help."""

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rag.app.cli import app

ROOT = Path(__file__).resolve().parent.parent


def test_the_github_actions_workflow_is_valid_and_runs_the_gate():
    workflow = yaml.safe_load((ROOT / "docs/ci/github-actions.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in triggers and "pull_request" in triggers
    [job] = workflow["jobs"].values()
    assert job["runs-on"] and job["timeout-minutes"] <= 90
    steps = job["steps"]
    assert all(("uses" in step) != ("run" in step) for step in steps), "each step either uses an action or runs"
    uses = [step["uses"].split("@")[0] for step in steps if "uses" in step]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    cached = [step["with"]["path"] for step in steps if step.get("uses", "").startswith("actions/cache")]
    assert ".venv" in cached and any(".cache/rag" in path for path in cached)
    assert all(step["with"]["key"] for step in steps if step.get("uses", "").startswith("actions/cache"))
    runs = "\n".join(step["run"] for step in steps if "run" in step)
    assert "make test" in runs and "rag eval" in runs
    ids = {step["id"] for step in steps if "id" in step}
    assert set(re.findall(r"steps\.(\w+)\.", runs)) <= ids, "a step refers to an id no step has"


def test_the_readme_is_short_and_links_the_design_documents():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 312  # 250, 260 with the shared index (#47), 280 with the web (#54), 290 operations (#56), 312 time (#55)
    for document in ("docs/answering.md", "docs/evaluation.md", "docs/index.md", "docs/architecture.md",
                     "docs/ingest.md", "docs/ci/github-actions.yml"):
        assert f"({document})" in readme, document
        assert (ROOT / document).is_file()
    assert "make test" in readme


COMMANDS = [["index"], ["remove"], ["documents"], ["follow"], ["ask"], ["batch"], ["chat"], ["eval"], ["serve"], ["models"],
            ["config"],
            ["bench", "retrieval"], ["bench", "answers"], ["bench", "index"], ["bench", "speed"], ["bench", "http"]]


def test_the_list_of_commands_above_is_complete():
    from typer.main import get_command

    cli = get_command(app)
    listed = {" ".join(c) for c in COMMANDS}
    found = {name for name in cli.commands if name != "bench"} | {f"bench {name}" for name in cli.commands["bench"].commands}
    assert found == listed


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_help_ends_with_an_example(command):
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert re.search(r"Example:\s+\$ rag " + " ".join(command), result.stdout), result.stdout
