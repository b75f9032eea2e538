"""AVA v2.x spatio-temporal action detection files: box csv, label maps, excluded timestamps, proposals.

Formats (see ``specs/evaluation.md`` section 1):

``ava`` -- csv, no header, one row per (person box, action) on a keyframe::

    video_id,timestamp,x1,y1,x2,y2,action_id[,col8]

* ``timestamp`` is the keyframe time in **seconds of the movie** (integer, usually written ``%04d``:
  ``0902`` .. ``1798``). It becomes ``t_s = float(timestamp)``; the frame rate is unknown, so ``fps``
  and ``frame`` stay null.
* ``x1, y1, x2, y2`` are normalised to [0, 1] with (0, 0) the top-left corner, the same convention as
  the ``boxes`` table, so they are copied unchanged. Official files write 3 decimals.
* ``action_id`` is the 1-based AVA action id -> ``label_id`` (an empty id, as SlowFast writes for
  person boxes, -> null). ``label`` is filled only when a ``label_map`` is given; ``label_space``
  defaults to ``"ava"``.
* ``col8``: in ground-truth files the person (entity) id -> ``actor_id`` with ``score = 1.0``; in
  detection files the confidence -> ``score`` (``actor_id`` null). ``kind="auto"`` reads the file as
  predictions when any col8 is not an integer (``0.655``), otherwise as ground truth (integers are
  person ids). A file without any col8 (7 columns) is ground truth without person ids (the official
  reader gives such rows score 1.0). Pass ``kind="pred"`` for a detection file whose scores are all
  written as integers.
* Rows the official evaluator scores but the table rules forbid are kept as written and counted in one
  warning line per file (``strict=True`` / ``--strict`` refuses them): a reversed box (``x1 > x2`` or
  ``y1 > y2``) gets ``flag="lenient"`` and ``attrs["lenient"] = ["reversed_box"]``; an action id
  outside the ``label_map`` keeps its id, a null ``label`` and ``attrs["lenient"] = ["label_not_in_map"]``
  (the evaluator's whitelist drops the row; its keyframe still counts as annotated).
* A 2-column row ``video_id,timestamp`` is a keyframe with no action -> a row with a null box and
  ``flag="empty"``.

``ava-excluded`` -- ``video_id,timestamp`` csv -> rows with a null box and ``flag="excluded"``.

``ava-labelmap`` -- the official pbtxt (``item { name: "..." id: N }``, ``label_id:`` accepted too) or
mmaction2's text map (``N: name`` per line), detected from the content -> the ``labels`` table.

``ava-proposals`` -- mmaction2 person proposals: a pickle ``{"vid,0902": ndarray (N, 5)}`` of
normalised ``[x1, y1, x2, y2, score]`` (``(N, 4)`` without scores -> score 1.0) -> ``boxes`` rows with
``task="proposal"`` and a null label. A key with an empty array keeps one row with a null box,
``flag="empty"`` and score 0.0 so the key survives.

What our tables hold that these formats cannot: fps / frame indices, label names inside the csv,
person ids in detection files (and scores in ground-truth files); exporters drop them. What the
formats hold that has no column is kept losslessly: the text of numbers written in a non-canonical way
(``902`` instead of ``0902``, ``0.5`` instead of ``0.500``) goes into ``attrs["text"]`` (only for those
cells), a column count that differs from the row kind's usual one into ``attrs["columns"]``, and the
file layout (line ending, final newline, blank lines, score decimals, pbtxt id key, pickle dtype) into
``tables.meta["ava"|"ava-excluded"|"ava-labelmap"|"ava-proposals"]``, keyed by the rows' ``source``
(by label space for label maps). Exporters restore it, so:

* ``ava``, ``ava-excluded`` and ``ava-labelmap`` round trips are **byte-identical** (also through
  ``store.write_tables`` / ``store.load``), for every file these importers accept whose pbtxt uses the
  official layout (other pbtxt layouts -- one-line items, other indentation -- come back
  value-identical in the official layout);
* ``ava-proposals`` round trips are **value-identical** (same keys in the same order, same dtypes,
  equal arrays): pickle bytes depend on the writer's protocol and numpy version.

Row order is kept in ``seq`` (0-based line index for csv files, running row index over the keys for
proposals); exporters write rows sorted by ``seq``, with rows made by the pipeline (null ``seq``) last.
"""

from __future__ import annotations

import logging
import math
import pickle
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations import schema
from videoact.annotations.formats._common import (
    FormatError,
    parse_float,
    parse_int,
    read_text,
    register_exporter,
    register_importer,
    safe_pickle_load,
)
from videoact.annotations.schema import AnnotationError
from videoact.annotations.store import atomic_write_bytes, atomic_write_text
from videoact.annotations.tables import Tables

__all__ = [
    "format_timestamp",
    "keyframe_key",
    "parse_label_map",
    "read_label_map",
]

_log = logging.getLogger(__name__)
_BOX = ("x1", "y1", "x2", "y2")
_INT_RE = re.compile(r"[+-]?\d+")


# ----------------------------------------------------------------------------------------------- helpers


def format_timestamp(t: float) -> str:
    """A keyframe time as AVA files write it: ``902.0 -> "0902"`` (non-integers as Python's shortest repr)."""
    t = float(t)
    if t.is_integer() and t >= 0:
        return f"{int(t):04d}"
    return repr(t)


def keyframe_key(video_id: str, t: float) -> str:
    """The ``"vid,0902"`` key used by mmaction2 proposals and by SlowFast / mmaction2 evaluators."""
    return f"{video_id},{format_timestamp(t)}"


def _fmt_box(v: float) -> str:
    return f"{v:.3f}"


def _fmt_score(v: float, decimals: int | None) -> str:
    return repr(float(v)) if decimals is None else f"{v:.{decimals}f}"


def _is_null(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _flag(row: Mapping[str, Any]) -> str | None:
    return None if _is_null(row["flag"]) else str(row["flag"])


def _same_value(text: str, value: object) -> bool:
    """Whether kept original ``text`` still spells ``value`` (so an edited value gets a fresh text)."""
    if _is_null(value):
        return text.strip() == ""
    try:
        return float(text) == float(value)  # type: ignore[arg-type]
    except ValueError:
        return False


def _cell(value: object, canonical: str, texts: Mapping[str, str], field: str) -> str:
    text = texts.get(field)
    return text if text is not None and _same_value(text, value) else canonical


def _decimals(text: str) -> int | None:
    """Digits after the point of a plain fixed-point number, else None."""
    m = re.fullmatch(r"[+-]?\d+\.(\d+)", text.strip())
    return len(m.group(1)) if m else None


def _read_lines(path: Path) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    """Non-blank lines with their 1-based numbers, plus the layout needed to write the file back."""
    text = read_text(path)
    newline = "\r\n" if "\r\n" in text else "\n"
    parts = text.split("\n")
    final_newline = len(parts) > 1 and parts[-1] == ""
    if final_newline or parts == [""]:
        parts = parts[:-1]
    lines: list[tuple[int, str]] = []
    blank: list[int] = []
    for i, raw in enumerate(parts):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.strip() == "":
            blank.append(i)
        else:
            lines.append((i + 1, line))
    layout: dict[str, Any] = {"newline": newline, "final_newline": final_newline}
    if blank:
        layout["blank_lines"] = blank
    return lines, layout


def _join_lines(lines: list[str], layout: Mapping[str, Any]) -> str:
    lines = list(lines)
    for i in layout.get("blank_lines", []):
        if i <= len(lines):
            lines.insert(i, "")
    newline = layout.get("newline", "\n")
    text = newline.join(lines)
    if lines and layout.get("final_newline", True):
        text += newline
    return text


def _attrs(texts: dict[str, str], **extra: object) -> str | None:
    d: dict[str, object] = {}
    if texts:
        d["text"] = texts
    d.update({k: v for k, v in extra.items() if v is not None})
    return schema.dumps_attrs(d)


def _sorted_by_seq(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in file order (``seq``), rows without ``seq`` last in table order."""
    order = df.assign(_null=df["seq"].isna(), _pos=np.arange(len(df)))
    order = order.sort_values(["_null", "seq", "_pos"], kind="stable")
    return df.loc[order.index].reset_index(drop=True)


def _pick_source(df: pd.DataFrame, source: str | None, what: str) -> tuple[pd.DataFrame, str | None]:
    if source is not None:
        df = df[df["source"] == source]
        if not len(df):
            raise AnnotationError(f"no {what} rows with source {source!r} to export")
        return df, source
    sources = list(dict.fromkeys(df["source"]))
    if len(sources) > 1:
        raise AnnotationError(f"{what} rows come from several sources {sources}: pass source=... to pick one")
    return df, (sources[0] if sources else None)


def _file_meta(tables: Tables, fmt: str, key: str | None) -> dict[str, Any]:
    by_key = tables.meta.get(fmt, {})
    if not isinstance(by_key, dict) or key is None:
        return {}
    found = by_key.get(key, {})
    return found if isinstance(found, dict) else {}


def _default_source(path: Path, kind: str, dataset: str, source: str | None) -> str:
    if source:
        return source
    return f"ground_truth:{dataset}" if kind == "gt" else f"predictions:{path.name}"


def _check_box(path: Path, line: int, vals: list[float], *, allow_reversed: bool = False) -> bool:
    """Raise on a coordinate outside [0, 1]; a reversed box raises too unless ``allow_reversed`` (-> True)."""
    for name, v in zip(_BOX, vals, strict=True):
        if not 0.0 <= v <= 1.0:
            raise FormatError(path, line, f"box coordinate {name}={v} is outside [0, 1] "
                                          "(AVA boxes are normalised)")
    x1, y1, x2, y2 = vals
    if x2 < x1 or y2 < y1:
        if allow_reversed:
            return True
        raise FormatError(path, line, f"wrong box order: need x1 <= x2 and y1 <= y2, "
                                      f"got {x1}, {y1}, {x2}, {y2}")
    return False


_LENIENT_KINDS = {
    "reversed_box": "reversed box(es) (x1 > x2 or y1 > y2; kept as written, never matched)",
    "label_not_in_map": "row(s) with an action id outside the label map (kept, dropped by the evaluator)",
}


def lenient_message(path: Path | str, counts: Mapping[str, int]) -> str | None:
    """The one warning line for ``path`` (``None`` when nothing was read leniently)."""
    found = [f"{n} {_LENIENT_KINDS[k]}" for k, n in counts.items() if n]
    if not found:
        return None
    return f"{path}: read as the official AVA evaluator reads it: {'; '.join(found)} (--strict refuses them)"


def _warn_lenient(path: Path, counts: Mapping[str, int]) -> None:
    """One warning line per file with the count of each kind of row kept as the official tool reads it."""
    msg = lenient_message(path, counts)
    if msg:
        _log.warning("%s", msg)


def _parse_timestamp(path: Path, line: int, text: str, texts: dict[str, str]) -> float:
    t = parse_float(text, path, line, "timestamp")
    if t < 0:
        raise FormatError(path, line, f"timestamp is negative: {text!r}")
    if format_timestamp(t) != text:
        texts["timestamp"] = text
    return t


# -------------------------------------------------------------------------------------------- label maps

_PBTXT_TOKEN = re.compile(
    r'(?P<ws>\s+)|(?P<comment>#[^\n]*)|(?P<open>\{)|(?P<close>\})'
    r'|(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<value>"(?:[^"\\\n]|\\.)*"|[^\s{}"]+)'
    r'|(?P<word>[A-Za-z_][A-Za-z0-9_]*)'
)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text[1:-1])


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _parse_pbtxt(path: Path, text: str) -> tuple[list[tuple[int, str, dict[str, str]]], str]:
    """``[(id, name, extra fields)]`` and the id key used (``id`` or ``label_id``)."""
    items: list[tuple[int, str, dict[str, str]]] = []
    id_keys: list[str] = []
    pos, depth = 0, 0
    current: dict[str, tuple[int, str]] = {}
    item_line = 0

    def line_of(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    while pos < len(text):
        m = _PBTXT_TOKEN.match(text, pos)
        if m is None:
            raise FormatError(path, line_of(pos), f"cannot read label map text {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group("ws") or m.group("comment"):
            continue
        line = line_of(m.start())
        if m.group("word"):
            if m.group("word") != "item" or depth:
                raise FormatError(path, line, f"expected 'item {{', got {m.group('word')!r}")
            item_line = line
            continue
        if m.group("open"):
            if depth or item_line == 0:
                raise FormatError(path, line, "unexpected '{' (label map items are 'item { ... }')")
            depth, current = 1, {}
            continue
        if m.group("close"):
            if not depth:
                raise FormatError(path, line, "unexpected '}'")
            if "name" not in current:
                raise FormatError(path, item_line, "label map item has no name")
            id_key = "id" if "id" in current else "label_id" if "label_id" in current else None
            if id_key is None:
                raise FormatError(path, item_line, "label map item has no id (expected 'id:' or 'label_id:')")
            id_line, id_text = current[id_key]
            label_id = parse_int(id_text, path, id_line, "label id")
            name = current["name"][1]
            extra = {k: v for k, (_, v) in current.items() if k not in ("name", id_key)}
            items.append((label_id, name, extra))
            id_keys.append(id_key)
            depth, item_line = 0, 0
            continue
        key, value = m.group("key"), m.group("value")
        if not depth:
            raise FormatError(path, line, f"field {key!r} outside an 'item {{ ... }}'")
        if key in current:
            raise FormatError(path, line, f"label map item repeats the field {key!r}")
        if key in ("name", "display_name") and not value.startswith('"'):
            raise FormatError(path, line, f"{key} must be a quoted string, got {value!r}")
        current[key] = (line, _unquote(value) if key == "name" else value)
    if depth:
        raise FormatError(path, item_line, "label map item is not closed with '}'")
    id_key = Counter(id_keys).most_common(1)[0][0] if id_keys else "id"
    return items, id_key


_TEXT_MAP_RE = re.compile(r"\s*(\d+)\s*:\s?(.*)")


def _parse_text_map(path: Path, lines: list[tuple[int, str]]) -> list[tuple[int, str, dict[str, str]]]:
    items: list[tuple[int, str, dict[str, str]]] = []
    for no, line in lines:
        m = _TEXT_MAP_RE.fullmatch(line)
        if m is None:
            raise FormatError(path, no, f"expected 'ID: name', got {line!r}")
        if m.group(2).strip() == "":
            raise FormatError(path, no, f"label {m.group(1)} has no name")
        items.append((int(m.group(1)), m.group(2), {}))
    return items


def _load_label_map(path: Path) -> tuple[list[tuple[int, str, dict[str, str]]], dict[str, Any]]:
    path = Path(path)
    lines, layout = _read_lines(path)
    if not lines:
        raise FormatError(path, None, "empty label map")
    first = lines[0][1].lstrip()
    if first.startswith("item") or first.startswith("#") or "{" in first:
        text = "\n".join(line for _, line in _numbered_all(path))
        items, id_key = _parse_pbtxt(path, text)
        layout.update(style="pbtxt", id_key=id_key)
    else:
        items = _parse_text_map(path, lines)
        layout.update(style="text")
    seen: set[int] = set()
    for label_id, _, _ in items:
        if label_id in seen:
            line = _line_of_id(path, label_id, layout["style"])
            raise FormatError(path, line, f"duplicate label id {label_id}")
        seen.add(label_id)
    return items, layout


def _numbered_all(path: Path) -> list[tuple[int, str]]:
    """Every line (blank ones too), without line endings, so token offsets give true line numbers."""
    text = read_text(path)
    return [(i + 1, raw.rstrip("\r")) for i, raw in enumerate(text.split("\n"))]


def _line_of_id(path: Path, label_id: int, style: str) -> int | None:
    """The line where ``label_id`` is defined the second time (for the duplicate-id message)."""
    pattern = (re.compile(rf"\s*(?:label_)?id\s*:\s*{label_id}\s*(?:}}.*)?") if style == "pbtxt"
               else re.compile(rf"\s*{label_id}\s*:.*"))
    hits = [no for no, line in _numbered_all(path) if pattern.fullmatch(line)]
    return hits[1] if len(hits) > 1 else (hits[0] if hits else None)


def parse_label_map(path: str | Path) -> list[tuple[int, str]]:
    """``[(id, name)]`` in file order from an AVA pbtxt or an mmaction2 ``N: name`` text map."""
    items, _ = _load_label_map(Path(path))
    return [(i, n) for i, n, _ in items]


def read_label_map(path: str | Path) -> dict[int, str]:
    """``{id: name}`` from an AVA pbtxt or an mmaction2 ``N: name`` text map (detected from the content).

    Raises:
        FormatError: naming the file, line and problem (no name / id, duplicate id, unreadable line).
    """
    return dict(parse_label_map(path))


@register_importer("ava-labelmap")
def import_ava_labelmap(path: Path, *, label_space: str = "ava") -> Tables:
    """Read an AVA label map (pbtxt or text) into the ``labels`` table, in file order."""
    path = Path(path)
    items, layout = _load_label_map(path)
    labels = pd.DataFrame({
        "label_space": [label_space] * len(items),
        "id": [i for i, _, _ in items],
        "name": [n for _, n, _ in items],
        "attrs": [schema.dumps_attrs(extra) for _, _, extra in items],
    })
    meta = {"ava-labelmap": {label_space: layout}}
    return Tables(labels=labels, meta=meta).validated(where=str(path))


@register_exporter("ava-labelmap")
def export_ava_labelmap(
    tables: Tables, out: Path, *, label_space: str | None = None, style: str = "auto"
) -> list[Path]:
    """Write one label space as a pbtxt (or as the ``N: name`` text map when imported from one / asked).

    Args:
        label_space: which label space (the only one when None).
        style: ``pbtxt``, ``text`` or ``auto`` (the style the map was imported from; pbtxt otherwise).
    """
    df = schema.validate("labels", tables.labels, where="labels")
    spaces = list(dict.fromkeys(df["label_space"]))
    if label_space is None:
        if len(spaces) != 1:
            raise AnnotationError(f"labels hold label spaces {spaces}: pass label_space=... to pick one")
        label_space = spaces[0]
    rows = df[df["label_space"] == label_space]
    if not len(rows):
        raise AnnotationError(f"no labels in label space {label_space!r} (have {spaces})")
    layout = _file_meta(tables, "ava-labelmap", label_space)
    if style == "auto":
        style = layout.get("style", "pbtxt")
    if style not in ("pbtxt", "text"):
        raise AnnotationError(f"style must be 'pbtxt', 'text' or 'auto', got {style!r}")
    lines: list[str] = []
    id_key = layout.get("id_key", "id")
    for label_id, name, attrs in zip(rows["id"], rows["name"], rows["attrs"], strict=True):
        if style == "text":
            lines.append(f"{int(label_id)}: {name}")
            continue
        lines += ["item {", f"  name: {_quote(str(name))}", f"  {id_key}: {int(label_id)}"]
        for k, v in schema.loads_attrs(attrs).items():
            lines.append(f"  {k}: {v}")  # kept as written (quotes included)
        lines.append("}")
    if style != layout.get("style"):
        layout = {k: v for k, v in layout.items() if k in ("newline", "final_newline")}
    atomic_write_text(out, _join_lines(lines, layout))
    return [out]


# ------------------------------------------------------------------------------------------ box csv files


def _detect_kind(rows: list[tuple[int, list[str]]]) -> str:
    col8 = [f[7] for _, f in rows if len(f) == 8 and f[7].strip() != ""]
    return "pred" if any(not _INT_RE.fullmatch(v.strip()) for v in col8) else "gt"


@register_importer("ava")
def import_ava(
    path: Path,
    *,
    kind: str = "auto",
    label_map: str | Path | None = None,
    label_space: str = "ava",
    dataset: str = "ava",
    source: str | None = None,
    strict: bool = False,
) -> Tables:
    """Read an AVA ground-truth or detection csv into the ``boxes`` table (``task="detection"``).

    Rows the official evaluator (ActivityNet ``get_ava_performance.py``) accepts are kept as it reads
    them, with one warning line giving their counts: a **reversed box** (``x1 > x2`` or ``y1 > y2``)
    keeps its corners as written with ``flag="lenient"`` and ``attrs["lenient"] = ["reversed_box"]``
    (a reversed detection is dropped by the evaluator's ``_remove_invalid_boxes`` after the top-50 cap,
    so it never matches; a reversed ground-truth box makes the reference's ``np_box_list.BoxList``
    raise, so ``videoact eval`` refuses it, naming the row); an **action id outside** ``label_map``
    keeps its id with a null ``label`` and ``attrs["lenient"] = ["label_not_in_map"]`` (the
    evaluator's class whitelist drops the row, its keyframe still counts). ``strict=True`` refuses
    both instead.

    Args:
        kind: ``gt`` (col8 = person id), ``pred`` (col8 = score) or ``auto`` (see the module docstring).
        label_map: a pbtxt / text label map; fills ``label`` and the ``labels`` table (an action id
            missing from it is kept with a null label, or an error with ``strict``).
        label_space: the label space of ``label_id``.
        dataset: names the ground-truth source ``ground_truth:<dataset>``.
        source: overrides the ``source`` of every row (predictions default to ``predictions:<file>``).
        strict: refuse reversed boxes and ids outside the label map (``FormatError`` naming the line).
    """
    path = Path(path)
    lenient = Counter({"reversed_box": 0, "label_not_in_map": 0})
    if kind not in ("auto", "gt", "pred"):
        raise AnnotationError(f"kind must be 'gt', 'pred' or 'auto', got {kind!r}")
    names: dict[int, str] | None = None
    labels = schema.empty("labels")
    meta: dict[str, Any] = {}
    if label_map is not None:
        lm = import_ava_labelmap(Path(label_map), label_space=label_space)
        names, labels, meta = lm.label_names(label_space), lm.labels, dict(lm.meta)
    lines, layout = _read_lines(path)
    rows: list[tuple[int, list[str]]] = []
    for no, line in lines:
        fields = line.split(",")
        if len(fields) not in (2, 7, 8):
            raise FormatError(path, no, f"wrong column count: expected 2, 7 or 8 comma-separated columns "
                                        f"(video_id,timestamp,x1,y1,x2,y2,action_id[,person_id|score]), "
                                        f"got {len(fields)}")
        if fields[0].strip() == "":
            raise FormatError(path, no, "missing video_id in the first column")
        rows.append((no, fields))
    if kind == "auto":
        kind = _detect_kind(rows)
    src = _default_source(path, kind, dataset, source)
    records: list[dict[str, Any]] = []
    score_texts: list[str] = []
    for no, f in rows:
        texts: dict[str, str] = {}
        extra: dict[str, Any] = {}
        rec: dict[str, Any] = {"video_id": f[0], "task": "detection", "label_space": label_space,
                               "source": src, "seq": no - 1, "score": 1.0}
        rec["t_s"] = _parse_timestamp(path, no, f[1], texts)
        columns: int | None = None
        if len(f) == 2:
            rec["flag"] = "empty"
            rec["label_space"] = None
        else:
            box = [parse_float(f[2 + i], path, no, name) for i, name in enumerate(_BOX)]
            if _check_box(path, no, box, allow_reversed=not strict):
                rec["flag"] = schema.LENIENT
                extra.setdefault("lenient", []).append("reversed_box")
                lenient["reversed_box"] += 1
            for name, v, t in zip(_BOX, box, f[2:6], strict=True):
                rec[name] = v
                if _fmt_box(v) != t:
                    texts[name] = t
            if f[6].strip() == "":
                rec["label_id"] = None
                if f[6] != "":
                    texts["action_id"] = f[6]
            else:
                label_id = parse_int(f[6].strip(), path, no, "action id")
                if label_id < 0:
                    raise FormatError(path, no, f"action id is negative: {f[6]!r}")
                if str(label_id) != f[6]:
                    texts["action_id"] = f[6]
                rec["label_id"] = label_id
                if names is not None:
                    if label_id not in names:
                        if strict:
                            raise FormatError(path, no, f"unknown label {label_id} (not in {label_map}; "
                                                        "the official evaluator drops such rows)")
                        extra.setdefault("lenient", []).append("label_not_in_map")
                        lenient["label_not_in_map"] += 1
                    else:
                        rec["label"] = names[label_id]
            col8 = f[7] if len(f) == 8 else None
            if kind == "gt":
                if col8 is not None and col8.strip() != "":
                    actor = parse_int(col8.strip(), path, no, "person id (column 8 of a ground-truth file)")
                    rec["actor_id"] = actor
                    if str(actor) != col8:
                        texts["col8"] = col8
                elif col8 is not None:
                    columns = 8
                    if col8 != "":
                        texts["col8"] = col8
            elif col8 is None:
                columns = 7
            else:
                score = parse_float(col8, path, no, "score (column 8 of a detection file)")
                rec["score"] = score
                score_texts.append(col8)
        rec["attrs"] = _attrs(texts, columns=columns, **extra)
        records.append(rec)
    decimals = Counter(d for d in map(_decimals, score_texts) if d is not None).most_common(1)
    layout["kind"] = kind
    if decimals:
        layout["score_decimals"] = decimals[0][0]
    # Score texts that the file-wide decimals do not reproduce keep their own text.
    if kind == "pred":
        d = layout.get("score_decimals")
        for rec, (_, f) in zip(records, rows, strict=True):
            if len(f) == 8 and _fmt_score(rec["score"], d) != f[7]:
                attrs = schema.loads_attrs(rec["attrs"])
                attrs.setdefault("text", {})["col8"] = f[7]
                rec["attrs"] = schema.dumps_attrs(attrs)
    meta["ava"] = {src: layout}
    boxes = pd.DataFrame.from_records(records, columns=schema.columns("boxes"))
    tables = Tables(boxes=boxes, labels=labels, meta=meta).validated(where=str(path))
    _warn_lenient(path, lenient)
    return tables


def _ava_line(row: Mapping[str, Any], kind: str, decimals: int | None) -> str:
    attrs = schema.loads_attrs(row["attrs"])
    texts: dict[str, str] = attrs.get("text", {})
    vid = str(row["video_id"])
    ts = _cell(row["t_s"], format_timestamp(row["t_s"]), texts, "timestamp")
    if _flag(row) == "empty" and all(_is_null(row[c]) for c in _BOX):
        return f"{vid},{ts}"
    cells = [vid, ts]
    for c in _BOX:
        if _is_null(row[c]):
            raise AnnotationError(f"boxes row of {vid} at t={row['t_s']} has no box; "
                                  "an AVA csv row needs one")
        cells.append(_cell(row[c], _fmt_box(row[c]), texts, c))
    label = row["label_id"]
    cells.append(_cell(label, "" if _is_null(label) else str(int(label)), texts, "action_id"))
    columns = attrs.get("columns")
    if kind == "gt":
        actor = row["actor_id"]
        col8 = _cell(actor, "" if _is_null(actor) else str(int(actor)), texts, "col8")
        if columns is None:
            columns = 7 if _is_null(actor) else 8
    else:
        col8 = _cell(row["score"], _fmt_score(row["score"], decimals), texts, "col8")
        columns = columns or 8
    if columns == 8:
        cells.append(col8)
    return ",".join(cells)


@register_exporter("ava")
def export_ava(
    tables: Tables,
    out: Path,
    *,
    kind: str = "auto",
    source: str | None = None,
    score_decimals: int | str | None = None,
) -> list[Path]:
    """Write the ``detection`` boxes (not ``excluded`` keyframes) as an AVA csv, in ``seq`` order.

    Args:
        kind: ``gt`` (col8 = person id, 7 columns when it is null), ``pred`` (col8 = score), or ``auto``:
            ``gt`` when the rows' source starts with ``ground_truth``, else ``pred``.
        source: which rows to write when they come from several sources.
        score_decimals: decimals of written scores; default: as in the imported file, else the shortest
            text that reads back to the same float.
    """
    df = schema.validate("boxes", tables.boxes, where="boxes")
    df = df[(df["task"] == "detection") & (df["flag"].isna() | df["flag"].isin(["empty", schema.LENIENT]))]
    df, src = _pick_source(df, source, "AVA detection")
    layout = _file_meta(tables, "ava", src)
    if kind == "auto":
        kind = "gt" if (src or "").startswith("ground_truth") else "pred"
    if kind not in ("gt", "pred"):
        raise AnnotationError(f"kind must be 'gt', 'pred' or 'auto', got {kind!r}")
    decimals = layout.get("score_decimals") if score_decimals is None else int(score_decimals)
    lines = [_ava_line(row, kind, decimals) for row in _sorted_by_seq(df).to_dict("records")]
    atomic_write_text(out, _join_lines(lines, layout))
    return [out]


@register_importer("ava-excluded")
def import_ava_excluded(path: Path, *, dataset: str = "ava", source: str | None = None) -> Tables:
    """Read an excluded-timestamps csv (``video_id,timestamp``) into flagged ``boxes`` rows."""
    path = Path(path)
    lines, layout = _read_lines(path)
    src = source or f"ground_truth:{dataset}"
    records: list[dict[str, Any]] = []
    for no, line in lines:
        f = line.split(",")
        if len(f) != 2:
            raise FormatError(path, no, f"wrong column count: expected 2 columns (video_id,timestamp), "
                                        f"got {len(f)}")
        if f[0].strip() == "":
            raise FormatError(path, no, "missing video_id in the first column")
        texts: dict[str, str] = {}
        t = _parse_timestamp(path, no, f[1], texts)
        records.append({"video_id": f[0], "task": "detection", "t_s": t, "score": 1.0, "flag": "excluded",
                        "seq": no - 1, "source": src, "attrs": _attrs(texts)})
    boxes = pd.DataFrame.from_records(records, columns=schema.columns("boxes"))
    return Tables(boxes=boxes, meta={"ava-excluded": {src: layout}}).validated(where=str(path))


@register_exporter("ava-excluded")
def export_ava_excluded(tables: Tables, out: Path, *, source: str | None = None) -> list[Path]:
    """Write the ``excluded`` keyframes as ``video_id,timestamp`` lines, in ``seq`` order."""
    df = schema.validate("boxes", tables.boxes, where="boxes")
    df, src = _pick_source(df[df["flag"] == "excluded"], source, "excluded-keyframe")
    layout = _file_meta(tables, "ava-excluded", src)
    lines = []
    for row in _sorted_by_seq(df).to_dict("records"):
        texts = schema.loads_attrs(row["attrs"]).get("text", {})
        ts = _cell(row["t_s"], format_timestamp(row["t_s"]), texts, "timestamp")
        lines.append(f"{row['video_id']},{ts}")
    atomic_write_text(out, _join_lines(lines, layout))
    return [out]


# ------------------------------------------------------------------------------------------------ proposals


def _split_key(path: Path, key: object) -> tuple[str, str]:
    if not isinstance(key, str) or key.count(",") < 1:
        raise FormatError(path, None, f"proposal key {key!r} is not 'video_id,timestamp'")
    vid, ts = key.rsplit(",", 1)
    if vid == "":
        raise FormatError(path, None, f"proposal key {key!r} has no video id")
    return vid, ts


@register_importer("ava-proposals")
def import_ava_proposals(path: Path, *, source: str | None = None) -> Tables:
    """Read an mmaction2 proposals pickle into ``boxes`` rows with ``task="proposal"``.

    Args:
        source: the rows' source (default ``predictions:<file name>``).
    """
    path = Path(path)
    data = safe_pickle_load(path)
    if not isinstance(data, dict):
        raise FormatError(path, None, f"expected a dict {{'vid,0902': array (N, 5)}}, "
                                      f"got {type(data).__name__}")
    src = source or f"predictions:{path.name}"
    arrays: list[tuple[str, str, str, np.ndarray]] = []
    for key, value in data.items():
        vid, ts = _split_key(path, key)
        arr = np.asarray(value)
        if arr.size == 0 and arr.ndim <= 2:
            arr = arr.reshape(0, arr.shape[-1] if arr.ndim == 2 else 5)
        if arr.ndim != 2 or arr.shape[1] not in (4, 5) or not np.issubdtype(arr.dtype, np.number):
            raise FormatError(path, None, f"proposals of key {key!r}: expected a numeric (N, 5) or (N, 4) "
                                          f"array, got {arr.dtype} {arr.shape}")
        arrays.append((key, vid, ts, arr))
    common = Counter((str(a.dtype), a.shape[1]) for *_, a in arrays).most_common(1)
    dtype, ncols = common[0][0] if common else ("float32", 5)
    records: list[dict[str, Any]] = []
    seq = 0
    for key, vid, ts_text, arr in arrays:
        texts: dict[str, str] = {}
        where = f"proposal key {key!r}"
        try:
            t = float(ts_text)
        except ValueError:
            raise FormatError(path, None, f"{where}: timestamp is not a number: {ts_text!r}") from None
        if not math.isfinite(t) or t < 0:
            raise FormatError(path, None, f"{where}: bad timestamp {ts_text!r}")
        if format_timestamp(t) != ts_text:
            texts["timestamp"] = ts_text
        extra = {"dtype": str(arr.dtype) if str(arr.dtype) != dtype else None,
                 "ncols": int(arr.shape[1]) if arr.shape[1] != ncols else None}
        attrs = _attrs(texts, **extra)
        base = {"video_id": vid, "task": "proposal", "t_s": t, "source": src, "attrs": attrs}
        if len(arr) == 0:
            records.append({**base, "score": 0.0, "flag": "empty", "seq": seq})
            seq += 1
            continue
        values = arr.astype(np.float64)
        for i, r in enumerate(values):
            if not np.isfinite(r).all():
                raise FormatError(path, None, f"{where} row {i}: non-finite value in {r.tolist()}")
            box = [float(v) for v in r[:4]]
            try:
                _check_box(path, 0, box)
            except FormatError as exc:
                raise FormatError(path, None, f"{where} row {i}: {exc.problem}") from None
            score = float(r[4]) if arr.shape[1] == 5 else 1.0
            records.append({**base, **dict(zip(_BOX, box, strict=True)), "score": score, "seq": seq})
            seq += 1
    boxes = pd.DataFrame.from_records(records, columns=schema.columns("boxes"))
    meta = {"ava-proposals": {src: {"dtype": dtype, "ncols": ncols}}}
    return Tables(boxes=boxes, meta=meta).validated(where=str(path))


def proposals_dict(tables: Tables, *, source: str | None = None) -> dict[str, np.ndarray]:
    """The ``{"vid,0902": array (N, 5)}`` dict of the ``proposal`` boxes (as mmaction2 reads it)."""
    boxes = schema.validate("boxes", tables.boxes, where="boxes")
    df, src = _pick_source(boxes[boxes["task"] == "proposal"], source, "proposal")
    layout = _file_meta(tables, "ava-proposals", src)
    out: dict[str, list[Mapping[str, Any]]] = {}
    kinds: dict[str, tuple[str, int]] = {}
    for row in _sorted_by_seq(df).to_dict("records"):
        attrs = schema.loads_attrs(row["attrs"])
        texts = attrs.get("text", {})
        key = f"{row['video_id']},{_cell(row['t_s'], format_timestamp(row['t_s']), texts, 'timestamp')}"
        kinds.setdefault(key, (attrs.get("dtype", layout.get("dtype", "float32")),
                               int(attrs.get("ncols", layout.get("ncols", 5)))))
        rows = out.setdefault(key, [])
        if not (_flag(row) == "empty" and _is_null(row["x1"])):
            rows.append(row)
    result: dict[str, np.ndarray] = {}
    for key, rows in out.items():
        dtype, ncols = kinds[key]
        cols = [*_BOX, "score"][:ncols]
        values = [[float(r[c]) for c in cols] for r in rows]
        result[key] = np.asarray(values, dtype=np.float64).reshape(len(rows), ncols).astype(dtype)
    return result


@register_exporter("ava-proposals")
def export_ava_proposals(tables: Tables, out: Path, *, source: str | None = None) -> list[Path]:
    """Write the ``proposal`` boxes as an mmaction2 proposals pickle (dtype and key text restored)."""
    data = proposals_dict(tables, source=source)
    # Protocol 4 as mmaction2 wrote it: protocol 5 pickles arrays via ``_frombuffer``, which
    # ``safe_pickle_load`` (rightly strict) does not accept.
    atomic_write_bytes(out, pickle.dumps(data, protocol=4))
    return [out]
