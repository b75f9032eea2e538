"""Types shared by every decode backend: the error, the metadata record, the extensions we look for."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})


class VideoDecodeError(RuntimeError):
    """A video cannot be read; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    """What we know about a video after one demux pass and one decoded frame.

    ``width``/``height`` are the coded size (what ffprobe prints); ``rotation`` is the display-matrix
    rotation in degrees counter-clockwise as ffprobe prints it, normalised to 0/90/180/270. Frames
    from ``VideoSource`` are returned upright (rotation applied), so their size is ``display_size``.
    """

    path: str
    fps: float  # average frame rate: n_frames / duration for VFR videos (ffprobe's avg_frame_rate)
    n_frames: int
    duration_s: float
    width: int
    height: int
    rotation: int
    codec: str
    backend: str  # reader that decodes the frames (decord or pyav)
    n_frames_exact: bool  # True when counted (packets or decoded frames), False when estimated from duration
    n_frames_source: str = "packets"  # packets | decoded | container | estimated
    n_frames_container: int | None = None  # what the container header claims (None when it says nothing)
    vfr: bool = False  # frame intervals vary: use timestamps_s, not index / fps
    pix_fmt: str = ""
    backend_note: str = ""  # why auto selection did not pick decord, when it did not
    timestamps_s: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)  # (n_frames,)

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) of the frames as returned, after the rotation is applied."""
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able metadata (without the per-frame timestamps)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "timestamps_s"}
