"""The layers are visible in the folders and imports only go downward, with no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "guidance_rules"
# Lower layers never import higher ones. The shells (audit, service, cli) sit on top.
LAYERS = {
    "errors": 0,
    "_version": 0,
    "_sync": 0,
    "_exits": 0,
    "model": 1,
    "rulebase": 2,
    "engine": 3,
    "recommendation": 4,
    "audit": 5,
    "service": 5,
    "frames": 5,
    "cli": 6,
}


def _imports(path: Path) -> set[str]:
    """Every guidance_rules module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("guidance_rules"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("guidance_rules"))
    return found


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


MODULES = {_name(p): p for p in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) not in (None, "__main__")))
def test_imports_only_go_down(module: str) -> None:
    mine = _layer(module)
    assert mine in LAYERS, f"{module} is in no known layer; add its folder to LAYERS"
    for target in _imports(MODULES[module]):
        theirs = _layer(target)
        if theirs is None:
            pytest.fail(f"{module} imports the package root {target}, which imports every layer")
        assert LAYERS[theirs] <= LAYERS[mine], f"{module} (layer {mine}) imports {target} (layer {theirs}), a higher layer"
        if LAYERS[theirs] == LAYERS[mine] and theirs != mine:
            pytest.fail(f"{module} imports {target}: shells of the same level must not depend on each other")


def test_no_import_cycles() -> None:
    graph = {m: {t for t in _imports(p) if t in MODULES and t != m} for m, p in MODULES.items() if _layer(m) not in (None, "__main__")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt]) if nxt in path else nxt)
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


TESTS = Path(__file__).resolve().parent


def test_test_folders_mirror_the_layers() -> None:
    """A reader finds a layer's tests in the folder of the same name; project-wide tests (examples,
    packaging, installation, these layers) stay at the top."""
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    layers = {name for name in LAYERS if (PACKAGE / name).is_dir()}
    assert folders <= layers, f"test folders {sorted(folders - layers)} name no layer of guidance_rules"
    untested = sorted(layer for layer in layers if not any((TESTS / layer).glob("test_*.py")))
    assert not untested, f"layers with no test folder: {untested}"
