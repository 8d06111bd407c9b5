"""The README's pictures of the page: light, dark and phone, from a real answer of the default models.

    make screenshots        # or: .venv/bin/python docs/page/screenshots.py

Indexes the seed articles into a temporary folder, starts `rag serve` on a free loopback port,
asks the seed question in Debian's Chromium, opens its citation, and writes
docs/page/light.png, dark.png and phone.png. About a minute on 2 cores.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from browser import address_of, launched_browser  # noqa: E402
from conftest import stop_server  # noqa: E402

QUESTION = "How many agreements were signed?"
SHOTS = {"light.png": {"viewport": {"width": 1280, "height": 760}, "color_scheme": "light"},
         "dark.png": {"viewport": {"width": 1280, "height": 760}, "color_scheme": "dark"},
         "phone.png": {"viewport": {"width": 390, "height": 844}, "color_scheme": "light", "device_scale_factor": 2}}


def main() -> None:
    rag = str(Path(sys.executable).parent / "rag")
    with tempfile.TemporaryDirectory() as folder:
        index_dir, log = Path(folder) / "seeds", Path(folder) / "serve.log"
        subprocess.run([rag, "index", str(ROOT / "seeds"), "--index", str(index_dir)], check=True)
        with log.open("w") as output:
            server = subprocess.Popen([rag, "serve", "--index", str(index_dir), "--port", "0"],
                                      stdout=output, stderr=subprocess.STDOUT)
        try:
            url = address_of(server, log)
            with launched_browser() as browser:
                for name, options in SHOTS.items():
                    shoot(browser, url, ROOT / "docs" / "page" / name, options)
        finally:
            stop_server(server)


def shoot(browser, url: str, target: Path, options: dict) -> None:
    context = browser.new_context(**options)
    page = context.new_page()
    page.goto(url + "/")
    page.wait_for_function("() => document.querySelector('#index-status').textContent.includes('articles')",
                           timeout=300_000)
    page.get_by_label("Question").fill(QUESTION)
    page.get_by_label("Question").press("Enter")
    page.locator(".chip").first.wait_for(timeout=300_000)
    page.locator(".chip").first.click()
    page.locator("#reader-text mark").first.wait_for()
    page.screenshot(path=str(target))
    context.close()
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
