"""docs/operations/ holds what operators start from: alert rules, a Grafana dashboard and systemd
units. Each is checked by the tool that reads it (promtool, systemd-analyze) where the machine has
it (`make test` installs Debian's prometheus for promtool when it may), and each metric it names
must be one `rag serve` reports."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_operations import scrape

from rag.app.http.metrics import follower_families, model_server_families
from rag.models.remote import ServerStats

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations"
METRIC = re.compile(r"\brag_[a-z_]+")
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="no promtool: apt-get install prometheus (make test does, as root)")


def alert_expressions() -> dict[str, str]:
    rules = yaml.safe_load((OPERATIONS / "alerts.yml").read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((OPERATIONS / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def reported_names(serve) -> set[str]:
    """Every sample name `rag serve` reports: a scrape of a live server, plus the families that
    appear only with a model server or a follower, made by the same code from sample state."""
    names = {name for name, _ in scrape(serve().url)}
    stats = ServerStats(["http://m1:8080"])
    row = {"polls": 1, "unchanged": 0, "added": 1, "failures": 0, "gone": 0, "last_success": "2025-10-01T08:00:00+00:00"}
    for family in [*model_server_families(stats), *follower_families({"https://example.org/feed.rss": row})]:
        names |= {sample.name for sample in family.samples}
    return names


@needs_promtool
def test_the_alert_rules_pass_promtool_and_their_unit_tests():
    checked = subprocess.run(["promtool", "check", "rules", "alerts.yml"], cwd=OPERATIONS, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=OPERATIONS, capture_output=True,
                            text=True)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    fired = yaml.safe_load((OPERATIONS / "alerts_test.yml").read_text())
    tested_alerts = {case["alertname"] for test in fired["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert tested_alerts == set(alert_expressions()), "every alert has a unit test in which it fires"


@needs_promtool
def test_the_dashboards_queries_are_valid_promql(tmp_path):
    records = [{"record": f"dashboard:query_{n}", "expr": expr.replace("$__rate_interval", "5m")}
               for n, expr in enumerate(dashboard_expressions())]
    (tmp_path / "queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    checked = subprocess.run(["promtool", "check", "rules", str(tmp_path / "queries.yml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_metric_the_rules_and_the_dashboard_name_is_one_rag_serve_reports(serve):
    reported = reported_names(serve)
    named = {name for expr in [*alert_expressions().values(), *dashboard_expressions()] for name in METRIC.findall(expr)}
    assert len(named) >= 15
    assert named <= reported, f"not reported: {sorted(named - reported)}"
    documented = set(METRIC.findall((OPERATIONS.parent / "operations.md").read_text()))
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in reported if not name.endswith("_created")}
    assert families <= documented, f"not in docs/operations.md: {sorted(families - documented)}"


@pytest.mark.parametrize("unit", ["rag-serve.service", "rag-follow.service"])
def test_the_systemd_units_verify_and_name_only_options_rag_has(unit, tmp_path):
    text = (OPERATIONS / unit).read_text()
    command = re.search(r"^ExecStart=\S+/rag (\w+)", text, re.M).group(1)
    rag = Path(sys.executable).parent / "rag"
    helped = subprocess.run([str(rag), command, "--help"], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    options = set(re.findall(r"(?<=\s)--[a-z-]+", text.split("ExecStart=", 1)[1].split("\n\n")[0]))
    assert options and all(option in helped.stdout for option in options), (options, helped.stdout)
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here; the options were checked")
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    local = re.sub(r"/opt/rag/\.venv/bin/rag", str(rag), text)
    local = re.sub(r"^(User|Group)=rag$", lambda m: f"{m.group(1)}={user if m.group(1) == 'User' else ''}", local,
                   flags=re.M).replace("Group=\n", "")
    (tmp_path / unit).write_text(local)
    verified = subprocess.run(["systemd-analyze", "verify", str(tmp_path / unit)], capture_output=True, text=True)
    assert verified.returncode == 0 and unit not in verified.stderr, verified.stderr
