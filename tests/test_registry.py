"""Every name -> plugin table of the package is a ``videoact.registry.Registry`` and behaves the same way.

The registries are found in the source (every module-level ``NAME = Registry(...)``), so a new one is checked
without editing this file; the factory modules that import the built-in plugins are imported first.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from videoact.registry import Registry, UnknownNameError

PACKAGE = Path(__file__).resolve().parents[1] / "videoact"

# modules above their plugins: importing them registers the built-ins of registries defined lower down
FACTORIES = (
    "videoact.annotations.formats",
    "videoact.features.pose.factory",
    "videoact.features.skeleton.factory",
    "videoact.heads.anticipation.backends",
)


def _defined_registries() -> list[tuple[str, str]]:
    """``(module, name)`` of every module-level ``name = Registry(...)`` in the package's source."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            func = value.func if isinstance(value, ast.Call) else None
            if (isinstance(func, ast.Name) and func.id == "Registry") or \
                    (isinstance(func, ast.Attribute) and func.attr == "Registry"):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found += [(module, t.id) for t in targets if isinstance(t, ast.Name)]
    return found


DEFINED = _defined_registries()


def _registry(module: str, name: str) -> Registry[Any]:
    for factory in FACTORIES:
        importlib.import_module(factory)
    reg = getattr(importlib.import_module(module), name)
    assert isinstance(reg, Registry), f"{module}.{name}"
    return reg


def test_the_known_registries_are_found() -> None:
    expected = {
        ("videoact.features.backbones", "BACKBONES"), ("videoact.features.pose.base", "POSE_BACKENDS"),
        ("videoact.features.skeleton.registry", "MODELS"), ("videoact.llm.base", "BACKENDS"),
        ("videoact.annotations.formats._common", "IMPORTERS"), ("videoact.annotations.formats._common", "EXPORTERS"),
        ("videoact.eval", "EVALUATORS"), ("videoact.heads.segmentation", "SEGMENTATION_HEADS"),
        ("videoact.heads.localization", "LOCALIZATION_HEADS"), ("videoact.heads.detection.evad", "DETECTION_HEADS"),
        ("videoact.heads.recognition.clip", "HEADS"), ("videoact.train", "TRAINERS"),
        ("videoact.annotations.store", "CHECKPOINT_KINDS"), ("videoact.datasets.skeleton.benchmarks", "BENCHMARKS"),
        ("videoact.datasets.skeleton.untrimmed", "PROTOCOLS"), ("videoact.features.skeleton.layouts", "LAYOUTS"),
    }
    assert expected <= set(DEFINED), expected - set(DEFINED)


# name -> function tables that are data, not plugins
_DATA_TABLES = {"SUB_MAPS"}  # eval/ava.py: which AVA classes each sub-mAP averages


def test_one_registry_class() -> None:
    """No module defines its own registry class or a ``name -> callable`` dict of plugins any more."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and "Registry" in node.name and path.name != "registry.py":
                offenders.append(f"{path}:{node.lineno}: class {node.name}")
            if isinstance(node, ast.AnnAssign) and "dict[str, Callable" in ast.unparse(node.annotation) \
                    and ast.unparse(node.target) not in _DATA_TABLES:
                offenders.append(f"{path}:{node.lineno}: {ast.unparse(node.target)}: {ast.unparse(node.annotation)}")
    assert not offenders, "\n".join(offenders)


def _typo(name: str) -> str:
    return name[:-1] + ("x" if name[-1] != "x" else "y")


@pytest.mark.parametrize(("module", "name"), DEFINED, ids=[f"{m}.{n}" for m, n in DEFINED])
def test_unknown_name_lists_the_names_and_suggests_the_closest(module: str, name: str) -> None:
    reg = _registry(module, name)
    names = reg.names()
    assert names, f"{module}.{name} is empty: add the module that registers its built-ins to FACTORIES"
    target = max(names, key=len)
    with pytest.raises(UnknownNameError) as info:
        reg.get(_typo(target))
    assert isinstance(info.value, KeyError) and info.value.known == names
    message = str(info.value)
    assert message.startswith(f"unknown {reg.kind} {_typo(target)!r} (did you mean {target!r}?); known: ")
    assert message.endswith("known: " + ", ".join(names))
    assert _typo(target) not in reg and target in reg and reg[target] is reg.get(target)
    assert list(reg) == names and len(reg) == len(names) == len(reg.items())


@pytest.mark.parametrize(("module", "name"), DEFINED, ids=[f"{m}.{n}" for m, n in DEFINED])
def test_duplicates_and_patterns(module: str, name: str) -> None:
    reg = _registry(module, name)
    names = reg.names()
    first = names[0]

    def impostor() -> None: ...

    with pytest.raises(ValueError, match=re.escape(f"{first!r} is registered twice (") + ".* and .*impostor"):
        reg.register(first, impostor)
    assert reg.get(first) is not impostor
    assert reg.register(first, reg.get(first)) is reg.get(first)  # the same object again: a no-op
    assert reg.names() == names
    prefix = first[:2]
    assert reg.names(f"{prefix}*") == [n for n in names if n.startswith(prefix)]
    assert reg.names("no such name*") == []


def _public_lookups() -> list[tuple[str, Callable[[], Any]]]:
    from videoact.annotations.formats import export_annotations, get_exporter, get_importer, import_annotations
    from videoact.annotations.store import load_torch_checkpoint
    from videoact.datasets.skeleton.benchmarks import load_benchmark
    from videoact.datasets.skeleton.untrimmed import load_untrimmed
    from videoact.eval import evaluate
    from videoact.features.backbones import build_backbone
    from videoact.features.skeleton.layouts import get_layout
    from videoact.heads.detection.evad import build_detection_head
    from videoact.heads.localization import build_localization_head
    from videoact.heads.segmentation import build_segmentation_head

    here = Path(__file__)
    return [
        ("video backbone", lambda: build_backbone("vit_b1")),
        ("segmentation head", lambda: build_segmentation_head("mstcm")),
        ("localization head", lambda: build_localization_head("actionformr")),
        ("detection head", lambda: build_detection_head("evax")),
        ("import format", lambda: import_annotations("avaa", here)),
        ("import format", lambda: get_importer("avaa")),
        ("export format", lambda: export_annotations("avaa", None, here)),  # type: ignore[arg-type]
        ("export format", lambda: get_exporter("avaa")),
        ("evaluation task", lambda: evaluate("tax", None, None)),  # type: ignore[arg-type]
        ("skeleton benchmark", lambda: load_benchmark("sbu_partia", here)),
        ("untrimmed protocol", lambda: load_untrimmed("nw_ucla_concatt", here)),
        ("joint layout", lambda: get_layout("kinect21")),
        ("checkpoint format", lambda: load_torch_checkpoint(here, fmt="videoact.skeleton/2")),
    ]


def test_public_wrappers_raise_the_one_unknown_name_error() -> None:
    for kind, call in _public_lookups():
        with pytest.raises(UnknownNameError, match=f"unknown {kind} .*did you mean"):
            call()


def test_anticipation_config_names_only_registered_backends() -> None:
    from videoact.config import AnticipationConfig
    from videoact.heads.anticipation.backends import list_backends

    configurable = typing.get_args(typing.get_type_hints(AnticipationConfig)["backend"])
    assert set(configurable) <= set(list_backends())


# ------------------------------------------------------------------------------------------------ command line

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videoact.cli", *args], capture_output=True, text=True, timeout=120)


def _section(text: str, title: str) -> list[str]:
    """First words of the indented lines under the epilog line ``title:``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title) and line.endswith(":"))
    out = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        out.append(line.split()[0])
    return out


@pytest.mark.parametrize(("argv", "title", "module", "name"), [
    (("import", "--help"), "formats (import)", "videoact.annotations.formats", "IMPORTERS"),
    (("export", "--help"), "formats (export)", "videoact.annotations.formats", "EXPORTERS"),
    (("eval", "--help"), "tasks", "videoact.eval", "EVALUATORS"),
    (("train", "--help"), "trainers", "videoact.train", "TRAINERS"),
])
def test_help_lists_exactly_the_registered_names(argv: tuple[str, ...], title: str, module: str, name: str) -> None:
    out = _cli(*argv)
    assert out.returncode == 0, out.stderr
    assert _section(out.stdout, title) == _registry(module, name).names()


def test_eval_choices_and_config_show_come_from_the_registries(capsys: pytest.CaptureFixture[str]) -> None:
    from videoact.cli import EVAL_TASKS, build_parser
    from videoact.eval import EVALUATORS
    from videoact.features.pose.factory import list_pose_backends

    assert list(EVAL_TASKS) == EVALUATORS.names()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "bogus", "--gt", "x", "--pred", "y"])
    choices = capsys.readouterr().err.rpartition("choose from ")[2].strip().rstrip(")")
    assert [c.strip("'") for c in choices.split(", ")] == EVALUATORS.names()
    out = _cli("config", "show")
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.strip().startswith("backend: mediapipe"))
    assert line.endswith(f"(registered: {', '.join(list_pose_backends())})")


def test_unknown_format_on_the_command_line_is_a_clean_error(tmp_path: Path) -> None:
    out = _cli("import", "avaa", __file__, "-o", str(tmp_path / "out"))
    assert out.returncode == 2
    assert "videoact: error: unknown import format 'avaa' (did you mean 'ava'?); known: " in out.stderr
    assert "Traceback" not in out.stderr
