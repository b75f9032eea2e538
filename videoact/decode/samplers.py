"""Clip samplers: pure index logic (no I/O), each returning a list of int64 frame-index arrays.

A sampler only needs the frame count (and, for time-based sampling, the frame timestamps, so
variable-frame-rate videos map seconds to the right frames). ``VideoSource.clips`` decodes the lists::

    clips = uniform_clips(len(src), num_clips=10, clip_len=16, frame_step=2)
    for clip in src.clips(clips):  # (16, H, W, 3) uint8 each
        ...

Every index lies in ``[0, n_frames)``: windows that would overhang the start or the end are clamped
(frames repeat at the borders), which is what AVA and recognition test-time sampling expect.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

ClipIndices = list[np.ndarray]  # one int64 array of frame indices per clip


def _check(n_frames: int, clip_len: int, frame_step: int) -> None:
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    if clip_len <= 0 or frame_step <= 0:
        raise ValueError(f"clip_len and frame_step must be positive, got {clip_len} and {frame_step}")


def uniform_clips(n_frames: int, *, num_clips: int, clip_len: int, frame_step: int = 1) -> ClipIndices:
    """``num_clips`` clips whose centres are spread evenly over the video (multi-view testing).

    Clip ``k`` is centred at ``(k + 0.5) / num_clips`` of the video; a video shorter than one clip
    span gives clips clamped to its frames rather than no clips.
    """
    _check(n_frames, clip_len, frame_step)
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    span = (clip_len - 1) * frame_step + 1
    offsets = np.arange(clip_len, dtype=np.int64) * frame_step
    clips = []
    for k in range(num_clips):
        centre = (k + 0.5) * n_frames / num_clips
        start = int(np.floor(centre - span / 2))
        start = min(max(start, 0), max(n_frames - span, 0))
        clips.append(np.clip(start + offsets, 0, n_frames - 1))
    return clips


def sliding_window_clips(n_frames: int, *, window: int, stride: int, frame_step: int = 1,
                         drop_last: bool = False) -> ClipIndices:
    """Dense windows of ``window`` frames every ``stride`` frames (temporal detection features).

    The last window is shifted back to end on the last frame so the tail is covered, unless
    ``drop_last``; a video shorter than one window gives one clamped window.
    """
    _check(n_frames, window, frame_step)
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    span = (window - 1) * frame_step + 1
    offsets = np.arange(window, dtype=np.int64) * frame_step
    if n_frames <= span:
        return [] if drop_last and n_frames < span else [np.clip(offsets, 0, n_frames - 1)]
    starts = list(range(0, n_frames - span + 1, stride))
    if not drop_last and starts[-1] + span < n_frames:
        starts.append(n_frames - span)
    return [s + offsets for s in starts]


def frame_at_time(t_s: float, timestamps_s: np.ndarray) -> int:
    """Index of the frame showing time ``t_s``: the last frame starting at or before it (VFR-safe)."""
    i = int(np.searchsorted(timestamps_s, t_s + 1e-6, side="right")) - 1
    return min(max(i, 0), len(timestamps_s) - 1)


def keyframe_clips(timestamps_s: np.ndarray, keyframes_s: Sequence[float], *, clip_len: int,
                   frame_step: int = 1) -> ClipIndices:
    """One clip centred on each keyframe time (AVA: keyframes at 1 Hz, clip of ``clip_len`` frames).

    The keyframe frame sits at position ``clip_len // 2`` of its clip; ``timestamps_s`` are the
    presentation times of the frames (``VideoInfo.timestamps_s``), so VFR videos map correctly.
    """
    timestamps_s = np.asarray(timestamps_s, dtype=np.float64)
    _check(len(timestamps_s), clip_len, frame_step)
    offsets = (np.arange(clip_len, dtype=np.int64) - clip_len // 2) * frame_step
    last = len(timestamps_s) - 1
    return [np.clip(frame_at_time(float(t), timestamps_s) + offsets, 0, last) for t in keyframes_s]


def keyframe_times(duration_s: float, *, hz: float = 1.0, start_s: float = 0.0,
                   end_s: float | None = None) -> list[float]:
    """Keyframe times every ``1 / hz`` seconds in ``[start_s, end_s)`` (AVA annotates 1 Hz, 902..1798 s)."""
    end = duration_s if end_s is None else min(end_s, duration_s)
    n = int(np.ceil((end - start_s) * hz - 1e-9))  # every k with start + k / hz < end
    return [start_s + k / hz for k in range(max(n, 0))]


def every_frame(n_frames: int, *, chunk: int = 64) -> Iterator[np.ndarray]:
    """Every frame in order, ``chunk`` at a time (pose extraction); lazy, so memory stays flat."""
    _check(n_frames, chunk, 1)
    for start in range(0, n_frames, chunk):
        yield np.arange(start, min(start + chunk, n_frames), dtype=np.int64)
