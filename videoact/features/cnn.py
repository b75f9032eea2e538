"""3D-CNN backbones from PyTorchVideo (SlowFast R50, X3D-S) behind the ``BackboneOutput`` interface.

The networks are PyTorchVideo's own builders (``create_slowfast``, ``create_x3d``) with their standard
hyper-parameters; only the classification head is cut off, so each builder returns the last feature map as
dense tokens (``BackboneOutput.from_dense``) and heads treat them exactly like the kept tokens of a ViT.
Module names stay PyTorchVideo's (``blocks.N...``), so a hub checkpoint loads key for key
(``load_pytorchvideo_checkpoint``) and only its head keys are left over.

* ``slowfast_r50``: input ``(B, 3, T, H, W)`` is the fast pathway; the slow pathway takes ``T // alpha`` frames
  spread evenly over it (PyTorchVideo's ``PackPathway``). The fast pathway's last map is average-pooled in time
  to the slow pathway's ``T'`` and the channels are concatenated (2048 + 256 = 2304), as SlowFast's AVA head
  concatenates the two pathways. Output ``(T / alpha, H / 32, W / 32)`` tokens of 2304 channels.
* ``x3d_s``: stem + four stages + ``conv5`` (the 1x1x1 conv + BN + ReLU that PyTorchVideo keeps inside its
  head's ``ProjectedPool``; it belongs to the backbone in the X3D paper's table). Output ``(T, H / 32, W / 32)``
  tokens of 432 channels. X3D-XS and X3D-M have the same weights' shapes (they differ in input size only), so
  their hub checkpoints load into it as well.

Input normalisation of the Kinetics checkpoints: ``decode.transforms.KINETICS_MEAN`` / ``KINETICS_STD``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from videoact.features.backbones import BackboneOutput, register_backbone
from videoact.features.vit.checkpoints import LoadReport, read_checkpoint, unwrap_state_dict


def _pytorchvideo() -> Any:
    """``pytorchvideo.models`` on first use: registering these backbones must not cost its import (or need it)."""
    try:
        with warnings.catch_warnings():  # pytorchvideo scripts a few functions at import (a torch.jit deprecation note)
            warnings.simplefilter("ignore", FutureWarning)
            import pytorchvideo.models.slowfast
            import pytorchvideo.models.x3d
    except ImportError:
        raise ImportError("slowfast_r50 / x3d_s need pytorchvideo: pip install 'videoact[video]'") \
            from None
    return pytorchvideo.models


_HUB = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo"
# PyTorchVideo hub checkpoints by name (Kinetics-400 classifiers; ``{"model_state": ...}``, keys ``blocks.N...``)
PYTORCHVIDEO_ZOO: dict[str, str] = {
    "slowfast_r50.k400": f"{_HUB}/kinetics/SLOWFAST_8x8_R50.pyth",
    "x3d_s.k400": f"{_HUB}/kinetics/X3D_S.pyth",
    "x3d_xs.k400": f"{_HUB}/kinetics/X3D_XS.pyth",
    "x3d_m.k400": f"{_HUB}/kinetics/X3D_M.pyth",
}


class SlowFastBackbone(nn.Module):
    """PyTorchVideo SlowFast without its head: ``forward(x (B, 3, T, H, W)) -> BackboneOutput`` (dense)."""

    head_prefixes = ("blocks.5.", "blocks.6.")  # PoolConcatPathway (no weights) and the classifier

    def __init__(self, blocks: nn.ModuleList, *, alpha: int, dim: int) -> None:
        super().__init__()
        self.blocks = blocks  # stem + res2..res5, each a MultiPathWayWithFuse over [slow, fast]
        self.alpha, self.dim = alpha, dim

    def pathways(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, T, H, W) -> [slow (B, 3, T // alpha, H, W), fast = x], slow frames spread evenly over T."""
        t = x.shape[2]
        if t < self.alpha:
            raise ValueError(f"SlowFast needs at least alpha = {self.alpha} frames, got {t}")
        idx = torch.linspace(0, t - 1, t // self.alpha, device=x.device).long()
        return [x.index_select(2, idx), x]

    def forward(self, x: torch.Tensor, *, keyframe: int | None = None) -> BackboneOutput:
        """``keyframe`` is accepted for interface parity with token-dropout ViTs; a dense CNN keeps everything."""
        out = self.pathways(x)
        for block in self.blocks:
            out = block(out)
        slow, fast = out  # (B, 2048, T', H', W'), (B, 256, T, H', W')
        fast = F.adaptive_avg_pool3d(fast, slow.shape[2:])  # temporal average to the slow pathway's T'
        return BackboneOutput.from_dense(torch.cat([slow, fast], dim=1))  # (B, 2304, T', H', W') as tokens


class X3DConv5(nn.Module):
    """X3D's conv5 (1x1x1 conv, BN, ReLU): the part of PyTorchVideo's ``ProjectedPool`` before its pooling.

    Held under ``pool`` with PyTorchVideo's names, so hub keys ``blocks.5.pool.pre_*`` load unchanged.
    """

    def __init__(self, projected_pool: nn.Module) -> None:
        super().__init__()
        self.pool = nn.ModuleDict({"pre_conv": projected_pool.pre_conv, "pre_norm": projected_pool.pre_norm,
                                   "pre_act": projected_pool.pre_act})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.pool.values():
            x = layer(x)
        return x


class X3DBackbone(nn.Module):
    """PyTorchVideo X3D without its pooling and classifier: ``forward(x (B, 3, T, H, W)) -> BackboneOutput``."""

    head_prefixes = ("blocks.5.",)  # the checkpoint's post_conv / proj are the head; pre_conv / pre_norm load

    def __init__(self, blocks: nn.ModuleList, *, dim: int) -> None:
        super().__init__()
        self.blocks = blocks  # stem, res2..res5, conv5
        self.dim = dim

    def forward(self, x: torch.Tensor, *, keyframe: int | None = None) -> BackboneOutput:
        """``keyframe`` is accepted for interface parity with token-dropout ViTs; a dense CNN keeps everything."""
        for block in self.blocks:
            x = block(x)
        return BackboneOutput.from_dense(x)  # (B, 432, T, H/32, W/32) as tokens


@register_backbone
def build_slowfast_r50(*, alpha: int = 4) -> SlowFastBackbone:
    """SlowFast R50 8x8 (PyTorchVideo ``slowfast_r50``): 2304-wide tokens. ``alpha``: fast / slow frame ratio
    (the fusion convs' temporal stride; 4 in the published model: 32 fast frames, 8 slow)."""
    net = _pytorchvideo().slowfast.create_slowfast(model_depth=50, slowfast_fusion_conv_kernel_size=(7, 1, 1),
                                                   slowfast_fusion_conv_stride=(alpha, 1, 1), head=None)
    return SlowFastBackbone(nn.ModuleList(list(net.blocks)[:5]), alpha=alpha, dim=2048 + 2048 // 8)


@register_backbone
def build_x3d_s() -> X3DBackbone:
    """X3D-S (PyTorchVideo ``x3d_s``: width 2.0, depth 2.2; trained on 13 frames of 160x160): 432-wide tokens."""
    net = _pytorchvideo().x3d.create_x3d(input_clip_length=13, input_crop_size=160, width_factor=2.0, depth_factor=2.2)
    blocks = list(net.blocks)
    conv5 = X3DConv5(blocks[-1].pool)
    return X3DBackbone(nn.ModuleList([*blocks[:-1], conv5]), dim=conv5.pool["pre_conv"].out_channels)


def load_pytorchvideo_checkpoint(
    model: SlowFastBackbone | X3DBackbone,
    source: str | Path | Mapping[str, Any],
    *,
    strict: bool = True,
    cache_dir: str | Path | None = None,
) -> LoadReport:
    """Load a PyTorchVideo hub checkpoint (a path, URL, a ``PYTORCHVIDEO_ZOO`` name or a state dict) into ``model``.

    Reading is ``torch.load(weights_only=True)`` (``read_checkpoint``); the state dict is taken from
    ``model_state`` (PyTorchVideo / SlowFast) or ``state_dict`` / ``model``. The classification head's keys
    are skipped and listed; with ``strict`` (default) any other missing or unexpected key is an error, and a
    shape mismatch always is.

    Example::

        backbone = build_backbone("x3d_s")
        print(load_pytorchvideo_checkpoint(backbone, "X3D_S.pyth"))  # downloaded from PYTORCHVIDEO_ZOO["x3d_s.k400"]
    """
    if isinstance(source, Mapping):
        name, state = "<state dict>", unwrap_state_dict(source)
    else:
        name = str(source)
        state = read_checkpoint(PYTORCHVIDEO_ZOO.get(name, name), cache_dir=cache_dir)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    report = LoadReport(source=name, layout="pytorchvideo")
    ours = model.state_dict()
    for key in [k for k in state if k not in ours and k.startswith(model.head_prefixes)]:
        report.skipped.append(key)
        del state[key]
    if report.skipped:
        report.notes.append("classification head keys skipped: the backbone ends at the last feature map")
    for key in [k for k in state if k in ours and state[k].shape != ours[k].shape]:
        raise ValueError(f"{name}: {key} is {tuple(state[key].shape)} in the checkpoint but {tuple(ours[key].shape)} "
                         f"in the model: load a checkpoint of the same network ({type(model).__name__})")
    result = model.load_state_dict(state, strict=False)
    report.missing = list(result.missing_keys)
    report.unexpected = list(result.unexpected_keys)
    report.loaded = [k for k in state if k in ours]
    if strict and (report.missing or report.unexpected):
        raise ValueError(f"{name} does not fit {type(model).__name__}:\n{report}\npass strict=False to load what fits")
    return report
