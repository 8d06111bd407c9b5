"""The `rag` command with the fake models, as its own process: for tests that need a real terminal.

    python tests/fake_rag.py ask "QUESTION" --index DIR

The generator replies $FAKE_REPLY, one word every $FAKE_DELAY seconds (SlowGenerator).
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakeEmbedder, SlowGenerator  # noqa: E402

from rag.app import pipeline  # noqa: E402
from rag.app.cli import app  # noqa: E402

if __name__ == "__main__":  # only then: pytest imports this file too, looking for doctests
    generator = SlowGenerator(os.environ.get("FAKE_REPLY", "Mehr als 20 Abkommen [1]."),
                              float(os.environ.get("FAKE_DELAY", "0.05")))
    pipeline.make_embedder = lambda path=None: FakeEmbedder(max_tokens=256)
    pipeline.make_generator = lambda path=None, progress=None, server=None: generator
    app()
