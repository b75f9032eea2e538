"""Samplers (pure index logic) and clip transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from videoact.decode import (
    centre_crop,
    clip_to_tensor,
    every_frame,
    frame_at_time,
    keyframe_clips,
    keyframe_times,
    short_side_resize,
    sliding_window_clips,
    uniform_clips,
)


@given(n=st.integers(1, 5000), k=st.integers(1, 12), t=st.integers(1, 64), step=st.integers(1, 4))
def test_uniform_clips_in_range_and_ordered(n: int, k: int, t: int, step: int) -> None:
    clips = uniform_clips(n, num_clips=k, clip_len=t, frame_step=step)
    assert len(clips) == k
    for c in clips:
        assert c.dtype == np.int64 and len(c) == t and c.min() >= 0 and c.max() < n
        assert (np.diff(c) >= 0).all()
    starts = [int(c[0]) for c in clips]
    assert starts == sorted(starts)
    if n >= (t - 1) * step + 1:  # long enough: every clip is a real, unclamped window
        assert all((np.diff(c) == step).all() for c in clips)


def test_uniform_clips_spread() -> None:
    clips = uniform_clips(100, num_clips=2, clip_len=10)
    assert clips[0].tolist() == list(range(20, 30)) and clips[1].tolist() == list(range(70, 80))


@given(n=st.integers(1, 3000), w=st.integers(1, 64), s=st.integers(1, 64))
def test_sliding_windows_cover_every_frame(n: int, w: int, s: int) -> None:
    clips = sliding_window_clips(n, window=w, stride=s)
    covered = np.zeros(n, bool)
    for c in clips:
        assert len(c) == w and c.min() >= 0 and c.max() < n
        covered[c] = True
    if s <= w:
        assert covered.all()
    assert clips[-1][-1] == n - 1  # the tail is always covered
    assert sliding_window_clips(10, window=4, stride=3, drop_last=True)[-1].tolist() == [6, 7, 8, 9]


def test_sliding_window_values() -> None:
    got = [c.tolist() for c in sliding_window_clips(10, window=4, stride=4)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9]]


def test_keyframe_clips_centre_on_the_keyframe_vfr() -> None:
    ts = np.array([0.0, 0.1, 0.133, 0.233, 0.266, 0.9, 1.0, 1.05, 2.0])  # VFR timestamps
    clips = keyframe_clips(ts, [0.95, 0.12, 2.5], clip_len=4, frame_step=1)
    assert clips[0].tolist() == [3, 4, 5, 6]  # keyframe 0.95 s is frame 5 (starts 0.9 s), at position 4 // 2
    assert clips[1].tolist() == [0, 0, 1, 2]  # clamped at the start
    assert clips[2].tolist() == [6, 7, 8, 8]  # past the end: the last frame, clamped
    assert frame_at_time(1.0, ts) == 6 and frame_at_time(-1.0, ts) == 0


def test_keyframe_times_ava_1hz() -> None:
    assert keyframe_times(10.0, hz=1.0, start_s=2.0) == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert keyframe_times(1798.5, start_s=902, end_s=1799)[:2] == [902.0, 903.0]
    assert len(keyframe_times(1800.0, start_s=902, end_s=1799)) == 897


def test_every_frame_is_lazy_and_complete() -> None:
    chunks = list(every_frame(130, chunk=64))
    assert [len(c) for c in chunks] == [64, 64, 2]
    assert np.concatenate(chunks).tolist() == list(range(130))


def test_sampler_argument_errors() -> None:
    with pytest.raises(ValueError):
        uniform_clips(0, num_clips=1, clip_len=4)
    with pytest.raises(ValueError):
        sliding_window_clips(10, window=4, stride=0)


def test_transforms_shapes_and_values() -> None:
    frames = torch.zeros((4, 120, 160, 3), dtype=torch.uint8)  # (T, H, W, 3)
    frames[..., 0] = 255
    x = clip_to_tensor(frames, short_side=60, crop=56, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert x.shape == (3, 4, 56, 56) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.ones_like(x[0])) and torch.allclose(x[1], -torch.ones_like(x[1]))
    tall = short_side_resize(torch.rand(3, 2, 200, 100), 50)
    assert tall.shape == (3, 2, 100, 50)
    with pytest.raises(ValueError, match="larger than"):
        centre_crop(torch.rand(3, 1, 10, 10), 12)
    crop = centre_crop(torch.arange(36.0).view(1, 1, 6, 6), 2)
    assert crop.flatten().tolist() == [14.0, 15.0, 20.0, 21.0]
