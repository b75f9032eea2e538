"""Clip transforms, kept apart from decoding: uint8 frames ``(T, H, W, 3)`` -> model input ``(C, T, H, W)``.

Decoders return pixels exactly as decoded; every resize, crop and normalisation happens here, once,
in torch, so the same clip can feed models with different input sizes::

    x = clip_to_tensor(frames, short_side=256, crop=224, mean=KINETICS_MEAN, std=KINETICS_STD)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

KINETICS_MEAN = (0.45, 0.45, 0.45)  # pytorchvideo / SlowFast Kinetics statistics, on [0, 1] pixels
KINETICS_STD = (0.225, 0.225, 0.225)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # VideoMAE and timm ViTs
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_float_cthw(frames: torch.Tensor) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, H, W) float32 in [0, 1]."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {tuple(frames.shape)}")
    return frames.permute(3, 0, 1, 2).to(torch.float32).div_(255.0)


def short_side_resize(video: torch.Tensor, size: int, *, mode: str = "bilinear") -> torch.Tensor:
    """Scale (C, T, H, W) so its shorter side is ``size``, keeping the aspect ratio."""
    _, _, h, w = video.shape
    if min(h, w) == size:
        return video
    if h <= w:
        new_h, new_w = size, max(1, round(w * size / h))
    else:
        new_h, new_w = max(1, round(h * size / w)), size
    # interpolate treats T as the batch: (C, T, H, W) -> (T, C, H, W) and back.
    out = F.interpolate(video.transpose(0, 1), size=(new_h, new_w), mode=mode, align_corners=False, antialias=True)
    return out.transpose(0, 1)


def centre_crop(video: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Central ``size`` crop of (C, T, H, W); raises when the video is smaller than the crop."""
    ch, cw = (size, size) if isinstance(size, int) else size
    _, _, h, w = video.shape
    if ch > h or cw > w:
        raise ValueError(f"crop {ch}x{cw} is larger than the {h}x{w} frames; resize first")
    top, left = (h - ch) // 2, (w - cw) // 2
    return video[:, :, top:top + ch, left:left + cw]


def normalize(video: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(C, T, H, W) float: subtract ``mean`` and divide by ``std`` per channel."""
    m = torch.as_tensor(mean, dtype=video.dtype, device=video.device).view(-1, 1, 1, 1)
    s = torch.as_tensor(std, dtype=video.dtype, device=video.device).view(-1, 1, 1, 1)
    return (video - m) / s


def clip_to_tensor(frames: torch.Tensor, *, short_side: int | None = None, crop: int | tuple[int, int] | None = None,
                   mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> torch.Tensor:
    """The usual test-time pipeline: (T, H, W, 3) uint8 -> (3, T, h, w) float, resized, cropped, normalised."""
    video = to_float_cthw(frames)
    if short_side is not None:
        video = short_side_resize(video, short_side)
    if crop is not None:
        video = centre_crop(video, crop)
    if mean is not None or std is not None:
        video = normalize(video, mean or (0.0, 0.0, 0.0), std or (1.0, 1.0, 1.0))
    return video
