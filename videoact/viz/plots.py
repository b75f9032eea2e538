"""Plots of tables and evaluation results: segment timelines, confusion matrices, per-class AP bars.

Every function takes DataFrames or the dicts returned by ``videoact.eval`` and returns a matplotlib
``Figure``; ``save=path`` also writes a PNG of exactly ``figsize * dpi`` pixels (default 1000 x 400 or
as stated per function). Nothing else is read or written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from videoact.viz._figure import finish, new_figure

__all__ = ["confusion_matrix", "per_class_ap", "timeline", "top1"]


def top1(segments: pd.DataFrame) -> pd.DataFrame:
    """The best-scored row per (source, video, window): recognition writes top-5 rows per window."""
    if not len(segments):
        return segments
    keys = ["source", "video_id", "t_start_s", "t_end_s"]
    order = segments.sort_values("score", ascending=False, kind="stable")
    return order.drop_duplicates(keys).sort_values(["source", "t_start_s"], kind="stable").reset_index(drop=True)


def timeline(
    segments: pd.DataFrame,
    *,
    video_id: str | None = None,
    best_only: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] = (10.0, 4.0),
    dpi: int = 100,
    save: str | Path | None = None,
) -> Figure:
    """Segments of one video as horizontal bars, one row per (source, label): ground truth above predictions.

    Args:
        segments: a ``segments`` table (several sources stack: ``ground_truth:*`` first).
        video_id: which video (the only one when None).
        best_only: keep the best-scored label per (source, window), as recognition writes its top 5.
    """
    df = segments
    vids = list(dict.fromkeys(df["video_id"]))
    if video_id is None:
        if len(vids) > 1:
            raise ValueError(f"segments hold several videos {vids[:5]}: pass video_id=...")
        video_id = vids[0] if vids else None
    df = df[df["video_id"] == video_id]
    if best_only:
        df = top1(df)
    df = df.assign(label=df["label"].astype(object).where(df["label"].notna(), "(no label)"))
    sources = sorted(dict.fromkeys(df["source"]), key=lambda s: (not str(s).startswith("ground_truth"), str(s)))
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(sources))]
    rows: list[str] = []
    for src, colour in zip(sources, colours, strict=True):
        part = df[df["source"] == src]
        for label in sorted(dict.fromkeys(part["label"]), key=str):
            seg = part[part["label"] == label]
            y = len(rows)
            spans = list(zip(seg["t_start_s"], seg["t_end_s"] - seg["t_start_s"], strict=True))
            alphas = np.clip(seg["score"].to_numpy(float), 0.25, 1.0)
            for (x, w), a in zip(spans, alphas, strict=True):
                ax.broken_barh([(x, w)], (y - 0.4, 0.8), facecolors=colour, alpha=float(a), edgecolor="black",
                               linewidth=0.5)
            rows.append(f"{_short_source(str(src))} | {label}")
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("time (s)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or f"segments of {video_id} (opacity = score)", fontsize=10)
    return finish(fig, save)


def _short_source(src: str) -> str:
    return src.split("@")[0]


def _matrix(result: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    cm = result.get("confusion_matrix", result)
    if not isinstance(cm, Mapping) or "labels" not in cm or "matrix" not in cm:
        raise ValueError("expected an evaluate_recognition result or its 'confusion_matrix' {'labels', 'matrix'}")
    return [str(x) for x in cm["labels"]], np.asarray(cm["matrix"], dtype=np.float64)


def confusion_matrix(
    result: Mapping[str, Any],
    *,
    normalize: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] = (7.0, 6.0),
    dpi: int = 100,
    save: str | Path | None = None,
) -> Figure:
    """The confusion matrix of ``evaluate_recognition`` (rows: true class, columns: top-1 prediction).

    Args:
        result: the evaluation dict, or its ``confusion_matrix`` entry.
        normalize: colour by row fraction (each true class sums to 1); cells always show counts.
    """
    labels, m = _matrix(result)
    shown = m / np.maximum(m.sum(axis=1, keepdims=True), 1) if normalize else m
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(float(m.max()), 1.0))
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted (top-1)")
    ax.set_ylabel("ground truth")
    if len(labels) <= 30:
        for i, j in zip(*np.nonzero(m), strict=True):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > 0.5 * shown.max() else "black")
    fig.colorbar(im, ax=ax, label="fraction of the true class" if normalize else "count")
    ax.set_title(title or "confusion matrix", fontsize=10)
    return finish(fig, save)


def _ap_values(result: Mapping[str, Any], threshold: str | float | None) -> dict[str, float]:
    per = result.get("per_class_AP", result)
    if not isinstance(per, Mapping):
        raise ValueError("expected an evaluation result with 'per_class_AP' or a {class: AP} dict")
    out: dict[str, float] = {}
    for name, v in per.items():
        if isinstance(v, Mapping):  # temporal detection: {threshold: AP}
            if threshold is None:
                vals = [float(x) for x in v.values() if x is not None]
                v = float(np.mean(vals)) if vals else None
            else:
                key = threshold if isinstance(threshold, str) else next(
                    (k for k in v if float(k) == float(threshold)), None)
                if key not in v:
                    raise ValueError(f"threshold {threshold!r} not in the result's thresholds {list(v)}")
                v = v[key]
        if v is not None and not (isinstance(v, float) and np.isnan(v)):
            out[str(name)] = float(v)
    return out


def per_class_ap(
    result: Mapping[str, Any],
    *,
    threshold: str | float | None = None,
    top: int | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (8.0, 6.0),
    dpi: int = 100,
    save: str | Path | None = None,
) -> Figure:
    """Horizontal bars of per-class AP, best first, with the mean as a dashed line.

    Args:
        result: an ``evaluate_ava`` / ``evaluate_detection`` dict (``per_class_AP``) or ``{class: AP}``.
            Classes with no AP (no ground truth) are left out.
        threshold: for temporal detection, which tIoU (``"0.5"``); the mean over thresholds when None.
        top: show only the best ``top`` classes.
    """
    ap = _ap_values(result, threshold)
    items: Sequence[tuple[str, float]] = sorted(ap.items(), key=lambda kv: -kv[1])
    if top is not None:
        items = items[:top]
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    names = [k for k, _ in items]
    vals = [v for _, v in items]
    ax.barh(range(len(vals)), vals, color="C0")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    if ap:
        mean = float(np.mean(list(ap.values())))
        ax.axvline(mean, color="C3", linestyle="--", label=f"mean AP {mean:.3f} ({len(ap)} classes)")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("AP")
    ax.set_title(title or "per-class AP", fontsize=10)
    return finish(fig, save)
