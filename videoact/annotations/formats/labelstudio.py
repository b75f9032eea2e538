"""Label Studio json tasks: video boxes (``videorectangle``) and action segments (``timelinelabels``).

``labelstudio`` -- a json list of tasks, one per video::

    [{"data": {"video": "URI", "video_id": "VID", "fps": 28.05},
      "annotations": [{"result": [...]}],                             # ground-truth sources
      "predictions": [{"model_version": "SOURCE", "result": [...]}]}] # other sources, one entry each

    box track:  {"id": "actor0-1", "type": "videorectangle", "from_name": "proposal", "to_name": "video",
                 "value": {"framesCount": N, "duration": D, "labels": ["stand up"],
                           "sequence": [{"frame": 1, "time": 0.0, "x": 48.1, "y": 22.4, "width": 9.9,
                                         "height": 61.7, "rotation": 0, "enabled": true, "score": 0.97}]}}
    segment:    {"id": "seg-0", "type": "timelinelabels", "from_name": "recognition", "to_name": "video",
                 "score": 0.43, "value": {"ranges": [{"start": 1, "end": 16}], "timelinelabels": ["stand up"],
                                          "start_s": 0.0, "end_s": 0.5333}}

Conventions:

* **Coordinates are percent** of the frame (0-100): ``x = x1 * 100``, ``width = (x2 - x1) * 100``; the
  importer computes ``x2 = (x + width) / 100``, so corners come back within a few float64 ulps (1e-15),
  not bit-identical. ``rotation`` must be 0 (rotated boxes are refused).
* **Frames are 1-based** in Label Studio: ``frame = our frame + 1``; each sequence item also holds
  ``time`` = our ``t_s`` (seconds, exact). ``enabled: false`` marks the last box of a run of consecutive
  frames (Label Studio would otherwise interpolate across the gap); it is recomputed on export.
* One ``videorectangle`` result is one track: rows are grouped by ``(actor_id, label)`` (extra tracks where
  a group repeats a frame); the id ``actor<N>-<k>`` keeps ``actor_id``, ``box-<k>`` means no actor, an id
  of another form (a file made in Label Studio) gives ``actor_id`` = the result's index in its task.
  ``from_name`` is the box ``task`` (``detection`` / ``proposal``) and, for segments, the segment
  ``task``; a null label is written as ``unlabelled`` (default ``"person"``) and read back as null.
* Segment ranges are frames, 1-based and inclusive: ``start = frame_start + 1``, ``end = frame_end``
  (our end is exclusive). ``start_s`` / ``end_s`` (a videoact extension; Label Studio keeps unknown
  keys) hold the exact times; without them ``t = (frame) / fps``. ``score`` is per result.
* ``source``: a prediction's ``model_version``; annotations are ground truth (``source`` option, default
  ``ground_truth:<dataset>``). fps: ``data.fps`` (else ``framesCount / duration``, else the ``fps`` option).

What Label Studio cannot hold: ``label_id`` / ``label_space`` (option ``label_space``), ``seq``,
``attrs`` (e.g. recognition's ``rank``), verb / noun, ``actor_id`` of segments, flagged rows without a box,
skeletons, forecasts, and the source name of ground truth. The round trip of the fields it holds (video,
frame, time, box within 1e-15, label, actor, score, task, source of predictions, segment frames and times)
is otherwise **value-identical**. The exporter also writes ``OUT.labeling.xml``: a labeling config
whose control names match ``from_name``, to paste into the Label Studio project.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations import schema
from videoact.annotations.formats._common import FormatError, read_json, register_exporter, register_importer
from videoact.annotations.formats.cvat_video import split_tracks
from videoact.annotations.schema import AnnotationError
from videoact.annotations.store import atomic_write_text
from videoact.annotations.tables import Tables

_ACTOR_ID = re.compile(r"actor(\d+)-\d+")
_NO_ACTOR = re.compile(r"box-\d+")
_COLS = ("x1", "y1", "x2", "y2")


def _null(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


# ------------------------------------------------------------------------------------------------ import


def _num(path: Path, where: str, d: dict[str, Any], key: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise FormatError(path, None, f"{where}: {key!r} must be a finite number, got {v!r}")
    return float(v)


def _label(path: Path, where: str, value: dict[str, Any], key: str, unlabelled: str) -> str | None:
    names = value.get(key, [])
    if not isinstance(names, list) or len(names) > 1:
        raise FormatError(path, None, f"{where}: {key!r} must be a list of at most one label, got {names!r}")
    return None if not names or names[0] == unlabelled else str(names[0])


def _read_result(path: Path, where: str, res: dict[str, Any], index: int, ctx: dict[str, Any],
                 boxes: list[dict[str, Any]], segments: list[dict[str, Any]]) -> None:
    if not isinstance(res, dict) or not isinstance(res.get("value"), dict):
        raise FormatError(path, None, f"{where}: a result must be an object with a 'value' object")
    kind, value = res.get("type"), res["value"]
    base = {"video_id": ctx["video_id"], "source": ctx["source"], "fps": ctx["fps"]}
    if kind == "videorectangle":
        seq = value.get("sequence")
        if not isinstance(seq, list):
            raise FormatError(path, None, f"{where}: videorectangle needs a 'sequence' list")
        rid = str(res.get("id", ""))
        m = _ACTOR_ID.fullmatch(rid)
        actor = int(m.group(1)) if m else None if _NO_ACTOR.fullmatch(rid) else index
        label = _label(path, where, value, "labels", ctx["unlabelled"])
        for k, item in enumerate(seq):
            w = f"{where} sequence[{k}]"
            if not isinstance(item, dict):
                raise FormatError(path, None, f"{w}: expected an object")
            if item.get("rotation", 0) not in (0, 0.0):
                raise FormatError(path, None, f"{w}: rotated boxes (rotation={item['rotation']}) cannot be held "
                                              "(boxes are axis-aligned); unrotate them in Label Studio")
            frame = int(_num(path, w, item, "frame")) - 1
            if frame < 0:
                raise FormatError(path, None, f"{w}: frames are 1-based in Label Studio, got {item['frame']}")
            x, y = _num(path, w, item, "x"), _num(path, w, item, "y")
            bw, bh = _num(path, w, item, "width"), _num(path, w, item, "height")
            if bw < 0 or bh < 0:
                raise FormatError(path, None, f"{w}: negative width or height ({bw}, {bh})")
            corners = [x / 100, y / 100, (x + bw) / 100, (y + bh) / 100]
            if min(corners) < -1e-9 or max(corners) > 1 + 1e-9:
                raise FormatError(path, None, f"{w}: box {x}, {y}, {bw}, {bh} (percent) leaves the frame")
            t = _num(path, w, item, "time") if "time" in item else (frame / ctx["fps"] if ctx["fps"] else None)
            if t is None:
                raise FormatError(path, None, f"{w}: no 'time' and no frame rate; pass fps=...")
            score = _num(path, w, item, "score") if "score" in item else (
                _num(path, where, res, "score") if "score" in res else 1.0)
            boxes.append({**base, "task": res.get("from_name", ctx["box_task"]), "frame": frame, "t_s": t,
                          "actor_id": actor, **dict(zip(_COLS, [min(max(c, 0.0), 1.0) for c in corners],
                                                        strict=True)),
                          "label": label, "score": score})
    elif kind == "timelinelabels":
        ranges = value.get("ranges")
        if not isinstance(ranges, list) or len(ranges) != 1 or not isinstance(ranges[0], dict):
            raise FormatError(path, None, f"{where}: timelinelabels needs 'ranges' with one range per result")
        start, end = int(_num(path, where, ranges[0], "start")), int(_num(path, where, ranges[0], "end"))
        if start < 1 or end < start - 1:
            raise FormatError(path, None, f"{where}: range {start}..{end} is not 1-based with start <= end")
        fps = ctx["fps"]
        t0 = _num(path, where, value, "start_s") if "start_s" in value else ((start - 1) / fps if fps else None)
        t1 = _num(path, where, value, "end_s") if "end_s" in value else (end / fps if fps else None)
        if t0 is None or t1 is None:
            raise FormatError(path, None, f"{where}: no times and no frame rate; pass fps=...")
        task = res.get("from_name")
        segments.append({**base, "task": task if task in schema.SEGMENT_TASKS else ctx["segment_task"],
                         "t_start_s": t0, "t_end_s": t1, "frame_start": start - 1, "frame_end": end,
                         "label": _label(path, where, value, "timelinelabels", ctx["unlabelled"]),
                         "score": _num(path, where, res, "score") if "score" in res else 1.0})
    else:
        raise FormatError(path, None, f"{where}: result type {kind!r} is not read (only videorectangle and "
                                      "timelinelabels); remove it or export those results alone")


@register_importer("labelstudio")
def import_labelstudio(
    path: Path,
    *,
    fps: float | str | None = None,
    label_space: str | None = None,
    unlabelled: str = "person",
    box_task: str = "detection",
    segment_task: str = "localization",
    dataset: str = "labelstudio",
    source: str | None = None,
) -> Tables:
    """Read Label Studio json tasks (video rectangles, timeline labels) into ``boxes`` and ``segments``.

    Args:
        fps: frame rate when a task has neither ``data.fps`` nor ``framesCount`` / ``duration``.
        label_space: the label space of the labels (Label Studio has no label ids).
        unlabelled: the label that stands for "no label".
        box_task / segment_task: ``task`` of rows whose ``from_name`` is not a task name.
        dataset / source: ``source`` of annotations (default ``ground_truth:<dataset>``).
    """
    path = Path(path)
    data, _ = read_json(path)
    tasks = data if isinstance(data, list) else [data]
    boxes: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    videos: list[dict[str, Any]] = []
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise FormatError(path, None, f"task {i}: expected an object with a 'data' object (Label Studio tasks)")
        d = task["data"]
        uri = d.get("video")
        vid = d.get("video_id") or (Path(str(uri).split("?d=")[-1]).stem if uri else None)
        if not vid:
            raise FormatError(path, None, f"task {i}: data has neither 'video_id' nor 'video'")
        rate = d.get("fps", fps)
        entries = [("annotations", e, source or f"ground_truth:{dataset}") for e in task.get("annotations", [])]
        entries += [("predictions", e, None) for e in task.get("predictions", [])]
        for kind, entry, src in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("result"), list):
                raise FormatError(path, None, f"task {i} {kind}: each entry needs a 'result' list")
            if src is None:
                src = str(entry.get("model_version") or f"predictions:{path.name}")
            if rate is None:
                for r in entry["result"]:
                    v = r.get("value", {}) if isinstance(r, dict) else {}
                    if v.get("framesCount") and v.get("duration"):
                        rate = v["framesCount"] / v["duration"]
                        break
            ctx = {"video_id": vid, "source": src, "fps": None if rate is None else float(rate),
                   "unlabelled": unlabelled, "box_task": box_task, "segment_task": segment_task}
            for j, res in enumerate(entry["result"]):
                _read_result(path, f"task {i} {kind} result {j}", res, j, ctx, boxes, segments)
        videos.append({"video_id": vid, "uri": uri, "fps": None if rate is None else float(rate), "source":
                       source or f"ground_truth:{dataset}"})
    out = Tables(boxes=pd.DataFrame(boxes) if boxes else schema.empty("boxes"),
                 segments=pd.DataFrame(segments) if segments else schema.empty("segments"),
                 videos=pd.DataFrame(videos) if videos else schema.empty("videos"))
    for name in ("boxes", "segments"):
        df = getattr(out, name)
        if len(df):
            df["label_space"] = np.where(df["label"].notna(), label_space, None) if label_space else None
    return out.validated(where=str(path))


# ------------------------------------------------------------------------------------------------ export


def _box_results(df: pd.DataFrame, n_frames: int, duration: float, unlabelled: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for k, track in enumerate(split_tracks(df)):
        first = track.iloc[0]
        frames = track["at_frame"].to_numpy()
        seq = []
        for i, r in enumerate(track.itertuples(index=False)):
            last_of_run = i + 1 == len(frames) or frames[i + 1] != r.at_frame + 1
            seq.append({"frame": int(r.at_frame) + 1, "time": float(r.t_s), "x": r.x1 * 100, "y": r.y1 * 100,
                        "width": (r.x2 - r.x1) * 100, "height": (r.y2 - r.y1) * 100, "rotation": 0,
                        "enabled": not last_of_run, "score": float(r.score)})
        rid = f"box-{k}" if _null(first["actor_id"]) else f"actor{int(first['actor_id'])}-{k}"
        label = unlabelled if _null(first["label"]) else str(first["label"])
        results.append({"id": rid, "type": "videorectangle", "from_name": str(first["task"]), "to_name": "video",
                        "score": float(track["score"].mean()),
                        "value": {"framesCount": n_frames, "duration": duration, "sequence": seq,
                                  "labels": [label]}})
    return results


def _segment_results(df: pd.DataFrame, fps: float | None, unlabelled: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for k, r in enumerate(df.itertuples(index=False)):
        f0 = r.frame_start if not _null(r.frame_start) else (round(r.t_start_s * fps) if fps else None)
        f1 = r.frame_end if not _null(r.frame_end) else (round(r.t_end_s * fps) if fps else None)
        if f0 is None or f1 is None:
            raise AnnotationError(f"segment of {r.video_id!r} at {r.t_start_s} s has no frames and no fps; "
                                  "pass fps=... (-O fps=30)")
        label = unlabelled if _null(r.label) else str(r.label)
        results.append({"id": f"seg-{k}", "type": "timelinelabels", "from_name": str(r.task), "to_name": "video",
                        "score": float(r.score),
                        "value": {"ranges": [{"start": int(f0) + 1, "end": int(f1)}], "timelinelabels": [label],
                                  "start_s": float(r.t_start_s), "end_s": float(r.t_end_s)}})
    return results


def _config(box_tasks: dict[str, set[str]], seg_tasks: dict[str, set[str]], fps: float | None) -> str:
    lines = ["<View>", f'  <Video name="video" value="$video"{f" framerate={json.dumps(str(fps))}" if fps else ""}/>']
    for task, labels in box_tasks.items():
        lines.append(f'  <Labels name="{task}_labels" toName="video">')
        lines += [f"    <Label value={json.dumps(n)}/>" for n in sorted(labels)]
        lines += ["  </Labels>", f'  <VideoRectangle name="{task}" toName="video"/>']
    for task, labels in seg_tasks.items():
        lines.append(f'  <TimelineLabels name="{task}" toName="video">')
        lines += [f"    <Label value={json.dumps(n)}/>" for n in sorted(labels)]
        lines.append("  </TimelineLabels>")
    return "\n".join([*lines, "</View>", ""])


@register_exporter("labelstudio")
def export_labelstudio(
    tables: Tables,
    out: Path,
    *,
    fps: float | str | None = None,
    unlabelled: str = "person",
    best_only: bool | str = False,
) -> list[Path]:
    """Write boxes and segments as Label Studio json tasks (one per video) plus a labeling config.

    Args:
        fps: frame rate for rows without frames when the tables have no ``videos`` row.
        unlabelled: the label written for rows without a label.
        best_only: keep only the best-scored segment per (source, window) (recognition writes its top 5).
    """
    boxes = schema.validate("boxes", tables.boxes, where="boxes")
    boxes = boxes[boxes[list(_COLS)].notna().all(axis=1)]
    segs = schema.validate("segments", tables.segments, where="segments")
    if str(best_only).lower() in ("1", "true", "yes"):  # the best label per (source, window)
        segs = segs.sort_values("score", ascending=False, kind="stable").drop_duplicates(
            ["source", "video_id", "t_start_s", "t_end_s"]).sort_index()
    vids = list(dict.fromkeys([*tables.videos["video_id"], *boxes["video_id"], *segs["video_id"]]))
    vids = [v for v in vids if (boxes["video_id"] == v).any() or (segs["video_id"] == v).any()]
    if not vids:
        raise AnnotationError("no boxes or segments to export")
    tasks: list[dict[str, Any]] = []
    box_tasks: dict[str, set[str]] = {}
    seg_tasks: dict[str, set[str]] = {}
    rates: list[float] = []
    for vid in vids:
        v = tables.videos[tables.videos["video_id"] == vid]
        info = v.iloc[0].to_dict() if len(v) else {}
        b = boxes[boxes["video_id"] == vid].copy()
        s = segs[segs["video_id"] == vid]
        rate = float(fps) if fps is not None else next(
            (float(x) for x in [info.get("fps"), *b["fps"], *s["fps"]] if not _null(x)), None)
        if rate is not None:
            rates.append(rate)
        frame = b["frame"].astype("float64")
        if frame.isna().any():
            if rate is None:
                raise AnnotationError(f"boxes of {vid!r} have no frames and no fps; pass fps=... (-O fps=30)")
            frame = frame.fillna(pd.Series(np.round(b["t_s"].to_numpy() * rate), index=b.index))
        b["at_frame"] = frame.astype("int64")
        n = info.get("n_frames")
        n_frames = int(n) if not _null(n) else int(b["at_frame"].max()) + 1 if len(b) else 0
        dur = info.get("duration_s")
        duration = float(dur) if not _null(dur) else (n_frames / rate if rate else 0.0)
        uri = info.get("uri")
        data: dict[str, Any] = {"video": vid if _null(uri) else str(uri), "video_id": vid}
        if rate is not None:
            data["fps"] = rate
        task: dict[str, Any] = {"data": data, "annotations": [], "predictions": []}
        for src in dict.fromkeys([*b["source"], *s["source"]]):
            bs, ss = b[b["source"] == src], s[s["source"] == src]
            for t, lab in zip(bs["task"], bs["label"], strict=True):
                box_tasks.setdefault(str(t), set()).add(unlabelled if _null(lab) else str(lab))
            for t, lab in zip(ss["task"], ss["label"], strict=True):
                seg_tasks.setdefault(str(t), set()).add(unlabelled if _null(lab) else str(lab))
            result = _box_results(bs, n_frames, duration, unlabelled) + _segment_results(ss, rate, unlabelled)
            if str(src).startswith("ground_truth"):
                task["annotations"].append({"result": result})
            else:
                scores = [*bs["score"], *ss["score"]]
                task["predictions"].append({"model_version": str(src), "score": float(np.mean(scores)),
                                            "result": result})
        tasks.append(task)
    atomic_write_text(out, json.dumps(tasks, indent=1, ensure_ascii=False) + "\n")
    config = out.with_name(out.stem + ".labeling.xml")
    atomic_write_text(config, _config(box_tasks, seg_tasks, rates[0] if rates else None))
    return [out, config]
