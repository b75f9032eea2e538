"""Video metadata and a decodability check: ``probe_video`` opens a ``VideoSource`` and decodes one frame.

The backend rule is ``VideoSource``'s (``videoact.decode.source``): PyAV always opens and demuxes
the file first; decord decodes when it is installed and the file suits it, PyAV otherwise.
``backend="decord"`` or ``"pyav"`` forces one reader (no fallback).
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

from videoact.decode._common import VIDEO_EXTENSIONS, VideoDecodeError, VideoInfo
from videoact.decode.source import VideoSource

__all__ = ["VIDEO_EXTENSIONS", "VideoDecodeError", "VideoInfo", "fraction_str", "open_video", "probe_video",
           "sha256_file"]


def probe_video(path: str | Path, *, backend: str = "auto") -> VideoInfo:
    """Read a video's metadata and decode its first frame with the selected reader.

    Raises:
        VideoDecodeError: naming the file and why (missing, empty, not a video, no video stream, ...).
    """
    with open_video(path, backend=backend) as src:
        return src.info


def open_video(path: str | Path, *, backend: str = "auto", max_bad_frames: int = 0) -> VideoSource:
    """A ``VideoSource`` with its first frame decoded by the selected reader (so its record is settled); the
    caller closes it. ``probe_video`` and the main job (which keeps it open for every stage) share this."""
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"backend must be auto, decord or pyav, not {backend!r}")
    src = VideoSource(path, backend=backend, max_bad_frames=max_bad_frames)  # type: ignore[arg-type]
    try:
        src.get_frames([0])
    except BaseException:
        src.close()
        raise
    return src


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fraction_str(x: float) -> str:
    """Frame rates as ffprobe prints them (30000/1001) when they are not integers."""
    frac = Fraction(x).limit_denominator(1001)
    return str(frac.numerator) if frac.denominator == 1 else f"{frac.numerator}/{frac.denominator}"
