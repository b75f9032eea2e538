"""Clip transforms, kept apart from decoding: uint8 frames ``(T, H, W, 3)`` -> model input ``(C, T, H, W)``.

Decoders return pixels exactly as decoded; every resize, crop and normalisation happens here, once,
in torch, so the same clip can feed models with different input sizes::

    x = clip_to_tensor(frames, short_side=256, crop=224, mean=KINETICS_MEAN, std=KINETICS_STD)

A published model is evaluated with its source's own test pipeline, and the pixels differ between them (which
resampler, antialiased or not, how the new size and the crop offset are rounded, on uint8 or on float).
``clip_pipeline`` reproduces each one exactly; ``resize`` names the source (``RESIZE_MODES``):

* ``torch``: ours (and what ``ClipRecognizer`` models are trained with): float [0, 1], antialiased bilinear
  ``F.interpolate``, long side ``round(long * size / short)``, crop offset ``(h - crop) // 2``.
* ``pytorchvideo``: PyTorchVideo's hub test transform: ``x / 255``, ``NormalizeVideo``, ``ShortSideScale``
  (bilinear, ``align_corners=False``, no antialias, long side ``int(floor(long / short * size))``), then
  torchvision's ``CenterCropVideo`` (offset ``int(round((h - crop) / 2))``, Python's half-to-even rounding).
* ``cv2``: mmaction2's ``Resize(scale=(-1, size))`` = ``mmcv.imresize`` = ``cv2.resize(INTER_LINEAR)`` on the
  uint8 frames, new size by mmcv's ``rescale_size`` (``int(side * size / short + 0.5)``); ``CenterCrop``
  (offset ``(h - crop) // 2``); ``ActionDataPreprocessor``: float, ``(x - 255 * mean) / (255 * std)``.
* ``pil``: Hugging Face's ``VideoMAEImageProcessor`` (the PIL one; ``VideoMAEImageProcessorPil`` in
  transformers 5): PIL bilinear on the uint8 frames, long side ``int(size * long / short)``, crop offset
  ``(h - crop) // 2``, ``x * (1 / 255)`` in float64 cast to float32, then ``(x - mean) / std``.

``mean`` / ``std`` are always given for [0, 1] pixels; ``cv2`` scales them by 255 as mmaction2's config does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

KINETICS_MEAN = (0.45, 0.45, 0.45)  # pytorchvideo / SlowFast Kinetics statistics, on [0, 1] pixels
KINETICS_STD = (0.225, 0.225, 0.225)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # VideoMAE and timm ViTs
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES: tuple[str, ...] = ("torch", "pytorchvideo", "cv2", "pil")


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


# ---------------------------------------------------------------------------------- sources' test pipelines


def check_resize_mode(mode: str) -> str:
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {mode!r}")
    return mode


def short_side_size(h: int, w: int, size: int, mode: str) -> tuple[int, int]:
    """(new_h, new_w) with the shorter side ``size``, the longer one rounded as ``mode``'s source rounds it."""
    check_resize_mode(mode)
    short, long = (h, w) if h <= w else (w, h)
    if mode == "torch":
        new_long = max(1, round(long * size / short))
    elif mode == "pytorchvideo":  # short_side_scale: int(math.floor((float(h) / w) * size))
        new_long = math.floor((float(long) / short) * size)
    elif mode == "cv2":  # mmcv.rescale_size with scale (inf, size): int(side * scale_factor + 0.5), both sides
        factor = min(math.inf / long, size / short)
        return int(h * float(factor) + 0.5), int(w * float(factor) + 0.5)
    else:  # pil: transformers' get_resize_output_image_size(default_to_square=False)
        new_long = int(size * long / short)
    return (size, new_long) if h <= w else (new_long, size)


def centre_offset(side: int, crop: int, mode: str) -> int:
    """Where ``mode``'s centre crop starts: ``(side - crop) // 2``, torchvision's ``int(round(...))`` for
    ``pytorchvideo``."""
    if mode == "pytorchvideo":
        return round((side - crop) / 2.0)  # half to even, as torchvision's int(round(...))
    return (side - crop) // 2


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise ImportError("resize: cv2 (mmaction2's test pipeline) needs OpenCV: pip install 'videoact[pose]' "
                          "(mediapipe brings it) or pip install opencv-python-headless") from None
    return cv2


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("resize: pil (Hugging Face's VideoMAE image processor) needs Pillow: "
                          "pip install pillow") from None
    return Image


def _uint8_frames(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    arr = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {tuple(arr.shape)}")
    if arr.dtype != np.uint8:
        raise ValueError(f"resize cv2 / pil work on the decoded uint8 frames, got {arr.dtype}")
    return arr


def resize_frames_uint8(frames: torch.Tensor | np.ndarray, size: int, mode: str) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> uint8 (T, h, w, 3), short side ``size``: ``cv2.resize(INTER_LINEAR)`` (``cv2``,
    as ``mmcv.imresize``) or PIL's bilinear ``Image.resize`` (``pil``, as transformers' ``resize``)."""
    if mode not in ("cv2", "pil"):
        raise ValueError(f"resize_frames_uint8 does cv2 or pil, not {mode!r}")
    arr = _uint8_frames(frames)
    h, w = arr.shape[1:3]
    new_h, new_w = short_side_size(h, w, size, mode)
    if (new_h, new_w) == (h, w):
        return torch.from_numpy(np.ascontiguousarray(arr))
    if mode == "cv2":
        cv2 = _cv2()
        out = [cv2.resize(np.ascontiguousarray(f), (new_w, new_h), interpolation=cv2.INTER_LINEAR) for f in arr]
    else:
        image = _pil()
        out = [np.asarray(image.fromarray(np.ascontiguousarray(f)).resize((new_w, new_h), image.BILINEAR))
               for f in arr]
    return torch.from_numpy(np.stack(out))


def short_side_scale(video: torch.Tensor, size: int) -> torch.Tensor:
    """PyTorchVideo's ``short_side_scale`` on float (C, T, H, W): bilinear, no antialias, floor-rounded."""
    _, _, h, w = video.shape
    new_h, new_w = short_side_size(h, w, size, "pytorchvideo")
    return F.interpolate(video, size=(new_h, new_w), mode="bilinear", align_corners=False)


def clip_pipeline(frames: torch.Tensor, *, short_side: int, crop: int, mean: Sequence[float], std: Sequence[float],
              resize: str = "torch", rng: np.random.Generator | None = None, flip: float = 0.0) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (3, T, crop, crop): ``resize``'s source pipeline (module doc), exactly.

    Without ``rng`` the crop is central (each source's rounding); with it the crop is placed at random and the
    clip is mirrored left-right with probability ``flip`` (training).
    """
    check_resize_mode(resize)
    if resize == "torch":
        video = short_side_resize(to_float_cthw(frames), short_side)  # (3, T, h, w) float [0, 1]
    elif resize == "pytorchvideo":  # x / 255, NormalizeVideo, ShortSideScale: normalised before the resize
        video = short_side_scale(normalize(to_float_cthw(frames), mean, std), short_side)
    else:
        video = resize_frames_uint8(frames, short_side, resize).permute(3, 0, 1, 2)  # (3, T, h, w) uint8
    _, _, h, w = video.shape
    if crop > min(h, w):
        raise ValueError(f"crop {crop} is larger than the resized {h}x{w} frames: set crop <= short_side")
    if rng is None:
        top, left = centre_offset(h, crop, resize), centre_offset(w, crop, resize)
    else:
        top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    video = video[:, :, top:top + crop, left:left + crop]
    if rng is not None and flip and rng.random() < flip:
        video = video.flip(-1)
    if resize == "torch":
        video = normalize(video, mean, std)
    elif resize == "cv2":  # ActionDataPreprocessor: float pixels, mean / std in [0, 255] units
        video = normalize(video.to(torch.float32), [255 * m for m in mean], [255 * s for s in std])
    elif resize == "pil":  # transformers' rescale (float64, then float32) and normalize (float32)
        video = normalize(video.to(torch.float64).mul_(1 / 255).to(torch.float32), mean, std)
    return video.contiguous()
