"""PyAV backend: the metadata probe every source starts with, and the fallback frame reader.

PyAV reports broken input as Python exceptions (decord can abort or hang on some), so it is the
reader that looks at a file first. The probe demuxes the whole video stream once without decoding
(cheap next to decoding: decord does the same pass when it opens a file) to count the frames that
are really there and to collect their presentation times: container frame counts are wrong for
truncated files and some AVI headers, and VFR videos need per-frame times.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from videoact.decode._common import VideoDecodeError

_AV_ERRORS = (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError)
log = logging.getLogger("videoact.decode")


class Undecodable(VideoDecodeError):
    """One frame of an otherwise readable video does not decode (a damaged or missing packet)."""


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except _AV_ERRORS as exc:
        raise VideoDecodeError(path, f"not a readable video container ({type(exc).__name__}: {exc})") from None


def _rotation(stream: Any, first: av.VideoFrame | None) -> int:
    """Display-matrix rotation (degrees counter-clockwise, ffprobe's sign) as 0, 90, 180 or 270."""
    deg = 0.0
    if first is not None:
        deg = float(getattr(first, "rotation", 0) or 0)
    if not deg:  # older files carry the legacy 'rotate' tag (clockwise) instead of side data
        tag = stream.metadata.get("rotate") if stream.metadata else None
        if tag:
            try:
                deg = -float(tag)
            except ValueError:
                deg = 0.0
    return round(deg / 90.0) * 90 % 360


def probe(path: Path) -> dict[str, Any]:
    """Metadata of ``path``'s first video stream; raises ``VideoDecodeError`` naming the reason."""
    container = _open(path)
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            what = f"only {', '.join(kinds)} streams" if kinds else "no streams at all"
            raise VideoDecodeError(path, f"no video stream ({what})")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        tb = stream.time_base
        n_container = int(stream.frames or 0) or None
        # One demux pass: every packet that carries data and is not flagged corrupt is a frame.
        pts: list[int] = []
        keyframes_pts: list[int] = []
        last_dur = 0
        n_corrupt = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the flush packet at the end
                if packet.is_corrupt:
                    n_corrupt += 1
                    continue
                t = packet.pts if packet.pts is not None else packet.dts
                if t is None:
                    t = (pts[-1] + max(last_dur, 1)) if pts else 0
                pts.append(int(t))
                last_dur = int(packet.duration or 0)
                if packet.is_keyframe:
                    keyframes_pts.append(int(t))
        except av.error.FFmpegError:
            n_corrupt += 1  # a read error ends the demux: what was read so far is what the file has
        if not pts:
            raise VideoDecodeError(path, "the video stream holds no frames (truncated or empty stream)")
        # Decode the first frame: proves the codec works and gives the rotation side data.
        first = _first_frame(path, container, stream)
        pts_sorted = np.unique(np.asarray(pts, dtype=np.int64))  # presentation order
        n_frames = len(pts)
        tbf = float(tb) if tb else 0.0
        avg = stream.average_rate or stream.guessed_rate or stream.base_rate
        if tbf > 0 and len(pts_sorted) == n_frames:
            timestamps = pts_sorted.astype(np.float64) * tbf
            diffs = np.diff(timestamps)
            step = float(np.median(diffs)) if len(diffs) else (1.0 / float(avg) if avg else 0.0)
            end = timestamps[-1] + (last_dur * tbf if last_dur > 0 else step)
            span = end - timestamps[0]
            vfr = bool(len(diffs) > 1 and step > 0 and (diffs.max() - diffs.min()) > 0.1 * step + tbf)
        else:  # no usable timestamps (rare raw streams): fall back to the nominal rate
            fps0 = float(avg) if avg else 0.0
            timestamps = np.arange(n_frames, dtype=np.float64) / fps0 if fps0 > 0 else np.zeros(n_frames)
            span = n_frames / fps0 if fps0 > 0 else 0.0
            vfr = False
        count_ok = n_container == n_frames
        if stream.duration is not None and tb and count_ok:
            duration = float(stream.duration * tb)
        else:
            duration = float(span)
        if count_ok and avg:
            fps = float(avg)
        else:
            fps = n_frames / duration if duration > 0 else (float(avg) if avg else 0.0)
        if not math.isfinite(fps) or fps <= 0:
            raise VideoDecodeError(path, "the container reports no frame rate and the frames carry no timestamps")
        return {
            "fps": fps, "n_frames": n_frames, "duration_s": duration,
            "width": int(ctx.width or first.width), "height": int(ctx.height or first.height),
            "rotation": _rotation(stream, first), "codec": ctx.name or "", "pix_fmt": ctx.pix_fmt or "",
            "n_frames_exact": True, "n_frames_source": "packets", "n_frames_container": n_container,
            "vfr": vfr, "timestamps_s": timestamps, "n_corrupt_packets": n_corrupt,
            "keyframe_pts": np.asarray(sorted(keyframes_pts), dtype=np.int64), "pts": pts_sorted,
        }
    finally:
        container.close()


def _first_frame(path: Path, container: av.container.InputContainer, stream: Any) -> av.VideoFrame:
    try:
        container.seek(0, stream=stream, backward=True)
    except av.error.FFmpegError:
        pass
    for _, frame in _decode_packets(container, stream):
        return frame
    raise VideoDecodeError(path, f"no frame of the {stream.codec_context.name} stream decodes")


def _decode_packets(container: av.container.InputContainer, stream: Any) -> Iterator[tuple[int, av.VideoFrame]]:
    """Frames in decode order, skipping packets the decoder rejects instead of stopping at the first."""
    try:
        for packet in container.demux(stream):
            if packet.is_corrupt:
                continue
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue  # a damaged packet (truncated file): its frame is missing, the rest still decode
            for frame in frames:
                yield (frame.pts if frame.pts is not None else -1), frame
    except av.error.FFmpegError:
        return  # the demuxer hit the end of a truncated file


def rotate(frames: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the display rotation to (..., H, W, 3): counter-clockwise, as ffmpeg's autorotate and decord do."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(frames, k=k, axes=(-3, -2))) if k else frames


class PyAVReader:
    """Decodes frames by index: seeks to the keyframe before a request, then decodes forward.

    Consecutive requests continue from the current position without seeking, so a streaming pass
    decodes every frame once. Frames that are not requested are never converted to RGB.

    Damage: up to ``max_bad_frames`` frames that do not decode (a damaged packet) are replaced by the last frame
    that did, and listed in ``bad_frames``; one more is a ``VideoDecodeError``. Frames are numbered by their
    presentation time where the container has real ones (every format but AVI), so a lost packet leaves a gap
    instead of shifting every later frame by one.
    """

    name = "pyav"

    def __init__(self, path: Path, meta: dict[str, Any], *, num_threads: int = 0, max_bad_frames: int = 0) -> None:
        self.path, self._num_threads = path, num_threads
        self._max_bad = int(max_bad_frames)
        self.bad_frames: list[int] = []  # indices replaced by the previous good frame
        self._last: av.VideoFrame | None = None
        self._by_pts = True  # number every frame by its pts (False for AVI: set when the file is opened)
        self._pts: np.ndarray = meta["pts"]  # (n_frames,) presentation times in stream time base, sorted
        self._key_idx = np.searchsorted(self._pts, meta["keyframe_pts"])  # keyframe frame indices
        self._rotation = int(meta["rotation"])
        self._n = int(meta["n_frames"])
        self._container: av.container.InputContainer | None = None
        self._it: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._next = 0  # index of the next frame self._it yields
        self._buffer: tuple[int, av.VideoFrame] | None = None
        # One swscale context for every frame: ``frame.reformat`` builds a new one per frame, which with
        # FFmpeg 8 costs ~6 ms (more than decoding a small frame); a kept reformatter reuses its context.
        self._rgb = VideoReformatter()

    def _ensure_open(self) -> None:
        if self._container is None:
            self._container = _open(self.path)
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"  # frame + slice threads: the fast path for sequential decoding
            stream.thread_count = self._num_threads
            self._by_pts = "avi" not in str(self._container.format.name).split(",")
            self._it, self._next = None, 0

    def _seek_to(self, index: int) -> None:
        assert self._container is not None
        stream = self._container.streams.video[0]
        k = int(np.searchsorted(self._key_idx, index, side="right")) - 1
        key = int(self._key_idx[k]) if k >= 0 else 0
        if self._it is not None and key <= self._next <= index:
            return  # already decoding inside the right GOP: keep going
        self._container.seek(int(self._pts[key]), stream=stream, backward=True, any_frame=False)
        self._it = self._indexed(_decode_packets(self._container, stream), key)
        self._next = -1  # unknown until the first frame comes out

    def _indexed(self, frames: Iterator[tuple[int, av.VideoFrame]], key: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Number decoded frames: the first after a seek by its pts, the rest by counting.

        Decoders emit frames in presentation order, but frame pts are not always usable to number
        them (AVI has no real pts: with B-frames they come out as 1, 2, 4, 3, ...).
        """
        prev = -1
        for pts, frame in frames:
            if prev < 0 or self._by_pts:
                j = int(np.searchsorted(self._pts, pts)) if pts >= 0 else self._n
                found = j < self._n and self._pts[j] == pts and j > prev
                i = j if found else (key if prev < 0 else prev + 1)
            else:
                i = prev + 1
            prev = i
            yield i, frame

    def read(self, indices: np.ndarray, *, sequential: bool = False) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as (T, H, W, 3) uint8, rotation applied.

        ``sequential`` is accepted for symmetry with decord: forward reads never seek here anyway.
        """
        self._ensure_open()
        wanted, inverse = np.unique(indices, return_inverse=True)  # decode in file order, each frame once
        out: np.ndarray | None = None
        for k, target in enumerate(wanted.tolist()):
            try:
                frame = self._frame(int(target))
            except Undecodable as exc:
                if self._last is None or len(self.bad_frames) >= self._max_bad:
                    if self.bad_frames:
                        raise Undecodable(self.path, f"{exc.reason}; {len(self.bad_frames)} frame(s) already "
                                                     f"replaced (decode.max_bad_frames={self._max_bad})") from None
                    raise
                self.bad_frames.append(int(target))
                log.warning("%s: %s; the previous frame stands in (%d of decode.max_bad_frames=%d)", self.path,
                            exc.reason, len(self.bad_frames), self._max_bad)
                frame = self._last
            self._last = frame
            plane = self._rgb.reformat(frame, format="rgb24").planes[0]
            h, w = plane.height, plane.width
            if out is None:
                out = np.empty((len(wanted), h, w, 3), dtype=np.uint8)  # (T, H, W, 3), as coded
            # One copy, from swscale's buffer straight into the batch (rows may carry padding).
            out[k] = np.frombuffer(memoryview(plane), np.uint8).reshape(h, plane.line_size)[:, : w * 3].reshape(h, w, 3)
        assert out is not None
        if len(wanted) != len(indices) or not (inverse == np.arange(len(indices))).all():
            out = out[inverse]
        return rotate(out, self._rotation)

    def _frame(self, target: int) -> av.VideoFrame:
        if not (0 <= target < self._n):
            raise VideoDecodeError(self.path, f"frame {target} is out of range (the video has {self._n} frames)")
        self._seek_to(target)  # a no-op while decoding forward inside the right GOP
        assert self._it is not None
        for i, frame in self._it:
            self._next = i + 1
            if i == target:
                return frame
            if i > target:
                break
        self._it = None
        raise Undecodable(self.path, f"frame {target} of {self._n} does not decode (damaged or missing data)")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._it = None, None
