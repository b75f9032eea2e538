"""Skeleton networks by name: ``build_model("stgcnpp", layout="kinect20", num_classes=10)``.

Sits above the network modules and imports them (they register in ``registry.MODELS`` on import).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from videoact.features.skeleton import cnn1d, ista, psumnet, stgcn  # noqa: F401  (they register)
from videoact.features.skeleton.registry import MODELS


def list_models(pattern: str = "*") -> list[str]:
    return MODELS.names(pattern)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """A network by registered name; ``UnknownNameError`` (a ``KeyError``) lists the registered ones."""
    return MODELS.get(name)(**kwargs)
