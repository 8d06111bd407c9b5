"""The `rag` command with the fake models, as its own process: for tests that need a real terminal.

    python tests/fake_rag.py ask "QUESTION" --index DIR

The generator replies $FAKE_REPLY, one word every $FAKE_DELAY seconds (SlowGenerator), and the
support check finds $FAKE_SUPPORT (default 1: every answer stands). A follow-up question is made
standalone as $FAKE_REWRITE (default: the reply, as any other call).
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakeEmbedder, SlowGenerator  # noqa: E402

from rag.app import pipeline  # noqa: E402
from rag.app.chat import REWRITE_SYSTEM  # noqa: E402
from rag.app.cli import app  # noqa: E402


def reply(messages: list[dict]) -> str:
    if messages[0]["content"] == REWRITE_SYSTEM and os.environ.get("FAKE_REWRITE"):
        return os.environ["FAKE_REWRITE"]
    return os.environ.get("FAKE_REPLY", "Mehr als 20 Abkommen [1].")


if __name__ == "__main__":  # only then: pytest imports this file too, looking for doctests
    generator = SlowGenerator(reply,
                              float(os.environ.get("FAKE_DELAY", "0.05")),
                              support=float(os.environ.get("FAKE_SUPPORT", "1")))
    pipeline.make_embedder = lambda path=None: FakeEmbedder(max_tokens=256)
    pipeline.make_generator = lambda path=None, progress=None, server=None: generator
    app()
