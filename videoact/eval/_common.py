"""Pure helpers shared by the evaluators: AP, interval IoU, Levenshtein, input checks, JSON cleaning.

Written once and reused by every task module (and by heads that report the same numbers), so that one
definition of "VOC AP" or "edit distance" exists in the package.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations import schema
from videoact.annotations.schema import AnnotationError
from videoact.annotations.tables import Tables


class EvalError(AnnotationError):
    """Inputs an evaluator cannot score without a silently wrong number; the message says what and how to fix."""


# ----------------------------------------------------------------------------------------------- AP


def voc_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC all-point interpolated AP (VOC2011+), as ActivityNet ``interpolated_prec_rec`` and AVA ``metrics``.

    ``rec = [0, r, 1]``, ``prec = [0, p, 0]``, precision made non-increasing from the right, then
    ``sum(Δrec * prec)`` over the points where recall changes. Empty input gives 0.0 (AVA: a class
    with ground truth but no detections).
    """
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    if precision.size == 0:
        return 0.0
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def matlab_colon(a: float, d: float, b: float) -> np.ndarray:
    """MATLAB's ``a:d:b`` for ``d > 0``, element for element (the symmetric algorithm of its ``colon``).

    ``n = floor((b - a) / d + tol)`` intervals; the first half is ``a + k*d``, the second half
    ``b - (n - k)*d``, and for even ``n`` the middle element is ``(a + b) / 2`` (MathWorks'
    ``colonop.m`` description, also FreeMat's "symmetric algorithm").
    """
    tol = 2.0 * np.finfo(float).eps * max(abs(a), abs(b))
    n = int(np.floor((b - a) / d + tol))
    if n < 0:
        return np.zeros(0)
    out = np.empty(n + 1)
    k = np.arange(n // 2 + 1)
    out[k] = a + k * d
    out[n - k] = b - k * d
    if n % 2 == 0:
        out[n // 2] = (a + b) / 2
    return out


def eleven_point_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """11-point interpolated AP of the THUMOS14 evalkit (``TH14eventdetpr.m`` ``prap``).

    ``mean over t in 0:0.1:1 of max(prec[rec >= t])`` (0 where no recall reaches ``t``).

    The grid is MATLAB's ``0:0.1:1`` (``matlab_colon``): its upper half is computed down from 1, so it
    holds exactly 0.6 and 0.7, where ``np.arange(0, 1.1, 0.1)`` has 0.6000000000000001 and
    0.7000000000000001 (a recall of exactly 3/5 or 7/10 then misses a grid point).
    """
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    ap = 0.0
    for t in matlab_colon(0.0, 0.1, 1.0):
        sel = precision[recall >= t]
        ap += (float(sel.max()) if sel.size else 0.0) / 11.0
    return ap


# ----------------------------------------------------------------------------------------------- IoU


def interval_iou(seg: Sequence[float] | np.ndarray, others: np.ndarray, *, dtype: type = np.float64) -> np.ndarray:
    """tIoU of one ``[start, end]`` with each row of ``others`` (``inter / (len1 + len2 - inter)``, no +1).

    ``0 / 0`` (a zero-length segment on a zero-length segment) gives 0, not NaN: a point cannot
    overlap, and a NaN would silently count as a match in the reference code (see ``detection.py``).
    ``dtype=np.float32`` stores the result as mmaction2's ``pairwise_temporal_iou`` does.
    """
    others = np.asarray(others, dtype=np.float64).reshape(-1, 2)
    s, e = float(seg[0]), float(seg[1])
    inter = (np.minimum(e, others[:, 1]) - np.maximum(s, others[:, 0])).clip(0)
    union = (others[:, 1] - others[:, 0]) + (e - s) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    iou = np.where(union > 0, iou, 0.0)
    return iou.astype(dtype)


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``[y1, x1, y2, x2]`` boxes, no +1, in AVA ``np_box_ops.iou``'s operation order.

    The intersection is clipped against float64 zeros as the reference does, so float32 inputs
    (mmaction2) give the reference's mixed-precision numbers exactly. A zero union gives NaN, as
    there; NaN never reaches the threshold, so such a pair is never a match.
    """
    b1 = np.asarray(boxes1).reshape(-1, 4)
    b2 = np.asarray(boxes2).reshape(-1, 4)
    ih = np.maximum(np.zeros((len(b1), len(b2))),
                    np.minimum(b1[:, None, 2], b2[None, :, 2]) - np.maximum(b1[:, None, 0], b2[None, :, 0]))
    iw = np.maximum(np.zeros((len(b1), len(b2))),
                    np.minimum(b1[:, None, 3], b2[None, :, 3]) - np.maximum(b1[:, None, 1], b2[None, :, 1]))
    inter = ih * iw
    a1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    a2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    union = a1[:, None] + a2[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / union


# ----------------------------------------------------------------------------------------------- edit distance


def levenshtein(a: Sequence[Hashable] | np.ndarray, b: Sequence[Hashable] | np.ndarray) -> int:
    """Unit-cost Levenshtein distance (insert, delete, substitute; no transpositions).

    This is what ``editdistance.eval`` computes (Ego4D LTA) and what ms-tcn's ``levenstein`` computes
    over segment labels. One row of the DP table at a time, vectorised over the row with numpy.
    """
    a = list(a)
    b = list(b)
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    # Map items to small ints so the inner comparisons are numpy array ops.
    codes: dict[Hashable, int] = {}
    bb = np.array([codes.setdefault(x, len(codes)) for x in b], dtype=np.int64)
    js = np.arange(len(b) + 1, dtype=np.int64)
    prev = js.copy()
    for i, x in enumerate(a, start=1):
        # best[j] = min(substitute/match, delete); then insertions: cur[j] = min(best[j], cur[j-1] + 1),
        # i.e. cur[j] = j + min_{k<=j}(best[k] - k) with best[0] = i: a running minimum, no Python loop.
        best = np.empty_like(prev)
        best[0] = i
        best[1:] = np.minimum(prev[:-1] + (bb != codes.get(x, -1)), prev[1:] + 1)
        prev = np.minimum.accumulate(best - js) + js
    return int(prev[-1])


def prefix_levenshtein(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Lev(a[m, :z], b[m, :z])`` for every row ``m`` and prefix length ``z = 0..Z``, batched.

    ``a`` and ``b`` are integer arrays (M, Z). The prefix distances are the diagonal of one DP table, so
    ED@z for every z (and AUED) costs one table per pair instead of Z; rows of the table are computed
    for all M pairs at once with the same running-minimum step as ``levenshtein``.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 2:
        raise EvalError(f"prefix_levenshtein needs two (M, Z) arrays of one shape, got {a.shape} and {b.shape}")
    m, z = a.shape
    js = np.arange(z + 1, dtype=np.int64)
    prev = np.broadcast_to(js, (m, z + 1)).copy()
    diag = np.zeros((m, z + 1), dtype=np.int64)
    for i in range(1, z + 1):
        best = np.empty_like(prev)
        best[:, 0] = i
        best[:, 1:] = np.minimum(prev[:, :-1] + (b != a[:, i - 1:i]), prev[:, 1:] + 1)
        prev = np.minimum.accumulate(best - js, axis=1) + js
        diag[:, i] = prev[:, i]
    return diag


# ----------------------------------------------------------------------------------------------- inputs


def pick_variant(variants: Mapping[str, Any], name: str, task: str) -> Any:
    """The registered variant ``name`` of ``task``, or an error listing the known ones."""
    if name not in variants:
        raise EvalError(f"unknown {task} variant {name!r}; choose one of {', '.join(variants)}")
    return variants[name]


def validated(tables: Tables, role: str, names: Sequence[str]) -> Tables:
    """Check the tables an evaluator reads (boxes outside [0, 1], reversed segments ... raise here).

    Only ``names`` are validated (the others are passed through untouched): validation is pandas work
    per table, and an evaluator never reads the rest.
    """
    if not isinstance(tables, Tables):
        raise EvalError(f"{role}: expected a videoact Tables, got {type(tables).__name__}")
    out = {}
    for name, df in tables.items():
        if name in names:
            df = schema.validate(name, schema.with_frames(name, df) if len(df) else df, where=role)
        out[name] = df
    return Tables(**out, meta=dict(tables.meta))


def ordered(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in source-file order (``seq``), rows without ``seq`` after them in table order."""
    if not len(df) or df["seq"].isna().all():
        return df.reset_index(drop=True)
    key = df.assign(_null=df["seq"].isna(), _pos=np.arange(len(df)))
    key = key.sort_values(["_null", "seq", "_pos"], kind="stable")
    return df.loc[key.index].reset_index(drop=True)


DUPLICATE_POLICIES = ("error", "drop", "keep")


def handle_duplicates(df: pd.DataFrame, cols: Sequence[str], policy: str, role: str,
                      counts: dict[str, int], what: str) -> pd.DataFrame:
    """Apply the duplicate-row policy: ``error`` (default), ``drop`` (keep the first) or ``keep``.

    Exact duplicate rows double-count a ground-truth instance or add a false positive, so they are an
    error unless the caller says what to do; the number found is reported in ``counts``.
    """
    if policy not in DUPLICATE_POLICIES:
        raise EvalError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {policy!r}")
    dup = df.duplicated(list(cols), keep="first")
    n = int(dup.sum())
    counts[f"{role}_duplicate_rows"] = n
    if n and policy == "error":
        first = df[dup].iloc[0]
        shown = ", ".join(f"{c}={first[c]!r}" for c in cols)
        raise EvalError(f"{role}: {n} duplicate {what} row(s), e.g. {shown}; remove them, or pass "
                        "duplicates='drop' (keep the first) or duplicates='keep' (score them as they are)")
    return df[~dup].reset_index(drop=True) if n and policy == "drop" else df


def require_rows(df: pd.DataFrame, role: str, what: str) -> None:
    """An empty table gives no number, not 0.0: say which input was empty."""
    if not len(df):
        raise EvalError(f"{role}: no {what} rows to evaluate (empty file or wrong table/task?)")


def jsonable(value: Any) -> Any:
    """Plain Python for ``json.dumps``: numpy scalars to Python, NaN/inf to None, keys to str."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def thr_key(t: float) -> str:
    """Threshold as a JSON key: ``0.5 -> "0.5"``, ``0.55 -> "0.55"`` (linspace round-off removed)."""
    return f"{round(float(t), 6):g}"


def nanmean(values: Sequence[float]) -> float:
    """Mean ignoring NaN; NaN (not a warning) when nothing is left."""
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def class_column(gt: pd.DataFrame, pred: pd.DataFrame, prefer: tuple[str, str], hint: str) -> str:
    """The column to match classes on: the first of ``prefer`` filled on every row of both sides.

    Refuses to guess when neither is (a name on one side and an id on the other would match nothing).
    """
    for col in prefer:
        if gt[col].notna().all() and pred[col].notna().all():
            return col
    raise EvalError(f"cannot match classes: ground truth and predictions need both {prefer[0]!r} or both "
                    f"{prefer[1]!r} on every row ({hint})")
