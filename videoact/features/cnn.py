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

Whole classifiers (the model zoo's ``layout: pytorchvideo`` cards: x3d_xs, x3d_s, x3d_m, slowfast_r50):
``build_pytorchvideo_classifier(arch)`` builds the hub's network head included (``PyTorchVideoClassifier``:
``forward`` gives logits, ``predict`` probabilities), ``load_pytorchvideo_classifier(card, files)`` loads a
card's downloaded checkpoint into it strictly. The same checkpoints load into the backbones above
(``CLASSIFIER_BACKBONES``) with only the head left over.

Input normalisation of the Kinetics checkpoints: ``decode.transforms.KINETICS_MEAN`` / ``KINETICS_STD``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from videoact.features.backbones import PRETRAINED, BackboneOutput, register_backbone
from videoact.features.vit.checkpoints import LoadReport, read_checkpoint, unwrap_state_dict

if TYPE_CHECKING:
    from videoact.models import ModelCard


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
    """Load a PyTorchVideo hub checkpoint into ``model``: a path, URL, model-zoo name (``x3d_s_k400``) or state dict.

    Reading is ``torch.load(weights_only=True)`` (``read_checkpoint``); the state dict is taken from
    ``model_state`` (PyTorchVideo / SlowFast) or ``state_dict`` / ``model``. The classification head's keys
    are skipped and listed; with ``strict`` (default) any other missing or unexpected key is an error, and a
    shape mismatch always is.

    Example::

        backbone = build_backbone("x3d_s")
        print(load_pytorchvideo_checkpoint(backbone, "x3d_s_k400"))  # the zoo card's X3D_S.pyth, downloaded once
    """
    if isinstance(source, Mapping):
        name, state = "<state dict>", unwrap_state_dict(source)
    else:
        name = str(source)
        state = read_checkpoint(name, cache_dir=cache_dir)
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


# ---------------------------------------------------------------------------------------------------------------
# Whole Kinetics-400 classifiers (the model zoo's ``layout: pytorchvideo`` cards)
# ---------------------------------------------------------------------------------------------------------------

# The hub's builders (``pytorchvideo/models/hub/x3d.py`` / ``slowfast.py``), keyword for keyword. The three X3D
# checkpoints share width 2.0 / depth 2.2 (create_x3d's defaults) and differ only in the clip they were trained
# on, which fixes the head's pooling kernel: (T, crop / 32, crop / 32).
_CLASSIFIER_KWARGS: dict[str, dict[str, Any]] = {
    "x3d_xs": {"input_clip_length": 4, "input_crop_size": 160},
    "x3d_s": {"input_clip_length": 13, "input_crop_size": 160},
    "x3d_m": {"input_clip_length": 16, "input_crop_size": 224},
    "slowfast_r50": {"model_depth": 50, "slowfast_fusion_conv_kernel_size": (7, 1, 1)},
}
# the backbone (features without the head) each classifier checkpoint also loads into (load_pytorchvideo_checkpoint)
CLASSIFIER_BACKBONES: dict[str, str] = {"x3d_xs": "x3d_s", "x3d_s": "x3d_s", "x3d_m": "x3d_s",
                                        "slowfast_r50": "slowfast_r50"}


class PyTorchVideoClassifier(nn.Module):
    """A PyTorchVideo hub classifier: ``forward(x (B, 3, T, H, W)) -> logits (B, num_classes)``.

    ``blocks`` is the hub network's own ``ModuleList`` (keys ``blocks.N...``, so a hub checkpoint loads with
    ``strict=True``). The head runs as the hub's ``ResNetBasicHead`` does, except that it stops before the
    activation and the global average: ``logit_map`` is the projection at every position the head's fixed
    pooling kernel leaves (one position at the training size, e.g. 2 x 2 when X3D-S sees 182 px), ``forward``
    averages it. ``predict`` gives the probabilities exactly as the hub model does in eval mode: X3D's head
    applies its softmax at each position and then averages (``softmax_per_position``); SlowFast's head has no
    activation, so its averaged logits go through one softmax (the PyTorchVideo tutorial's ``post_act``).

    SlowFast (``alpha`` set) takes the fast pathway only and picks the slow one itself, as the tutorial's
    ``PackPathway``: ``T // alpha`` frames at ``torch.linspace(0, T - 1, T // alpha).long()``.
    """

    multi_label = False

    def __init__(self, blocks: nn.ModuleList, *, arch: str, num_classes: int, alpha: int | None = None,
                 softmax_per_position: bool = False) -> None:
        super().__init__()
        self.blocks = blocks
        self.arch, self.num_classes, self.alpha = arch, num_classes, alpha
        self.softmax_per_position = softmax_per_position
        head = blocks[-1]
        head.activation = None  # the hub's Softmax (X3D) / None (SlowFast): applied in predict instead
        head.output_pool = None  # keep the per-position map: forward / predict average it

    def pathways(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, T, H, W) -> [slow (B, 3, T // alpha, H, W), fast = x] (PyTorchVideo's ``PackPathway``)."""
        assert self.alpha is not None
        t = x.shape[2]
        if t < self.alpha:
            raise ValueError(f"{self.arch} needs at least alpha = {self.alpha} frames, got {t}")
        idx = torch.linspace(0, t - 1, t // self.alpha).long().to(x.device)
        return [torch.index_select(x, 2, idx), x]

    def logit_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, num_classes, t, h, w): the head's projection at each pooled position."""
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"{self.arch} expects (B, 3, T, H, W) clips, got {tuple(x.shape)}")
        out: Any = self.pathways(x) if self.alpha is not None else x
        for block in self.blocks:
            out = block(out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes): the hub's pre-activation output, averaged over the pooled positions."""
        return self.logit_map(x).mean(dim=(2, 3, 4))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, num_classes), as the hub network's eval-mode output (see the class doc)."""
        logits = self.logit_map(x)
        if self.softmax_per_position:
            return logits.softmax(dim=1).mean(dim=(2, 3, 4))
        return logits.mean(dim=(2, 3, 4)).softmax(dim=1)


def build_pytorchvideo_classifier(arch: str, **kwargs: Any) -> PyTorchVideoClassifier:
    """The whole Kinetics-400 classifier ``arch`` (x3d_xs, x3d_s, x3d_m, slowfast_r50) with the hub's exact
    hyper-parameters and random weights. ``kwargs`` go to PyTorchVideo's builder (``model_num_class``, ...);
    ``alpha`` (SlowFast: fast / slow frame ratio, 4 in the published model) sets the fusion convs' stride."""
    if arch not in _CLASSIFIER_KWARGS:
        raise KeyError(f"no PyTorchVideo classifier {arch!r}: known are {', '.join(_CLASSIFIER_KWARGS)}")
    pv = _pytorchvideo()
    opts = {**_CLASSIFIER_KWARGS[arch], **kwargs}
    if arch.startswith("slowfast"):
        alpha = int(opts.pop("alpha", 4))
        opts.setdefault("slowfast_fusion_conv_stride", (alpha, 1, 1))
        net = pv.slowfast.create_slowfast(**opts)
        return PyTorchVideoClassifier(net.blocks, arch=arch, num_classes=opts.get("model_num_class", 400),
                                      alpha=alpha)
    net = pv.x3d.create_x3d(**opts)
    return PyTorchVideoClassifier(net.blocks, arch=arch, num_classes=opts.get("model_num_class", 400),
                                  softmax_per_position=True)


def load_pytorchvideo_classifier(card: ModelCard, files: Mapping[str, Path]) -> PyTorchVideoClassifier:
    """A zoo card's classifier (``layout: pytorchvideo``) with its downloaded weights, in eval mode.

    Built from ``card.arch`` / ``card.arch_kwargs``; ``files["weights"]`` is read with ``torch.load(weights_only=
    True)`` and loaded strictly: a missing or unexpected key is a ``ValueError`` naming the file and the keys.
    """
    path = Path(files["weights"])
    model = build_pytorchvideo_classifier(card.arch, **dict(card.arch_kwargs))
    state = {k.removeprefix("module."): v for k, v in read_checkpoint(path).items()}
    ours = model.state_dict()
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    if missing or unexpected:
        def first(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "") if keys else "none"
        raise ValueError(f"model {card.name}: {path} is not a {card.arch} checkpoint (layout pytorchvideo): "
                         f"missing keys: {first(missing)}; unexpected keys: {first(unexpected)}")
    for key in ours:
        if state[key].shape != ours[key].shape:
            raise ValueError(f"model {card.name}: {path}: {key} is {tuple(state[key].shape)} in the checkpoint but "
                             f"{tuple(ours[key].shape)} in {card.arch} (check the card's arch / arch_kwargs)")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _pretrained_backbone(card: Any, files: Mapping[str, Path], **kwargs: Any) -> nn.Module:
    """``build_backbone(NAME, pretrained=True)`` for a PyTorchVideo card: its backbone, the hub weights but the head."""
    arch = CLASSIFIER_BACKBONES.get(card.arch)
    if arch is None:
        raise ValueError(f"model {card.name}: no backbone for arch {card.arch!r} "
                         f"(known: {', '.join(CLASSIFIER_BACKBONES)})")
    options = {k: v for k, v in card.arch_kwargs.items() if k != "model_num_class"}
    backbone = build_slowfast_r50(**{**options, **kwargs}) if arch == "slowfast_r50" else build_x3d_s(**kwargs)
    load_pytorchvideo_checkpoint(backbone, files["weights"])
    return backbone.eval()


PRETRAINED.register("pytorchvideo", _pretrained_backbone)
