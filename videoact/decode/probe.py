"""Video metadata and a decodability check, with decord first and PyAV as the fallback.

Selection rule (``backend="auto"``): the container is always opened with PyAV first, because PyAV
reports broken files as exceptions while decord can crash the process on some of them; then the
first frame is decoded with decord when it is installed, and with PyAV when decord is missing or
fails. ``backend="decord"`` or ``"pyav"`` forces one reader (no fallback).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})


class VideoDecodeError(RuntimeError):
    """A video cannot be read; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows about a file before decoding all of it."""

    path: str
    fps: float
    n_frames: int
    duration_s: float
    width: int
    height: int
    rotation: int
    codec: str
    backend: str  # reader that decoded the first frame
    n_frames_exact: bool  # False when the container gives no frame count and it was estimated

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pyav_metadata(path: Path) -> dict[str, Any]:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoDecodeError(path, f"not a readable video container ({type(exc).__name__}: {exc})") from None
    try:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream (audio-only or data file)")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        n_frames = int(stream.frames or 0)
        exact = n_frames > 0
        if not exact and fps > 0:
            n_frames = round(duration * fps)
        ctx = stream.codec_context
        try:
            first = next(container.decode(stream))
        except StopIteration:
            raise VideoDecodeError(path, "the video stream has no decodable frame") from None
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(path, f"cannot decode the first frame ({exc})") from None
        rotation = int(getattr(first, "rotation", 0) or 0) % 360
        return {
            "fps": fps, "n_frames": n_frames, "duration_s": duration, "width": int(ctx.width or first.width),
            "height": int(ctx.height or first.height), "rotation": rotation, "codec": ctx.name or "",
            "n_frames_exact": exact,
        }
    finally:
        container.close()


def _decord_first_frame(path: Path) -> tuple[int, float, np.ndarray]:
    import decord  # imported lazily: optional on platforms without wheels

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    try:
        frame = reader[0].asnumpy()  # (H, W, 3) uint8
        return len(reader), float(reader.get_avg_fps()), frame
    finally:
        del reader  # decord keeps its demuxer open until the reader is collected


def probe_video(path: str | Path, *, backend: str = "auto") -> VideoInfo:
    """Read a video's metadata and decode its first frame to prove it is readable.

    Raises:
        VideoDecodeError: naming the file and why (missing, empty, not a video, no video stream, ...).
    """
    path = Path(path)
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"backend must be auto, decord or pyav, not {backend!r}")
    if not path.is_file():
        raise VideoDecodeError(path, "no such file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    meta = _pyav_metadata(path)
    used = "pyav"
    if backend in ("auto", "decord"):
        try:
            n_frames, fps, _ = _decord_first_frame(path)
            used = "decord"
            if not meta["n_frames_exact"] and n_frames > 0:
                meta["n_frames"] = n_frames
            if meta["fps"] <= 0 and fps > 0:
                meta["fps"] = fps
        except Exception as exc:  # decord raises its own DECORDError and plain RuntimeErrors
            if backend == "decord":
                raise VideoDecodeError(path, f"decord cannot read it ({exc}); try decode.backend=pyav") from None
    if meta["fps"] <= 0:
        raise VideoDecodeError(path, "the container reports no frame rate")
    return VideoInfo(path=str(path), backend=used, **meta)


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
