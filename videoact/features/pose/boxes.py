"""Person boxes from poses: the ``proposal`` rows of the ``boxes`` table that the AVA detection head classifies.

Why from keypoints: BlazePose exposes no person box, and a box around the visible joints (plus a margin
for the head top, hands and feet that joints do not reach) is a usable proposal. A detector box
(``PersonPose.box``, RTMPose) is used as is when the backend has one.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations import schema
from videoact.features.pose.base import PoseTrack, person_ids


def boxes_from_keypoints(keypoints: np.ndarray, scores: np.ndarray, *, image_size: tuple[int, int],
                         min_score: float = 0.3, margin: float = 0.1,
                         min_joints: int = 3) -> tuple[float, float, float, float] | None:
    """``(x1, y1, x2, y2)`` in [0, 1] around the joints scored ``>= min_score``, or None.

    The box of those joints grows by ``margin`` times its width / height on every side, then is clipped to
    the image. None when fewer than ``min_joints`` joints are visible or the box lies outside the image.

    Args:
        keypoints: ``(V, 2)`` image pixels.
        scores: ``(V,)`` joint confidences.
        image_size: ``(W, H)`` of the image the pixels refer to.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(sc) != len(kp):
        raise ValueError(f"{len(kp)} keypoints but {len(sc)} scores")
    visible = np.isfinite(kp).all(1) & (sc >= min_score)
    if visible.sum() < max(min_joints, 1):
        return None
    (x1, y1), (x2, y2) = kp[visible].min(0), kp[visible].max(0)
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    w, h = image_size
    box = np.clip([(x1 - dx) / w, (y1 - dy) / h, (x2 + dx) / w, (y2 + dy) / h], 0.0, 1.0)
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def person_boxes(track: PoseTrack, video_id: str, *, source: str | None = None, min_score: float = 0.3,
                 margin: float = 0.1, min_joints: int = 3) -> pd.DataFrame:
    """``boxes`` rows (task ``proposal``), one per person and processed frame with a usable box.

    ``actor_id`` is the person id, ``score`` the mean score of the visible joints, ``attrs.box_from`` says
    ``keypoints`` or ``detector``. Frames without a person write no row. ``source`` defaults to the backend.
    """
    if track.image_size is None:
        raise ValueError(f"{track}: no image size known, so boxes cannot be normalised")
    if np.isnan(track.t_s).any():
        raise ValueError(f"{track}: boxes rows need frame times; give the precomputed poses an fps")
    w, h = track.image_size
    rows: list[dict[str, Any]] = []
    for f in track.frames:
        for pid, p in zip(person_ids(f.persons), f.persons, strict=True):
            visible = np.isfinite(p.keypoints).all(1) & (p.scores >= min_score)
            if p.box is not None:
                x1, y1, x2, y2 = np.clip(np.asarray(p.box, np.float64) / [w, h, w, h], 0.0, 1.0)
                box, origin = (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None, "detector"
            else:
                box = boxes_from_keypoints(p.keypoints, p.scores, image_size=(w, h), min_score=min_score,
                                           margin=margin, min_joints=min_joints)
                origin = "keypoints"
            if box is None:
                continue
            rows.append({"video_id": video_id, "task": "proposal", "t_s": f.t_s, "fps": track.fps, "frame": f.frame,
                         "actor_id": pid, "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3],
                         "score": float(p.scores[visible].mean()) if visible.any() else 0.0,
                         "source": source or track.backend, "attrs": json.dumps({"box_from": origin})})
    df = pd.DataFrame(rows) if rows else schema.empty("boxes")
    return schema.validate("boxes", df, where=f"person_boxes({video_id!r})")
