"""Temporal action detection (localization): feature sequences -> scored action instances -> ``segments`` rows
(task ``localization``).

* ``actionformer``: ``ActionFormer`` (anchor-free, multi-scale local-window transformer, per-step class and
  boundary regression, optional class-semantics attention), ``DetectionLoss``, ``decode``, ``pad_batch``;
* ``nms``: ``soft_nms`` / ``batched_soft_nms`` (Gaussian soft-NMS per class);
* ``rows``: ``localization_rows``, ``detections_from_labels`` (the sliding-window baseline's detections).

Builders by name: ``LOCALIZATION_HEADS`` / ``build_localization_head``. Training: ``videoact train
configs/temporal/*_actionformer.yaml`` (``videoact.train.temporal``). Names are imported lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from videoact.registry import Registry

if TYPE_CHECKING:
    from torch import nn

_EXPORTS = {
    "ActionFormer": "actionformer", "DetectionLoss": "actionformer", "decode": "actionformer",
    "pad_batch": "actionformer", "assign_targets": "actionformer", "ClassSemanticAttention": "actionformer",
    "soft_nms": "nms", "batched_soft_nms": "nms", "tiou_matrix": "nms",
    "localization_rows": "rows", "detections_from_labels": "rows",
}


# head name -> keyword-only builder; the builders import their module (and torch) when called
LOCALIZATION_HEADS: Registry[Callable[..., nn.Module]] = Registry("localization head")


@LOCALIZATION_HEADS.register("actionformer")
def _build_actionformer(**kwargs: Any) -> nn.Module:
    from videoact.heads.localization.actionformer import build_actionformer

    return build_actionformer(**kwargs)


def build_localization_head(name: str, **kwargs: Any) -> nn.Module:
    """A head by registered name; ``UnknownNameError`` (a ``KeyError``) lists the registered ones."""
    return LOCALIZATION_HEADS.get(name)(**kwargs)


__all__ = sorted([*_EXPORTS, "LOCALIZATION_HEADS", "build_localization_head"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
