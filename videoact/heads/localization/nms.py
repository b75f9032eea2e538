"""Soft-NMS for 1D segments (Bodla et al., "Soft-NMS", ICCV 2017), per class, as ActionFormer's post-processing.

Greedy: take the highest-scoring segment, then decay every remaining segment's score by its tIoU with it; the
Gaussian rule multiplies by ``exp(-tIoU**2 / sigma)`` (mmcv / ActionFormer ``nms_1d_cpu.softnms`` method 2),
the linear rule by ``1 - tIoU`` above ``iou_threshold``, and hard NMS drops it above ``iou_threshold``.
Segments whose score falls below ``min_score`` are dropped. Unlike hard NMS, an overlapping second instance
survives with a lower score, which helps mAP at low tIoU thresholds and when actions repeat back to back.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Method = Literal["gaussian", "linear", "hard"]


def tiou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 2) x (M, 2) segments -> (N, M) tIoU (``inter / union``; 0 when the union is empty)."""
    a = np.asarray(a, np.float64).reshape(-1, 2)
    b = np.asarray(b, np.float64).reshape(-1, 2)
    inter = (np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0])).clip(0)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def soft_nms(segments: np.ndarray, scores: np.ndarray, *, method: Method = "gaussian", sigma: float = 0.5,
             iou_threshold: float = 0.5, min_score: float = 1e-3,
             max_segments: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS of one class.  segments (N, 2), scores (N,) -> kept segments (K, 2) and decayed scores (K,),
    in the order they were picked (descending decayed score); ``max_segments > 0`` keeps the first ones."""
    segs = np.asarray(segments, np.float64).reshape(-1, 2).copy()
    sc = np.asarray(scores, np.float64).reshape(-1).copy()
    if len(segs) != len(sc):
        raise ValueError(f"{len(segs)} segments but {len(sc)} scores")
    out_s, out_c = [], []
    alive = np.flatnonzero(sc >= min_score)
    while len(alive):
        best = alive[np.argmax(sc[alive])]
        out_s.append(segs[best])
        out_c.append(sc[best])
        if max_segments and len(out_s) >= max_segments:
            break
        alive = alive[alive != best]
        if not len(alive):
            break
        iou = tiou_matrix(segs[best][None], segs[alive])[0]
        if method == "gaussian":
            sc[alive] *= np.exp(-(iou * iou) / sigma)
        elif method == "linear":
            sc[alive] *= np.where(iou > iou_threshold, 1.0 - iou, 1.0)
        elif method == "hard":
            sc[alive] = np.where(iou > iou_threshold, 0.0, sc[alive])
        else:
            raise ValueError(f"soft-NMS method must be gaussian, linear or hard, got {method!r}")
        alive = alive[sc[alive] >= min_score]
    return np.asarray(out_s, np.float64).reshape(-1, 2), np.asarray(out_c, np.float64)


def batched_soft_nms(segments: np.ndarray, scores: np.ndarray, labels: np.ndarray, *, method: Method = "gaussian",
                     sigma: float = 0.5, iou_threshold: float = 0.5, min_score: float = 1e-3,
                     max_segments: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft-NMS within each class, then the ``max_segments`` best over all classes (descending score)."""
    labels = np.asarray(labels).reshape(-1)
    keep_s, keep_c, keep_l = [], [], []
    for c in np.unique(labels):
        sel = labels == c
        s, sc = soft_nms(segments[sel], scores[sel], method=method, sigma=sigma, iou_threshold=iou_threshold,
                         min_score=min_score, max_segments=max_segments)
        keep_s.append(s)
        keep_c.append(sc)
        keep_l.append(np.full(len(sc), c, dtype=labels.dtype))
    if not keep_s:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=labels.dtype)
    s, sc, lab = np.concatenate(keep_s), np.concatenate(keep_c), np.concatenate(keep_l)
    order = np.argsort(-sc, kind="stable")
    if max_segments:
        order = order[:max_segments]
    return s[order], sc[order], lab[order]
