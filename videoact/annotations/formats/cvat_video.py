"""CVAT for video 1.1 XML: person boxes as tracks, for review and correction in CVAT.

``cvat-video`` -- one XML file per video (a CVAT task); a folder of them on import, a folder on export
when the tables hold several videos::

    <annotations><version>1.1</version>
      <meta><task><name>VIDEO_ID</name><size>N_FRAMES</size><mode>interpolation</mode>
        <start_frame>0</start_frame><stop_frame>N-1</stop_frame>
        <labels><label><name>stand up</name><attributes>...</attributes></label>...</labels>
        <original_size><width>W</width><height>H</height></original_size></task></meta>
      <track id="0" label="stand up" source="auto" group_id="1">
        <box frame="12" outside="0" occluded="0" keyframe="1" xtl=".." ytl=".." xbr=".." ybr=".." z_order="0">
          <attribute name="score">0.97</attribute></box> ...</track></annotations>

Conventions:

* **Coordinates are pixels** of the original frame (``xtl = x1 * width``), written as Python's shortest
  float text; the importer divides by ``original_size``. Width and height come from the ``videos`` table
  (or the ``width`` / ``height`` options, e.g. for AVA boxes). Pixels outside the frame (CVAT allows
  them) are clipped to [0, 1] on import and the written pixels kept in ``attrs["cvat"]``.
* **Frames, not times.** ``frame`` is the 0-based frame index (from the ``frame`` column, else
  ``round(t_s * fps)``). The XML has no frame rate: importing needs ``fps`` and sets
  ``t_s = frame / fps``.
* A track has one label: rows are grouped into tracks by ``(actor_id, label)``; two rows of one group
  on the same frame go to separate tracks. ``actor_id`` is written as CVAT's ``group_id = actor_id + 1``
  (``group_id="0"``: no actor). A file without ``group_id`` (made in CVAT) gets ``actor_id = track id``.
  A null label is written as ``unlabelled`` (default ``"person"``) and read back as null.
* ``score`` is a box attribute ``score`` (declared in every label) when any exported score is not 1.0;
  without it boxes read back with score 1.0. Other attributes go to ``attrs["cvat"]["attributes"]``;
  ``occluded``, ``z_order`` and ``keyframe="0"`` (CVAT's interpolated boxes) to ``attrs["cvat"]``.
* ``outside="1"`` boxes end a track's visible run: the exporter writes one after each run of
  consecutive frames (when the video goes on), the importer drops them.

What CVAT cannot hold: ``t_s`` off the frame grid, ``fps``, ``label_id`` / ``label_space`` (set by the
``label_space`` option and the ``labels`` table is not written), ``task`` (option ``task``, default
``detection``), ``source`` (option ``source``), ``seq``, rows without a box (``empty`` / ``excluded``
keyframes are not written), segments and skeletons. The round trip of the fields it holds (video,
frame, box, label, actor, score, CVAT attributes) is **value-identical**, except that a box corner may
move by one float64 ulp: ``x1 * width / width`` is not always ``x1`` (about 1e-16).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations import schema
from videoact.annotations.formats._common import FormatError, register_exporter, register_importer
from videoact.annotations.schema import AnnotationError
from videoact.annotations.store import atomic_write_text, file_key
from videoact.annotations.tables import Tables

_CORNERS = ("xtl", "ytl", "xbr", "ybr")
_COLS = ("x1", "y1", "x2", "y2")


def _null(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


# ------------------------------------------------------------------------------------------------ import


def _int(path: Path, text: str | None, what: str) -> int:
    try:
        return int(str(text))
    except ValueError:
        raise FormatError(path, None, f"{what} is not an integer: {text!r}") from None


def _float(path: Path, text: str | None, what: str) -> float:
    try:
        v = float(str(text))
    except ValueError:
        raise FormatError(path, None, f"{what} is not a number: {text!r}") from None
    if not math.isfinite(v):
        raise FormatError(path, None, f"{what} is not finite: {text!r}")
    return v


def _read_one(path: Path, fps: float, unlabelled: str, keyframes_only: bool) -> tuple[list[dict[str, Any]], dict]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise FormatError(path, exc.position[0], f"broken XML: {exc}") from None
    if root.tag != "annotations":
        raise FormatError(path, None, f"root element is <{root.tag}>, expected <annotations> (CVAT for video 1.1)")
    if root.find("image") is not None:
        raise FormatError(path, None, "this is CVAT for images (<image> elements); export the task as "
                                      "'CVAT for video 1.1' to keep tracks")
    task = root.find("meta/task")
    if task is None:
        task = root.find("meta/job")
    if task is None:
        raise FormatError(path, None, "no <meta><task> (or <job>) element: not a CVAT for video 1.1 file")
    size = task.find("original_size")
    if size is None or size.findtext("width") is None or size.findtext("height") is None:
        raise FormatError(path, None, "<meta> has no <original_size><width>/<height>: pixel boxes cannot be "
                                      "normalised")
    width = _int(path, size.findtext("width"), "original_size width")
    height = _int(path, size.findtext("height"), "original_size height")
    if width <= 0 or height <= 0:
        raise FormatError(path, None, f"original_size must be positive, got {width}x{height}")
    video_id = (task.findtext("name") or path.stem).strip()
    n_frames = task.findtext("size")
    rows: list[dict[str, Any]] = []
    for track in root.iter("track"):
        tid = _int(path, track.get("id"), "track id")
        label = track.get("label")
        if label is None:
            raise FormatError(path, None, f"track {tid} has no label")
        shapes = [c for c in track if c.tag != "box"]
        if shapes:
            raise FormatError(path, None, f"track {tid} holds <{shapes[0].tag}> shapes: only boxes are read "
                                          "(export the boxes alone, or drop the other shapes)")
        group = track.get("group_id")
        actor = tid if group is None else (_int(path, group, f"track {tid} group_id") - 1)
        for box in track.iter("box"):
            where = f"track {tid} box"
            frame = _int(path, box.get("frame"), f"{where} frame")
            if box.get("outside", "0") == "1":
                continue
            cvat: dict[str, Any] = {}
            if box.get("keyframe", "1") != "1":
                if keyframes_only:
                    continue
                cvat["keyframe"] = box.get("keyframe")
            for key, default in (("occluded", "0"), ("z_order", "0")):
                if box.get(key, default) != default:
                    cvat[key] = box.get(key)
            px = []
            for c in _CORNERS:
                if box.get(c) is None:
                    raise FormatError(path, None, f"{where} at frame {frame} has no {c}")
                px.append(_float(path, box.get(c), f"{where} at frame {frame} {c}"))
            if px[2] < px[0] or px[3] < px[1]:
                raise FormatError(path, None, f"{where} at frame {frame}: corners in the wrong order "
                                              f"(xtl={px[0]}, ytl={px[1]}, xbr={px[2]}, ybr={px[3]})")
            norm = [px[0] / width, px[1] / height, px[2] / width, px[3] / height]
            clipped = [min(max(v, 0.0), 1.0) for v in norm]
            if clipped != norm:
                cvat["pixels"] = [box.get(c) for c in _CORNERS]
            score = 1.0
            attributes: dict[str, str] = {}
            for a in box.iter("attribute"):
                name = a.get("name")
                if name == "score":
                    score = _float(path, a.text, f"{where} at frame {frame} score")
                elif name is not None:
                    attributes[name] = a.text or ""
            if attributes:
                cvat["attributes"] = attributes
            rows.append({"video_id": video_id, "frame": frame, "t_s": frame / fps, "fps": fps,
                         "actor_id": None if actor < 0 else actor,
                         **dict(zip(_COLS, clipped, strict=True)),
                         "label": None if label == unlabelled else label, "score": score,
                         "attrs": schema.dumps_attrs({"cvat": cvat} if cvat else None)})
    video = {"video_id": video_id, "fps": fps, "width": width, "height": height,
             "n_frames": None if n_frames is None else _int(path, n_frames, "<size>")}
    return rows, video


@register_importer("cvat-video")
def import_cvat_video(
    path: Path,
    *,
    fps: float | str | None = None,
    task: str = "detection",
    label_space: str | None = None,
    unlabelled: str = "person",
    keyframes_only: bool | str = False,
    dataset: str = "cvat",
    source: str | None = None,
) -> Tables:
    """Read CVAT for video 1.1 XML (a file or a folder of them) into ``boxes`` (and ``videos``).

    Args:
        fps: the video's frame rate (the XML has none); ``t_s = frame / fps``. Required.
        task: ``detection`` or ``proposal`` for every row.
        label_space: the label space of the labels (CVAT has no label ids).
        unlabelled: the CVAT label that stands for "no label".
        keyframes_only: drop CVAT's interpolated boxes (``keyframe="0"``).
        dataset / source: the rows' ``source`` (default ``ground_truth:<dataset>``).
    """
    path = Path(path)
    if fps is None:
        raise AnnotationError(f"{path}: CVAT XML holds no frame rate; pass fps=... (-O fps=29.97 on the "
                              "command line) to set t_s = frame / fps")
    fps = float(fps)
    keyframes_only = str(keyframes_only).lower() in ("1", "true", "yes")
    files = sorted(path.glob("*.xml")) if path.is_dir() else [path]
    if not files:
        raise FormatError(path, None, "folder holds no .xml files")
    rows: list[dict[str, Any]] = []
    videos: list[dict[str, Any]] = []
    for f in files:
        r, v = _read_one(f, fps, unlabelled, keyframes_only)
        rows += r
        videos.append(v)
    boxes = pd.DataFrame(rows, columns=["video_id", "frame", "t_s", "fps", "actor_id", *_COLS, "label", "score",
                                        "attrs"])
    boxes["task"] = task
    boxes["label_space"] = label_space if label_space is not None else None
    boxes.loc[boxes["label"].isna(), "label_space"] = None
    src = source or f"ground_truth:{dataset}"
    boxes["source"] = src
    vids = pd.DataFrame(videos)
    vids["source"] = src
    return Tables(boxes=boxes, videos=vids).validated(where=str(path))


# ------------------------------------------------------------------------------------------------ export


def _video_row(tables: Tables, vid: str) -> dict[str, Any]:
    v = tables.videos[tables.videos["video_id"] == vid]
    return {} if not len(v) else {k: v.iloc[0][k] for k in ("fps", "width", "height", "n_frames")}


def split_tracks(df: pd.DataFrame) -> list[pd.DataFrame]:
    """Rows split into tracks (sorted by ``at_frame``): one per (actor, label), more where a group repeats a frame.

    Review tools give a track one label and one box per frame; Label Studio uses the same split.
    """
    out: list[pd.DataFrame] = []
    keys = df[["actor_id", "label"]].astype(object).where(df[["actor_id", "label"]].notna(), None)
    for _, grp in df.groupby([keys["actor_id"].map(repr), keys["label"].map(repr)], sort=False):
        grp = grp.sort_values("at_frame", kind="stable")
        copy = grp.groupby("at_frame").cumcount()
        for k in range(int(copy.max()) + 1):
            out.append(grp[copy == k])
    return out


def _fmt(v: float) -> str:
    return repr(float(v))


def _write_one(df: pd.DataFrame, vid: str, width: int, height: int, n_frames: int, unlabelled: str,
               label_order: list[str]) -> str:
    with_score = bool((df["score"] != 1.0).any())
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    for k, v in (("name", vid), ("size", str(n_frames)), ("mode", "interpolation"), ("overlap", "0"),
                 ("start_frame", "0"), ("stop_frame", str(max(n_frames - 1, 0)))):
        ET.SubElement(task, k).text = v
    labels_el = ET.SubElement(task, "labels")
    extra = sorted({k for a in df["attrs"] for k in schema.loads_attrs(a).get("cvat", {}).get("attributes", {})})
    for name in label_order:
        lab = ET.SubElement(labels_el, "label")
        ET.SubElement(lab, "name").text = name
        attrs_el = ET.SubElement(lab, "attributes")
        for a in (["score"] if with_score else []) + extra:
            at = ET.SubElement(attrs_el, "attribute")
            ET.SubElement(at, "name").text = a
            ET.SubElement(at, "mutable").text = "true"
            ET.SubElement(at, "input_type").text = "number" if a == "score" else "text"
            ET.SubElement(at, "default_value").text = "1" if a == "score" else ""
            ET.SubElement(at, "values").text = "0;1;0.0001" if a == "score" else ""
    size = ET.SubElement(task, "original_size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(task, "source").text = vid
    for tid, track in enumerate(split_tracks(df)):
        first = track.iloc[0]
        label = unlabelled if _null(first["label"]) else str(first["label"])
        group = 0 if _null(first["actor_id"]) else int(first["actor_id"]) + 1
        src = "manual" if str(first["source"]).startswith("ground_truth") else "auto"
        t_el = ET.SubElement(root, "track", id=str(tid), label=label, source=src, group_id=str(group))
        frames = track["at_frame"].to_numpy()
        for i, row in enumerate(track.itertuples(index=False)):
            cvat = schema.loads_attrs(row.attrs).get("cvat", {})
            pixels = cvat.get("pixels") or [_fmt(row.x1 * width), _fmt(row.y1 * height), _fmt(row.x2 * width),
                                            _fmt(row.y2 * height)]
            box_attrs = {"frame": str(int(row.at_frame)), "outside": "0", "occluded": str(cvat.get("occluded", "0")),
                         "keyframe": str(cvat.get("keyframe", "1")), **dict(zip(_CORNERS, pixels, strict=True)),
                         "z_order": str(cvat.get("z_order", "0"))}
            b = ET.SubElement(t_el, "box", box_attrs)
            if with_score:
                ET.SubElement(b, "attribute", name="score").text = _fmt(row.score)
            for k, v in cvat.get("attributes", {}).items():
                ET.SubElement(b, "attribute", name=k).text = v
            nxt = frames[i + 1] if i + 1 < len(frames) else None
            if (nxt is None or nxt != row.at_frame + 1) and row.at_frame + 1 < n_frames:
                ET.SubElement(t_el, "box", {**box_attrs, "frame": str(int(row.at_frame) + 1), "outside": "1",
                                            "keyframe": "1"})
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


@register_exporter("cvat-video")
def export_cvat_video(
    tables: Tables,
    out: Path,
    *,
    video_id: str | None = None,
    source: str | None = None,
    fps: float | str | None = None,
    width: int | str | None = None,
    height: int | str | None = None,
    unlabelled: str = "person",
) -> list[Path]:
    """Write boxes as CVAT for video 1.1 XML: OUT ending in ``.xml`` is the file (one video), else a folder of them.

    Args:
        video_id: write only this video.
        source: which rows when boxes come from several sources (a run's proposals vs. detections).
        fps, width, height: when the tables have no ``videos`` row (imported AVA csv): frame rate to
            turn ``t_s`` into frames, frame size in pixels.
        unlabelled: the CVAT label written for boxes without a label.
    """
    df = schema.validate("boxes", tables.boxes, where="boxes")
    df = df[df[list(_COLS)].notna().all(axis=1)]
    if video_id is not None:
        df = df[df["video_id"] == video_id]
    sources = list(dict.fromkeys(df["source"]))
    if source is not None:
        df = df[df["source"] == source]
    elif len(sources) > 1:
        raise AnnotationError(f"boxes come from several sources {sources}: pass source=... "
                              "(-O source=NAME) to pick one")
    if not len(df):
        raise AnnotationError("no boxes to export" + (f" for video {video_id!r}" if video_id else "")
                              + (f" with source {source!r}" if source else ""))
    vids = list(dict.fromkeys(df["video_id"]))
    label_order = list(dict.fromkeys([*tables.labels["name"], *sorted(set(df["label"].dropna()))]))
    label_order = [n for n in label_order if n in set(df["label"].dropna())]
    if df["label"].isna().any():
        label_order.append(unlabelled)
    written: list[Path] = []
    for vid in vids:
        part = df[df["video_id"] == vid].copy()
        info = _video_row(tables, vid)
        w = width if width is not None else info.get("width")
        h = height if height is not None else info.get("height")
        if _null(w) or _null(h):
            raise AnnotationError(f"video {vid!r}: no frame size in the videos table; pass width=... and "
                                  "height=... (-O width=1920 -O height=1080) for pixel coordinates")
        rate = float(fps) if fps is not None else part["fps"].dropna().iloc[0] if part["fps"].notna().any() \
            else info.get("fps")
        frame = part["frame"].astype("float64")
        if frame.isna().any():
            if _null(rate):
                raise AnnotationError(f"video {vid!r}: boxes have times but no frames or fps; pass fps=... "
                                      "(-O fps=30) to place them on frames")
            frame = frame.fillna(pd.Series(np.round(part["t_s"].to_numpy() * float(rate)), index=part.index))
        part["at_frame"] = frame.astype("int64")
        n = info.get("n_frames")
        n_frames = int(n) if not _null(n) else int(part["at_frame"].max()) + 1
        text = _write_one(part, vid, int(w), int(h), n_frames, unlabelled, label_order)
        target = out if len(vids) == 1 and out.suffix.lower() == ".xml" else out / f"{file_key(vid)}.xml"
        if len(vids) > 1 and out.suffix.lower() == ".xml":
            raise AnnotationError(f"{out}: boxes hold {len(vids)} videos; give a folder (one XML per video) "
                                  "or pass video_id=...")
        atomic_write_text(target, text)
        written.append(target)
    return written
