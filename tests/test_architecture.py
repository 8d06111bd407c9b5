"""The folder tree is the architecture: layers import only the layers below them, no import
circles, and every module and function fits one sitting (docs/architecture.md).

Read from the source with `ast`, so a lazy import inside a function counts as much as one at the
top of a module.
"""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rag"
# Bottom up. The shared ground (rag/__init__, errors, fileio) is below every layer.
LAYERS = ["text", "sources", "models", "store", "search", "answer", "quality", "app"]
MAX_TOP_LEVEL_MODULES = 4
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 100


def module_name(path: Path) -> str:
    parts = ["rag", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The rag modules `name` imports, anywhere in it: `from rag.x import y` counts as rag.x.y
    when that is a module, else rag.x; relative imports are resolved against the package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "rag"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "rag":
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found - {name}


def layer_of(name: str) -> int:
    """0 for the shared ground, then 1 + the layer's place in LAYERS."""
    parts = name.split(".")
    return LAYERS.index(parts[1]) + 1 if len(parts) > 1 and parts[1] in LAYERS else 0


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported_modules(name, path, set(found)) for name, path in found.items()}


def test_layer_of_knows_the_shared_ground_and_the_layers():
    assert layer_of("rag.errors") == 0 and layer_of("rag") == 0
    assert layer_of("rag.text.numbers") == 1 and layer_of("rag.app.cli") == len(LAYERS)


def test_the_top_of_the_package_holds_only_the_shared_ground():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert folders == sorted(LAYERS), folders


def test_every_layer_imports_only_the_layers_below_it():
    wrong = [f"{name} ({LAYERS[layer_of(name) - 1] if layer_of(name) else 'shared'}) imports {dep}"
             for name, deps in import_graph().items() for dep in sorted(deps)
             if layer_of(dep) > layer_of(name) or (layer_of(name) == 0 and dep != "rag" and layer_of(dep) == 0
                                                   and dep not in ("rag.errors", "rag.fileio"))]
    assert not wrong, "\n".join(wrong)


def test_no_import_circle_between_modules():
    graph = import_graph()
    circles = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph.get(name, ())):
            if state.get(dep) == "open":
                circles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, path + [dep])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # A package's __init__ importing its own modules would be a circle by this count; there is none.
    assert not circles, "\n".join(circles)


def test_a_planted_circle_and_an_upward_import_are_found(tmp_path, monkeypatch):
    """The checks above can fail: a copy of two modules that import each other, one upward."""
    fake = tmp_path / "rag"
    (fake / "text").mkdir(parents=True)
    (fake / "app").mkdir()
    for init in (fake / "__init__.py", fake / "text" / "__init__.py", fake / "app" / "__init__.py"):
        init.write_text("")
    (fake / "text" / "a.py").write_text("from rag.app.b import x\n")
    (fake / "app" / "b.py").write_text("from rag.text import a\nx = 1\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    graph = import_graph()
    assert graph["rag.text.a"] == {"rag.app.b"} and graph["rag.app.b"] == {"rag.text.a"}
    with pytest.raises(AssertionError, match="rag.text.a .text. imports rag.app.b"):
        test_every_layer_imports_only_the_layers_below_it()
    with pytest.raises(AssertionError, match="rag.app.b -> rag.text.a -> rag.app.b"):
        test_no_import_circle_between_modules()


def test_every_module_and_function_fits_one_sitting():
    too_long = []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {lines} lines")
    assert not too_long, "\n".join(too_long)


def test_the_architecture_document_names_every_layer_and_the_readme_links_it():
    root = PACKAGE.parent
    document = (root / "docs/architecture.md").read_text(encoding="utf-8")
    assert all(f"`rag/{layer}/`" in document for layer in LAYERS)
    assert "(docs/architecture.md)" in (root / "README.md").read_text(encoding="utf-8")
