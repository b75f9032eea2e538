"""The shared annotation format: long tables that every head writes and every evaluator reads.

Six tables, each a pandas DataFrame in memory and Parquet on disk (see ``store.py``):

========== ===================================================================================
table      one row per
========== ===================================================================================
videos     video (metadata: fps, frames, duration, size, split)
segments   temporal event: a recognised clip, a detected action instance, a segmentation run
boxes      person box at one time (AVA keyframe detections, proposals, empty/excluded keyframes)
skeletons  person pose at one frame (keypoints flattened ``V*C``, on a named joint layout)
forecasts  anticipated future action (candidate ``k`` of ``K``, step ``z`` of ``Z``)
labels     class of a label space (``label_space, id, name``)
========== ===================================================================================

Conventions, shared by every table:

* Times are seconds (``*_s`` columns); frames are 0-based indices at the row's ``fps``. Segment
  ``frame_end`` is exclusive (``frame_end = round(t_end_s * fps)``), so ``frame_end - frame_start``
  is the length in frames. ``fps`` may be null when the source format has no frame rate
  (ActivityNet json), and frame columns are then null too.
* Boxes are ``x1, y1, x2, y2`` normalised to [0, 1] with (0, 0) the top-left corner (AVA convention).
* ``score`` is a confidence in [0, 1] for predictions and 1.0 for ground truth.
* ``source`` says who made the row: ``ground_truth:<dataset>`` or ``<model>@<config fingerprint>``.
* ``seq`` keeps the position of a row in the file it came from (a line number, or an index that
  restarts per video such as Ego4D's ``action_idx``), so exporters can restore the original order;
  ``store.load`` sorts by it when it is unique over the table. It is null for rows made by the pipeline.
* ``attrs`` is a JSON object (as a string) for format fields that have no column, so imports stay
  lossless without widening the schema for every dataset.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

SCHEMA_VERSION = "1"

TABLE_NAMES: tuple[str, ...] = ("videos", "segments", "boxes", "skeletons", "forecasts", "labels")
PER_VIDEO_TABLES: tuple[str, ...] = ("videos", "segments", "boxes", "skeletons", "forecasts")

SEGMENT_TASKS = ("recognition", "localization", "segmentation")
BOX_TASKS = ("detection", "proposal")
# Flags on rows that carry no ordinary annotation: AVA keyframes with no action (2-column rows),
# AVA excluded timestamps, THUMOS14 "Ambiguous" segments; "lenient" marks a row that an official
# evaluator accepts although it breaks the rules below (reversed box corners or segment ends, negative
# times): its values are kept exactly as written, ``attrs["lenient"]`` lists the reasons, and each
# evaluator treats it as its official tool does (``docs/evaluation.md``). A THUMOS14 Ambiguous row keeps
# its own flag and carries only ``attrs["lenient"]``.
FLAGS = ("empty", "excluded", "ambiguous", "lenient")
LENIENT = "lenient"


def lenient_rows(df: pd.DataFrame) -> pd.Series:
    """Rows kept as an official tool reads them: ``flag="lenient"`` or an ``attrs["lenient"]`` entry."""
    mask = df["flag"] == LENIENT if "flag" in df.columns else pd.Series(False, index=df.index)
    mask = mask.fillna(False).astype(bool)
    if "attrs" in df.columns:
        text = df["attrs"].astype("string")
        mask |= text.str.contains('"lenient"', regex=False).fillna(False).astype(bool)
    return mask


class AnnotationError(ValueError):
    """A table or an annotation file breaks the format; the message names where and what."""


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool = False  # non-null in every row
    doc: str = ""


def _common_tail() -> list[Column]:
    return [
        Column("seq", pa.int64(), doc="row position in the source file (line, action index)"),
        Column("source", pa.string(), required=True, doc="ground_truth:<dataset> or model@fingerprint"),
        Column("attrs", pa.string(), doc="JSON object with format fields that have no column"),
    ]


SCHEMAS: dict[str, list[Column]] = {
    "videos": [
        Column("video_id", pa.string(), required=True),
        Column("uri", pa.string(), doc="path or URL of the media file"),
        Column("fps", pa.float64()),
        Column("n_frames", pa.int64()),
        Column("duration_s", pa.float64()),
        Column("width", pa.int64()),
        Column("height", pa.int64()),
        Column("rotation", pa.int64(), doc="display rotation in degrees (phone videos)"),
        Column("codec", pa.string()),
        Column("sha256", pa.string()),
        Column("dataset", pa.string()),
        Column("split", pa.string(), doc="train / val / test / xsub_train ... "),
        *_common_tail(),
    ],
    "segments": [
        Column("video_id", pa.string(), required=True),
        Column("task", pa.string(), required=True, doc="one of SEGMENT_TASKS"),
        Column("t_start_s", pa.float64(), required=True),
        Column("t_end_s", pa.float64(), required=True),
        Column("fps", pa.float64()),
        Column("frame_start", pa.int64()),
        Column("frame_end", pa.int64(), doc="exclusive"),
        Column("label", pa.string()),
        Column("label_id", pa.int64()),
        Column("label_space", pa.string()),
        Column("score", pa.float64(), required=True),
        Column("actor_id", pa.int64()),
        Column("verb", pa.string()),
        Column("noun", pa.string()),
        Column("verb_id", pa.int64()),
        Column("noun_id", pa.int64()),
        Column("flag", pa.string(), doc="null, or one of FLAGS"),
        *_common_tail(),
    ],
    "boxes": [
        Column("video_id", pa.string(), required=True),
        Column("task", pa.string(), required=True, doc="detection (action on a box) or proposal"),
        Column("t_s", pa.float64(), required=True),
        Column("fps", pa.float64()),
        Column("frame", pa.int64()),
        Column("actor_id", pa.int64(), doc="person / track id within the video"),
        Column("x1", pa.float64()),
        Column("y1", pa.float64()),
        Column("x2", pa.float64()),
        Column("y2", pa.float64()),
        Column("label", pa.string()),
        Column("label_id", pa.int64()),
        Column("label_space", pa.string()),
        Column("score", pa.float64(), required=True),
        Column("flag", pa.string(), doc="null, or empty / excluded keyframe"),
        *_common_tail(),
    ],
    "skeletons": [
        Column("video_id", pa.string(), required=True),
        Column("frame", pa.int64(), required=True),
        Column("t_s", pa.float64()),
        Column("fps", pa.float64()),
        Column("person_id", pa.int64(), required=True),
        Column("layout", pa.string(), required=True, doc="joint layout name, e.g. ntu25, coco17"),
        Column("dims", pa.int64(), required=True, doc="coordinates per joint (2 or 3)"),
        Column("coord_space", pa.string(), required=True, doc="image_px, image_norm or world_m"),
        Column("keypoints", pa.list_(pa.float32()), required=True, doc="V*dims values, joint-major"),
        Column("scores", pa.list_(pa.float32()), doc="V per-joint confidences"),
        *_common_tail(),
    ],
    "forecasts": [
        Column("video_id", pa.string(), required=True, doc="video or clip uid"),
        Column("anchor_idx", pa.int64(), doc="index of the last observed action"),
        Column("anchor_t_s", pa.float64(), doc="time of the forecast"),
        Column("candidate", pa.int64(), required=True, doc="1..K"),
        Column("step", pa.int64(), required=True, doc="1..Z"),
        Column("verb", pa.string()),
        Column("noun", pa.string()),
        Column("verb_id", pa.int64()),
        Column("noun_id", pa.int64()),
        Column("label_space", pa.string()),
        Column("score", pa.float64()),
        Column("backend", pa.string()),
        Column("prompt_hash", pa.string()),
        *_common_tail(),
    ],
    "labels": [
        Column("label_space", pa.string(), required=True),
        Column("id", pa.int64(), required=True),
        Column("name", pa.string(), required=True),
        Column("attrs", pa.string()),
    ],
}


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a table, with the schema version in its metadata."""
    cols = SCHEMAS[_check_table(table)]
    fields = [pa.field(c.name, c.type, nullable=not c.required) for c in cols]
    return pa.schema(fields, metadata={b"videoact.schema_version": SCHEMA_VERSION.encode(),
                                       b"videoact.table": table.encode()})


def columns(table: str) -> list[str]:
    return [c.name for c in SCHEMAS[_check_table(table)]]


def empty(table: str) -> pd.DataFrame:
    """An empty DataFrame with the table's columns and dtypes."""
    return validate(table, pd.DataFrame({c: [] for c in columns(table)}))


def _check_table(table: str) -> str:
    if table not in SCHEMAS:
        raise AnnotationError(f"unknown table {table!r}; the tables are {', '.join(TABLE_NAMES)}")
    return table


_PANDAS_DTYPES: dict[pa.DataType, object] = {
    pa.int64(): pd.Int64Dtype(),
    pa.float64(): "float64",
    pa.string(): pd.StringDtype(),
}


def _coerce(series: pd.Series, col: Column, where: str) -> pd.Series:
    if pa.types.is_list(col.type):
        def to_array(v: object) -> object:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return None
            return np.asarray(v, dtype=np.float32).reshape(-1)
        return series.map(to_array).astype(object)
    dtype = _PANDAS_DTYPES[col.type]
    if series.dtype == dtype:  # already canonical (tables read back or re-validated): no copy
        return series
    try:
        if col.type == pa.int64():
            numeric = pd.to_numeric(series, errors="raise")
            frac = numeric.dropna() % 1
            if len(frac) and (frac != 0).any():
                bad = frac[frac != 0].index[0]
                raise ValueError(f"non-integer value {series[bad]!r} at row {bad}")
            return numeric.astype(dtype)
        if col.type == pa.float64():
            return pd.to_numeric(series, errors="raise").astype("float64")
        # strings: keep nulls as <NA>, never turn None into "None"
        return series.astype(object).where(series.notna(), None).astype(dtype)
    except (ValueError, TypeError) as exc:
        raise AnnotationError(f"{where}: column {col.name!r} must be {col.type}: {exc}") from None


_EMPTY: dict[str, pd.DataFrame] = {}


def validate(table: str, df: pd.DataFrame, *, where: str = "<memory>") -> pd.DataFrame:
    """Check a table and return it with canonical dtypes and column order.

    Raises:
        AnnotationError: naming ``where`` (a file or a description), the column and the first bad row.
    """
    cols = SCHEMAS[_check_table(table)]
    names = [c.name for c in cols]
    unknown = [c for c in df.columns if c not in names]
    if unknown:
        raise AnnotationError(
            f"{where}: {table} has unknown column(s) {unknown}; known columns are {names} "
            "(put format-specific fields into the 'attrs' JSON column)"
        )
    missing = [c.name for c in cols if c.required and c.name not in df.columns]
    if missing:
        raise AnnotationError(f"{where}: {table} is missing the required column {missing[0]!r}")
    if len(df) == 0:
        if table not in _EMPTY:
            _EMPTY[table] = _validate_rows(table, cols, pd.DataFrame({c: [] for c in names}), where)
        return _EMPTY[table].copy()
    return _validate_rows(table, cols, df, where)


def _validate_rows(table: str, cols: list[Column], df: pd.DataFrame, where: str) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    data: dict[str, pd.Series] = {}
    for col in cols:
        if col.name in df.columns:
            data[col.name] = _coerce(df[col.name], col, where)
        else:
            data[col.name] = _coerce(pd.Series([None] * len(df), dtype=object), col, where)
    out = pd.DataFrame(data)
    for col in cols:
        if col.required and out[col.name].isna().any():
            row = int(np.flatnonzero(out[col.name].isna().to_numpy())[0])
            raise AnnotationError(f"{where}: {table} row {row}: required column {col.name!r} is empty")
    for check in _CHECKS.get(table, []):
        check(out, where)
    return out


def _first_bad(mask: pd.Series) -> int | None:
    idx = np.flatnonzero(mask.fillna(False).to_numpy(dtype=bool))
    return int(idx[0]) if len(idx) else None


def _require(df: pd.DataFrame, mask: pd.Series, where: str, table: str, problem: str) -> None:
    row = _first_bad(mask)
    if row is not None:
        shown = {k: v for k, v in df.iloc[row].to_dict().items() if k not in ("keypoints", "scores")}
        raise AnnotationError(f"{where}: {table} row {row}: {problem} ({_short(shown)})")


def _short(d: Mapping[str, object]) -> str:
    parts = [f"{k}={v!r}" for k, v in d.items() if v is not None and not (isinstance(v, float) and
                                                                          math.isnan(v)) and v is not pd.NA]
    return ", ".join(parts)[:300]


def _check_attrs(df: pd.DataFrame, where: str, table: str) -> None:
    if "attrs" not in df.columns:
        return
    for i, v in enumerate(df["attrs"]):
        if v is None or v is pd.NA:
            continue
        try:
            ok = isinstance(json.loads(v), dict)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise AnnotationError(f"{where}: {table} row {i}: attrs must be a JSON object, got {v!r}")


def _check_time(df: pd.DataFrame, where: str, table: str, cols: list[str],
                lenient: pd.Series | None = None) -> None:
    for c in cols:
        _require(df, ~np.isfinite(df[c]) & df[c].notna(), where, table, f"{c} is not finite")
        negative = df[c] < 0
        _require(df, negative if lenient is None else negative & ~lenient, where, table, f"{c} is negative")


def _check_videos(df: pd.DataFrame, where: str) -> None:
    _require(df, df["video_id"].duplicated(), where, "videos", "duplicate video_id")
    _require(df, df["fps"] <= 0, where, "videos", "fps must be positive")
    _check_attrs(df, where, "videos")


def _check_segments(df: pd.DataFrame, where: str) -> None:
    _require(df, ~df["task"].isin(SEGMENT_TASKS), where, "segments", f"task must be one of {SEGMENT_TASKS}")
    lenient = lenient_rows(df)
    _check_time(df, where, "segments", ["t_start_s", "t_end_s"], lenient)
    _require(df, (df["t_end_s"] < df["t_start_s"]) & ~lenient, where, "segments",
             "reversed segment: t_end_s < t_start_s (swap the two times)")
    _require(df, df["frame_end"] < df["frame_start"], where, "segments", "frame_end < frame_start")
    _require(df, df["fps"] <= 0, where, "segments", "fps must be positive")
    _require(df, df["flag"].notna() & ~df["flag"].isin(FLAGS), where, "segments", f"flag must be one of {FLAGS}")
    _require(df, ~np.isfinite(df["score"]), where, "segments", "score is not finite")
    _check_attrs(df, where, "segments")


def _check_boxes(df: pd.DataFrame, where: str) -> None:
    _require(df, ~df["task"].isin(BOX_TASKS), where, "boxes", f"task must be one of {BOX_TASKS}")
    _check_time(df, where, "boxes", ["t_s"])
    box = df[["x1", "y1", "x2", "y2"]]
    partial = box.isna().any(axis=1) & box.notna().any(axis=1)
    _require(df, partial, where, "boxes", "a box needs all four of x1, y1, x2, y2")
    missing = box.isna().all(axis=1)
    _require(df, missing & df["flag"].isna(), where, "boxes",
             "a row without a box must be flagged 'empty' or 'excluded'")
    _require(df, df["flag"].notna() & ~df["flag"].isin(FLAGS), where, "boxes", f"flag must be one of {FLAGS}")
    outside = ((box < 0) | (box > 1)).any(axis=1)
    _require(df, outside, where, "boxes", "box coordinates must be normalised to [0, 1]")
    _require(df, ((df["x2"] < df["x1"]) | (df["y2"] < df["y1"])) & ~lenient_rows(df), where, "boxes",
             "box corners in the wrong order (need x1 <= x2 and y1 <= y2)")
    _require(df, ~np.isfinite(df["score"]), where, "boxes", "score is not finite")
    _check_attrs(df, where, "boxes")


def _check_skeletons(df: pd.DataFrame, where: str) -> None:
    _require(df, ~df["dims"].isin([2, 3]), where, "skeletons", "dims must be 2 or 3")
    n_kp = df["keypoints"].map(len)
    _require(df, (n_kp % df["dims"].astype("int64")) != 0, where, "skeletons",
             "len(keypoints) is not a multiple of dims")
    n_sc = df["scores"].map(lambda s: -1 if s is None else len(s))
    _require(df, (n_sc >= 0) & (n_sc * df["dims"].astype("int64") != n_kp), where, "skeletons",
             "len(scores) must equal the number of joints")
    _require(df, ~df["coord_space"].isin(["image_px", "image_norm", "world_m"]), where, "skeletons",
             "coord_space must be image_px, image_norm or world_m")
    _check_attrs(df, where, "skeletons")


def _check_forecasts(df: pd.DataFrame, where: str) -> None:
    _require(df, df["candidate"] < 1, where, "forecasts", "candidate is 1-based")
    _require(df, df["step"] < 1, where, "forecasts", "step is 1-based")
    _require(df, df.duplicated(["video_id", "anchor_idx", "anchor_t_s", "source", "candidate", "step"]),
             where, "forecasts", "duplicate (video_id, anchor, source, candidate, step)")
    _check_attrs(df, where, "forecasts")


def _check_labels(df: pd.DataFrame, where: str) -> None:
    _require(df, df.duplicated(["label_space", "id"]), where, "labels", "duplicate id in a label space")
    _check_attrs(df, where, "labels")


_CHECKS: dict[str, list[Callable[[pd.DataFrame, str], None]]] = {
    "videos": [_check_videos],
    "segments": [_check_segments],
    "boxes": [_check_boxes],
    "skeletons": [_check_skeletons],
    "forecasts": [_check_forecasts],
    "labels": [_check_labels],
}


def seconds_to_frame(t: pd.Series | float, fps: pd.Series | float) -> pd.Series | int:
    """Frame index of a time: ``round(t * fps)`` (half away from zero would differ only at .5)."""
    return np.round(np.asarray(t, dtype=float) * np.asarray(fps, dtype=float))


def with_frames(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Fill null frame columns from seconds and fps (frames stay null where fps is unknown)."""
    if "fps" not in df.columns:
        return df
    df = df.copy()
    pairs = {"segments": [("frame_start", "t_start_s"), ("frame_end", "t_end_s")],
             "boxes": [("frame", "t_s")]}.get(table, [])
    for fcol, tcol in pairs:
        if fcol not in df.columns:
            df[fcol] = pd.array([None] * len(df), dtype="Int64")
        need = df[fcol].isna() & df["fps"].notna()
        if need.any():
            frames = seconds_to_frame(df.loc[need, tcol], df.loc[need, "fps"])
            df.loc[need, fcol] = pd.array(frames.astype("int64"), dtype="Int64")
    return df


def dumps_attrs(d: Mapping[str, object] | None) -> str | None:
    """Serialise an attrs dict (None or empty -> null), keeping key order for lossless round trips."""
    return json.dumps(dict(d), ensure_ascii=False) if d else None


def loads_attrs(s: str | None) -> dict[str, object]:
    if s is None or s is pd.NA or (isinstance(s, float) and math.isnan(s)):
        return {}
    return json.loads(s)
