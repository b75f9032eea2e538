"""Temporal action detection (localization): mAP at tIoU thresholds over the ``segments`` table.

Named variants (``../shared/specs/evaluation.md`` §4):

``activitynet`` (default) -- activitynet/ActivityNet ``Evaluation/eval_detection.py``
    (``compute_average_precision_detection``, ``segment_iou``, ``utils.interpolated_prec_rec``): per
    class, predictions ranked by ``score.argsort()[::-1]`` (numpy's default sort, in file order);
    a prediction on a video without ground truth of its class is an FP; otherwise the ground truths
    are visited in descending tIoU (``inter / (len_p + len_g - inter)``, float64): below the threshold
    -> FP, already taken -> **try the next best**, else TP. AP = VOC all-point; mAP = mean over the
    ground-truth classes (a class without predictions counts 0); ``average_mAP`` = mean over the
    thresholds, ``np.linspace(0.5, 0.95, 10)`` by default. ``tiou_thresholds="thumos14"`` gives the
    common THUMOS14 practice (ActionFormer ``libs/utils/metrics.py``: ``np.linspace(0.3, 0.7, 5)``).

``mmaction2`` -- open-mmlab/mmaction2 ``mmaction/evaluation/functional/eval_detection.py``
    (``ActivityNetLocalization``): the same matching, but tIoU stored as **float32**
    (``accuracy.pairwise_temporal_iou``), so a tIoU just below a threshold can round up to it, and
    predictions ranked with Python's **stable** sort, so tied scores keep file order (the official
    argsort reverses them).

``thumos14_evalkit`` -- the THUMOS14 MATLAB evalkit (``TH14evalkit/TH14eventdetpr.m``,
    ``intervaloverlapvalseconds.m``): per video and class, detections sorted by confidence; **for
    each ground truth in file order** the free detection with the largest overlap (intersection over
    the hull of the two intervals) is taken when the overlap is **strictly greater** than the
    threshold; free detections that overlap any ``Ambiguous`` segment (rows with
    ``flag="ambiguous"``) are removed instead of counted as FP; AP = **11-point** interpolated;
    thresholds 0.1:0.1:0.5 by default.

Documented deviation shared by all variants: a tIoU of ``0 / 0`` (a zero-length prediction on a
zero-length ground truth) is 0, where the reference's NaN would sort first and count as a TP; the
number of zero-length segments is reported in ``counts``. The official script also keeps only
``subset == "validation"`` ground truth and drops "blocked" videos fetched from the network: pass
``subset="validation"`` for the first (``videos.split`` holds the subset); the second needs the
network and is not done.

Rows kept as the official tools read them (``flag="lenient"``: reversed ends, negative times, as the
``thumos14`` importers keep them; counted in ``counts["gt_lenient_rows"]`` / ``["pred_lenient_rows"]``)
are scored with their raw values: ``thumos14_evalkit`` orders each interval's ends (min/max, as
``intervaloverlapvalseconds.m``), ``activitynet`` / ``mmaction2`` apply their ``segment_iou`` formula to
the raw ends (a reversed prediction has a clipped-to-zero intersection, so it is an FP; a reversed
ground-truth segment is never matched). Results rows whose class id is not in the class list
(``attrs["lenient"]`` holds ``"unknown_class_id"``) are dropped, as the evalkit skips them, and
counted in ``counts["pred_rows_unknown_class_id"]``.

The evalkit's thresholds ``.1:.1:.5`` and its 11-point recall grid ``0:0.1:1`` are MATLAB colon ranges,
built with ``matlab_colon`` (the grid holds exactly 0.6 and 0.7, unlike ``np.arange``). As in
``TH14eventdetpr.m``, all true positives are concatenated before all false positives and then sorted
stably by confidence, so a TP ranks before an FP of equal confidence.

Bad input: predictions of classes the ground truth does not have raise (the reference raises a
``KeyError``) unless ``unknown_labels="drop"`` (dropped and counted); exact duplicate rows raise unless
``duplicates="drop" | "keep"``; empty tables raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations.schema import LENIENT, lenient_rows
from videoact.annotations.tables import Tables
from videoact.eval._common import (
    EvalError,
    class_column,
    eleven_point_ap,
    handle_duplicates,
    interval_iou,
    jsonable,
    matlab_colon,
    ordered,
    pick_variant,
    require_rows,
    thr_key,
    validated,
    voc_ap,
)

READS = ("videos", "segments")  # the tables this evaluator reads (and validates)
TASK = "tad"
THRESHOLD_PRESETS: dict[str, np.ndarray] = {
    "activitynet": np.linspace(0.5, 0.95, 10),
    "thumos14": np.linspace(0.3, 0.7, 5),
    "thumos14_evalkit": matlab_colon(0.1, 0.1, 0.5),  # TH14evaldet.m overlapthreshall=.1:.1:.5
}
VARIANTS: dict[str, dict[str, Any]] = {
    "activitynet": {"thresholds": "activitynet", "iou_dtype": np.float64, "stable": False,
                    "ref": "activitynet/ActivityNet Evaluation/eval_detection.py"},
    "mmaction2": {"thresholds": "activitynet", "iou_dtype": np.float32, "stable": True,
                  "ref": "open-mmlab/mmaction2 mmaction/evaluation/functional/eval_detection.py"},
    "thumos14_evalkit": {"thresholds": "thumos14_evalkit",
                         "ref": "THUMOS14 evalkit TH14evalkit/TH14eventdetpr.m"},
}


def resolve_thresholds(spec: str | Sequence[float] | np.ndarray | None, variant: str) -> np.ndarray:
    """Thresholds from a preset name, a list, or the variant's default."""
    if spec is None:
        spec = VARIANTS[variant]["thresholds"]
    if isinstance(spec, str):
        if spec not in THRESHOLD_PRESETS:
            raise EvalError(f"unknown tIoU threshold preset {spec!r}; use one of {', '.join(THRESHOLD_PRESETS)} "
                            "or a list of numbers")
        return THRESHOLD_PRESETS[spec]
    arr = np.asarray(list(spec), dtype=np.float64)
    if not arr.size or ((arr < 0) | (arr > 1)).any():
        raise EvalError(f"tIoU thresholds must be numbers in [0, 1], got {list(spec)}")
    return arr



def _activitynet_class(gt_c: pd.DataFrame, pred_c: pd.DataFrame, thresholds: np.ndarray, iou_dtype: type,
                       stable: bool) -> np.ndarray:
    """AP per threshold of one class (``compute_average_precision_detection``)."""
    ap = np.zeros(len(thresholds))
    if not len(pred_c):
        return ap
    scores = pred_c["score"].to_numpy(dtype=np.float64)
    order = np.argsort(-scores, kind="stable") if stable else scores.argsort()[::-1]
    by_video: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for vid, g in gt_c.groupby("video_id", sort=False):
        by_video[str(vid)] = (g[["t_start_s", "t_end_s"]].to_numpy(np.float64), g["_gidx"].to_numpy())
    lock = np.full((len(thresholds), len(gt_c)), -1)
    tp = np.zeros((len(thresholds), len(pred_c)))
    fp = np.zeros((len(thresholds), len(pred_c)))
    vids = pred_c["video_id"].to_numpy()
    segs = pred_c[["t_start_s", "t_end_s"]].to_numpy(np.float64)
    for idx, p in enumerate(order):
        if vids[p] not in by_video:
            fp[:, idx] = 1
            continue
        g_segs, g_idx = by_video[vids[p]]
        tiou = interval_iou(segs[p], g_segs, dtype=iou_dtype)
        sorted_j = tiou.argsort()[::-1]
        for t, thr in enumerate(thresholds):
            for j in sorted_j:
                if tiou[j] < thr:
                    fp[t, idx] = 1
                    break
                if lock[t, g_idx[j]] >= 0:
                    continue
                tp[t, idx] = 1
                lock[t, g_idx[j]] = idx
                break
            if fp[t, idx] == 0 and tp[t, idx] == 0:
                fp[t, idx] = 1
    ctp = np.cumsum(tp, axis=1)
    cfp = np.cumsum(fp, axis=1)
    rec = ctp / float(len(gt_c))
    prec = ctp / (ctp + cfp)
    return np.array([voc_ap(prec[t], rec[t]) for t in range(len(thresholds))])


def hull_overlap(a: Sequence[float] | np.ndarray, others: np.ndarray) -> np.ndarray:
    """``intervalsingleoverlapvalseconds`` of one interval with each row of ``others``.

    Intersection / hull span when the intersection is positive, else 0; interval ends are reordered
    with min/max first, as the MATLAB code does.
    """
    others = np.asarray(others, dtype=np.float64).reshape(-1, 2)
    a0, a1 = min(a[0], a[1]), max(a[0], a[1])
    b0, b1 = others.min(axis=1), others.max(axis=1)
    iw = np.minimum(a1, b1) - np.maximum(a0, b0)
    hull = np.maximum(a1, b1) - np.minimum(a0, b0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(iw > 0, iw / np.where(hull > 0, hull, 1.0), 0.0)


def _evalkit_class(gt_c: pd.DataFrame, pred_c: pd.DataFrame, amb: pd.DataFrame, thresholds: np.ndarray,
                   counts: dict[str, int]) -> np.ndarray:
    """AP per threshold of one class (``TH14eventdetpr.m``)."""
    ap = np.zeros(len(thresholds))
    if not len(pred_c):
        return ap
    videos = sorted(set(gt_c["video_id"]) | set(pred_c["video_id"]))
    empty = np.zeros((0, 2))
    gt_by = {str(v): g[["t_start_s", "t_end_s"]].to_numpy(np.float64) for v, g in gt_c.groupby("video_id")}
    amb_by = {str(v): g[["t_start_s", "t_end_s"]].to_numpy(np.float64) for v, g in amb.groupby("video_id")}
    det_by: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for v, d in pred_c.groupby("video_id"):
        d = d.iloc[np.argsort(-d["score"].to_numpy(np.float64), kind="stable")]  # MATLAB sort 'descend'
        segs = d[["t_start_s", "t_end_s"]].to_numpy(np.float64)
        a = amb_by.get(str(v), empty)
        in_amb = np.array([bool(len(a)) and bool((hull_overlap(s, a) > 0).any()) for s in segs], dtype=bool)
        det_by[str(v)] = (segs, d["score"].to_numpy(np.float64), in_amb)
    for t, thr in enumerate(thresholds):
        tp_confs: list[np.ndarray] = []
        fp_confs: list[np.ndarray] = []
        for vid in videos:
            if vid not in det_by:
                continue
            d_segs, d_conf, in_amb = det_by[vid]
            free = np.ones(len(d_segs), dtype=bool)
            for gs in gt_by.get(vid, empty):
                cand = np.flatnonzero(free)
                if not len(cand):
                    break
                ov = hull_overlap(gs, d_segs[cand])
                best = int(np.argmax(ov))
                if ov[best] > thr:
                    free[cand[best]] = False
            if t == 0:
                counts["pred_removed_ambiguous_at_first_threshold"] = (
                    counts.get("pred_removed_ambiguous_at_first_threshold", 0) + int((free & in_amb).sum()))
            tp_confs.append(d_conf[~free])
            fp_confs.append(d_conf[free & ~in_amb])
        # conf = [tpconf fpconf]: every TP (video by video) before every FP, then a stable sort, so a TP
        # ranks before an FP of the same confidence whatever their videos
        conf = np.concatenate([*tp_confs, *fp_confs])
        n_tp = sum(len(c) for c in tp_confs)
        order = np.argsort(-conf, kind="stable")
        tp = (np.arange(len(conf)) < n_tp).astype(float)[order]
        ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
        if not ctp.size or ctp[-1] == 0:
            continue  # no TP: AP 0
        rec = ctp / float(len(gt_c))
        prec = ctp / (ctp + cfp)
        ap[t] = eleven_point_ap(prec, rec)
    return ap


def evaluate_detection(
    gt: Tables,
    pred: Tables,
    *,
    variant: str = "activitynet",
    tiou_thresholds: str | Sequence[float] | None = None,
    subset: str | None = None,
    unknown_labels: str = "error",
    duplicates: str = "error",
) -> dict[str, Any]:
    """mAP of temporal detections (``segments`` with ``task="localization"``) at each tIoU threshold.

    Args:
        gt: ground-truth segments (THUMOS14 ``Ambiguous`` rows flagged ``ambiguous``).
        pred: predicted segments with scores.
        variant: ``"activitynet"``, ``"mmaction2"`` or ``"thumos14_evalkit"`` (module docstring).
        tiou_thresholds: a preset (``"activitynet"`` 0.5:0.05:0.95, ``"thumos14"`` 0.3:0.1:0.7,
            ``"thumos14_evalkit"`` 0.1:0.1:0.5) or a list; default: the variant's.
        subset: keep only ground truth of videos whose ``videos.split`` is this (official: validation).
        unknown_labels: predictions of classes absent from the ground truth: ``"error"`` or ``"drop"``.
        duplicates: exact duplicate rows: ``"error"``, ``"drop"`` or ``"keep"``.

    Returns:
        ``{"task", "variant", "tiou_thresholds", "mAP": {"0.5": ...}, "average_mAP", "per_class_AP":
        {class: {"0.5": ...}}, "counts"}``.
    """
    spec = pick_variant(VARIANTS, variant, TASK)
    thresholds = resolve_thresholds(tiou_thresholds, variant)
    gt, pred = validated(gt, "ground truth", READS), validated(pred, "predictions", READS)
    gs = ordered(gt.segments[gt.segments["task"] == "localization"])
    ps = ordered(pred.segments[pred.segments["task"] == "localization"])
    counts: dict[str, int] = {}
    if subset is not None:
        vids = set(gt.videos.loc[gt.videos["split"] == subset, "video_id"])
        counts["gt_rows_outside_subset"] = int((~gs["video_id"].isin(list(vids))).sum())
        gs = gs[gs["video_id"].isin(list(vids))].reset_index(drop=True)
    amb = gs[gs["flag"] == "ambiguous"]
    counts["gt_lenient_rows"] = int(lenient_rows(gs).sum())
    counts["pred_lenient_rows"] = int(lenient_rows(ps).sum())
    gs = gs[gs["flag"].isna() | (gs["flag"] == LENIENT)].reset_index(drop=True)
    ps = ps[ps["flag"].isna() | (ps["flag"] == LENIENT)].reset_index(drop=True)
    # results rows whose class id the class list lacks: the evalkit skips them (with a warning)
    skipped = ps["attrs"].astype("string").str.contains('"unknown_class_id"', regex=False).fillna(False)
    counts["pred_rows_unknown_class_id"] = int(skipped.astype(bool).sum())
    ps = ps[~skipped.astype(bool).to_numpy()].reset_index(drop=True)
    require_rows(gs, "ground truth", "temporal detection (task='localization')")
    require_rows(ps, "predictions", "temporal detection (task='localization')")
    col = class_column(gs, ps, ("label", "label_id"),
                       "import THUMOS14 results with the class list, --label-map")
    seg_cols = ["video_id", "t_start_s", "t_end_s", col]
    gs = handle_duplicates(gs, seg_cols, duplicates, "gt", counts, "ground-truth segment")
    ps = handle_duplicates(ps, [*seg_cols, "score"], duplicates, "pred", counts, "predicted segment")
    classes = list(dict.fromkeys(gs[col]))
    unknown = ~ps[col].isin(classes)
    counts["pred_rows_unknown_class"] = int(unknown.sum())
    if unknown.any():
        if unknown_labels == "error":
            bad = sorted({str(x) for x in ps.loc[unknown, col]})[:5]
            raise EvalError(f"predictions: {int(unknown.sum())} row(s) of class(es) not in the ground truth, e.g. "
                            f"{bad}; fix the label names/ids or pass unknown_labels='drop'")
        if unknown_labels != "drop":
            raise EvalError(f"unknown_labels must be 'error' or 'drop', got {unknown_labels!r}")
        ps = ps[~unknown].reset_index(drop=True)
    counts["gt_segments"], counts["pred_segments"] = len(gs), len(ps)
    counts["gt_ambiguous_segments"] = len(amb)
    counts["gt_zero_length"] = int((gs["t_end_s"] == gs["t_start_s"]).sum())
    counts["pred_zero_length"] = int((ps["t_end_s"] == ps["t_start_s"]).sum())
    counts["pred_on_videos_without_gt"] = int((~ps["video_id"].isin(set(gs["video_id"]))).sum())

    per_class: dict[str, np.ndarray] = {}
    for c in classes:
        gt_c = gs[gs[col] == c].reset_index(drop=True)
        gt_c = gt_c.assign(_gidx=np.arange(len(gt_c)))
        pred_c = ps[ps[col] == c].reset_index(drop=True)
        if variant == "thumos14_evalkit":
            per_class[str(c)] = _evalkit_class(gt_c, pred_c, amb, thresholds, counts)
        else:
            per_class[str(c)] = _activitynet_class(gt_c, pred_c, thresholds, spec["iou_dtype"], spec["stable"])
    ap = np.stack(list(per_class.values()), axis=1)  # thresholds x classes
    m_ap = ap.mean(axis=1)
    result = {
        "task": TASK,
        "variant": variant,
        "tiou_thresholds": [float(t) for t in thresholds],
        "mAP": {thr_key(t): float(v) for t, v in zip(thresholds, m_ap, strict=True)},
        "average_mAP": float(m_ap.mean()),
        "per_class_AP": {c: {thr_key(t): float(v) for t, v in zip(thresholds, a, strict=True)}
                         for c, a in per_class.items()},
        "counts": counts,
    }
    return jsonable(result)
