"""A rag.toml and RAG_* variables as every command's defaults, flags over both; `rag config`."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
from conftest import free_port, stop_server, wait_until_healthy
from test_follow import FollowedSite, article, counting  # noqa: F401 (counting: a fixture)
from typer.testing import CliRunner

from rag.app.cli import app

HERE = Path(__file__).parent


def serve_status(folder: Path, *flags: str, **env) -> tuple[int, dict]:
    """`rag serve` (fake models) started in `folder` with `flags`: the port it took and its status."""
    process = subprocess.Popen([sys.executable, str(HERE / "fake_rag.py"), "serve", *flags], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "RAG_API_KEY": "", **env})
    try:
        url = None
        for line in process.stdout:
            if "rag serve: http://" in line:
                url = line.split("rag serve: ")[1].split(" ")[0]
                break
        assert url, process.communicate()[0]
        wait_until_healthy(url, process, timeout=60)
        assert httpx.get(f"{url}/v1/status").status_code == 401  # the key from the file
        status = httpx.get(f"{url}/v1/status", headers={"Authorization": "Bearer from-the-file"}).json()
        return int(url.rsplit(":", 1)[1]), status
    finally:
        stop_server(process)


def test_serve_takes_its_settings_from_rag_toml_variables_over_the_file_and_flags_over_both(index_dir, tmp_path):
    port = free_port()
    (tmp_path / "rag.toml").write_text(f'index = "{index_dir}"\n\n[serve]\nport = {port}\napi_key = "from-the-file"\n'
                                       'max_queue = 16\n')
    taken, status = serve_status(tmp_path)
    assert taken == port and status["queue"]["max"] == 16 and status["index"]["path"] == str(index_dir)
    assert serve_status(tmp_path, RAG_SERVE__MAX_QUEUE="5")[1]["queue"]["max"] == 5
    assert serve_status(tmp_path, "--max-queue", "3", RAG_SERVE__MAX_QUEUE="5")[1]["queue"]["max"] == 3


def test_rag_config_shows_each_commands_settings_and_where_they_come_from_with_secrets_masked(tmp_path, monkeypatch):
    (tmp_path / "rag.toml").write_text('index = "postgresql://rag:pg-s3cret@db/news"\n'
                                       'llm_url = "http://u:llm-s3cret@gpu:8080"\n'
                                       '[serve]\napi_key = "key-s3cret"\nport = 8001\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_SERVE__MAX_QUEUE", "12")
    monkeypatch.setenv("RAG_ADMIN_KEY", "admin-s3cret")
    shown = CliRunner().invoke(app, ["config", "serve"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert "[serve]" in lines
    assert 'index = "postgresql://rag:***@db/news"  # settings' in lines
    assert 'llm_url = "http://u:***@gpu:8080"  # settings' in lines
    assert 'api_key = "***"  # settings' in lines and 'admin_key = "***"  # environment' in lines
    assert "port = 8001  # settings" in lines and "max_queue = 12  # settings" in lines
    assert 'host = "127.0.0.1"  # default' in lines
    assert "s3cret" not in shown.stdout
    every = CliRunner().invoke(app, ["config"]).stdout
    assert "[follow]" in every and "[bench_http]" not in every  # only what the settings change, without a command


def test_a_wrong_setting_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = {'[serve]\nprot = 1\n': "[serve] prot is not an option of `rag serve`",
             '[serve]\nport = "eighty"\n': "[serve] port = 'eighty':",
             'port = 1\n': "`port` is not a setting every command has; put it in a table, such as [serve]",
             '[serve\n': "rag.toml is not valid TOML",
             'k = "many"\n': "rag.toml: k: Input should be a valid integer"}
    for text, said in cases.items():
        (tmp_path / "rag.toml").write_text(text)
        result = CliRunner().invoke(app, ["ask", "Wer?"])
        assert result.exit_code == 2 and said in result.stderr, (text, result.output)
        assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output
    missing = CliRunner().invoke(app, ["--config", str(tmp_path / "nope.toml"), "ask", "Wer?"])
    assert missing.exit_code == 2 and "cannot read the settings file" in missing.stderr


def test_follow_reads_its_sources_from_rag_toml(counting, tmp_path, monkeypatch):  # noqa: F811
    with FollowedSite() as site:
        site.publish(article(1))
        (tmp_path / "rag.toml").write_text(f'index = "{tmp_path / "idx"}"\n[follow]\nsources = ["{site.base}/feed.rss"]\n'
                                           'delay = 0.0\nallow_private_hosts = true\n')
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(app, ["follow", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 articles read, 1 added or changed" in result.stdout
