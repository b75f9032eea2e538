"""Temporal action segmentation: MoF (frame accuracy), Edit and F1@{10,25,50}, as yabufarha/ms-tcn ``eval.py``.

Definitions (``../shared/specs/evaluation.md`` §5; all in percent):

* **accuracy (MoF)**: correct frames / ground-truth frames, pooled over every frame of every video,
  background included;
* **segments**: run-length segments of the frame labels with exclusive ends, segments whose label is
  in ``background`` dropped (ms-tcn: ``bg_class=["background"]``; pass e.g. ``("SIL",)`` for Breakfast);
* **edit**: per video ``(1 - Lev(pred labels, gt labels) / max(|P|, |Y|)) * 100`` over segment labels,
  averaged over videos;
* **F1@τ**: each predicted segment in temporal order takes the ground-truth segment of the same label
  with the largest IoU (intersection over the hull of the two segments, first maximum); TP if
  ``IoU >= τ`` and that segment is still free, otherwise FP, **no fallback**; tp/fp/fn summed over
  videos, then ``F1 = 2PR / (P + R)`` (0 when undefined).

Frame labels are rebuilt from the ``segmentation`` rows of each video (``frame_start``/``frame_end``;
the ``mstcn`` importer writes them); labels are compared by name (``label``), or by ``label_id`` when
a side has no names. Documented, counted treatments where ms-tcn crashes or returns NaN: a prediction
shorter than the ground truth raises (ms-tcn: IndexError), extra predicted frames are ignored and
counted (as ms-tcn); a video where both sides have only background has no edit score and is left out
of the edit mean (ms-tcn: NaN), counted; a video with predicted but no ground-truth segments scores
its predictions as FP (ms-tcn: crash). Gaps or overlaps between segments of one video, a video
without predictions and empty tables raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations.tables import Tables
from videoact.eval._common import EvalError, jsonable, levenshtein, ordered, require_rows, validated

READS = ("segments",)  # the tables this evaluator reads (and validates)
TASK = "tas"
OVERLAPS = (0.10, 0.25, 0.50)


def frame_labels(segs: pd.DataFrame, col: str, role: str) -> list[str]:
    """Per-frame labels of one video from its run-length segments (must tile 0..n without gaps)."""
    if segs[["frame_start", "frame_end"]].isna().any().any():
        raise EvalError(f"{role}: segmentation rows of {segs['video_id'].iloc[0]!r} have no frame numbers "
                        "(import them with a frame rate)")
    segs = segs.sort_values("frame_start", kind="stable")
    out: list[str] = []
    for start, end, lab in zip(segs["frame_start"], segs["frame_end"], segs[col], strict=True):
        if int(start) != len(out):
            kind = "gap" if int(start) > len(out) else "overlap"
            raise EvalError(f"{role}: segmentation of {segs['video_id'].iloc[0]!r} has a {kind} at frame "
                            f"{min(int(start), len(out))}; segments must cover every frame once")
        out += [str(lab)] * (int(end) - int(start))
    return out


def segments_of(labels: Sequence[str], background: Sequence[str]) -> tuple[list[str], list[int], list[int]]:
    """ms-tcn ``get_labels_start_end_time``: run-length segments (exclusive ends), background dropped."""
    out_l: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    bg = set(background)
    n = len(labels)
    i = 0
    while i < n:
        j = i
        while j < n and labels[j] == labels[i]:
            j += 1
        if labels[i] not in bg:
            out_l.append(labels[i])
            starts.append(i)
            ends.append(j)
        i = j
    return out_l, starts, ends


def edit_score(pred: Sequence[str], gt: Sequence[str], background: Sequence[str]) -> float:
    """Segmental edit score in percent; NaN when both have no non-background segment."""
    p, _, _ = segments_of(pred, background)
    y, _, _ = segments_of(gt, background)
    if not p and not y:
        return float("nan")
    return (1.0 - levenshtein(p, y) / max(len(p), len(y))) * 100.0


def f1_counts(pred: Sequence[str], gt: Sequence[str], overlap: float,
              background: Sequence[str]) -> tuple[int, int, int]:
    """ms-tcn ``f_score``: (tp, fp, fn) of one video at IoU ``overlap``."""
    pl, ps, pe = segments_of(pred, background)
    yl, ys, ye = segments_of(gt, background)
    ys_a, ye_a = np.asarray(ys, dtype=float), np.asarray(ye, dtype=float)
    yl_a = np.asarray(yl, dtype=object)
    hits = np.zeros(len(yl), dtype=bool)
    tp = fp = 0
    for lab, s, e in zip(pl, ps, pe, strict=True):
        if not len(yl):
            fp += 1
            continue
        inter = np.minimum(e, ye_a) - np.maximum(s, ys_a)
        hull = np.maximum(e, ye_a) - np.minimum(s, ys_a)
        iou = inter / hull * (yl_a == lab)
        idx = int(np.argmax(iou))
        if iou[idx] >= overlap and not hits[idx]:
            tp += 1
            hits[idx] = True
        else:
            fp += 1
    return tp, fp, len(yl) - int(hits.sum())


def _col(gt: pd.DataFrame, pred: pd.DataFrame) -> str:
    for col in ("label", "label_id"):
        if gt[col].notna().all() and pred[col].notna().all():
            return col
    raise EvalError("cannot match classes: segmentation rows need 'label' (or 'label_id') on both sides")


def evaluate_segmentation(
    gt: Tables,
    pred: Tables,
    *,
    background: Sequence[str] = ("background",),
    overlaps: Sequence[float] = OVERLAPS,
) -> dict[str, Any]:
    """MoF, Edit and F1@overlaps of frame-wise segmentations (``segments`` with ``task="segmentation"``).

    Args:
        gt: ground-truth segmentation (run-length rows per video).
        pred: predicted segmentation of the same videos.
        background: labels whose segments are ignored by Edit and F1 (not by accuracy).
        overlaps: IoU thresholds of F1 (0.10, 0.25, 0.50 as ms-tcn).

    Returns:
        ``{"task", "accuracy", "edit", "F1@10", "F1@25", "F1@50", "per_video", "counts"}`` (percent).
    """
    gt, pred = validated(gt, "ground truth", READS), validated(pred, "predictions", READS)
    gs = ordered(gt.segments[gt.segments["task"] == "segmentation"])
    ps = ordered(pred.segments[pred.segments["task"] == "segmentation"])
    require_rows(gs, "ground truth", "segmentation")
    require_rows(ps, "predictions", "segmentation")
    col = _col(gs, ps)
    bg = [str(b) for b in background]
    pred_by = {str(v): g for v, g in ps.groupby("video_id", sort=False)}
    counts = {"videos": 0, "frames": 0, "extra_pred_frames": 0, "videos_without_edit": 0,
              "pred_videos_not_in_gt": len(set(pred_by) - set(gs["video_id"]))}
    correct = 0
    edits: list[float] = []
    tp = np.zeros(len(overlaps))
    fp = np.zeros(len(overlaps))
    fn = np.zeros(len(overlaps))
    per_video: dict[str, dict[str, float]] = {}
    for vid, g in gs.groupby("video_id", sort=False):
        vid = str(vid)
        if vid not in pred_by:
            raise EvalError(f"predictions: no segmentation for video {vid!r}")
        y = frame_labels(g, col, "ground truth")
        p = frame_labels(pred_by[vid], col, "predictions")
        if len(p) < len(y):
            raise EvalError(f"predictions: segmentation of {vid!r} has {len(p)} frames, the ground truth {len(y)}")
        counts["extra_pred_frames"] += len(p) - len(y)
        p = p[: len(y)]
        counts["videos"] += 1
        counts["frames"] += len(y)
        ok = int(sum(a == b for a, b in zip(p, y, strict=True)))
        correct += ok
        e = edit_score(p, y, bg)
        if np.isnan(e):
            counts["videos_without_edit"] += 1
        else:
            edits.append(e)
        for s, ov in enumerate(overlaps):
            a, b, c = f1_counts(p, y, ov, bg)
            tp[s] += a
            fp[s] += b
            fn[s] += c
        per_video[vid] = {"accuracy": 100.0 * ok / len(y) if y else float("nan"), "edit": e}
    result: dict[str, Any] = {
        "task": TASK,
        "accuracy": 100.0 * correct / counts["frames"] if counts["frames"] else float("nan"),
        "edit": float(np.mean(edits)) if edits else float("nan"),
    }
    for s, ov in enumerate(overlaps):
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = tp[s] / (tp[s] + fp[s])
            recall = tp[s] / (tp[s] + fn[s])
            f1 = 2.0 * precision * recall / (precision + recall)
        result[f"F1@{round(ov * 100):d}"] = float(np.nan_to_num(f1) * 100)
    result["background"] = bg
    result["per_video"] = per_video
    result["counts"] = counts
    return jsonable(result)
