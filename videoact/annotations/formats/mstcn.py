"""ms-tcn frame-wise action segmentation files (GTEA, 50Salads, Breakfast as yabufarha/ms-tcn lays them out).

Format ``mstcn`` (``../shared/specs/evaluation.md`` §5):

* ground truth ``data/<ds>/groundTruth/<vid>.txt``: one label per line, one line per frame;
* predictions ``results/<ds>/split_<n>/<vid>`` (no extension): line 1 ``### Frame level recognition: ###``,
  line 2 the frame labels separated by single spaces (``model.py`` writes them already upsampled);
* ``mapping.txt``: ``<id> <name>`` lines (GTEA: ``0 take`` .. ``10 background``).

PATH is one file or a folder of them (every regular file except hidden ones and ``mapping.txt``, in
name order); the layout of each file is detected from its first line. The mapping is option
``mapping`` (or ``label_map``), else ``mapping.txt`` inside PATH's folder or beside it (ms-tcn keeps it
in ``data/<ds>/``); with one, every label must be in it and gets its ``label_id``.

Tables: one ``segments`` row per run of equal labels (run-length encoding): ``task="segmentation"``,
``frame_start``/``frame_end`` (exclusive) exact, times = frames / ``fps`` (the files have no frame
rate; option ``fps``, default 15.0, the rate of ms-tcn's I3D features), ``score=1.0`` (the files hold
no scores), ``source`` = ``ground_truth:<dataset>`` for label-per-line files and
``predictions:<folder>`` for result files (option ``source``), ``seq`` = running row index. One
``videos`` row per file (``n_frames``, ``fps``, ``duration_s``). ``meta["mstcn"][source]`` keeps every
file's name, layout, newline and final newline.

Round trip: **byte-identical** for the label files (export ``mstcn`` writes the same file names and
bytes); ``mapping.txt`` is not written back. Empty files, blank label lines, labels missing from the
mapping and malformed mapping lines raise ``FormatError`` with file and line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from videoact.annotations import schema
from videoact.annotations.formats._common import (
    FormatError,
    parse_int,
    read_text,
    register_exporter,
    register_importer,
)
from videoact.annotations.schema import AnnotationError
from videoact.annotations.store import atomic_write_text
from videoact.annotations.tables import Tables

FORMAT = "mstcn"
HEADER = "### Frame level recognition: ###"
DEFAULT_FPS = 15.0
MAPPING = "mapping.txt"


def read_mapping(path: str | Path) -> dict[str, int]:
    """``mapping.txt`` (``<id> <name>`` per line) -> ``{name: id}``."""
    path = Path(path)
    out: dict[str, int] = {}
    for no, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise FormatError(path, no, f"expected '<id> <name>', got {line!r}")
        idx = parse_int(parts[0], path, no, "class id")
        name = parts[1].strip()
        if name in out:
            raise FormatError(path, no, f"duplicate class name {name!r}")
        if idx in out.values():
            raise FormatError(path, no, f"duplicate class id {idx}")
        out[name] = idx
    if not out:
        raise FormatError(path, None, "empty mapping file")
    return out


def _parse_file(path: Path) -> tuple[list[str], dict[str, Any]]:
    """Frame labels of one file and the layout needed to write it back byte for byte."""
    text = read_text(path)
    if not text:
        raise FormatError(path, None, "empty file (no frames)")
    newline = "\r\n" if "\r\n" in text else "\n"
    if text.startswith(HEADER):
        rest = text[len(HEADER):]
        if not rest.startswith(newline):
            raise FormatError(path, 1, f"expected a line break after {HEADER!r}")
        body = rest[len(newline):]
        final = body.endswith(newline)
        if final:
            body = body[: -len(newline)]
        if newline in body or "\n" in body:
            raise FormatError(path, 3, "a result file has exactly two lines (header, labels)")
        labels = body.split(" ")
        if not body or any(lab == "" for lab in labels):
            raise FormatError(path, 2, "labels must be separated by single spaces, with no empty label")
        return labels, {"layout": "pred", "newline": newline, "final_newline": final}
    final = text.endswith(newline)
    lines = (text[: -len(newline)] if final else text).split(newline)
    for no, lab in enumerate(lines, start=1):
        if lab.strip() == "" or lab != lab.strip() or "\r" in lab:
            raise FormatError(path, no, f"bad frame label {lab!r} (one label per line, no blanks or spaces)")
    return lines, {"layout": "gt", "newline": newline, "final_newline": final}


def _runs(labels: list[str]) -> list[tuple[int, int, str]]:
    runs: list[tuple[int, int, str]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((start, i, labels[start]))
            start = i
    return runs


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != MAPPING)
    if not files:
        raise FormatError(path, None, "no ms-tcn label files in this folder")
    return files


def _find_mapping(path: Path) -> Path | None:
    folder = path if path.is_dir() else path.parent
    for cand in (folder / MAPPING, folder.parent / MAPPING):
        if cand.is_file():
            return cand
    return None


@register_importer(FORMAT)
def import_mstcn(
    path: Path,
    *,
    mapping: Path | str | None = None,
    label_map: Path | str | None = None,
    fps: float | str = DEFAULT_FPS,
    label_space: str = FORMAT,
    dataset: str = FORMAT,
    source: str | None = None,
) -> Tables:
    """Read ms-tcn frame-label files (ground truth or results) into run-length ``segmentation`` segments."""
    path = Path(path)
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise AnnotationError(f"fps must be a positive number, got {fps}")
    map_path = Path(mapping or label_map) if (mapping or label_map) else _find_mapping(path)
    names = read_mapping(map_path) if map_path else None
    seg_rows: list[dict[str, Any]] = []
    vid_rows: list[dict[str, Any]] = []
    files_meta: dict[str, dict[str, Any]] = {}
    layouts: set[str] = set()
    parsed = []
    for f in _files(path):
        labels, layout = _parse_file(f)
        parsed.append((f, labels, layout))
        layouts.add(layout["layout"])
    if len(layouts) > 1:
        raise FormatError(path, None, "mixes ground-truth (label per line) and result files; import them apart")
    kind = layouts.pop()
    src = source or (f"ground_truth:{dataset}" if kind == "gt" else f"predictions:{path.name}")
    for f, labels, layout in parsed:
        vid = f.name[:-4] if f.name.endswith(".txt") else f.name
        if vid in files_meta:
            raise FormatError(f, None, f"two files give the video id {vid!r}")
        files_meta[vid] = {"name": f.name, **layout}
        for start, end, lab in _runs(labels):
            if names is not None and lab not in names:
                line = start + 1 if kind == "gt" else 2
                raise FormatError(f, line, f"label {lab!r} is not in the mapping {map_path}")
            seg_rows.append({
                "video_id": vid, "task": "segmentation", "t_start_s": start / fps, "t_end_s": end / fps,
                "fps": fps, "frame_start": start, "frame_end": end, "label": lab,
                "label_id": names[lab] if names is not None else None, "label_space": label_space,
                "score": 1.0, "seq": len(seg_rows), "source": src,
            })
        vid_rows.append({"video_id": vid, "fps": fps, "n_frames": len(labels), "duration_s": len(labels) / fps,
                         "dataset": dataset, "seq": len(vid_rows), "source": src})
    labels_df = (pd.DataFrame({"label_space": label_space, "id": list(names.values()), "name": list(names)})
                 if names else schema.empty("labels"))
    meta = {FORMAT: {src: {"files": files_meta, "mapping": str(map_path) if map_path else None}}}
    return Tables(videos=pd.DataFrame(vid_rows), segments=pd.DataFrame(seg_rows), labels=labels_df,
                  meta=meta).validated(where=str(path))


@register_exporter(FORMAT)
def export_mstcn(tables: Tables, out: Path, *, source: str | None = None, layout: str = "auto") -> list[Path]:
    """Write each video's ``segmentation`` rows as an ms-tcn label file in folder ``out``.

    Args:
        source: which rows when several sources are present.
        layout: ``gt`` (label per line), ``pred`` (header + one line) or ``auto`` (as imported, else ``gt``).
    """
    if layout not in ("auto", "gt", "pred"):
        raise AnnotationError(f"layout must be 'auto', 'gt' or 'pred', got {layout!r}")
    segs = schema.validate("segments", tables.segments, where="segments")
    segs = segs[segs["task"] == "segmentation"]
    sources = list(dict.fromkeys(segs["source"]))
    if source is None and len(sources) > 1:
        raise AnnotationError(f"segmentation rows come from several sources {sources}: pass source=... to pick one")
    src = source or (sources[0] if sources else None)
    segs = segs[segs["source"] == src]
    if not len(segs):
        raise AnnotationError("no segmentation rows to export")
    by_src = tables.meta.get(FORMAT, {}).get(src, {}) if isinstance(tables.meta.get(FORMAT), dict) else {}
    files_meta: dict[str, Any] = by_src.get("files", {}) if isinstance(by_src, dict) else {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for vid, g in segs.groupby("video_id", sort=False):
        g = g.sort_values("frame_start", kind="stable")
        if g[["frame_start", "frame_end"]].isna().any().any():
            raise AnnotationError(f"segmentation rows of {vid!r} have no frame numbers; ms-tcn files are per frame")
        labels: list[str] = []
        for s, e, lab, lid in zip(g["frame_start"], g["frame_end"], g["label"], g["label_id"], strict=True):
            if int(s) != len(labels):
                raise AnnotationError(f"segmentation of {vid!r} has a gap or overlap at frame {len(labels)}")
            name = lab if lab is not None and lab is not pd.NA else str(lid)
            labels += [str(name)] * (int(e) - int(s))
        fm = files_meta.get(str(vid), {})
        lay = fm.get("layout", "gt") if layout == "auto" else layout
        nl = fm.get("newline", "\n")
        final = fm.get("final_newline", lay == "gt")
        text = nl.join(labels) if lay == "gt" else HEADER + nl + " ".join(labels)
        if final:
            text += nl
        target = out / fm.get("name", f"{vid}.txt" if lay == "gt" else str(vid))
        atomic_write_text(target, text)
        written.append(target)
    return written
