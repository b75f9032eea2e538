"""Temporal action segmentation: per-step class probabilities over a whole video -> ``segments`` rows
(task ``segmentation``, one row per run of equal labels).

* ``mstcn``: ``MSTCN`` (multi-stage dilated temporal convolutions over feature sequences), ``mstcn_loss``
  (cross-entropy + truncated-MSE smoothing, tau 4, lambda 0.15);
* ``lac``: ``LACSegmenter`` (a skeleton encoder fine-tuned end to end with a frame-wise classifier, no temporal
  model over features), ``predict_chunks``;
* ``asrf``: ``ASRFSegmenter`` (the LAC class branch + an action-boundary regression branch; ASRF), ``asrf_loss``,
  ``decode_segments`` (boundary peaks -> segments) and ``refine`` (one label per segment);
* ``rows``: ``segmentation_rows``, ``ground_truth_rows``, ``window_votes`` (the sliding-window baseline's votes).

Builders by name: ``SEGMENTATION_HEADS`` / ``build_segmentation_head``. Training: ``videoact train
configs/temporal/*_mstcn.yaml`` (``videoact.train.temporal``). Names are imported lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from videoact.registry import Registry

if TYPE_CHECKING:
    from torch import nn

_EXPORTS = {
    "MSTCN": "mstcn", "mstcn_loss": "mstcn", "smoothing_loss": "mstcn",
    "LACSegmenter": "lac", "build_lac": "lac", "predict_chunks": "lac", "prepare_chunk": "lac",
    "ASRFSegmenter": "asrf", "build_asrf": "asrf", "asrf_loss": "asrf", "boundary_targets": "asrf",
    "predict_asrf_chunks": "asrf", "decode_segments": "asrf", "refine": "asrf",
    "segmentation_rows": "rows", "ground_truth_rows": "rows", "window_votes": "rows", "runs": "rows",
}


# head name -> keyword-only builder; the builders import their module (and torch) when called
SEGMENTATION_HEADS: Registry[Callable[..., nn.Module]] = Registry("segmentation head")


@SEGMENTATION_HEADS.register("mstcn")
def build_mstcn(*, in_dim: int, num_classes: int, **kwargs: Any) -> nn.Module:
    """MS-TCN over ``in_dim``-wide feature sequences (keyword arguments as ``MSTCN``)."""
    from videoact.heads.segmentation.mstcn import MSTCN

    return MSTCN(in_dim=in_dim, num_classes=num_classes, **kwargs)


@SEGMENTATION_HEADS.register("lac")
def _build_lac(**kwargs: Any) -> nn.Module:
    from videoact.heads.segmentation.lac import build_lac

    return build_lac(**kwargs)


@SEGMENTATION_HEADS.register("asrf")
def _build_asrf(**kwargs: Any) -> nn.Module:
    from videoact.heads.segmentation.asrf import build_asrf

    return build_asrf(**kwargs)


def build_segmentation_head(name: str, **kwargs: Any) -> nn.Module:
    """A head by registered name; ``UnknownNameError`` (a ``KeyError``) lists the registered ones."""
    return SEGMENTATION_HEADS.get(name)(**kwargs)


__all__ = sorted([*_EXPORTS, "SEGMENTATION_HEADS", "build_mstcn", "build_segmentation_head"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
