"""AVA spatio-temporal action detection: frame-mAP@0.5 over the ``boxes`` table.

Two named variants (``../shared/specs/evaluation.md`` §1):

``official`` (default) -- activitynet/ActivityNet ``Evaluation/get_ava_performance.py`` with
    ``Evaluation/ava/{object_detection_evaluation,per_image_evaluation,metrics,np_box_ops}.py``:

    * ground-truth keyframes = every ``(video, timestamp)`` of a ground-truth row, including 2-column
      rows (``flag="empty"``) and rows whose class is not in the label map; detections on any other
      keyframe are ignored (counted in ``counts["pred_keyframes_not_in_gt"]``);
    * per keyframe, the **top 50 detections by score, pooled over classes**, kept with the reference's
      min-heap (ties resolved exactly as it does), then sorted by descending score;
    * detections with an empty box (``x1 >= x2`` or ``y1 >= y2``, reversed boxes included: the
      importer keeps them as written with ``flag="lenient"``) are removed before matching, after the
      top-50 cap (``per_image_evaluation._remove_invalid_boxes``), so they are neither TP nor FP
      (counted in ``counts["pred_rows_empty_box"]``, reversed ones also in ``["pred_reversed_boxes"]``);
      a reversed ground-truth box of an evaluated class raises ``EvalError``: the reference's
      ``np_box_list.BoxList`` raises ``ValueError`` on it (as soon as a detection of its class is on
      its keyframe; we refuse it always);
    * per keyframe and class, greedy matching in score order: ``argmax`` IoU (no +1) against the
      ground truth; TP when ``IoU >= 0.5`` and that box is not matched yet, otherwise FP -- **no fallback
      to the second-best box**;
    * per class, scores over keyframes ranked with ``np.argsort(scores)[::-1]``, VOC all-point AP;
    * mAP = ``nanmean`` over the label-map classes: a class with ground truth but no detection counts
      0.0, a class without ground truth is skipped.

    Excluded timestamps (``flag="excluded"`` rows, the ``ava-excluded`` import) are removed from ground
    truth and detections, as the official evaluator did while it took an exclusions file (commit
    be7854e) and as SlowFast does; the current official files simply leave them out of the csv.

``mmaction2`` -- open-mmlab/mmaction2 ``mmaction/evaluation/functional/ava_utils.py::ava_eval`` (with
    ``ignore_empty_frames=True``), which differs in exactly these ways:

    * no top-50 cap and no removal of empty boxes (a zero-width box is an FP); a **reversed** box on a
      scored keyframe raises ``EvalError``, as ``np_box_list.BoxList`` raises ``ValueError`` there;
    * only keyframes that hold a label-map ground-truth box are scored (2-column rows and keyframes
      whose boxes are all outside the label map do not make detections there false positives);
    * mAP averages only the classes that appear among the scored detections: a class with ground
      truth but no detection is **dropped instead of counting 0**;
    * boxes and scores are float32; keyframe keys are ``int(timestamp)`` (``%04d``);
    * ground truth on excluded keyframes still counts among the positives (``gt_count`` is taken before
      the exclusions are applied), so it lowers recall; the official variant removes it.

    It does not apply ``AVAMetric``'s ``action_thr`` score filter (that runs before the csv is
    written); filter the prediction table first to reproduce it.

Both report the three sub-mAPs of mmaction2 (``person_movement``: id <= 14, ``object_manipulation``:
14 < id < 64, ``person_interaction``: id >= 64), each the nan-mean of the per-class APs in its range.

Classes come from the ``labels`` table of the ground truth (else of the predictions) in the label
space of the ground-truth boxes (``ava`` by default); without one, every class that has a
ground-truth box is evaluated. Rows of classes outside it are dropped, as the official whitelist
does, and counted. Bad input is never scored silently: boxes outside [0, 1] raise (table
validation), reversed detections are counted (``counts["pred_reversed_boxes"]``; ``mmaction2`` raises
on those of scored keyframes, as its ``BoxList`` does), reversed ground-truth boxes raise,
detections without an action id raise, exact duplicate rows raise unless ``duplicates="drop" |
"keep"``, and an empty ground truth or prediction table raises, as does ground truth without a box of
an evaluated class and (``mmaction2``) predictions without a detected ground-truth class. Predictions
that hold rows but none of an evaluated class score a documented 0.0 in ``official`` (every class with
ground truth counts 0).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations.schema import LENIENT
from videoact.annotations.tables import Tables
from videoact.eval._common import (
    EvalError,
    box_iou,
    handle_duplicates,
    jsonable,
    nanmean,
    ordered,
    pick_variant,
    require_rows,
    thr_key,
    validated,
    voc_ap,
)

READS = ("boxes", "labels")  # the tables this evaluator reads (and validates)
TASK = "ava"
DEFAULT_LABEL_SPACE = "ava"
OFFICIAL_CAPACITY = 50
SUB_MAPS: dict[str, Callable[[int], bool]] = {
    "person_movement": lambda i: i <= 14,
    "object_manipulation": lambda i: 14 < i < 64,
    "person_interaction": lambda i: i >= 64,
}

_Entry = tuple[float, int, float, float, float, float]  # (score, action_id, y1, x1, y2, x2), as the reference


def _classes(gt: Tables, pred: Tables, gt_boxes: pd.DataFrame) -> tuple[dict[int, str], str]:
    """``{id: name}`` of the evaluated classes and where they came from."""
    spaces = gt_boxes["label_space"].dropna()
    space = str(spaces.mode().iloc[0]) if len(spaces) else DEFAULT_LABEL_SPACE
    for tables, origin in ((gt, "ground-truth labels"), (pred, "prediction labels")):
        lab = tables.labels[tables.labels["label_space"] == space]
        if len(lab):
            return {int(i): str(n) for i, n in zip(lab["id"], lab["name"], strict=True)}, origin
    ids = sorted({int(i) for i in gt_boxes["label_id"].dropna()})
    return {i: str(i) for i in ids}, "ground-truth classes (no label map)"


def _key_official(vid: str, t: float) -> tuple[str, str]:
    return vid, "%.6f" % Decimal(repr(float(t)))  # noqa: UP031 - the reference's "%s,%.6f" % Decimal(ts)


def _key_mmaction2(vid: str, t: float) -> tuple[str, str]:
    return vid, f"{int(t):04d}"


def _read(df: pd.DataFrame, whitelist: set[int], capacity: int, key: Callable[[str, float], tuple[str, str]],
          use_heap: bool) -> dict[tuple[str, str], list[_Entry]]:
    """Per keyframe, the entries the reference ``read_csv`` keeps, in its order (file order = ``seq``).

    ``use_heap`` reproduces the official min-heap (also with ``capacity=0``, where it only fixes the
    tie order); without it rows keep file order, as mmaction2's list does. Both then sort by -score
    with Python's stable sort.
    """
    entries: dict[tuple[str, str], list[_Entry]] = defaultdict(list)
    cols = zip(df["video_id"], df["t_s"], df["label_id"], df["score"], df["y1"], df["x1"], df["y2"], df["x2"],
               strict=True)
    for vid, t, label, score, y1, x1, y2, x2 in cols:
        label = int(label)
        if label not in whitelist:
            continue
        k = key(vid, t)
        item: _Entry = (float(score), label, float(y1), float(x1), float(y2), float(x2))
        heap = entries[k]
        if not use_heap:
            heap.append(item)
        elif capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, item)
        elif item[0] > heap[0][0]:
            heapq.heapreplace(heap, item)
    return {k: sorted(v, key=lambda e: -e[0]) for k, v in entries.items()}


def _gt_order_score(gt_rows: pd.DataFrame) -> pd.Series:
    """What both references read as a ground-truth row's "score": col8, the person id (1.0 without one).

    It fixes the order of a keyframe's boxes (heap / list, then sort by -score), hence which of two
    equally good boxes ``argmax`` picks.
    """
    return pd.to_numeric(gt_rows["actor_id"], errors="coerce").astype(float).fillna(1.0)


def _tp_fp(det: np.ndarray, gt: np.ndarray, thr: float) -> np.ndarray:
    """Greedy matching in the given (score) order: argmax IoU, TP if >= thr and still free; no fallback."""
    tp = np.zeros(len(det), dtype=bool)
    if not len(det) or not len(gt):
        return tp
    iou = box_iou(det, gt)
    best = np.argmax(iou, axis=1)
    taken = np.zeros(len(gt), dtype=bool)
    for i, j in enumerate(best):
        if iou[i, j] >= thr and not taken[j]:
            tp[i] = taken[j] = True
    return tp


def _score_classes(scores: dict[int, list[np.ndarray]], tps: dict[int, list[np.ndarray]],
                   n_gt: dict[int, int], classes: list[int], dtype: type) -> dict[int, float]:
    """AP per class: ``np.argsort(scores)[::-1]`` ranking (as ``metrics.compute_precision_recall``), VOC AP."""
    out: dict[int, float] = {}
    for c in classes:
        if n_gt.get(c, 0) == 0:
            out[c] = float("nan")
            continue
        s = np.concatenate(scores[c]).astype(dtype) if scores.get(c) else np.zeros(0, dtype)
        tp = np.concatenate(tps[c]) if tps.get(c) else np.zeros(0, bool)
        order = np.argsort(s)[::-1]
        ctp = np.cumsum(tp[order].astype(int))
        cfp = np.cumsum(1 - tp[order].astype(int))
        precision = ctp.astype(float) / (ctp + cfp)
        recall = ctp.astype(float) / n_gt[c]
        out[c] = voc_ap(precision, recall)
    return out


def _official(gt_rows: pd.DataFrame, gt_keys: set[tuple[str, str]], pred_rows: pd.DataFrame, whitelist: set[int],
              thr: float, counts: dict[str, int], capacity: int) -> tuple[dict[int, float], list[int]]:
    gt = _read(gt_rows.assign(score=_gt_order_score(gt_rows)), whitelist, 0, _key_official, use_heap=True)
    det = _read(pred_rows, whitelist, capacity, _key_official, use_heap=True)
    n_gt: dict[int, int] = defaultdict(int)
    for entries in gt.values():
        for e in entries:
            n_gt[e[1]] += 1
    kept = sum(len(v) for v in det.values())
    counts["pred_rows_beyond_top50"] = int(pred_rows["label_id"].isin(list(whitelist)).sum()) - kept
    scores: dict[int, list[np.ndarray]] = defaultdict(list)
    tps: dict[int, list[np.ndarray]] = defaultdict(list)
    ignored = invalid = 0
    for k, entries in det.items():
        if k not in gt_keys:
            ignored += 1
            continue
        arr = np.array([e[2:] for e in entries], dtype=float).reshape(-1, 4)
        lab = np.array([e[1] for e in entries], dtype=int)
        sc = np.array([e[0] for e in entries], dtype=float)
        valid = (arr[:, 0] < arr[:, 2]) & (arr[:, 1] < arr[:, 3])
        invalid += int((~valid).sum())
        arr, lab, sc = arr[valid], lab[valid], sc[valid]
        g = gt.get(k, [])
        g_arr = np.array([e[2:] for e in g], dtype=float).reshape(-1, 4)
        g_lab = np.array([e[1] for e in g], dtype=int)
        for c in np.unique(lab):
            m = lab == c
            scores[int(c)].append(sc[m])
            tps[int(c)].append(_tp_fp(arr[m], g_arr[g_lab == c], thr))
    counts["pred_keyframes_not_in_gt"] = ignored
    counts["pred_rows_empty_box"] = invalid
    classes = sorted(whitelist)
    return _score_classes(scores, tps, n_gt, classes, np.float64), [c for c in classes if n_gt.get(c, 0) > 0]


def _mmaction2(gt_rows: pd.DataFrame, pred_rows: pd.DataFrame, whitelist: set[int], excluded: set[tuple[str, str]],
               thr: float, counts: dict[str, int]) -> tuple[dict[int, float], list[int]]:
    gt = _read(gt_rows.assign(score=_gt_order_score(gt_rows)), whitelist, 0, _key_mmaction2, use_heap=False)
    det = _read(pred_rows, whitelist, 0, _key_mmaction2, use_heap=False)
    n_gt: dict[int, int] = defaultdict(int)
    for entries in gt.values():
        for e in entries:
            n_gt[e[1]] += 1
    scores: dict[int, list[np.ndarray]] = defaultdict(list)
    tps: dict[int, list[np.ndarray]] = defaultdict(list)
    for k, g in gt.items():
        if k in excluded:
            continue
        d = det.get(k, [])
        arr = np.array([e[2:] for e in d], dtype=np.float32).reshape(-1, 4)
        lab = np.array([e[1] for e in d], dtype=int)
        sc = np.array([e[0] for e in d], dtype=np.float32)
        g_arr = np.array([e[2:] for e in g], dtype=np.float32).reshape(-1, 4)
        g_lab = np.array([e[1] for e in g], dtype=int)
        reversed_ = (arr[:, 0] > arr[:, 2]) | (arr[:, 1] > arr[:, 3])
        if reversed_.any():  # np_box_list.BoxList(bbox) raises ValueError("Invalid box data ...") there
            i = int(np.flatnonzero(reversed_)[0])
            raise EvalError(f"predictions: {int(reversed_.sum())} reversed box(es) on keyframe {','.join(k)}, "
                            f"e.g. [y1, x1, y2, x2] = {arr[i].tolist()}: mmaction2's ava_eval raises on them "
                            "(np_box_list.BoxList 'Invalid box data'); the official variant drops them")
        for c in np.unique(lab):
            m = lab == c
            scores[int(c)].append(sc[m])
            tps[int(c)].append(_tp_fp(arr[m], g_arr[g_lab == c], thr))
    counts["pred_keyframes_not_in_gt"] = sum(1 for k in det if k not in gt or k in excluded)
    detected = sorted(scores)
    return _score_classes(scores, tps, n_gt, detected, np.float32), detected


VARIANTS: dict[str, str] = {
    "official": "activitynet/ActivityNet Evaluation/get_ava_performance.py (top-50 per keyframe, AP 0 for "
                "undetected classes, 2-column keyframes score detections as FP)",
    "mmaction2": "open-mmlab/mmaction2 mmaction/evaluation/functional/ava_utils.py::ava_eval (no cap, only "
                 "detected classes averaged, only keyframes with ground-truth boxes)",
}


def evaluate_ava(
    gt: Tables,
    pred: Tables,
    *,
    variant: str = "official",
    iou_threshold: float = 0.5,
    capacity: int = OFFICIAL_CAPACITY,
    duplicates: str = "error",
) -> dict[str, Any]:
    """Frame-mAP of AVA detections (``boxes`` rows with ``task="detection"``) against ground truth.

    Args:
        gt: ground truth: boxes with action ids (``flag="empty"`` keyframes and ``flag="excluded"``
            timestamps included), labels table = the label map (pbtxt import).
        pred: detections: boxes with action ids and scores.
        variant: ``"official"`` or ``"mmaction2"`` (see the module docstring).
        iou_threshold: box IoU for a match (``>=``); 0.5 officially.
        capacity: detections kept per keyframe by the official variant (50).
        duplicates: exact duplicate rows: ``"error"``, ``"drop"`` or ``"keep"``.

    Returns:
        ``{"task", "variant", "frame_mAP@0.5", "per_class_AP": {name: AP or None}, "sub_mAP":
        {"person_movement", "object_manipulation", "person_interaction"}, "classes_in_mean",
        "counts": {...}}``; ``None`` marks a class that does not enter the mean.
    """
    pick_variant(VARIANTS, variant, TASK)
    gt, pred = validated(gt, "ground truth", READS), validated(pred, "predictions", READS)
    gb = ordered(gt.boxes[gt.boxes["task"] == "detection"])
    pb = ordered(pred.boxes[pred.boxes["task"] == "detection"])
    require_rows(gb, "ground truth", "AVA detection boxes")
    counts: dict[str, int] = {}
    excluded_rows = gb[gb["flag"] == "excluded"]
    boxed = gb[gb["flag"].isna() | gb["flag"].isin(["empty", LENIENT])]
    gt_rows = boxed[boxed["x1"].notna()]
    if gt_rows["label_id"].isna().any():
        row = gt_rows[gt_rows["label_id"].isna()].iloc[0]
        raise EvalError(f"ground truth: box of {row['video_id']} at t={row['t_s']} has no action id")
    pred_rows = pb[pb["x1"].notna()]
    require_rows(pred_rows, "predictions", "AVA detection boxes")
    if pred_rows["label_id"].isna().any():
        row = pred_rows[pred_rows["label_id"].isna()].iloc[0]
        raise EvalError(f"predictions: detection of {row['video_id']} at t={row['t_s']} has no action id "
                        "(person boxes without actions cannot be scored)")
    box = ["video_id", "t_s", "x1", "y1", "x2", "y2", "label_id"]
    gt_rows = handle_duplicates(gt_rows, [*box, "actor_id"], duplicates, "gt", counts, "ground-truth box")
    pred_rows = handle_duplicates(pred_rows, [*box, "score"], duplicates, "pred", counts, "detection")

    names, class_origin = _classes(gt, pred, gt_rows)
    whitelist = set(names)
    counts["gt_rows_not_in_label_map"] = int((~gt_rows["label_id"].isin(list(whitelist))).sum())
    counts["pred_rows_not_in_label_map"] = int((~pred_rows["label_id"].isin(list(whitelist))).sum())
    counts["gt_boxes"] = len(gt_rows) - counts["gt_rows_not_in_label_map"]
    counts["pred_rows"] = len(pred_rows)
    gt_rev = ((gt_rows["x1"] > gt_rows["x2"]) | (gt_rows["y1"] > gt_rows["y2"])) & \
        gt_rows["label_id"].isin(list(whitelist))
    if gt_rev.any():  # the reference's np_box_list.BoxList(groundtruth_boxes) raises ValueError on them
        row = gt_rows[gt_rev].iloc[0]
        line = "" if pd.isna(row["seq"]) else f" (source line {int(row['seq']) + 1})"
        raise EvalError(f"ground truth: {int(gt_rev.sum())} reversed box(es) (x1 > x2 or y1 > y2), e.g. "
                        f"{row['video_id']} at t={row['t_s']:g}{line}: {row['x1']:g},{row['y1']:g},"
                        f"{row['x2']:g},{row['y2']:g}; the official evaluator raises on them "
                        "(np_box_list.BoxList 'Invalid box data'): fix the ground truth")
    counts["pred_reversed_boxes"] = int(((pred_rows["x1"] > pred_rows["x2"]) |
                                         (pred_rows["y1"] > pred_rows["y2"])).sum())
    if counts["gt_boxes"] == 0:
        raise EvalError(f"ground truth: no boxes of the evaluated classes ({len(gt_rows)} box row(s), "
                        f"{counts['gt_rows_not_in_label_map']} outside the label map, "
                        f"{int((boxed['x1'].isna()).sum())} empty keyframe(s)): nothing to score")

    key = _key_official if variant == "official" else _key_mmaction2
    excluded = {key(v, t) for v, t in zip(excluded_rows["video_id"], excluded_rows["t_s"], strict=True)}
    counts["excluded_keyframes"] = len(excluded)
    gt_keys = {key(v, t) for v, t in zip(boxed["video_id"], boxed["t_s"], strict=True)} - excluded
    counts["gt_keyframes"] = len(gt_keys)
    counts["gt_empty_keyframes"] = len(gt_keys - {key(v, t) for v, t in zip(gt_rows["video_id"], gt_rows["t_s"],
                                                                           strict=True)})

    def keep(df: pd.DataFrame) -> pd.DataFrame:
        if not excluded or not len(df):
            return df
        ks = [key(v, t) for v, t in zip(df["video_id"], df["t_s"], strict=True)]
        return df[[k not in excluded for k in ks]]

    if variant == "official":
        aps, in_mean = _official(keep(gt_rows), gt_keys, keep(pred_rows), whitelist, iou_threshold, counts,
                                 capacity)
    else:
        aps, in_mean = _mmaction2(gt_rows, pred_rows, whitelist, excluded, iou_threshold, counts)
    valid = {c: aps[c] for c in in_mean if not np.isnan(aps[c])}
    if not valid:  # mmaction2 averages only detected classes: none -> no number, not a silent null
        raise EvalError(f"predictions: no detection of a ground-truth class on a scored keyframe "
                        f"({variant} variant averages over detected classes only): nothing to average")
    per_class = {names[c]: (aps[c] if c in aps else None) for c in sorted(names)}
    result = {
        "task": TASK,
        "variant": variant,
        f"frame_mAP@{thr_key(iou_threshold)}": nanmean(valid.values()),
        "per_class_AP": per_class,
        "sub_mAP": {name: nanmean([ap for c, ap in valid.items() if rule(c)]) for name, rule in SUB_MAPS.items()},
        "classes_in_mean": len(valid),
        "classes_from": class_origin,
        "counts": counts,
    }
    return jsonable(result)
