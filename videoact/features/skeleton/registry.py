"""The registry skeleton networks register in (``@register_model`` on a ``build_NAME`` function).

Every builder is keyword-only and takes at least ``layout`` (a name from ``layouts.LAYOUTS``),
``num_classes``, ``in_channels`` (coordinates per joint, 2 or 3) and ``num_persons`` (M); the model maps
``(N, C, T, V, M)`` joint coordinates to ``(N, num_classes)`` logits. Modalities (bones, motion) are
computed inside the model from the joints, so every network reads the same input. Build by name with
``features.skeleton.factory.build_model``, which imports the built-in networks.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from videoact.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("skeleton model")


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name (minus a ``build_`` prefix)."""
    return MODELS.register(fn)
