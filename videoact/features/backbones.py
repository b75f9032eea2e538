"""What every RGB video backbone returns, and the registry that builds them by name.

Token-dropout ViTs (EVAD) keep only some spatio-temporal tokens, while CNNs (SlowFast, X3D) keep all of
their feature map; heads must not care. So every backbone returns ``BackboneOutput``: the tokens it kept,
``(B, N, D)``, with each token's position ``index`` in the flattened ``(T', H', W')`` grid. A dense backbone
returns every position (``N = T'·H'·W'``); ``to_dense`` rebuilds the feature map with zeros where tokens
were dropped.

Builders are keyword-only and registered by name (``build_backbone("vit_b16_videomae", ...)``); modules
register on import and ``_ensure_registered`` imports them, so this file stays the one entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

BACKBONES: dict[str, Callable[..., nn.Module]] = {}


@dataclass
class BackboneOutput:
    tokens: torch.Tensor  # (B, N, D) kept tokens
    index: torch.Tensor  # (B, N) long: position of each token in the flattened (T', H', W') grid
    grid: tuple[int, int, int]  # (T', H', W') of the full token grid

    @property
    def dim(self) -> int:
        return int(self.tokens.shape[-1])

    def to_dense(self) -> torch.Tensor:
        """(B, D, T', H', W') feature map; dropped positions are zeros."""
        b, _, d = self.tokens.shape
        t, h, w = self.grid
        dense = self.tokens.new_zeros(b, t * h * w, d)
        dense.scatter_(1, self.index[..., None].expand(-1, -1, d), self.tokens)
        return dense.transpose(1, 2).reshape(b, d, t, h, w)

    @classmethod
    def from_dense(cls, fmap: torch.Tensor) -> BackboneOutput:
        """A dense (B, D, T', H', W') map as tokens with every position kept."""
        b, _, t, h, w = fmap.shape
        tokens = fmap.flatten(2).transpose(1, 2)  # (B, T'·H'·W', D)
        index = torch.arange(t * h * w, device=fmap.device).expand(b, -1)
        return cls(tokens=tokens, index=index, grid=(t, h, w))


def register_backbone(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name minus ``build_``."""
    name = fn.__name__.removeprefix("build_")
    if name in BACKBONES:
        raise ValueError(f"backbone {name!r} registered twice")
    BACKBONES[name] = fn
    return fn


def _ensure_registered() -> None:
    import importlib

    for module in ("videoact.features.vit.models", "videoact.features.cnn"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a module not written yet, or its optional dependency missing
            if exc.name not in (module, "pytorchvideo"):
                raise


def list_backbones() -> list[str]:
    _ensure_registered()
    return sorted(BACKBONES)


def build_backbone(name: str, **kwargs: Any) -> nn.Module:
    _ensure_registered()
    if name not in BACKBONES:
        raise KeyError(f"unknown video backbone {name!r}; registered: {', '.join(sorted(BACKBONES)) or 'none'}")
    return BACKBONES[name](**kwargs)


def backbone_dim(backbone: nn.Module) -> int:
    dim = getattr(backbone, "dim", None)
    if not isinstance(dim, int):
        raise ValueError(f"{type(backbone).__name__} has no integer `dim` (its token width): build it with "
                         "features.backbones.build_backbone")
    return dim
