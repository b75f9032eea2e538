"""Person boxes per keyframe, from wherever they come: pose keypoints, a proposals file, or a detector.

* **pose**: the ``boxes`` rows with task ``proposal`` that the pose stage writes (``features.pose.person_boxes``:
  one box per person and frame where a pose was found);
* **a file**: an mmaction2 proposals pickle ``{"vid,0902": (N, 5)}`` or an AVA-layout csv (SlowFast's
  predicted boxes ``vid,ts,x1,y1,x2,y2,,score``, or a ground-truth csv for oracle boxes), read by the
  importers of ``annotations.formats.ava``; timestamps must be seconds of the video file;
* **a detector**: any callable ``detect(frame (H, W, 3) uint8) -> (boxes (n, 4) normalised, scores (n,))``
  (``PersonDetector``), run on the keyframe itself.

Boxes are normalised ``x1, y1, x2, y2`` in [0, 1]. A keyframe takes the boxes of the nearest time that has
boxes, if it lies within ``max_gap_s`` (pose boxes exist only on frames where a pose was found).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from videoact.annotations import schema
from videoact.annotations.formats import import_annotations
from videoact.annotations.formats._common import FormatError

_BOX = ["x1", "y1", "x2", "y2"]


@runtime_checkable
class PersonDetector(Protocol):
    """A person detector: one RGB frame in, normalised boxes ``(n, 4)`` and their scores ``(n,)`` out."""

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class KeyframeBoxes:
    """The person boxes the head classifies at one keyframe."""

    t_s: float  # keyframe time (seconds of the video, or the annotation's timestamp)
    boxes: np.ndarray  # (n, 4) float32, normalised x1, y1, x2, y2
    scores: np.ndarray  # (n,) float32 person scores
    actor_ids: np.ndarray  # (n,) int64

    def __len__(self) -> int:
        return len(self.boxes)


def read_proposals(path: str | Path) -> pd.DataFrame:
    """``boxes`` rows (task ``proposal``) of a proposals pickle (``.pkl``) or an AVA-layout csv (``.csv``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: person boxes file not found (give an mmaction2 proposals .pkl or an AVA "
                                "csv, or use the pose stage's boxes)")
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle"):
        df = import_annotations("ava-proposals", path).boxes
    elif suffix == ".csv":
        df = import_annotations("ava", path).boxes.assign(task="proposal", label=None, label_id=None,
                                                          label_space=None)
        df = df.drop_duplicates(["video_id", "t_s", "flag", *_BOX, "actor_id"])  # one row per box, not per action
    else:
        raise FormatError(path, None, "person boxes must be an mmaction2 proposals pickle (.pkl) or an AVA csv (.csv)")
    return schema.validate("boxes", df.reset_index(drop=True), where=str(path))


def keyframe_boxes(proposals: pd.DataFrame, keyframes_s: Sequence[float], *, max_gap_s: float,
                   min_score: float = 0.0) -> list[KeyframeBoxes]:
    """For each keyframe, the boxes of the nearest time within ``max_gap_s`` (none when there is no such time).

    Rows without a box (flagged keyframes) count as times with no boxes; boxes scored below ``min_score`` are
    dropped; an exact duplicate box at one time is kept once.
    """
    df = proposals[proposals["x1"].notna()] if len(proposals) else proposals
    times = np.unique(np.asarray(proposals["t_s"], dtype=np.float64)) if len(proposals) else np.zeros(0)
    out = []
    for t in keyframes_s:
        rows = df.iloc[:0]
        if len(times):
            j = int(np.argmin(np.abs(times - t)))
            if abs(times[j] - t) <= max_gap_s + 1e-9:
                rows = df[np.isclose(df["t_s"].to_numpy(dtype=np.float64), times[j], rtol=0, atol=1e-9)]
                rows = rows[rows["score"] >= min_score].drop_duplicates(_BOX)
        ids = rows["actor_id"]
        actor = np.where(ids.isna().to_numpy(), np.arange(len(rows)), ids.fillna(-1).to_numpy(dtype=np.int64))
        out.append(KeyframeBoxes(t_s=float(t), boxes=rows[_BOX].to_numpy(dtype=np.float32).reshape(-1, 4),
                                 scores=rows["score"].to_numpy(dtype=np.float32),
                                 actor_ids=np.asarray(actor, dtype=np.int64)))
    return out


def detect_people(detector: PersonDetector, frames: Sequence[np.ndarray], keyframes_s: Sequence[float], *,
                  min_score: float = 0.0) -> list[KeyframeBoxes]:
    """Run ``detector`` on each keyframe's frame ``(H, W, 3)`` uint8; boxes are checked to be normalised."""
    out = []
    for frame, t in zip(frames, keyframes_s, strict=True):
        boxes, scores = detector(np.asarray(frame))
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"person detector returned {len(boxes)} boxes but {len(scores)} scores")
        if len(boxes) and ((boxes < 0).any() or (boxes > 1).any()):
            raise ValueError("person detector boxes must be normalised to [0, 1] (divide pixels by width, height)")
        keep = (scores >= min_score) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        out.append(KeyframeBoxes(t_s=float(t), boxes=boxes[keep], scores=scores[keep],
                                 actor_ids=np.arange(int(keep.sum()), dtype=np.int64)))
    return out
