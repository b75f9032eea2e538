"""Frame-wise labels -> ``segments`` rows (task ``segmentation``), and the per-frame window-vote baseline.

A segmentation is written as one row per run of equal labels over the whole video (background runs included),
``frame_start`` / ``frame_end`` exclusive, so the rows tile frames ``0 .. n-1`` exactly as
``videoact eval tas`` expects; ``score`` is the mean probability of the run's label over its frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and exclusive end of every run of equal values in ``labels`` (non-empty)."""
    labels = np.asarray(labels)
    cut = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    return np.concatenate([[0], cut]), np.concatenate([cut, [len(labels)]])


def segmentation_rows(probs: np.ndarray, *, video_id: str, fps: float, classes: Sequence[str], label_space: str,
                      source: str, labels: np.ndarray | None = None) -> pd.DataFrame:
    """``(n_frames, K)`` per-frame class probabilities -> one ``segmentation`` row per run of the argmax label.

    ``labels`` overrides the argmax (e.g. a decoded or smoothed labelling); scores stay the mean probability of
    each run's label.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or not len(probs):
        raise ValueError(f"{video_id}: probabilities must be (n_frames > 0, K), got shape {probs.shape}")
    lab = probs.argmax(1) if labels is None else np.asarray(labels, dtype=np.int64)
    if lab.shape != (len(probs),):
        raise ValueError(f"{video_id}: {len(lab)} labels for {len(probs)} frames")
    starts, ends = runs(lab)
    rows = []
    for a, b in zip(starts, ends, strict=True):
        c = int(lab[a])
        rows.append({"video_id": video_id, "task": "segmentation", "t_start_s": a / fps, "t_end_s": b / fps,
                     "fps": float(fps), "frame_start": int(a), "frame_end": int(b), "label": classes[c],
                     "label_id": c, "label_space": label_space, "score": float(probs[a:b, c].mean()),
                     "source": source})
    return pd.DataFrame(rows)


def ground_truth_rows(frame_labels: np.ndarray, *, video_id: str, fps: float, classes: Sequence[str],
                      label_space: str) -> pd.DataFrame:
    """Ground-truth segmentation rows (score 1) of per-frame class ids."""
    one_hot = np.eye(len(classes))[np.asarray(frame_labels, dtype=np.int64)]
    return segmentation_rows(one_hot, video_id=video_id, fps=fps, classes=classes, label_space=label_space,
                             source=f"ground_truth:{label_space}")


def window_votes(window_probs: np.ndarray, *, span: int) -> np.ndarray:
    """Per-step vote of sliding windows: the mean probability of the ``span`` windows centred around each step.

    ``window_probs`` (S, K) holds the classifier output of the window centred on each step (one window per
    step, ``span`` steps long: steps ``[i - span//2, i - span//2 + span)``); step ``j`` is covered by the windows
    ``i`` in ``[j - span + span//2 + 1, j + span//2]`` (fewer at the ends).
    """
    p = np.asarray(window_probs, dtype=np.float64)
    span, half = max(1, int(span)), max(1, int(span)) // 2
    csum = np.concatenate([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])
    idx = np.arange(len(p))
    lo, hi = np.clip(idx - span + half + 1, 0, len(p)), np.clip(idx + half + 1, 0, len(p))
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]
