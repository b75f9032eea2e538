"""What every RGB video backbone returns, and the registry that builds them by name.

Token-dropout ViTs (EVAD) keep only some spatio-temporal tokens, while CNNs (SlowFast, X3D) keep all of
their feature map; heads must not care. So every backbone returns ``BackboneOutput``: the tokens it kept,
``(B, N, D)``, with each token's position ``index`` in the flattened ``(T', H', W')`` grid. A dense backbone
returns every position (``N = T'·H'·W'``); ``to_dense`` rebuilds the feature map with zeros where tokens
were dropped.

Builders are keyword-only and registered by name in ``BACKBONES`` (``build_backbone("vit_b16", ...)``): the ViTs
(``vit/models.py``) and PyTorchVideo CNNs (``cnn.py``) register on import. They sit above this module, so the
registry's loader imports them on the first lookup (never at import: listing names costs no pytorchvideo import,
that happens when a CNN is built), and this file stays the one entry point.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from videoact.registry import Registry

_BUILTINS = ("videoact.features.vit.models", "videoact.features.vit.checkpoints", "videoact.features.cnn")


def _import_builtins() -> None:
    for module in _BUILTINS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # an optional dependency missing: its backbones are not listed
            if exc.name not in (module, "timm", "pytorchvideo"):
                raise


BACKBONES: Registry[Callable[..., nn.Module]] = Registry("video backbone", loader=_import_builtins)
# checkpoint layout of a zoo card -> (card, files, **builder kwargs) -> the card's backbone with its weights, the
# classifier left out; filled by the modules that read each layout (vit/checkpoints.py, cnn.py)
PRETRAINED: Registry[Callable[..., nn.Module]] = Registry("pretrained backbone layout", loader=_import_builtins)


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
    return BACKBONES.register(fn)


def list_backbones(pattern: str = "*") -> list[str]:
    return BACKBONES.names(pattern)


def build_backbone(name: str, *, pretrained: bool = False, offline: bool | None = None, **kwargs: Any) -> nn.Module:
    """A backbone by registered name, or by model-zoo name (``videoact models list --task recognition``).

    ``build_backbone("vit_b16")`` is randomly initialised; ``build_backbone("videomae_b16_k400", pretrained=True)``
    is the card's network with the card's weights (downloaded once, verified) and without its classifier;
    ``pretrained=False`` with a zoo name gives the same network randomly initialised. ``UnknownNameError`` (a
    ``KeyError``) lists the registered names.
    """
    from videoact import models

    if models.is_model(name):
        card = models.get_model(name)
        if card.task != "recognition":
            raise ValueError(f"{name!r} is a {card.task} card; video backbones come from recognition cards")
        if pretrained:
            files = models.download(name, offline=offline)
            return PRETRAINED.get(card.layout)(card, files, **kwargs)
        arch_kwargs = {k: v for k, v in card.arch_kwargs.items() if k not in ("num_classes", "model_num_class")}
        return BACKBONES.get(_backbone_arch(card.arch))(**{**arch_kwargs, **kwargs})
    if pretrained:
        cards = [c.name for c in models.list_models("recognition") if _backbone_arch(c.arch) == name]
        raise ValueError(f"pretrained=True needs a model-zoo name, not the architecture {name!r} (zoo cards of it: "
                         f"{', '.join(cards) or 'none'})")
    return BACKBONES.get(name)(**kwargs)


def _backbone_arch(arch: str) -> str:
    """The registered backbone of a zoo architecture (X3D XS / S / M share X3D-S's weights' shapes)."""
    return {"x3d_xs": "x3d_s", "x3d_m": "x3d_s"}.get(arch, arch)


def backbone_dim(backbone: nn.Module) -> int:
    dim = getattr(backbone, "dim", None)
    if not isinstance(dim, int):
        raise ValueError(f"{type(backbone).__name__} has no integer `dim` (its token width): build it with "
                         "features.backbones.build_backbone")
    return dim
