"""Long-term action anticipation (Ego4D LTA): edit distance ED@Z and AUED for verb, noun and action.

Follows EGO4D/forecasting ``ego4d_forecasting/evaluation/lta_metrics.py`` (``../shared/specs/evaluation.md``
§3)::

    ED(preds[N, Z, K], labels[N, Z]) = mean_n  min_k  Levenshtein(preds[n, :, k], labels[n]) / Z
    AUED = trapz([ED(preds[..., :z], labels[:, :z]) for z = 1..Z]) / (Z - 1)

* Levenshtein is unit-cost, no transpositions (what ``editdistance.eval`` computes, despite the
  reference docstring's "Damerau"); ours is ``_common.prefix_levenshtein``, which gets every prefix
  distance (ED@1..ED@Z, hence AUED) from one DP table per (sample, candidate).
* ``action`` is pair-exact, as PanasonicConnect ``eval_val.py``: ``verb * n_nouns + noun``, so a step
  matches only when verb and noun both match (not AntGPT's element-wise ``verb + noun`` sum).
* The targets of a forecast anchored at action ``i`` of a clip are the next Z annotated actions of
  that clip in ``action_idx`` order (``ptv_dataset_helper.clip_forecasting_dataset``).

``edit_distance``, ``aued`` and ``ed_curve`` take ``preds`` in Ego4D's layout (N, Z, K) by default, as
``lta_metrics.edit_distance`` / ``AUED`` (and AntGPT's copies) do; ``layout="NKZ"`` takes (N, K, Z) (the
forecasts grid, as ``evaluate_lta`` passes it). The layout is never guessed: with K == Z both fit.

These functions are the one implementation; the anticipation head reports the same numbers with them.

Tables: ground truth = ``segments`` of the Ego4D LTA import (``video_id`` = clip uid, ``seq`` =
action_idx, ``verb_id``/``noun_id``); predictions = ``forecasts`` (``video_id``, ``anchor_idx``,
``candidate`` 1..K, ``step`` 1..Z, ``verb_id``/``noun_id``). Bad input raises: a ragged K x Z grid, an
anchor not in the ground truth, fewer than Z future actions, ground truth without ids, empty tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations.tables import Tables
from videoact.eval._common import EvalError, jsonable, prefix_levenshtein, require_rows, validated

READS = ("segments", "forecasts")  # the tables this evaluator reads (and validates)
TASK = "lta"
HEADS = ("verb", "noun", "action")


LAYOUTS = ("NZK", "NKZ")


def _shapes(preds: np.ndarray, labels: np.ndarray, layout: str = "NZK") -> tuple[np.ndarray, np.ndarray]:
    """``(preds (N, K, Z), labels (N, Z))`` from ``preds`` in ``layout`` (Ego4D's (N, Z, K) by default)."""
    if layout not in LAYOUTS:
        raise EvalError(f"layout must be 'NZK' (Ego4D lta_metrics, the default) or 'NKZ', got {layout!r}")
    preds = np.asarray(preds)
    labels = np.asarray(labels)
    if labels.ndim == 3 and labels.shape[2] == 1:  # Ego4D AUED squeezes labels (N, Z, 1)
        labels = labels[:, :, 0]
    if preds.ndim == 2:  # K = 1: (N, Z) in either layout
        preds = preds[:, :, None] if layout == "NZK" else preds[:, None, :]
    z_axis = 1 if layout == "NZK" else 2
    if preds.ndim != 3 or labels.ndim != 2 or preds.shape[0] != labels.shape[0] or \
            preds.shape[z_axis] != labels.shape[1]:
        other = 3 - z_axis
        hint = ""
        if preds.ndim == 3 and labels.ndim == 2 and preds.shape[0] == labels.shape[0] and \
                preds.shape[other] == labels.shape[1]:
            hint = f"; these preds fit layout={LAYOUTS[other - 1]!r}, pass it if that is what they are"
        raise EvalError(f"edit distance needs preds (N, Z, K) (layout='NZK', Ego4D lta_metrics, the default) or "
                        f"(N, K, Z) (layout='NKZ') and labels (N, Z); got preds {preds.shape} and labels "
                        f"{labels.shape} with layout={layout!r}{hint}")
    if layout == "NZK":
        preds = preds.transpose(0, 2, 1)
    if preds.shape[0] == 0 or preds.shape[1] == 0 or labels.shape[1] == 0:
        raise EvalError("edit distance needs at least one sample, one candidate and one step")
    return preds, labels


def ed_curve(preds: np.ndarray, labels: np.ndarray, *, layout: str = "NZK") -> np.ndarray:
    """``[ED@1, ..., ED@Z]``: for each z, mean over samples of min over K of Lev(prefix z) / z.

    ``preds`` is (N, Z, K) as Ego4D's ``lta_metrics.edit_distance`` takes it, or (N, K, Z) with
    ``layout="NKZ"``; (N, Z) is K = 1. Labels are (N, Z) (or Ego4D's (N, Z, 1)).
    """
    preds, labels = _shapes(preds, labels, layout)
    n, k, z = preds.shape
    flat_p = preds.reshape(n * k, z)
    flat_l = np.repeat(labels, k, axis=0)
    dist = prefix_levenshtein(flat_p, flat_l)[:, 1:].reshape(n, k, z)  # (N, K, z = 1..Z)
    return (dist.min(axis=1) / np.arange(1, z + 1)).mean(axis=0)


def edit_distance(preds: np.ndarray, labels: np.ndarray, *, layout: str = "NZK") -> float:
    """ED of ``preds`` against ``labels`` (N, Z): mean over samples of min over K of Lev / Z.

    ``preds`` is laid out as Ego4D's (and AntGPT's) function of the same name takes it, (N, Z, K);
    pass ``layout="NKZ"`` for (N, K, Z). With K == Z both shapes fit, so the layout is never guessed.
    """
    return float(ed_curve(preds, labels, layout=layout)[-1])


def aued(preds: np.ndarray, labels: np.ndarray, *, layout: str = "NZK") -> float:
    """Area under the ED@z curve for z = 1..Z (trapezoid rule, unit spacing) / (Z - 1); NaN when Z = 1.

    ``preds`` (N, Z, K) as Ego4D's ``AUED`` (``layout="NKZ"`` for (N, K, Z)).
    """
    curve = ed_curve(preds, labels, layout=layout)
    if len(curve) < 2:
        return float("nan")
    return float(np.sum((curve[1:] + curve[:-1]) / 2.0) / (len(curve) - 1))


def _grid(fc: pd.DataFrame) -> tuple[list[tuple[str, int]], np.ndarray, np.ndarray]:
    """Samples and their (N, K, Z) verb and noun arrays; a ragged or duplicated grid raises."""
    if fc[["verb_id", "noun_id", "anchor_idx"]].isna().any().any():
        bad = fc[fc[["verb_id", "noun_id", "anchor_idx"]].isna().any(axis=1)].iloc[0]
        raise EvalError(f"predictions: forecast of {bad['video_id']} (candidate {bad['candidate']}, step "
                        f"{bad['step']}) has no verb_id/noun_id/anchor_idx")
    k_max, z_max = int(fc["candidate"].max()), int(fc["step"].max())
    samples = list(dict.fromkeys(zip(fc["video_id"], fc["anchor_idx"].astype(int), strict=True)))
    index = {s: i for i, s in enumerate(samples)}
    verbs = np.full((len(samples), k_max, z_max), -1, dtype=np.int64)
    nouns = np.full_like(verbs, -1)
    seen = np.zeros(verbs.shape, dtype=bool)
    for vid, a, c, s, v, n in zip(fc["video_id"], fc["anchor_idx"], fc["candidate"], fc["step"], fc["verb_id"],
                                  fc["noun_id"], strict=True):
        i, kk, zz = index[(vid, int(a))], int(c) - 1, int(s) - 1
        if seen[i, kk, zz]:
            raise EvalError(f"predictions: duplicate forecast for {vid}_{a} candidate {c} step {s}")
        seen[i, kk, zz] = True
        verbs[i, kk, zz], nouns[i, kk, zz] = int(v), int(n)
    if not seen.all():
        i, kk, zz = (int(x[0]) for x in np.nonzero(~seen))
        vid, a = samples[i]
        raise EvalError(f"predictions: {vid}_{a} has no forecast for candidate {kk + 1} step {zz + 1}; every "
                        f"anchor needs K={k_max} candidates of Z={z_max} steps")
    return samples, verbs, nouns


def evaluate_lta(
    gt: Tables,
    pred: Tables,
    *,
    z: int | None = None,
    n_nouns: int | None = None,
) -> dict[str, Any]:
    """ED@Z and AUED of forecast sequences against the next Z annotated actions.

    Args:
        gt: Ego4D LTA ground truth (``segments`` with ``seq`` = action_idx and verb/noun ids).
        pred: ``forecasts`` (K candidates x Z steps per anchor).
        z: evaluate the first ``z`` steps (default: all Z of the predictions; 20 officially).
        n_nouns: size of the noun vocabulary for action ids; any value above the largest noun id gives
            the same (pair-exact) numbers, so the default is max noun id + 1.

    Returns:
        ``{"task", "K", "Z", "n_samples", "ED@<Z>": {"verb", "noun", "action"}, "AUED": {...}}``.
    """
    gt, pred = validated(gt, "ground truth", READS), validated(pred, "predictions", READS)
    gs = gt.segments[gt.segments["seq"].notna()]
    fc = pred.forecasts
    require_rows(gs, "ground truth", "annotated action (segments with action_idx)")
    require_rows(fc, "predictions", "forecast")
    samples, verbs, nouns = _grid(fc)
    z_max = verbs.shape[2]
    z = z_max if z is None else int(z)
    if not 1 <= z <= z_max:
        raise EvalError(f"z={z} is outside 1..{z_max} (the predictions have Z={z_max} steps)")
    clips = {str(v): g.sort_values("seq", kind="stable") for v, g in gs.groupby("video_id", sort=False)}
    lab_v = np.zeros((len(samples), z), dtype=np.int64)
    lab_n = np.zeros_like(lab_v)
    for i, (vid, a) in enumerate(samples):
        key = f"{vid}_{a}"
        if vid not in clips:
            raise EvalError(f"predictions: {key}: clip {vid!r} is not in the ground truth")
        g = clips[vid]
        pos = np.flatnonzero(g["seq"].to_numpy(dtype=np.int64) == a)
        if not len(pos):
            raise EvalError(f"predictions: {key}: the ground truth of clip {vid!r} has no action_idx {a}")
        future = g.iloc[pos[0] + 1: pos[0] + 1 + z]
        if len(future) < z:
            raise EvalError(f"predictions: {key}: only {len(future)} annotated actions follow action {a} in the "
                            f"ground truth, Z={z} are needed")
        if future[["verb_id", "noun_id"]].isna().any().any():
            raise EvalError(f"ground truth: clip {vid!r} after action {a} has actions without verb/noun ids "
                            "(unannotated test split?)")
        lab_v[i], lab_n[i] = future["verb_id"].to_numpy(np.int64), future["noun_id"].to_numpy(np.int64)
    pv, pn = verbs[:, :, :z], nouns[:, :, :z]
    width = int(max(pn.max(), lab_n.max())) + 1
    if n_nouns is not None:
        if n_nouns < width:
            raise EvalError(f"n_nouns={n_nouns} but noun id {width - 1} occurs; action ids would collide")
        width = int(n_nouns)
    arrays = {"verb": (pv, lab_v), "noun": (pn, lab_n), "action": (pv * width + pn, lab_v * width + lab_n)}
    result = {
        "task": TASK,
        "K": int(verbs.shape[1]),
        "Z": z,
        "n_samples": len(samples),
        f"ED@{z}": {h: edit_distance(*arrays[h], layout="NKZ") for h in HEADS},
        "AUED": {h: aued(*arrays[h], layout="NKZ") for h in HEADS},
    }
    return jsonable(result)
