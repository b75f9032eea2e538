"""The package's layers, read from its source (AST only: nothing is imported).

Data flows one way (docs/architecture.md): ``annotations`` / ``config`` / ``decode`` <- ``pipeline`` (the stage
protocol) <- ``features`` / ``llm`` <-
``heads`` / ``datasets`` <- ``eval`` / ``viz`` <- ``runner`` / ``train`` <- ``cli``. Every import in a module,
function-level and ``TYPE_CHECKING`` ones included, must point down (or stay inside its own top-level package),
and no two modules may import each other through any chain.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "videoact"

_LEAVES = {"_version", "registry"}
_BASE = _LEAVES | {"annotations", "config", "decode", "models", "devices"}
_STAGE = _BASE | {"pipeline"}  # the stage protocol every stage module implements
_MIDDLE = _STAGE | {"features", "llm"}
_HEADS = _MIDDLE | {"heads", "datasets"}
_TOP = _HEADS | {"eval", "viz"}
# top-level package or module of videoact -> the top-level ones it may import (its own is always allowed)
ALLOWED: dict[str, set[str]] = {
    "_version": set(),
    "registry": set(),
    "annotations": _LEAVES,
    "config": _LEAVES,
    "decode": _LEAVES,
    "models": _LEAVES,  # the model zoo's cards, label maps and downloads
    "devices": _LEAVES | {"config"},  # runner.device / precision -> torch.device, autocast (ConfigError)
    "pipeline": _BASE,
    "features": _STAGE,
    "llm": _BASE,
    "heads": _MIDDLE,
    "datasets": _MIDDLE - {"llm"},
    "eval": _HEADS,
    "viz": _HEADS,
    "runner": _TOP,
    "train": _TOP,
    "cli": _TOP | {"runner", "train"},
    "api": _TOP | {"runner"},  # videoact.run / videoact.Pipeline: the CLI's level, for Python callers
    "": _TOP | {"runner", "train", "cli", "api"},  # videoact/__init__.py
}


@dataclass(frozen=True)
class Edge:
    src: str  # module, e.g. videoact.heads.temporal
    dst: str
    path: Path
    line: int


def modules(package: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module below ``package`` (a folder named like the package)."""
    out = {}
    for p in sorted(package.rglob("*.py")):
        parts = list(p.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def edges(package: Path) -> Iterator[Edge]:
    """Every import of a module of ``package`` by another, with its file and line."""
    mods = modules(package)
    root = package.name
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    mod = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
            for t in targets:
                if t != root and not t.startswith(root + "."):
                    continue
                while t not in mods and "." in t:
                    t = t.rpartition(".")[0]
                if t != name:
                    yield Edge(name, t, path.relative_to(package.parent), node.lineno)


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward_imports(package: Path) -> list[str]:
    """``file:line: a -> b`` for every import that the layer table does not allow."""
    bad = []
    for e in edges(package):
        a, b = _top(e.src), _top(e.dst)
        if a == b:
            continue
        if a not in ALLOWED:
            bad.append(f"{e.path}:{e.line}: {e.src} is in no layer (add '{a}' to ALLOWED in {__file__})")
        elif b not in ALLOWED[a]:
            bad.append(f"{e.path}:{e.line}: {e.src} imports {e.dst} ('{a}' may import only "
                       f"{', '.join(sorted(ALLOWED[a])) or 'nothing of videoact'})")
    return bad


def import_cycles(package: Path) -> list[list[str]]:
    """Strongly connected groups of modules (every group of two or more is a cycle), Tarjan's algorithm."""
    graph: dict[str, set[str]] = {m: set() for m in modules(package)}
    for e in edges(package):
        graph[e.src].add(e.dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_every_import_points_down() -> None:
    bad = upward_imports(PACKAGE)
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    cycles = import_cycles(PACKAGE)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_every_top_level_package_has_a_layer() -> None:
    tops = {_top(m) for m in modules(PACKAGE)}
    assert tops <= set(ALLOWED), f"not in ALLOWED: {sorted(tops - set(ALLOWED))}"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "videoact"


@pytest.mark.parametrize("importer", ["from videoact.heads.model import Model", "import videoact.heads.model",
                                      "def f():\n    from ..heads import model\n"])
def test_a_planted_upward_import_is_named_with_file_and_line(tmp_path: Path, importer: str) -> None:
    pkg = _write(tmp_path, {"videoact/__init__.py": "", "videoact/decode/__init__.py": "",
                            "videoact/decode/reader.py": f'"""doc"""\n{importer}\n',
                            "videoact/heads/__init__.py": "", "videoact/heads/model.py": "Model = 1\n"})
    bad = upward_imports(pkg)
    assert len(bad) == 1, bad
    line = 3 if importer.startswith("def") else 2
    assert bad[0].startswith(f"videoact/decode/reader.py:{line}: videoact.decode.reader imports videoact.heads"), bad


def test_a_planted_cycle_is_found(tmp_path: Path) -> None:
    pkg = _write(tmp_path, {"videoact/__init__.py": "", "videoact/heads/__init__.py": "",
                            "videoact/heads/a.py": "from videoact.heads.b import B\nA = 1\n",
                            "videoact/heads/b.py": "def f():\n    from videoact.heads import a\nB = 1\n",
                            "videoact/heads/c.py": "from videoact.heads.a import A\n"})
    assert upward_imports(pkg) == []
    assert import_cycles(pkg) == [["videoact.heads.a", "videoact.heads.b"]]
