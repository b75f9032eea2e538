"""THUMOS14 temporal action detection: per-class ground-truth files, the class list, detection results.

Formats (``TH14evalkit`` conventions; times in seconds from the start of the video, 0.1 s precision):

* ``thumos14`` -- ground truth, one file per class ``<Class>_<subset>.txt`` with lines
  ``video  start end`` (two spaces after the video name), plus ``Ambiguous_<subset>.txt`` (parts
  that are hard to label). The path is one class file, a subset folder (``annotations_val/``) or a
  folder of subset folders (``thumos14/``). In a folder, files that are not ``<Class>_<subset>.txt``
  (``readme.txt``, and anything else) are skipped; their names are listed in the meta and they are
  not exported. Class names contain no ``_``.
* ``thumos14-classes`` -- the class list ``detclasslist_ucf101_ids.txt``: ``<ucf101 id> <Class>``
  lines -> ``labels`` table, ``label_space="thumos14"``, ids are the UCF101 ids (1-based).
* ``thumos14-results`` -- detections ``video[.mpeg] start end ucf101_class_id conf`` (whitespace
  separated) -> ``segments`` with ``label_id`` = the class id and ``score`` = conf.

Tables: ``segments`` rows with ``task="localization"``, ``label`` = class name, ``label_space=
"thumos14"``, no fps (frame columns null). Ground truth: ``score=1.0``, ``source=
"ground_truth:<dataset>"``, ``label_id`` from the class list when one is given (``class_list`` or
``label_map``), else null; Ambiguous rows have ``label="Ambiguous"``, ``flag="ambiguous"`` and no id.
The subset (``val``/``test``, from the file name) is ``videos.split``; ``seq`` is the 0-based line
in the source file. Results: ``source="predictions:<file name>"``, ``label`` filled from the class
list when given, ``.mpeg`` stripped from the video (so ids match the ground truth) and remembered.

What the formats cannot hold: scores (ground truth), frame numbers, boxes, several label spaces,
a subset for a video outside its files. What our tables hold that is lost: nothing of the files
except blank lines (skipped) and the skipped non-class files (``readme.txt``).

Round trips:

* ``thumos14`` and ``thumos14-classes``: **byte-identical**. ``tables.meta["thumos14"]`` keeps the
  folder layout, every class file's name (in folder order, empty files too), its newline and final
  newline; a line that the canonical writer (``video  s.s e.e``) would not reproduce keeps its raw
  text in ``attrs["line"]`` (used only while its values still match the row). ``meta
  ["thumos14-classes"]`` keeps the class file's name and newline (the real file is CRLF).
* ``thumos14-results``: **value-identical** (same video names, times, class ids and confidences in
  the same line order; floats are written with Python's shortest round-trip ``repr``).

Exporters pick rows by ``source``: ``thumos14`` writes the ground-truth rows and ``thumos14-results``
the others (each writes every localization row when there are none of its kind).

Rows the evalkit reads although the table rules forbid them -- a **reversed segment** (start > end)
and a **negative time** -- are kept exactly as written with ``flag="lenient"`` (an Ambiguous row keeps
``flag="ambiguous"``) and ``attrs["lenient"] = ["reversed" | "negative_time", ...]``, with one warning
line per file giving the counts; the ``thumos14_evalkit`` evaluator orders the ends as
``intervaloverlapvalseconds.m`` does. A results row whose class id is not in the class list (the evalkit
prints a warning and skips it) is kept with a null ``label`` and ``attrs["lenient"] =
["unknown_class_id"]``; the evaluator drops and counts it. ``strict=True`` (``--strict``) refuses all
of these instead, naming file and line.

Malformed lines raise ``FormatError`` with file, 1-based line and problem: wrong column count, bad
number or duplicate id (class list). An unknown class name of a ground-truth file (with a class list)
comes from the file name, so that error names the file without a line.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from videoact.annotations import schema
from videoact.annotations.formats._common import (
    FormatError,
    parse_float,
    parse_int,
    read_text,
    register_exporter,
    register_importer,
)
from videoact.annotations.store import atomic_write_text
from videoact.annotations.tables import Tables

_log = logging.getLogger(__name__)
FORMAT = "thumos14"
CLASSES_FORMAT = "thumos14-classes"
RESULTS_FORMAT = "thumos14-results"
LABEL_SPACE = "thumos14"
TASK = "localization"
AMBIGUOUS = "Ambiguous"
CLASS_LIST_NAME = "detclasslist_ucf101_ids.txt"
_FILE_RE = re.compile(r"^(?P<label>[A-Za-z0-9]+)_(?P<subset>[A-Za-z0-9]+)\.txt$")


# ----------------------------------------------------------------------------------------------- helpers


def _read_lines(path: Path) -> tuple[list[str], str, bool]:
    """Lines without their ends, the newline (``\\n`` or ``\\r\\n``) and whether the file ends with one."""
    text = read_text(path)
    newline = "\r\n" if "\r\n" in text else "\n"
    final = text.endswith("\n")
    body = text[: -len(newline)] if text.endswith(newline) else text
    lines = body.split(newline) if body else []
    return lines, newline, final


def _join(lines: list[str], newline: str, final: bool) -> str:
    return newline.join(lines) + (newline if final and lines else "")


def _time(x: float) -> str:
    """0.1 s precision as the files have it; a finer time keeps every digit (``repr``)."""
    return f"{x:.1f}" if float(f"{x:.1f}") == x else repr(float(x))


def _check_segment(path: Path, lineno: int, start: float, end: float, strict: bool = True) -> list[str]:
    """The reasons a segment breaks the table rules (``negative_time``, ``reversed``); raise if ``strict``.

    The evalkit reads such rows as they are: ``intervaloverlapvalseconds.m`` orders each interval's
    ends with min/max, and negative times are plain numbers to it.
    """
    reasons: list[str] = []
    if start < 0 or end < 0:
        if strict:
            which = f"start time {start}" if start < 0 else f"end time {end}"
            raise FormatError(path, lineno, f"negative {which} (the evalkit keeps negative times)")
        reasons.append("negative_time")
    if start > end:
        if strict:
            raise FormatError(path, lineno, f"reversed segment: start {start} > end {end} "
                                            "(the evalkit orders the ends)")
        reasons.append("reversed")
    return reasons


def _lenient(row: dict[str, Any], attrs: dict[str, Any], reasons: list[str], counts: dict[str, int]) -> None:
    """Mark a row kept as the evalkit reads it (flag, or ``attrs["lenient"]`` on an Ambiguous row)."""
    if not reasons:
        return
    attrs["lenient"] = reasons
    if row.get("flag") is None:
        row["flag"] = schema.LENIENT
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1


_LENIENT_KINDS = {
    "reversed": "reversed segment(s) (start > end; kept as written, the evalkit orders the ends)",
    "negative_time": "row(s) with a negative time (kept as written)",
    "unknown_class_id": "row(s) with a class id outside the class list (kept, dropped by the evaluator)",
}


def lenient_message(path: Path | str, counts: dict[str, int]) -> str | None:
    """The one warning line for ``path`` (``None`` when nothing was read leniently)."""
    found = [f"{counts[k]} {text}" for k, text in _LENIENT_KINDS.items() if counts.get(k)]
    if not found:
        return None
    return f"{path}: read as the THUMOS14 evalkit reads it: {'; '.join(found)} (--strict refuses them)"


def _warn_lenient(path: Path, counts: dict[str, int]) -> None:
    msg = lenient_message(path, counts)
    if msg:
        _log.warning("%s", msg)


def _opt_path(*candidates: Path | str | None) -> Path | None:
    for c in candidates:
        if c not in (None, ""):
            return Path(c)  # type: ignore[arg-type]
    return None


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(_pos=range(len(df))).sort_values(["seq", "_pos"], kind="stable", na_position="last")


# ----------------------------------------------------------------------------------------------- class list


def _parse_classes(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    lines, newline, final = _read_lines(path)
    rows: list[dict[str, Any]] = []
    ids: set[int] = set()
    names: set[str] = set()
    for i, line in enumerate(lines):
        lineno = i + 1
        if not line.strip():
            raise FormatError(path, lineno, "blank line in the class list")
        cols = line.split()
        if len(cols) != 2:
            raise FormatError(
                path, lineno, f"expected 2 columns '<ucf101 id> <Class>', got {len(cols)}: {line!r}"
            )
        cid = parse_int(cols[0], path, lineno, "class id")
        if cid in ids:
            raise FormatError(path, lineno, f"duplicate class id {cid}")
        if cols[1] in names:
            raise FormatError(path, lineno, f"duplicate class name {cols[1]!r}")
        ids.add(cid)
        names.add(cols[1])
        attrs = None if line == f"{cid} {cols[1]}" else schema.dumps_attrs({"line": line})
        rows.append({"label_space": LABEL_SPACE, "id": cid, "name": cols[1], "attrs": attrs})
    meta = {"file": path.name, "newline": newline, "final_newline": final}
    return (pd.DataFrame(rows) if rows else schema.empty("labels")), meta


def read_class_list(path: str | Path) -> dict[str, int]:
    """``{Class: ucf101 id}`` from ``detclasslist_ucf101_ids.txt``."""
    df, _ = _parse_classes(Path(path))
    return dict(zip(df["name"], df["id"].astype(int), strict=True))


@register_importer(CLASSES_FORMAT)
def import_thumos14_classes(path: Path) -> Tables:
    """Read the class list (``<ucf101 id> <Class>`` lines) into the ``labels`` table."""
    path = Path(path)
    labels, meta = _parse_classes(path)
    return Tables(labels=labels, meta={CLASSES_FORMAT: meta}).validated(where=str(path))


@register_exporter(CLASSES_FORMAT)
def export_thumos14_classes(tables: Tables, out: Path) -> list[Path]:
    """Write the ``thumos14`` label space as ``<id> <Class>`` lines (newline style from the import)."""
    meta = tables.meta.get(CLASSES_FORMAT) or {}
    labels = tables.labels[tables.labels["label_space"] == LABEL_SPACE]
    if not len(labels):
        raise schema.AnnotationError(f"no labels in label space {LABEL_SPACE!r} to write")
    lines = []
    for r in labels.itertuples(index=False):
        canonical = f"{int(r.id)} {r.name}"
        raw = schema.loads_attrs(r.attrs).get("line")
        lines.append(raw if isinstance(raw, str) and raw.split() == canonical.split() else canonical)
    out = Path(out)
    if out.is_dir():
        out = out / meta.get("file", CLASS_LIST_NAME)
    atomic_write_text(out, _join(lines, meta.get("newline", "\n"), meta.get("final_newline", True)))
    return [out]


# ----------------------------------------------------------------------------------------------- ground truth


def _class_files(folder: Path) -> tuple[list[Path], list[str]]:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return [p for p in files if _FILE_RE.match(p.name)], [p.name for p in files if not _FILE_RE.match(p.name)]


def _read_class_file(
    path: Path,
    dataset: str,
    classes: dict[str, int] | None,
    class_file: Path | None,
    rows: list[dict[str, Any]],
    splits: dict[str, str],
    strict: bool = False,
) -> dict[str, Any]:
    m = _FILE_RE.match(path.name)
    if m is None:
        raise FormatError(path, None, "file name must be <Class>_<subset>.txt (e.g. BaseballPitch_val.txt)")
    label, subset = m["label"], m["subset"]
    ambiguous = label == AMBIGUOUS
    label_id = None
    if classes is not None and not ambiguous:
        if label not in classes:
            raise FormatError(
                path,
                None,
                f"unknown class {label!r} (from the file name): not in the class list {class_file}",
            )
        label_id = classes[label]
    lines, newline, final = _read_lines(path)
    counts: dict[str, int] = {}
    for i, line in enumerate(lines):
        lineno = i + 1
        if not line.strip():
            continue
        cols = line.split()
        if len(cols) != 3:
            raise FormatError(
                path, lineno, f"expected 3 columns 'video start end', got {len(cols)}: {line!r}"
            )
        start = parse_float(cols[1], path, lineno, "start time")
        end = parse_float(cols[2], path, lineno, "end time")
        reasons = _check_segment(path, lineno, start, end, strict)
        vid = cols[0]
        attrs: dict[str, Any] = {}
        if line != f"{vid}  {_time(start)} {_time(end)}":
            attrs["line"] = line
        if splits.setdefault(vid, subset) != subset:
            attrs["subset"] = subset
        row = (
            {
                "video_id": vid,
                "task": TASK,
                "t_start_s": start,
                "t_end_s": end,
                "label": label,
                "label_id": label_id,
                "label_space": LABEL_SPACE,
                "score": 1.0,
                "flag": "ambiguous" if ambiguous else None,
                "seq": i,
                "source": f"ground_truth:{dataset}",
            }
        )
        _lenient(row, attrs, reasons, counts)
        row["attrs"] = schema.dumps_attrs(attrs)
        rows.append(row)
    _warn_lenient(path, counts)
    return {"name": path.name, "label": label, "subset": subset, "newline": newline, "final_newline": final}


@register_importer(FORMAT)
def import_thumos14(
    path: Path,
    *,
    class_list: Path | str | None = None,
    label_map: Path | str | None = None,
    dataset: str = "thumos14",
    strict: bool = False,
) -> Tables:
    """Read THUMOS14 ground truth: one class file, a subset folder, or a folder of subset folders.

    Args:
        path: ``<Class>_<subset>.txt``, ``annotations_val/`` or ``thumos14/``.
        class_list: ``detclasslist_ucf101_ids.txt``; gives ``label_id`` and the ``labels`` table, and
            makes a class that is not in it an error.
        label_map: alias of ``class_list`` (the CLI's ``--label-map``).
        dataset: names ``source="ground_truth:<dataset>"`` and the videos' ``dataset``.
        strict: refuse reversed segments and negative times (kept as written by default, see the
            module docstring).
    """
    path = Path(path)
    class_file = _opt_path(class_list, label_map)
    labels, classes_meta = _parse_classes(class_file) if class_file else (schema.empty("labels"), None)
    classes = dict(zip(labels["name"], labels["id"].astype(int), strict=True)) if class_file else None
    rows: list[dict[str, Any]] = []
    splits: dict[str, str] = {}
    folders: list[dict[str, Any]] = []
    skipped: list[str] = []
    if path.is_file():
        layout = "file"
        folders.append(
            {"dir": "", "files": [_read_class_file(path, dataset, classes, class_file, rows, splits, strict)]}
        )
    else:
        files, other = _class_files(path)
        if files:
            layout, subdirs = "folder", [(path, "", files, other)]
        else:
            layout, subdirs = "root", []
            for sub in sorted(p for p in path.iterdir() if p.is_dir()):
                sub_files, sub_other = _class_files(sub)
                if sub_files:
                    subdirs.append((sub, sub.name, sub_files, sub_other))
            skipped += [p.name for p in path.iterdir() if p.is_file()]
            if not subdirs:
                raise FormatError(path, None, "no <Class>_<subset>.txt files here or in its sub-folders")
        for _folder, rel, sub_files, sub_other in subdirs:
            infos = [_read_class_file(f, dataset, classes, class_file, rows, splits, strict) for f in sub_files]
            folders.append({"dir": rel, "files": infos})
            skipped += [f"{rel}/{n}" if rel else n for n in sub_other]
    videos = pd.DataFrame(
        {
            "video_id": list(splits),
            "split": list(splits.values()),
            "dataset": dataset,
            "seq": range(len(splits)),
            "source": f"ground_truth:{dataset}",
        }
    )
    meta: dict[str, Any] = {
        FORMAT: {"layout": layout, "name": path.name, "folders": folders, "skipped": sorted(skipped)}
    }
    if classes_meta is not None:
        meta[CLASSES_FORMAT] = classes_meta
    segments = pd.DataFrame(rows) if rows else schema.empty("segments")
    return Tables(videos=videos, segments=segments, labels=labels, meta=meta).validated(where=str(path))


def _gt_line(r: Any) -> str:
    raw = schema.loads_attrs(r.attrs).get("line")
    if isinstance(raw, str):
        cols = raw.split()
        try:
            if (
                len(cols) == 3
                and cols[0] == r.video_id
                and float(cols[1]) == r.t_start_s
                and float(cols[2]) == r.t_end_s
            ):
                return raw
        except ValueError:
            pass
    return f"{r.video_id}  {_time(r.t_start_s)} {_time(r.t_end_s)}"


def _select(segments: pd.DataFrame, ground_truth: bool) -> pd.DataFrame:
    """Ground-truth rows (or prediction rows) of the localization task; all of them when none match."""
    seg = segments[segments["task"] == TASK] if len(segments) else segments
    gt = seg["source"].astype(str).str.startswith("ground_truth:")
    chosen = seg[gt] if ground_truth else seg[~gt]
    return chosen if len(chosen) else seg


def _file_groups(tables: Tables) -> dict[tuple[str, str], list[str]]:
    """``(Class, subset) -> lines`` in file order, from the ground-truth rows."""
    rows = _ordered(_select(tables.segments, ground_truth=True))
    splits = dict(zip(tables.videos["video_id"], tables.videos["split"], strict=True))
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rows.itertuples(index=False):
        cls = AMBIGUOUS if not _is_missing(r.flag) and r.flag == "ambiguous" else r.label
        if _is_missing(cls):
            raise schema.AnnotationError(f"segment of {r.video_id} at {r.t_start_s} s has no label")
        subset = schema.loads_attrs(r.attrs).get("subset") or splits.get(r.video_id)
        if _is_missing(subset):
            raise schema.AnnotationError(
                f"video {r.video_id!r} has no split (videos.split names the <Class>_<subset>.txt file)"
            )
        groups.setdefault((str(cls), str(subset)), []).append(_gt_line(r))
    return groups


@register_exporter(FORMAT)
def export_thumos14(tables: Tables, out: Path) -> list[Path]:
    """Write the ground truth as ``<Class>_<subset>.txt`` files (the imported layout when there is one).

    ``out`` is a folder (the imported layout, or: one subset -> its files in ``out``, several ->
    ``out/annotations_<subset>/``), or a file when one class file was imported.
    """
    meta = tables.meta.get(FORMAT) or {}
    groups = _file_groups(tables)
    out = Path(out)
    written: list[Path] = []
    layout = meta.get("layout")
    if layout == "file" and len(groups) <= 1:
        info = meta["folders"][0]["files"][0]
        target = out / info["name"] if out.is_dir() else out
        lines = next(iter(groups.values()), [])
        atomic_write_text(target, _join(lines, info["newline"], info["final_newline"]))
        return [target]
    folders: list[dict[str, Any]] = (
        [dict(f) for f in meta.get("folders", [])] if layout in ("folder", "root") else []
    )
    known = {(f["label"], f["subset"]) for folder in folders for f in folder["files"]}
    extra = sorted(k for k in groups if k not in known)
    subsets = sorted({s for _, s in groups} | {s for _, s in known})
    if not folders:
        layout = "folder" if len(subsets) <= 1 else "root"
    for cls, subset in extra:
        info = {
            "name": f"{cls}_{subset}.txt",
            "label": cls,
            "subset": subset,
            "newline": "\n",
            "final_newline": True,
        }
        home = next((f for f in folders if any(x["subset"] == subset for x in f["files"])), None)
        if home is None:
            home = {"dir": "" if layout == "folder" else f"annotations_{subset}", "files": []}
            folders.append(home)
        home["files"] = [*home["files"], info]
    for folder in folders:
        for info in folder["files"]:
            target = out / folder["dir"] / info["name"] if folder["dir"] else out / info["name"]
            lines = groups.get((info["label"], info["subset"]), [])
            atomic_write_text(target, _join(lines, info["newline"], info["final_newline"]))
            written.append(target)
    return written


# ----------------------------------------------------------------------------------------------- results


@register_importer(RESULTS_FORMAT)
def import_thumos14_results(
    path: Path,
    *,
    class_list: Path | str | None = None,
    label_map: Path | str | None = None,
    source: str | None = None,
    strict: bool = False,
) -> Tables:
    """Read detections ``video[.mpeg] start end ucf101_class_id conf``.

    Args:
        path: the detection file.
        class_list: ``detclasslist_ucf101_ids.txt``; fills ``label`` (an id not in it is kept with a null
            label and dropped by the evaluator, as the evalkit skips it; an error with ``strict``).
        label_map: alias of ``class_list``.
        source: the rows' ``source`` (default ``predictions:<file name>``).
        strict: refuse reversed segments, negative times and unknown class ids (kept by default).
    """
    path = Path(path)
    counts: dict[str, int] = {}
    class_file = _opt_path(class_list, label_map)
    labels = _parse_classes(class_file)[0] if class_file else schema.empty("labels")
    names = dict(zip(labels["id"].astype(int), labels["name"], strict=True)) if class_file else None
    lines, newline, final = _read_lines(path)
    source = source or f"predictions:{path.name}"
    rows: list[dict[str, Any]] = []
    suffix: str | None = None
    for i, line in enumerate(lines):
        lineno = i + 1
        if not line.strip():
            continue
        cols = line.split()
        if len(cols) != 5:
            raise FormatError(
                path, lineno, f"expected 5 columns 'video start end class_id conf', got {len(cols)}: {line!r}"
            )
        start = parse_float(cols[1], path, lineno, "start time")
        end = parse_float(cols[2], path, lineno, "end time")
        reasons = _check_segment(path, lineno, start, end, strict)
        cid = parse_int(cols[3], path, lineno, "class id")
        conf = parse_float(cols[4], path, lineno, "confidence")
        if names is not None and cid not in names:
            if strict:
                raise FormatError(path, lineno, f"unknown class id {cid} (not in the class list {class_file}; "
                                                "the evalkit skips such rows with a warning)")
            reasons.append("unknown_class_id")
        vid, ext = (cols[0][:-5], ".mpeg") if cols[0].endswith(".mpeg") else (cols[0], "")
        suffix = ext if suffix is None else suffix
        attrs: dict[str, Any] = {"video_suffix": ext} if ext != suffix else {}
        row = (
            {
                "video_id": vid,
                "task": TASK,
                "t_start_s": start,
                "t_end_s": end,
                "label": names.get(cid) if names is not None else None,
                "label_id": cid,
                "label_space": LABEL_SPACE,
                "score": conf,
                "seq": i,
                "source": source,
                "flag": None,
            }
        )
        _lenient(row, attrs, reasons, counts)
        row["attrs"] = schema.dumps_attrs(attrs or None)
        rows.append(row)
    _warn_lenient(path, counts)
    meta = {"file": path.name, "video_suffix": suffix or "", "newline": newline, "final_newline": final}
    segments = pd.DataFrame(rows) if rows else schema.empty("segments")
    return Tables(segments=segments, labels=labels, meta={RESULTS_FORMAT: meta}).validated(where=str(path))


def _class_ids(tables: Tables, rows: pd.DataFrame, class_list: Path | None) -> Iterable[int]:
    by_name: dict[str, int] = read_class_list(class_list) if class_list else {}
    if not by_name and len(tables.labels):
        space = tables.labels[tables.labels["label_space"] == LABEL_SPACE]
        by_name = dict(zip(space["name"], space["id"].astype(int), strict=True))
    for r in rows.itertuples(index=False):
        if not _is_missing(r.label_id):
            yield int(r.label_id)
        elif not _is_missing(r.label) and r.label in by_name:
            yield by_name[r.label]
        else:
            raise schema.AnnotationError(
                f"segment of {r.video_id} at {r.t_start_s} s: no UCF101 class id for label "
                f"{r.label!r} (give class_list)"
            )


@register_exporter(RESULTS_FORMAT)
def export_thumos14_results(
    tables: Tables, out: Path, *, class_list: Path | str | None = None, label_map: Path | str | None = None
) -> list[Path]:
    """Write detections as ``video[.mpeg] start end class_id conf`` lines, in the imported line order.

    Rows without ``label_id`` get it from ``class_list`` (or the ``thumos14`` labels table) by name.
    """
    meta = tables.meta.get(RESULTS_FORMAT) or {}
    rows = _ordered(_select(tables.segments, ground_truth=False))
    ids = list(_class_ids(tables, rows, _opt_path(class_list, label_map)))
    default_suffix = meta.get("video_suffix", "")
    lines = []
    for r, cid in zip(rows.itertuples(index=False), ids, strict=True):
        suffix = schema.loads_attrs(r.attrs).get("video_suffix", default_suffix)
        lines.append(
            f"{r.video_id}{suffix} {float(r.t_start_s)!r} {float(r.t_end_s)!r} {cid} {float(r.score)!r}"
        )
    out = Path(out)
    if out.is_dir():
        out = out / meta.get("file", "thumos14_results.txt")
    atomic_write_text(out, _join(lines, meta.get("newline", "\n"), meta.get("final_newline", True)))
    return [out]
