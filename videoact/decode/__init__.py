"""Decode stage: read videos (decord first, PyAV fallback) into metadata, frames and clips.

``VideoSource`` reads frames; ``samplers`` turns a frame count into clip index lists (pure logic);
``transforms`` turns uint8 ``(T, H, W, 3)`` clips into model input ``(C, T, H, W)``.
"""

from importlib import import_module
from typing import Any

from videoact.decode._common import VIDEO_EXTENSIONS, VideoDecodeError, VideoInfo

# Readers import torch and the codecs; load them on first use so `videoact --help` and error
# handling stay light (PEP 562 module __getattr__).
_LAZY = {
    "probe_video": "probe", "every_frame": "samplers", "frame_at_time": "samplers", "keyframe_clips": "samplers",
    "keyframe_times": "samplers", "sliding_window_clips": "samplers", "uniform_clips": "samplers",
    "BACKENDS": "source", "VideoSource": "source", "centre_crop": "transforms", "clip_to_tensor": "transforms",
    "normalize": "transforms", "short_side_resize": "transforms", "to_float_cthw": "transforms",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"videoact.decode.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'videoact.decode' has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "VIDEO_EXTENSIONS",
    "VideoDecodeError",
    "VideoInfo",
    "VideoSource",
    "centre_crop",
    "clip_to_tensor",
    "every_frame",
    "frame_at_time",
    "keyframe_clips",
    "keyframe_times",
    "normalize",
    "probe_video",
    "short_side_resize",
    "sliding_window_clips",
    "to_float_cthw",
    "uniform_clips",
]
