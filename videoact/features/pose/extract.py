"""Run a pose backend over a video and turn the result into ``skeletons`` rows or network input arrays.

``extract_poses`` streams the video window by window (memory holds one window of frames, whatever the
video's length) and calls the backend on every ``every``-th frame, in order, so tracking backends see a
forward-moving clock. Frames where nobody is found are kept in the ``PoseTrack`` (they count as processed)
but write no ``skeletons`` row.

Example::

    from videoact.decode.source import VideoSource
    from videoact.features.pose import build_pose_backend, extract_poses, pose_tables, to_array

    with VideoSource("clip.mp4") as src:
        track = extract_poses(src, build_pose_backend("mediapipe"), every=2)
    tables = pose_tables(track, "clip", source="mediapipe@cfg1234")
    keypoints, scores = to_array(track, "coco17")  # (M, T, 17, 2), (M, T, 17)
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from videoact.annotations.tables import Tables
from videoact.decode.source import VideoSource
from videoact.features.pose.base import FramePoses, PoseBackend, PoseFrame, PoseTrack, person_ids
from videoact.features.skeleton import layouts

log = logging.getLogger("videoact.pose")

Coords = Literal["image_norm", "image_px", "world"]


def extract_poses(source: VideoSource, backend: PoseBackend | FramePoses, *, every: int = 1, progress: bool = True,
                  max_frames: int | None = None, window: int = 32) -> PoseTrack:
    """Poses of every ``every``-th frame among the video's first ``max_frames`` frames (all by default).

    A ``PoseBackend`` sees the decoded RGB frames and the video's own timestamps; the backend is closed at
    the end (its tracking state belongs to this video; it reopens on the next call). A ``FramePoses`` source
    (precomputed keypoints) is only asked for frame indices: nothing is decoded.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    info = source.info
    n_video = len(source)
    n = n_video if max_frames is None else max(0, min(n_video, max_frames))
    times = np.asarray(info.timestamps_s, dtype=np.float64)
    if len(times) != n_video:
        times = np.arange(n_video) / info.fps
    image_size = info.display_size
    precomputed = isinstance(backend, FramePoses)
    if precomputed:
        image_size = _precomputed_size(backend, image_size, source.path)
    track = PoseTrack(backend=backend.name, layout=backend.layout, fps=info.fps, image_size=image_size,
                      n_frames_video=n_video)
    wanted = range(0, n, every)
    bar = tqdm(total=len(wanted), desc=f"pose {Path(info.path).name}", unit="frame", disable=not progress)
    try:
        if precomputed:
            for i in wanted:
                track.frames.append(PoseFrame(i, float(times[i]), backend.poses_for_frame(i)))
                bar.update()
            last = getattr(backend, "n_frames", None)
            if max_frames is None and last is not None and last > n_video:
                log.warning("%s: %s has poses for %d frames, the video has %d", source.path, backend, last, n_video)
        else:
            for start, frames in source.stream(window=window, stop=n):
                arr = frames.numpy()  # (T, H, W, 3) uint8
                for j in range((-start) % every, len(arr), every):
                    i = start + j
                    persons = backend(arr[j], round(float(times[i]) * 1000))
                    track.frames.append(PoseFrame(i, float(times[i]), persons))
                    bar.update()
    finally:
        bar.close()
        backend.close()
    return track


def _precomputed_size(backend: Any, video_size: tuple[int, int], path: Path) -> tuple[int, int]:
    size = getattr(backend, "image_size", None)
    if size is None:
        return video_size
    if tuple(size) != tuple(video_size):
        log.warning("%s: precomputed keypoints refer to %dx%d images, the video is %dx%d; keeping the file's "
                    "pixel frame", path, size[0], size[1], video_size[0], video_size[1])
    return (int(size[0]), int(size[1]))


# ---------------------------------------------------------------------------------------------- tables


def pose_tables(track: PoseTrack, video_id: str, *, source: str | None = None) -> Tables:
    """``skeletons`` rows: per (frame, person) one ``image_px`` row (dims 2) and, when the backend has 3D, one
    ``world_m`` row (dims 3) with the same frame and person_id. ``source`` defaults to the backend name."""
    source = source or track.backend
    rows: dict[str, list[Any]] = {c: [] for c in ("video_id", "frame", "t_s", "fps", "person_id", "layout", "dims",
                                                  "coord_space", "keypoints", "scores", "source")}

    def add(f: PoseFrame, pid: int, dims: int, space: str, kp: np.ndarray, scores: np.ndarray) -> None:
        for col, value in (("video_id", video_id), ("frame", f.frame), ("t_s", None if math.isnan(f.t_s) else f.t_s),
                           ("fps", track.fps), ("person_id", pid), ("layout", track.layout), ("dims", dims),
                           ("coord_space", space), ("keypoints", kp.reshape(-1)), ("scores", scores),
                           ("source", source)):
            rows[col].append(value)

    for f in track.frames:
        for pid, p in zip(person_ids(f.persons), f.persons, strict=True):
            if not np.isnan(p.keypoints).all():
                add(f, pid, 2, "image_px", p.keypoints, p.scores)
            if p.world is not None:
                add(f, pid, 3, "world_m", p.world, p.scores)
    return Tables(skeletons=pd.DataFrame(rows)).validated(where=f"pose_tables({video_id!r})")


# ---------------------------------------------------------------------------------------------- arrays


def to_array(track: PoseTrack, layout: str | None = None, *, coords: Coords = "image_norm",
             num_persons: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``keypoints (M, T, V, C)`` and ``scores (M, T, V)`` float32 over the processed frames, for skeleton networks.

    Person ``m`` is ``person_id`` m (the rank in the frame for backends without tracking); ``M`` is
    ``num_persons`` (persons beyond it are dropped) or the largest id + 1. Absent persons and joints without
    coordinates are zeros with score 0 (the pyskl padding). ``coords``: ``image_norm`` (x / W, y / H, C=2),
    ``image_px`` (C=2) or ``world`` (metres, C=3). ``layout`` converts the joints with
    ``layouts.convert`` (a derived joint gets the lowest score of its sources).
    """
    if coords not in ("image_norm", "image_px", "world"):
        raise ValueError(f"coords must be image_norm, image_px or world, got {coords!r}")
    if coords == "image_norm" and track.image_size is None:
        raise ValueError(f"{track}: no image size known, so image_norm is undefined; use coords='image_px'")
    v = layouts.get_layout(track.layout).num_joints if track.layout in layouts.LAYOUTS else _joints_seen(track)
    c = 3 if coords == "world" else 2
    ids = [person_ids(f.persons) for f in track.frames]
    m = num_persons if num_persons is not None else max((max(i) + 1 for i in ids if i), default=1)
    t = len(track.frames)
    kp = np.zeros((m, t, v, c), np.float32)
    sc = np.zeros((m, t, v), np.float32)
    filled = np.zeros((m, t), bool)
    scale = np.asarray(track.image_size, np.float32) if coords == "image_norm" else np.ones(2, np.float32)
    for ti, (f, fids) in enumerate(zip(track.frames, ids, strict=True)):
        for pid, p in zip(fids, f.persons, strict=True):
            if pid >= m:
                continue
            if filled[pid, ti]:
                raise ValueError(f"{track}: frame {f.frame} has two persons with id {pid}")
            filled[pid, ti] = True
            xyz = p.world if coords == "world" else p.keypoints / scale
            if xyz is None:
                continue  # no 3D for this person
            ok = np.isfinite(xyz).all(-1)
            kp[pid, ti] = np.where(ok[:, None], xyz, 0.0)
            sc[pid, ti] = np.where(ok, p.scores, 0.0)
    if layout is not None and layout != track.layout:
        kp = layouts.convert(kp, track.layout, layout)
        sc = layouts.convert(sc, track.layout, layout, scores=True)
    return kp, sc


def _joints_seen(track: PoseTrack) -> int:
    for f in track.frames:
        for p in f.persons:
            return p.num_joints
    raise ValueError(f"{track}: unregistered layout {track.layout!r} and no pose to count its joints")
