"""Detections -> ``segments`` rows (task ``localization``), and detections from a frame labelling (the baseline)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from videoact.heads.segmentation.rows import runs


def localization_rows(segments_s: np.ndarray, scores: np.ndarray, labels: np.ndarray, *, video_id: str,
                      fps: float | None, duration_s: float, classes: Sequence[str], label_space: str,
                      source: str) -> pd.DataFrame:
    """Scored detections in seconds -> rows; segments are clipped to ``[0, duration_s]`` and empty ones dropped.

    Frame columns are ``round(t * fps)`` (``schema.with_frames``), filled when the table is validated.
    """
    segs = np.clip(np.asarray(segments_s, np.float64).reshape(-1, 2), 0.0, duration_s)
    keep = segs[:, 1] > segs[:, 0]
    rows = [{"video_id": video_id, "task": "localization", "t_start_s": float(a), "t_end_s": float(b), "fps": fps,
             "label": classes[int(c)], "label_id": int(c), "label_space": label_space, "score": float(s),
             "source": source}
            for (a, b), s, c in zip(segs[keep], np.asarray(scores)[keep], np.asarray(labels)[keep], strict=True)]
    return pd.DataFrame(rows)


def detections_from_labels(frame_probs: np.ndarray, *, background: int | None,
                           labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal non-background labels as detections: segments (N, 2) in frames (end exclusive), scores
    (the mean probability of the run's label) and class ids. ``labels`` defaults to the per-frame argmax."""
    p = np.asarray(frame_probs, np.float64)
    lab = p.argmax(1) if labels is None else np.asarray(labels)
    starts, ends = runs(lab)
    out = [(a, b, float(p[a:b, lab[a]].mean()), int(lab[a])) for a, b in zip(starts, ends, strict=True)
           if background is None or lab[a] != background]
    if not out:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=np.int64)
    arr = np.asarray(out, dtype=np.float64)
    return arr[:, :2], arr[:, 2], arr[:, 3].astype(np.int64)
