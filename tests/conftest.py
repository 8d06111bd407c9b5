import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
AGREEMENTS_DOC = "000_81614b4d2948c4c6"
VISIT_DOC = "003_f1e7237187863abb"


@pytest.fixture
def seeds(tmp_path) -> Path:
    """A private copy of the seed articles."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(autouse=True)
def private_rag_home(request, tmp_path, monkeypatch):
    """Unit tests keep hash caches and models out of the user's cache; model tests use the real one."""
    if request.node.get_closest_marker("model") is None:
        monkeypatch.setenv("RAG_HOME", str(tmp_path / "rag-home"))
        monkeypatch.delenv("RAG_MODEL", raising=False)
        monkeypatch.delenv("RAG_EMBEDDER", raising=False)
