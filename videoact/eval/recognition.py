"""Action recognition: top-k accuracy, mean class accuracy and the confusion matrix over ``segments``.

Definitions follow open-mmlab/mmaction2 ``mmaction/evaluation/functional/accuracy.py``
(``top_k_accuracy``, ``mean_class_accuracy``, ``confusion_matrix``):

* ground truth: one ``recognition`` segment per sample with its class;
* predictions: one ``recognition`` segment per (sample, class) with a score (a full score vector),
  or fewer rows (only the top classes); a sample's classes are ranked by descending score, ties by
  class in ascending order (numpy's ``argsort`` of the negated scores with a stable sort);
* top-k: the ground-truth class is among the first k ranked classes. A sample with fewer than k
  predicted classes is scored on the classes it has; the number of such samples is counted;
* mean class accuracy: the mean over ground-truth classes of the top-1 accuracy within the class
  (mmaction2's ``mean_class_accuracy`` averages over the union of true and predicted classes, so a
  class that is predicted but never true adds a 0 there; ours leaves it out, as a class accuracy
  of a class without samples is undefined);
* confusion matrix: rows = ground-truth class, columns = top-1 predicted class, over the union of
  classes in the order of the label map (else sorted).

A sample is a video when every video has one ground-truth segment, else a ``(video, t_start_s,
t_end_s)`` clip, and predictions must use the same times. Ground-truth samples without predictions
raise (``missing="error"``) or count as wrong (``missing="wrong"``); predictions of samples not in the
ground truth are ignored and counted. Classes are matched by ``label_id`` when both sides have ids,
else by name. NTU RGB+D benchmark splits come from ``formats.skeleton_pickle.ntu_split``
(``ntu_benchmark="xsub60"`` keeps the X-Sub test samples).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations.formats.skeleton_pickle import BENCHMARKS, ntu_split
from videoact.annotations.tables import Tables
from videoact.eval._common import (
    EvalError,
    class_column,
    handle_duplicates,
    jsonable,
    ordered,
    require_rows,
    validated,
)

READS = ("segments", "labels")  # the tables this evaluator reads (and validates)
TASK = "recognition"


def ntu_subset(tables: Tables, benchmark: str, part: str = "val") -> Tables:
    """The rows of the NTU samples in ``part`` (``train``/``val``) of ``benchmark`` (xsub60, xview60, ...)."""
    if benchmark not in BENCHMARKS:
        raise EvalError(f"unknown NTU benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}")
    ids = [v for v in tables.video_ids if _safe_split(v, benchmark) == part]
    keep = set(ids)
    out = {name: (df if name == "labels" else df[df["video_id"].isin(keep)].reset_index(drop=True))
           for name, df in tables.items()}
    return Tables(**out, meta=dict(tables.meta))


def _safe_split(name: str, benchmark: str) -> str | None:
    try:
        return ntu_split(name, benchmark)
    except ValueError:
        return None


def _sample_key(gt: pd.DataFrame) -> list[str]:
    return ["video_id"] if not gt["video_id"].duplicated().any() else ["video_id", "t_start_s", "t_end_s"]


def evaluate_recognition(
    gt: Tables,
    pred: Tables,
    *,
    topk: tuple[int, ...] = (1, 5),
    ntu_benchmark: str | None = None,
    missing: str = "error",
    duplicates: str = "error",
) -> dict[str, Any]:
    """Top-k accuracy, mean class accuracy and confusion matrix of clip/video classification.

    Args:
        gt: one ``recognition`` segment per sample.
        pred: scored ``recognition`` segments (one per class and sample, or the top ones).
        topk: the k of the top-k accuracies.
        ntu_benchmark: evaluate only the test part of this NTU benchmark (``xsub60``, ``xview60``,
            ``xsub120``, ``xset120``); samples must be named ``SsssCcccPpppRrrrAaaa``.
        missing: ground-truth samples without predictions: ``"error"`` or ``"wrong"``.
        duplicates: duplicate (sample, class) prediction rows or duplicate ground truth: ``"error"``,
            ``"drop"`` or ``"keep"``.

    Returns:
        ``{"task", "top1_acc", "top5_acc", "mean_class_accuracy", "per_class_accuracy", "confusion_matrix":
        {"labels", "matrix"}, "counts"}``.
    """
    gt, pred = validated(gt, "ground truth", READS), validated(pred, "predictions", READS)
    if ntu_benchmark is not None:
        gt, pred = ntu_subset(gt, ntu_benchmark), ntu_subset(pred, ntu_benchmark)
    gs = ordered(gt.segments[gt.segments["task"] == TASK])
    ps = ordered(pred.segments[pred.segments["task"] == TASK])
    require_rows(gs, "ground truth", "recognition")
    require_rows(ps, "predictions", "recognition")
    col = class_column(gs, ps, ("label_id", "label"), "recognition rows carry label_id or label")
    key = _sample_key(gs)
    counts: dict[str, int] = {}
    gs = handle_duplicates(gs, key, duplicates, "gt", counts, "ground-truth sample")
    ps = handle_duplicates(ps, [*key, col], duplicates, "pred", counts, "(sample, class) prediction")
    gkeys = list(map(tuple, gs[key].itertuples(index=False, name=None)))
    pkeys = list(map(tuple, ps[key].itertuples(index=False, name=None)))
    by_sample: dict[tuple, list[int]] = {}
    for i, k in enumerate(pkeys):
        by_sample.setdefault(k, []).append(i)
    gset = set(gkeys)
    counts["pred_rows_of_unknown_samples"] = sum(1 for k in pkeys if k not in gset)
    scores = ps["score"].to_numpy(np.float64)
    dtype = np.int64 if col == "label_id" else object
    classes_p = ps[col].to_numpy(dtype=dtype)
    truth = gs[col].to_numpy(dtype=dtype)
    lab = gt.labels
    spaces = gs["label_space"].dropna()
    if len(spaces):
        lab = lab[lab["label_space"] == spaces.iloc[0]]
    names = {int(i): str(n) for i, n in zip(lab["id"], lab["name"], strict=True)} if col == "label_id" else {}
    label_order = list(names)
    ks = sorted(set(int(k) for k in topk))
    hits = {k: np.zeros(len(gs), dtype=bool) for k in ks}
    top1: list[Any] = []
    missing_n = short = 0
    for n, (k, y) in enumerate(zip(gkeys, truth, strict=True)):
        rows = by_sample.get(k)
        if not rows:
            missing_n += 1
            if missing == "error":
                raise EvalError(f"predictions: no recognition rows for ground-truth sample {k}; predict every "
                                "sample or pass missing='wrong'")
            top1.append(None)
            continue
        cls = classes_p[rows]
        sc = scores[rows]
        # rank by score desc, ties by class asc
        order = np.lexsort((cls.astype(str) if cls.dtype == object else cls, -sc))
        ranked = [c.item() if isinstance(c, np.generic) else c for c in cls[order]]
        short += int(len(ranked) < max(ks))
        for kk in ks:
            hits[kk][n] = y in ranked[:kk]  # numpy scalar == Python scalar
        top1.append(ranked[0])
    counts["gt_samples"] = len(gs)
    counts["gt_samples_without_predictions"] = missing_n
    counts[f"samples_with_fewer_than_{max(ks)}_classes"] = short
    truth_list = [c.item() if isinstance(c, np.generic) else c for c in truth]
    seen = sorted(set(truth_list) | {c for c in top1 if c is not None}, key=lambda c: (isinstance(c, str), c))
    classes = list(dict.fromkeys([*label_order, *seen]))
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for y, p in zip(truth_list, top1, strict=True):
        if p is not None:
            matrix[index[y], index[p]] += 1
    per_class: dict[str, float] = {}
    correct1 = np.array([p is not None and p == y for y, p in zip(truth_list, top1, strict=True)])
    for c in dict.fromkeys(truth_list):
        m = np.array([y == c for y in truth_list])
        per_class[str(names.get(c, c))] = float(correct1[m].mean())
    result: dict[str, Any] = {"task": TASK, "class_key": col}
    for kk in ks:
        result[f"top{kk}_acc"] = float(hits[kk].mean())
    result["mean_class_accuracy"] = float(np.mean(list(per_class.values())))
    result["per_class_accuracy"] = per_class
    result["confusion_matrix"] = {"labels": [str(names.get(c, c)) for c in classes], "matrix": matrix}
    result["counts"] = counts
    return jsonable(result)
