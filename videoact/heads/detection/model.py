"""The AVA action detector (a registered video backbone + a detection head) and its ``model.pt``.

``model.pt`` holds plain data and tensors only (``torch.load(weights_only=True)``): the backbone's registry
name and keyword arguments, the head's name and keyword arguments, the weights, the class ids and names of
the label map it was trained on, its label space, and the clip input (``ClipInput``). Loading rebuilds the
network from those names, so nothing but weights is unpickled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from videoact.annotations.store import atomic_torch_save, load_torch_checkpoint
from videoact.config import ConfigError, build_config, doc, to_dict
from videoact.decode.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize, to_float_cthw
from videoact.devices import module_device
from videoact.features.backbones import BackboneOutput, build_backbone
from videoact.heads.detection.evad import build_detection_head, pad_boxes

FORMAT = "videoact.ava_detection/1"


@dataclass(frozen=True)
class ClipInput:
    """How a keyframe becomes network input; saved in ``model.pt`` and reused at inference."""

    size: tuple[int, int] = doc("(height, width) every frame is resized to, whole (no crop: boxes cover the frame)",
                                default=(64, 64))
    clip_len: int = doc("frames per clip, centred on the keyframe (the keyframe is frame clip_len // 2)", default=8)
    frame_step: int = doc("frames between clip frames (EVAD's 16x4: 16 frames, step 4)", default=2)
    mean: tuple[float, float, float] = doc("per-channel mean of [0, 1] pixels (VideoMAE: ImageNet's)",
                                           default=IMAGENET_MEAN)
    std: tuple[float, float, float] = doc("per-channel std of [0, 1] pixels", default=IMAGENET_STD)


def prepare_clip(frames: torch.Tensor, spec: ClipInput) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(3, T, h, w)`` float: the whole frame resized to ``spec.size``, normalised."""
    video = to_float_cthw(frames)  # (3, T, H, W)
    if tuple(video.shape[-2:]) != tuple(spec.size):
        # interpolate treats T as the batch: (C, T, H, W) -> (T, C, H, W) and back
        video = F.interpolate(video.transpose(0, 1), size=tuple(spec.size), mode="bilinear", align_corners=False,
                              antialias=True).transpose(0, 1)
    return normalize(video, spec.mean, spec.std)


def flip_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes ``(..., 4)`` of a horizontally mirrored frame."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([1 - x2, y1, 1 - x1, y2], dim=-1)


class ActionDetector(nn.Module):
    """``forward(x (B, 3, T, H, W), boxes (B, A, 4), valid (B, A)) -> logits (B, A, K)`` for the keyframe's boxes."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor | None = None, *,
                keyframe: int | None = None, all_layers: bool = False) -> torch.Tensor:
        feats = self.backbone(x, keyframe=keyframe)
        if not isinstance(feats, BackboneOutput):
            raise TypeError(f"{type(self.backbone).__name__} returned {type(feats).__name__}, not BackboneOutput")
        return self.head(feats, boxes, valid, all_layers=all_layers)


def build_action_detector(*, backbone: str, backbone_kwargs: dict[str, Any], head: str = "evad",
                          head_kwargs: dict[str, Any], num_classes: int) -> ActionDetector:
    """A registered backbone (``features.backbones``) and head; the head learns the backbone's width and grid."""
    net = build_backbone(backbone, **backbone_kwargs)
    dim, grid = getattr(net, "dim", None), getattr(net, "grid", None)
    if dim is None or grid is None:
        raise ValueError(f"backbone {backbone!r} does not say its token width and grid (.dim, .grid)")
    kwargs = {"in_dim": dim, "grid": tuple(grid), **head_kwargs, "num_classes": num_classes}
    return ActionDetector(net, build_detection_head(head, **kwargs))


# ------------------------------------------------------------------------------------------------ model.pt


def save_detection_model(path: Path, net: ActionDetector, *, backbone: str, backbone_kwargs: dict[str, Any],
                         head: str, head_kwargs: dict[str, Any], class_ids: Sequence[int], class_names: Sequence[str],
                         label_space: str, clip: ClipInput, extra: dict[str, Any]) -> Path:
    """The inference checkpoint: float32 weights and plain data (loads with ``weights_only=True``)."""
    return atomic_torch_save({
        "format": FORMAT, "backbone": backbone, "backbone_kwargs": to_dict(backbone_kwargs), "head": head,
        "head_kwargs": to_dict(head_kwargs), "state_dict": {k: v.detach().float().clone()
                                                            for k, v in net.state_dict().items()},
        "class_ids": [int(i) for i in class_ids], "class_names": [str(n) for n in class_names],
        "label_space": label_space, "input": to_dict(clip), "extra": extra,
    }, path)


@dataclass
class DetectionModel:
    """A trained detector with its classes and input: what ``detect_video`` runs."""

    net: ActionDetector
    class_ids: tuple[int, ...]  # label-map ids (AVA action ids), one per output
    class_names: tuple[str, ...]
    label_space: str
    input: ClipInput
    meta: dict[str, Any] = field(default_factory=dict)
    name: str = "evad"

    @torch.no_grad()
    def predict(self, clips: torch.Tensor, boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``clips (B, 3, T, H, W)`` and per-clip boxes ``(n_i, 4)`` -> per-clip sigmoid scores ``(n_i, K)``."""
        self.net.eval()
        device = module_device(self.net)  # the stage put the net on runner.device; clips and RoIs follow it
        padded, valid = pad_boxes(boxes, device=device)
        logits = self.net(clips.to(device), padded, valid, keyframe=self.input.clip_len // 2)
        probs = logits.float().sigmoid().cpu().numpy()
        return [probs[i, :len(b)] for i, b in enumerate(boxes)]


def load_detection_model(path: str | Path) -> DetectionModel:
    """Load ``model.pt`` written by ``videoact train`` (trainer ``ava_detection``)."""
    path = Path(path)
    state = load_torch_checkpoint(path, fmt=FORMAT)
    try:
        clip = build_config(ClipInput, dict(state["input"]), where=path)
    except ConfigError as exc:
        raise ValueError(f"{path}: bad input spec ({exc})") from None
    net = build_action_detector(backbone=state["backbone"], backbone_kwargs=dict(state["backbone_kwargs"]),
                                head=state["head"], head_kwargs=dict(state["head_kwargs"]),
                                num_classes=len(state["class_ids"]))
    net.load_state_dict(state["state_dict"])
    net.eval()
    return DetectionModel(net=net, class_ids=tuple(state["class_ids"]), class_names=tuple(state["class_names"]),
                          label_space=str(state["label_space"]), input=clip, meta=dict(state["extra"]),
                          name=path.stem)
