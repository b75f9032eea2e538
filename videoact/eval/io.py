"""Inputs of ``videoact eval``: a run/import directory, or a file in the task's native format.

Native formats per task (imported on the fly with ``import_annotations``):

=========== ================================================ ================================================
task        ground truth                                     predictions
=========== ================================================ ================================================
ava         AVA csv (``--label-map`` = pbtxt / text map)     AVA detection csv
recognition skeleton pickle (mmaction2 / pyskl)              a directory (no native prediction file)
lta         Ego4D LTA json (``--label-map`` = taxonomy)      Ego4D LTA submission json
tad         ActivityNet json, or a THUMOS14 folder           ActivityNet results json, or THUMOS14 txt
            (``--label-map`` = class list)                   (``--label-map`` = class list)
tas         ms-tcn folder / file (``--label-map`` = mapping) ms-tcn results folder / file
=========== ================================================ ================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from videoact.annotations import schema, store
from videoact.annotations.formats import import_annotations
from videoact.annotations.tables import Tables
from videoact.eval._common import EvalError


def is_table_dir(path: Path) -> bool:
    """A directory written by ``videoact import`` / ``videoact run`` (manifest or table folders)."""
    return path.is_dir() and ((path / store.MANIFEST).is_file() or
                              any((path / name).is_dir() for name in schema.TABLE_NAMES))


def _native(task: str, path: Path, role: str, label_map: Path | None, strict: bool = False) -> Tables:
    suffix = path.suffix.lower()
    if task == "ava":
        tables = import_annotations("ava", path, kind=role, strict=strict)
        if label_map is not None:
            tables = Tables.concat([tables, import_annotations("ava-labelmap", label_map)])
        return tables
    if task == "tad":
        if path.is_dir():
            return import_annotations("thumos14", path, class_list=label_map, strict=strict)
        if suffix == ".json":
            return import_annotations("activitynet", path, kind=role, class_list=label_map)
        return import_annotations("thumos14-results", path, class_list=label_map, strict=strict)
    if task == "lta":
        fmt = "ego4d-lta" if role == "gt" else "ego4d-lta-submission"
        return import_annotations(fmt, path, taxonomy=label_map)
    if task == "tas":
        return import_annotations("mstcn", path, mapping=label_map)
    if task == "recognition":
        if role == "gt" and suffix in (".pkl", ".pickle"):
            return import_annotations("skeleton-pickle", path, keypoints=False, label_map=label_map)
        raise EvalError(f"{path}: recognition {'predictions' if role == 'pred' else 'ground truth'} must be a "
                        "directory written by `videoact run` or `videoact import` (ground truth may also be a "
                        "skeleton pickle)")
    raise EvalError(f"unknown evaluation task {task!r}")


def _refuse_lenient(path: Path, tables: Tables) -> None:
    """``--strict`` on a table directory: refuse rows kept as an official tool reads them."""
    for name in ("boxes", "segments"):
        df = getattr(tables, name)
        if not len(df):
            continue
        bad = schema.lenient_rows(df)
        if bad.any():
            row = df[bad].iloc[0]
            why = schema.loads_attrs(row["attrs"]).get("lenient", [])
            line = "" if row["seq"] is None or row["seq"] != row["seq"] else f", source line {int(row['seq']) + 1}"
            raise EvalError(f"{path}: --strict: {int(bad.sum())} {name} row(s) kept as the official tool reads "
                            f"them, e.g. {row['video_id']} ({row['source']}{line}): {', '.join(why)}")


def load_input(task: str, path: str | Path, role: str, label_map: str | Path | None = None,
               strict: bool = False) -> Tables:
    """The tables of ``path`` for ``task``; ``role`` is ``gt`` or ``pred``.

    ``strict`` refuses rows that the official tool scores but the tables' rules forbid (reversed boxes
    or segments, negative times): native files raise ``FormatError`` at the line, table directories
    ``EvalError`` naming a row.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    lm = Path(label_map) if label_map is not None else None
    if is_table_dir(path):
        tables = store.load(path)
        if lm is not None and task == "ava" and not len(tables.labels):
            tables = Tables.concat([tables, import_annotations("ava-labelmap", lm)])
        if strict:
            _refuse_lenient(path, tables)
    else:
        tables = _native(task, path, role, lm, strict)
    if not len(tables) - len(tables.labels):
        raise EvalError(f"{path}: no annotation rows ({'ground truth' if role == 'gt' else 'predictions'} is empty)")
    return tables


def format_result(result: dict[str, Any]) -> str:
    """A short human-readable table: scalars, then small dicts of scalars; big blocks are left to --json."""
    rows: list[tuple[str, str]] = []

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.6f}" if np.isfinite(v) else "nan"
        return "n/a" if v is None else str(v)

    def scalar(v: Any) -> bool:
        return v is None or isinstance(v, (int, float, str))

    for key, value in result.items():
        if scalar(value):
            rows.append((key, fmt(value)))
    for key, value in result.items():
        if key == "counts" or not isinstance(value, dict) or not value:
            continue
        if all(scalar(v) for v in value.values()) and len(value) <= 100:
            rows += [(f"{key}[{k}]", fmt(v)) for k, v in value.items()]
    for k, v in result.get("counts", {}).items():
        rows.append((f"counts[{k}]", fmt(v)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
