"""ActivityNet temporal action detection json: ground truth and results, one format name for both.

Layouts (detected from the top-level keys, or forced with ``kind="gt" | "pred"``):

* official ground truth ``{"version", "taxonomy", "database": {vid: {"subset", "duration", "url",
  "resolution", "annotations": [{"segment": [s, e], "label": str}]}}}``;
* mmaction2 flat ground truth ``{"v_<id>": {...same per-video fields...}}``: the ``v_`` prefix is
  stripped, as mmaction2 does with ``video_id[2:]``, so ground-truth ids match result ids (only when
  every key has it; otherwise ids are kept as they are);
* results ``{"version", "results": {vid: [{"label", "score", "segment": [s, e]}]}, "external_data"}``
  (mmaction2 writes ``{"results": ...}`` alone; absent keys stay absent on export).

Conventions: times are seconds (float, 0 = start of the video), no frame rate, so ``fps`` and the
frame columns are null. Ground truth -> ``videos`` rows (``duration_s``, ``split`` = subset,
``uri`` = url, ``width``/``height`` from ``"1920x1080"``; other per-video fields, and a resolution
that is not ``<w>x<h>``, go into ``attrs``) and ``segments`` rows (``task="localization"``,
``score=1.0``, ``source="ground_truth:<dataset>"``). Results -> ``segments`` rows with ``score`` and
``source="predictions:<file name>"``; no ``videos`` rows. ``label`` is the class name;
``label_id`` is null unless a class list is given (``label_map``/``class_list``: a text file with
one class per line, either ``<name>`` (id = 0-based position) or ``<id> <name>``). ``seq`` is the
position of the annotation in the whole file (file order), so exporters restore video order and the
order within each video. Extra fields of an annotation go into the row's ``attrs``.

``tables.meta["activitynet"]`` keeps the layout, the ``v_`` prefix, the other top-level keys
(version, taxonomy, external_data) and their order, the key order of videos and annotations,
videos with an empty result list, and the json layout (indent, ascii escaping, final newline) when
it is one of ``json.dumps``'s, so the exporter rebuilds the file. Only one ActivityNet file's meta is
kept per ``Tables``; importing ground truth and results into one ``Tables`` keeps the later one.

Round trip: **value-identical** (``json.load`` of the export equals ``json.load`` of the input).
It is also byte-identical when the input was written by Python's ``json.dump`` (any of indent
None/1/2/4/tab, with or without ``ensure_ascii`` and a final newline) and holds no integer-valued
times/durations/scores (ints come back as floats: ``5`` -> ``5.0``, equal as values); both
mmaction2 fixture files (indent 4, final newline) come back byte for byte.

The exporter writes ground-truth rows (``source="ground_truth:..."``) for ``kind="gt"`` and the
other rows for ``kind="pred"`` (every localization row when there are none of that kind).

The format cannot hold frame numbers, fps, boxes or several label spaces; our tables hold those
and they are not written. Malformed input raises ``FormatError`` naming the file and the JSON path
(``database.v_x.annotations[2].segment``); the line is given for broken JSON syntax only.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from videoact.annotations import schema
from videoact.annotations.formats._common import FormatError, read_json, read_text, register_exporter, register_importer
from videoact.annotations.store import atomic_write_text
from videoact.annotations.tables import Tables

FORMAT = "activitynet"
LABEL_SPACE = "activitynet"
TASK = "localization"
DEFAULT_VIDEO_KEYS = ["duration", "subset", "resolution", "url", "annotations"]
DEFAULT_GT_ANN_KEYS = ["segment", "label"]
DEFAULT_PRED_ANN_KEYS = ["label", "score", "segment"]
_RESOLUTION = re.compile(r"^([1-9][0-9]*)x([1-9][0-9]*)$")
_KEY_ORDER = "_key_order"  # attrs entry: this object's keys when they differ from the common order


_STYLES: list[dict[str, Any]] = [
    {"indent": indent, "ensure_ascii": ascii_, "separators": None}
    for indent in (4, None, 2, 1, "\t")
    for ascii_ in (True, False)
] + [{"indent": None, "ensure_ascii": a, "separators": [",", ":"]} for a in (True, False)]


def _detect_style(value: Any, text: str) -> dict[str, Any] | None:
    """The ``json.dumps`` arguments that reproduce ``text`` exactly, if any (for byte-identical export)."""
    for style in _STYLES:
        if (style["indent"] is None) == text.startswith(("{\n", "[\n")):
            continue
        dumped = _dumps(value, style)
        if text == dumped:
            return {**style, "final_newline": False}
        if text == dumped + "\n":
            return {**style, "final_newline": True}
    return None


def _dumps(value: Any, style: dict[str, Any]) -> str:
    seps = style.get("separators")
    return json.dumps(
        value,
        indent=style.get("indent"),
        ensure_ascii=style.get("ensure_ascii", True),
        separators=tuple(seps) if seps else None,
    )


def _num(value: Any, path: Path, jpath: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FormatError(path, None, f"{jpath}: {what} is not a number: {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise FormatError(path, None, f"{jpath}: {what} is not finite: {value!r}")
    return out


def _segment(value: Any, path: Path, jpath: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise FormatError(
            path, None, f"{jpath}: segment must be a [start, end] pair of numbers, got {value!r}"
        )
    start = _num(value[0], path, f"{jpath}[0]", "segment start")
    end = _num(value[1], path, f"{jpath}[1]", "segment end")
    if start > end:
        raise FormatError(path, None, f"{jpath}: reversed segment [{start}, {end}] (start > end)")
    if start < 0:
        raise FormatError(path, None, f"{jpath}: negative segment start {start}")
    return start, end


def _need(obj: Any, key: str, path: Path, jpath: str) -> Any:
    if not isinstance(obj, dict):
        raise FormatError(path, None, f"{jpath}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise FormatError(path, None, f"{jpath}: missing key {key!r}")
    return obj[key]


def read_class_list(path: str | Path) -> dict[str, int]:
    """``{name: id}`` from a text file: ``<name>`` per line (id = 0-based position) or ``<id> <name>``."""
    path = Path(path)
    out: dict[str, int] = {}
    ids: set[int] = set()
    lines = [
        (i, ln.strip()) for i, ln in enumerate(read_text(path).splitlines(), 1) if ln.strip()
    ]
    for pos, (lineno, line) in enumerate(lines):
        head, _, rest = line.partition(" ")
        if head.isdigit() and rest.strip():
            cid, name = int(head), rest.strip()
        else:
            cid, name = pos, line
        if name in out:
            raise FormatError(path, lineno, f"duplicate class name {name!r}")
        if cid in ids:
            raise FormatError(path, lineno, f"duplicate class id {cid}")
        out[name] = cid
        ids.add(cid)
    return out


def _labels_table(classes: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"label_space": LABEL_SPACE, "id": list(classes.values()), "name": list(classes)})


def _label(
    ann: dict[str, Any], path: Path, jpath: str, classes: dict[str, int] | None, class_file: Path | None
) -> tuple[str, int | None]:
    label = _need(ann, "label", path, jpath)
    if not isinstance(label, str):
        raise FormatError(path, None, f"{jpath}.label: label must be a string, got {label!r}")
    if classes is None:
        return label, None
    if label not in classes:
        raise FormatError(
            path, None, f"{jpath}.label: unknown class {label!r} (not in the class list {class_file})"
        )
    return label, classes[label]


def _split_keys(keys: list[str], common: list[str]) -> list[str] | None:
    """The keys to remember for one object: None when they follow the common order."""
    return None if keys == common else keys


@register_importer(FORMAT)
def import_activitynet(
    path: Path,
    *,
    kind: str | None = None,
    dataset: str = "activitynet",
    source: str | None = None,
    label_map: Path | str | None = None,
    class_list: Path | str | None = None,
) -> Tables:
    """Read ActivityNet ground truth (official or mmaction2 flat) or results; the layout is detected.

    Args:
        path: the json file.
        kind: ``"gt"`` or ``"pred"`` to insist on one (a file of the other kind is an error).
        dataset: names ``source="ground_truth:<dataset>"`` and the videos' ``dataset``.
        source: the ``source`` of result rows (default ``predictions:<file name>``).
        label_map: a class list that gives ``label_id`` (``class_list`` is the same option).
        class_list: alias of ``label_map``.
    """
    path = Path(path)
    class_file = Path(label_map or class_list) if (label_map or class_list) else None
    classes = read_class_list(class_file) if class_file else None
    value, text = read_json(path)
    if not isinstance(value, dict):
        raise FormatError(path, None, f"(top level): expected a JSON object, got {type(value).__name__}")
    if "results" in value:
        found, layout = "pred", "results"
    elif "database" in value:
        found, layout = "gt", "official"
    elif value and all(isinstance(v, dict) for v in value.values()):
        found, layout = "gt", "mmaction2"
    else:
        raise FormatError(
            path,
            None,
            "(top level): not ActivityNet json: expected a 'database' (ground truth), "
            "'results' (predictions) or a flat {video: {...}} ground-truth object",
        )
    if kind not in (None, "", "auto") and kind != found:
        if kind not in ("gt", "pred"):
            raise FormatError(path, None, f"kind must be 'gt' or 'pred', got {kind!r}")
        raise FormatError(
            path,
            None,
            f"(top level): asked for kind={kind!r} but the file holds "
            f"{'ground truth' if found == 'gt' else 'results'} ({layout} layout)",
        )
    meta: dict[str, Any] = {
        "kind": found,
        "layout": layout,
        "file": path.name,
        "json_style": _detect_style(value, text),
    }
    body_key = {"results": "results", "official": "database"}.get(layout)
    if body_key:
        meta["top_keys"] = list(value)
        meta["top"] = {k: v for k, v in value.items() if k != body_key}
    if found == "gt":
        tables = _import_gt(path, value, layout, meta, dataset, classes, class_file)
    else:
        tables = _import_results(
            path, value["results"], meta, source or f"predictions:{path.name}", classes, class_file
        )
    if classes is not None:
        tables.labels = _labels_table(classes)
    tables.meta[FORMAT] = meta
    return tables.validated(where=str(path))


def _import_gt(
    path: Path,
    value: dict[str, Any],
    layout: str,
    meta: dict[str, Any],
    dataset: str,
    classes: dict[str, int] | None,
    class_file: Path | None,
) -> Tables:
    if layout == "official":
        db, root = value["database"], "database."
        if not isinstance(db, dict):
            raise FormatError(path, None, f"database: expected a JSON object, got {type(db).__name__}")
        prefix = ""
    else:
        db, root = value, ""
        prefix = "v_" if all(k.startswith("v_") and len(k) > 2 for k in db) else ""
    meta["id_prefix"] = prefix
    videos: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    video_keys: list[str] | None = None
    ann_keys: list[str] | None = None
    for vpos, (key, info) in enumerate(db.items()):
        vpath = f"{root}{key}"
        anns = _need(info, "annotations", path, vpath)
        if not isinstance(anns, list):
            raise FormatError(path, None, f"{vpath}.annotations: expected a list, got {type(anns).__name__}")
        video_keys = list(info) if video_keys is None else video_keys
        vid = key[len(prefix) :]
        row, attrs = _video_row(path, vpath, info)
        order = _split_keys(list(info), video_keys)
        if order is not None:
            attrs[_KEY_ORDER] = order
        videos.append(
            {
                **row,
                "video_id": vid,
                "dataset": dataset,
                "seq": vpos,
                "source": f"ground_truth:{dataset}",
                "attrs": schema.dumps_attrs(attrs),
            }
        )
        for i, ann in enumerate(anns):
            apath = f"{vpath}.annotations[{i}]"
            start, end = _segment(_need(ann, "segment", path, apath), path, f"{apath}.segment")
            label, label_id = _label(ann, path, apath, classes, class_file)
            ann_keys = list(ann) if ann_keys is None else ann_keys
            a_attrs = {k: v for k, v in ann.items() if k not in ("segment", "label")}
            order = _split_keys(list(ann), ann_keys)
            if order is not None:
                a_attrs[_KEY_ORDER] = order
            segments.append(
                {
                    "video_id": vid,
                    "task": TASK,
                    "t_start_s": start,
                    "t_end_s": end,
                    "label": label,
                    "label_id": label_id,
                    "label_space": LABEL_SPACE,
                    "score": 1.0,
                    "seq": len(segments),
                    "source": f"ground_truth:{dataset}",
                    "attrs": schema.dumps_attrs(a_attrs),
                }
            )
    meta["video_keys"] = video_keys or DEFAULT_VIDEO_KEYS
    meta["annotation_keys"] = ann_keys or DEFAULT_GT_ANN_KEYS
    return Tables(
        videos=pd.DataFrame(videos, columns=schema.columns("videos")) if videos else schema.empty("videos"),
        segments=_frame("segments", segments),
    )


def _frame(name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows) if rows else schema.empty(name)


def _video_row(path: Path, vpath: str, info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Columns of one video and the fields that have no column (kept raw in attrs)."""
    row: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    for k, v in info.items():
        if k == "annotations":
            continue
        if k == "duration":
            row["duration_s"] = _num(v, path, f"{vpath}.duration", "duration")
        elif k == "subset" and isinstance(v, str):
            row["split"] = v
        elif k == "url" and isinstance(v, str):
            row["uri"] = v
        elif k == "resolution" and isinstance(v, str) and _RESOLUTION.match(v):
            w, h = _RESOLUTION.match(v).groups()  # type: ignore[union-attr]
            row["width"], row["height"] = int(w), int(h)
        else:
            attrs[k] = v
    return row, attrs


def _import_results(
    path: Path,
    results: Any,
    meta: dict[str, Any],
    source: str,
    classes: dict[str, int] | None,
    class_file: Path | None,
) -> Tables:
    if not isinstance(results, dict):
        raise FormatError(path, None, f"results: expected a JSON object, got {type(results).__name__}")
    segments: list[dict[str, Any]] = []
    ann_keys: list[str] | None = None
    empty: list[list[Any]] = []
    for vpos, (vid, anns) in enumerate(results.items()):
        vpath = f"results.{vid}"
        if not isinstance(anns, list):
            raise FormatError(
                path, None, f"{vpath}: expected a list of detections, got {type(anns).__name__}"
            )
        if not anns:
            empty.append([vpos, vid])
        for i, ann in enumerate(anns):
            apath = f"{vpath}[{i}]"
            start, end = _segment(_need(ann, "segment", path, apath), path, f"{apath}.segment")
            score = _num(_need(ann, "score", path, apath), path, f"{apath}.score", "score")
            label, label_id = _label(ann, path, apath, classes, class_file)
            ann_keys = list(ann) if ann_keys is None else ann_keys
            attrs = {k: v for k, v in ann.items() if k not in ("segment", "label", "score")}
            order = _split_keys(list(ann), ann_keys)
            if order is not None:
                attrs[_KEY_ORDER] = order
            segments.append(
                {
                    "video_id": vid,
                    "task": TASK,
                    "t_start_s": start,
                    "t_end_s": end,
                    "label": label,
                    "label_id": label_id,
                    "label_space": LABEL_SPACE,
                    "score": score,
                    "seq": len(segments),
                    "source": source,
                    "attrs": schema.dumps_attrs(attrs),
                }
            )
    meta["annotation_keys"] = ann_keys or DEFAULT_PRED_ANN_KEYS
    meta["empty_videos"] = empty
    return Tables(segments=_frame("segments", segments))


# ----------------------------------------------------------------------------------------------- export


def _is_gt(df: pd.DataFrame) -> pd.Series:
    return df["source"].astype(str).str.startswith("ground_truth:")


def _select(segments: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Rows of one kind: ground truth for ``gt``, the rest for ``pred`` (all rows when none match)."""
    seg = segments[segments["task"] == TASK] if len(segments) else segments
    gt = _is_gt(seg)
    chosen = seg[gt] if kind == "gt" else seg[~gt]
    return chosen if len(chosen) else seg


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(_pos=range(len(df))).sort_values(["seq", "_pos"], kind="stable", na_position="last")


def _py(v: Any) -> Any:
    """A plain Python value for json (numpy scalars and pandas NA are not serialisable)."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def _annotation(row: Any, keys: list[str], kind: str) -> dict[str, Any]:
    attrs = schema.loads_attrs(row.attrs)
    order = attrs.pop(_KEY_ORDER, None) or keys
    known = {"segment": [float(row.t_start_s), float(row.t_end_s)], "label": _py(row.label)}
    if kind == "pred":
        known["score"] = float(row.score)
    out: dict[str, Any] = {}
    for k in [*order, *[k for k in (*known, *attrs) if k not in order]]:
        if k in attrs:
            out[k] = attrs[k]
        elif k in known:
            out[k] = known[k]
    return out


def _video_fields(vrow: Any | None) -> tuple[dict[str, Any], dict[str, Any], list[str] | None]:
    if vrow is None:
        return {}, {}, None
    attrs = schema.loads_attrs(vrow.attrs)
    order = attrs.pop(_KEY_ORDER, None)
    known: dict[str, Any] = {}
    if _py(vrow.duration_s) is not None:
        known["duration"] = float(vrow.duration_s)
    if _py(vrow.split) is not None:
        known["subset"] = str(vrow.split)
    if _py(vrow.width) is not None and _py(vrow.height) is not None:
        known["resolution"] = f"{int(vrow.width)}x{int(vrow.height)}"
    if _py(vrow.uri) is not None:
        known["url"] = str(vrow.uri)
    return known, attrs, order


@register_exporter(FORMAT)
def export_activitynet(
    tables: Tables,
    out: Path,
    *,
    kind: str | None = None,
    layout: str | None = None,
    indent: int | str | None = None,
) -> list[Path]:
    """Write ActivityNet json: ground truth or results, restoring the imported file from ``tables.meta``.

    Args:
        tables: segments (and, for ground truth, videos) to write.
        out: the json file (a folder gets the imported file's name).
        kind: ``"gt"`` or ``"pred"``; default: the imported kind, else what the rows' ``source`` says.
        layout: ground truth ``"official"`` (default) or ``"mmaction2"`` (flat, ``v_`` keys) when
            there is no imported meta to follow.
        indent: json indent when there is no imported json layout to follow (default 4).
    """
    meta = dict(tables.meta.get(FORMAT) or {})
    segments = tables.segments
    if kind in (None, "", "auto"):
        if meta.get("kind") in ("gt", "pred"):
            kind = meta["kind"]
        else:
            gt = _is_gt(segments) if len(segments) else pd.Series([], dtype=bool)
            if len(segments) and gt.any() and not gt.all():
                raise schema.AnnotationError(
                    "segments hold ground truth and predictions: pass kind='gt' or 'pred'"
                )
            kind = "gt" if (len(segments) == 0 or gt.all()) else "pred"
    if kind not in ("gt", "pred"):
        raise schema.AnnotationError(f"kind must be 'gt' or 'pred', got {kind!r}")
    if meta.get("kind") != kind:
        meta = {}
    if layout is not None and meta.get("layout") not in (None, layout):
        meta = {}
    rows = _ordered(_select(segments, kind))
    if kind == "gt":
        value = _gt_value(tables, rows, meta, layout or meta.get("layout") or "official")
    else:
        value = _results_value(rows, meta)
    style = meta.get("json_style")
    if style is None:
        style = {
            "indent": 4 if indent in (None, "") else (int(indent) if str(indent).isdigit() else indent),
            "ensure_ascii": True,
            "separators": None,
            "final_newline": True,
        }
    out = Path(out)
    if out.is_dir():
        out = out / (
            meta.get("file") or ("activitynet_gt.json" if kind == "gt" else "activitynet_results.json")
        )
    atomic_write_text(out, _dumps(value, style) + ("\n" if style.get("final_newline") else ""))
    return [out]


def _wrap(
    meta: dict[str, Any], body_key: str, body: dict[str, Any], defaults: dict[str, Any]
) -> dict[str, Any]:
    """The top-level object: imported keys in imported order, else the official ones (``defaults`` order)."""
    top = meta.get("top", defaults) if meta else defaults
    keys = meta.get("top_keys") if meta else None
    keys = keys or list(defaults)
    if body_key not in keys:
        keys = [*keys, body_key]
    return {k: (body if k == body_key else top[k]) for k in keys if k == body_key or k in top}


def _gt_value(tables: Tables, rows: pd.DataFrame, meta: dict[str, Any], layout: str) -> dict[str, Any]:
    if layout not in ("official", "mmaction2"):
        raise schema.AnnotationError(f"layout must be 'official' or 'mmaction2', got {layout!r}")
    prefix = meta.get("id_prefix", "" if layout == "official" else "v_")
    video_keys = meta.get("video_keys") or DEFAULT_VIDEO_KEYS
    ann_keys = meta.get("annotation_keys") or DEFAULT_GT_ANN_KEYS
    vdf = _ordered(tables.videos) if len(tables.videos) else tables.videos
    vrows = {r.video_id: r for r in vdf.itertuples(index=False)}
    order = list(dict.fromkeys([*vrows, *rows["video_id"]]))
    anns: dict[str, list[dict[str, Any]]] = {v: [] for v in order}
    for r in rows.itertuples(index=False):
        anns[r.video_id].append(_annotation(r, ann_keys, "gt"))
    db: dict[str, Any] = {}
    for vid in order:
        known, attrs, own = _video_fields(vrows.get(vid))
        keys = own or video_keys
        keys = [*keys, *[k for k in (*known, *attrs, "annotations") if k not in keys]]
        obj: dict[str, Any] = {}
        for k in keys:
            if k == "annotations":
                obj[k] = anns[vid]
            elif k in attrs:
                obj[k] = attrs[k]
            elif k in known:
                obj[k] = known[k]
        db[f"{prefix}{vid}"] = obj
    if layout == "mmaction2":
        return db
    return _wrap(meta, "database", db, {"version": "VERSION 1.3", "taxonomy": [], "database": None})


def _results_value(rows: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    ann_keys = meta.get("annotation_keys") or DEFAULT_PRED_ANN_KEYS
    results: dict[str, list[dict[str, Any]]] = {}
    for r in rows.itertuples(index=False):
        results.setdefault(r.video_id, []).append(_annotation(r, ann_keys, "pred"))
    items = list(results.items())
    for pos, vid in meta.get("empty_videos") or []:
        if vid not in results:
            items.insert(min(int(pos), len(items)), (vid, []))
    defaults = {"version": "VERSION 1.3", "results": None, "external_data": {"used": False, "details": ""}}
    return _wrap(meta, "results", dict(items), defaults)
