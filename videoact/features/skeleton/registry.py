"""Skeleton networks by name: ``build_model("stgcnpp", layout="kinect20", num_classes=10)``.

Every builder is keyword-only and takes at least ``layout`` (a name from ``layouts.LAYOUTS``),
``num_classes``, ``in_channels`` (coordinates per joint, 2 or 3) and ``num_persons`` (M); the model maps
``(N, C, T, V, M)`` joint coordinates to ``(N, num_classes)`` logits. Modalities (bones, motion) are
computed inside the model from the joints, so every network reads the same input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name (minus a ``build_`` prefix)."""
    name = fn.__name__.removeprefix("build_")
    if name in MODELS:
        raise ValueError(f"skeleton model {name!r} registered twice")
    MODELS[name] = fn
    return fn


def _ensure_registered() -> None:
    # the modules register on import; importing them here keeps `build_model` the one entry point
    from videoact.features.skeleton import cnn1d, ista, psumnet, stgcn  # noqa: F401


def list_models() -> list[str]:
    _ensure_registered()
    return sorted(MODELS)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    _ensure_registered()
    if name not in MODELS:
        raise KeyError(f"unknown skeleton model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
