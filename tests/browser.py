"""A real Chromium (Debian's, driven by Playwright) against a real `rag serve` process: for the page tests.

Never `playwright install`: it downloads a browser. `make test` installs Debian's `chromium`
package when it can; without it the browser tests are skipped with one line saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import stop_server, wait_until_healthy

HERE = Path(__file__).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root (CI) Chromium needs --no-sandbox; the others keep it from calling any other host.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--disable-default-apps"]
ADDRESS = re.compile(r"rag serve: (http://127\.0\.0\.1:\d+)")


def require_chromium() -> str:
    """Chromium's path; without it the test is skipped, except in CI, which must run the browser tests."""
    if not os.access(CHROMIUM, os.X_OK):
        message = "browser tests need Debian's chromium: apt-get install -y chromium (make test does this as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@contextmanager
def launched_browser():
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class OpenPage:
    """A page in a fresh context, with every request it makes and every script error recorded."""

    def __init__(self, browser, url: str, **context_options):
        self.url = url
        self.context = browser.new_context(**context_options)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        # The browser also logs each refused request ("Failed to load resource: … 401"): that is the
        # server saying no, which the tests check by what the page shows, not a script error.
        self.page.on("console", lambda message: message.type == "error" and not message.text.startswith(
            "Failed to load resource") and self.errors.append(message.text))

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests if not (url == self.url or url.startswith(self.url + "/"))]

    def close(self) -> None:
        self.context.close()


@contextmanager
def served_fake_rag(index_dir: Path, log: Path, *options: str, **fake):
    """`rag serve` with the fake models (tests/fake_rag.py) on a free loopback port; yields its URL.
    `fake`: FAKE_REPLY, FAKE_DELAY, FAKE_SUPPORT, FAKE_REWRITE."""
    env = {**os.environ, "RAG_API_KEY": "", **{k: str(v) for k, v in fake.items()}}
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, str(HERE / "fake_rag.py"), "serve", "--index", str(index_dir),
                                    "--port", "0", *options], stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        url = address_of(process, log)
        wait_until_healthy(url, process, timeout=60)
        yield url
    finally:
        stop_server(process)


def address_of(process: subprocess.Popen, log: Path) -> str:
    """The address `rag serve` printed (it binds port 0 itself), once it has."""
    deadline = time.monotonic() + 60
    while True:
        found = ADDRESS.search(log.read_text())
        if found:
            return found.group(1)
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
