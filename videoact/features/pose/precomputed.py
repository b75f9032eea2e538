"""Poses that already exist, looked up by frame index: a videoact ``skeletons`` table or a pyskl/mmaction2 pickle.

Why a different interface from ``PoseBackend``: a file answers "who is in frame ``i``" without pixels, so
``extract_poses`` skips decoding for these, and ``to_track()`` builds a ``PoseTrack`` with no video at all.
Either way the rest of the pose stage (``pose_tables``, ``to_array``, ``person_boxes``) is unchanged.

Reading rules, shared by both sources:

* A person whose keypoints are all zero is absent (pyskl pads persons and frames with zeros).
* Image coordinates go to ``PersonPose.keypoints`` (``image_norm`` rows are scaled by the image size);
  ``world_m`` coordinates go to ``PersonPose.world``. A source with only 3D coordinates (NTU pickles, 3D
  ``skeletons`` rows) gives NaN image keypoints: ``to_array(coords="world")`` is the way to read those.
* Missing scores read as 1.0 (ground-truth joints are certain).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations import store
from videoact.annotations.formats._common import FormatError, safe_pickle_load
from videoact.annotations.formats.skeleton_pickle import _container, _default_layout
from videoact.annotations.tables import Tables
from videoact.features.pose.base import PersonPose, PoseFrame, PoseTrack, register_pose_backend

log = logging.getLogger("videoact.pose")


class PrecomputedPoses:
    """Persons per frame index from a file; see the module doc. Build with ``from_skeletons`` / ``from_pickle``."""

    def __init__(self, *, name: str, layout: str, poses: Mapping[int, list[PersonPose]],
                 n_frames: int | None = None, fps: float | None = None, times: Mapping[int, float] | None = None,
                 image_size: tuple[int, int] | None = None, origin: str = "") -> None:
        self.name, self.layout, self.origin = name, layout, origin
        self._poses = {int(k): v for k, v in poses.items() if v}
        last = max(self._poses, default=-1)
        self.n_frames = n_frames if n_frames is not None else last + 1
        self.fps = fps
        self._times = dict(times or {})
        self.image_size = image_size

    @property
    def frames(self) -> np.ndarray:
        """Sorted frame indices that hold at least one person."""
        return np.array(sorted(self._poses), dtype=np.int64)

    def poses_for_frame(self, frame: int) -> list[PersonPose]:
        return list(self._poses.get(int(frame), []))

    def time_of(self, frame: int) -> float:
        """Seconds of a frame: the file's own time when it has one, else ``frame / fps`` (NaN without fps)."""
        if frame in self._times:
            return self._times[frame]
        return frame / self.fps if self.fps else math.nan

    def to_track(self, *, every: int = 1, max_frames: int | None = None) -> PoseTrack:
        """Every ``every``-th of the first ``max_frames`` frames (all of ``n_frames`` by default)."""
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        n = self.n_frames if max_frames is None else min(self.n_frames, max_frames)
        track = PoseTrack(backend=self.name, layout=self.layout, fps=self.fps, image_size=self.image_size,
                          n_frames_video=self.n_frames)
        track.frames = [PoseFrame(i, self.time_of(i), self.poses_for_frame(i)) for i in range(0, n, every)]
        return track

    def close(self) -> None:
        pass  # nothing to release; kept so that extract_poses treats every backend alike

    def __repr__(self) -> str:
        return (f"PrecomputedPoses({self.name}, {self.layout}, {len(self._poses)} frames with a pose, "
                f"from {self.origin or '<memory>'})")

    # ------------------------------------------------------------------------------------------ skeletons table

    @classmethod
    def from_skeletons(cls, src: Tables | pd.DataFrame | str | Path, *, video_id: str | None = None,
                       source: str | None = None, layout: str | None = None,
                       image_size: tuple[int, int] | None = None) -> PrecomputedPoses:
        """The ``skeletons`` rows of one video: from ``Tables``, a DataFrame, a run/import directory or a parquet file.

        ``video_id``, ``source`` and ``layout`` pick the rows when the table holds several; ``image_size``
        ``(W, H)`` is needed for ``image_norm`` rows unless the ``videos`` table has the video's size.
        """
        origin = str(src) if isinstance(src, (str, Path)) else "<memory>"
        skel, videos = _skeleton_rows(src, video_id)
        if video_id is None:
            ids = list(dict.fromkeys(skel["video_id"]))
            if len(ids) != 1:
                raise ValueError(f"{origin}: skeletons of {len(ids)} videos ({_few(ids)}); pass video_id=")
            video_id = ids[0]
        rows = skel[skel["video_id"] == video_id]
        if not len(rows):
            have = list(dict.fromkeys(skel["video_id"]))
            raise ValueError(f"{origin}: no skeletons rows for video_id {video_id!r}; videos there: {_few(have)}")
        rows = _pick(rows, "source", source, origin)
        rows = _pick(rows, "layout", layout, origin)
        vid = videos[videos["video_id"] == video_id] if len(videos) else videos
        if image_size is None and len(vid) and vid["width"].notna().all() and vid["height"].notna().all():
            image_size = (int(vid["width"].iloc[0]), int(vid["height"].iloc[0]))
        n_frames = int(vid["n_frames"].iloc[0]) if len(vid) and vid["n_frames"].notna().all() else None
        fps_col = rows["fps"].dropna()
        fps = float(fps_col.iloc[0]) if len(fps_col) else None

        parts: dict[tuple[int, int], dict[str, Any]] = {}
        times: dict[int, float] = {}
        for r in rows.itertuples(index=False):
            frame, pid, dims = int(r.frame), int(r.person_id), int(r.dims)
            kp = np.asarray(r.keypoints, dtype=np.float32).reshape(-1, dims)
            if not np.any(kp):
                continue  # an all-zero padding person
            part = parts.setdefault((frame, pid), {"v": len(kp)})
            if r.scores is not None and not (isinstance(r.scores, float) and math.isnan(r.scores)):
                part.setdefault("scores", np.asarray(r.scores, dtype=np.float32))
            if r.coord_space == "world_m":
                if dims != 3:
                    raise ValueError(f"{origin}: video {video_id!r} frame {frame}: world_m keypoints need dims 3, "
                                     f"got {dims}")
                part["world"] = kp
            elif r.coord_space == "image_norm":
                if image_size is None:
                    raise ValueError(f"{origin}: video {video_id!r} has image_norm keypoints and no known image "
                                     "size; pass image_size=(W, H)")
                part["keypoints"] = kp[:, :2] * np.asarray(image_size, dtype=np.float32)
            else:
                part["keypoints"] = kp[:, :2]
            if pd.notna(r.t_s):
                times.setdefault(frame, float(r.t_s))
        poses: dict[int, list[PersonPose]] = {}
        for (frame, pid), part in sorted(parts.items()):
            poses.setdefault(frame, []).append(_person(part, part["v"], pid))
        return cls(name=f"skeletons:{rows['source'].iloc[0]}", layout=str(rows["layout"].iloc[0]), poses=poses,
                   n_frames=n_frames, fps=fps, times=times, image_size=image_size, origin=origin)

    # ------------------------------------------------------------------------------------------ pyskl pickle

    @classmethod
    def from_pickle(cls, path: str | Path, *, frame_dir: str | None = None, layout: str | None = None,
                    fps: float | None = None) -> PrecomputedPoses:
        """One sample (``frame_dir``) of an mmaction2/pyskl pickle: ``keypoint`` (M, T, V, C), ``keypoint_score``.

        C=2 is image pixels of ``img_shape``; C=3 is metric 3D (NTU). ``fps`` gives times (the pickle has none).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such skeleton pickle")
        _, anns, _, _ = _container(safe_pickle_load(path), path)
        names = [a.get("frame_dir") if isinstance(a, dict) else None for a in anns]
        if frame_dir is None:
            if len(anns) != 1:
                raise ValueError(f"{path}: {len(anns)} samples ({_few(names)}); pass frame_dir=")
            i = 0
        elif frame_dir in names:
            i = names.index(frame_dir)
        else:
            raise ValueError(f"{path}: no sample with frame_dir {frame_dir!r}; samples there: {_few(names)}")
        ann = anns[i]
        if not isinstance(ann, dict) or "keypoint" not in ann:
            raise FormatError(path, None, f"sample {names[i]!r} has no 'keypoint' array")
        kp = np.asarray(ann["keypoint"], dtype=np.float32)
        if kp.ndim != 4 or kp.shape[-1] not in (2, 3):
            raise FormatError(path, None, f"sample {names[i]!r}: 'keypoint' must be (M, T, V, 2 or 3), got {kp.shape}")
        m, t, v, c = kp.shape
        sc = ann.get("keypoint_score")
        scores = np.ones((m, t, v), np.float32) if sc is None else np.asarray(sc, dtype=np.float32)
        if scores.shape != (m, t, v):
            raise FormatError(path, None, f"sample {names[i]!r}: 'keypoint_score' must be {(m, t, v)}, "
                              f"got {scores.shape}")
        poses: dict[int, list[PersonPose]] = {}
        present = np.any(kp != 0, axis=(2, 3))  # (M, T)
        for frame in range(t):
            for pid in np.flatnonzero(present[:, frame]):
                part = {"scores": scores[pid, frame], ("keypoints" if c == 2 else "world"): kp[pid, frame]}
                poses.setdefault(frame, []).append(_person(part, v, int(pid)))
        shape = ann.get("img_shape")
        image_size = (int(shape[1]), int(shape[0])) if shape is not None and len(shape) == 2 else None
        total = ann.get("total_frames")
        return cls(name=f"skeleton-pickle:{path.name}", layout=layout or _default_layout(v, c), poses=poses,
                   n_frames=int(total) if total is not None else t, fps=fps, image_size=image_size,
                   origin=f"{path} [{names[i]}]")


# ---------------------------------------------------------------------------------------------- helpers


def _few(items: list[Any], k: int = 5) -> str:
    shown = ", ".join(repr(x) for x in items[:k])
    return shown + (f", ... ({len(items)} in all)" if len(items) > k else "")


def _pick(rows: pd.DataFrame, col: str, want: str | None, origin: str) -> pd.DataFrame:
    values = list(dict.fromkeys(rows[col]))
    if want is not None:
        if want not in values:
            raise ValueError(f"{origin}: no skeletons rows with {col} {want!r}; there: {_few(values)}")
        return rows[rows[col] == want]
    if len(values) > 1:
        raise ValueError(f"{origin}: skeletons rows come with several {col}s ({_few(values)}); pass {col}=")
    return rows


def _skeleton_rows(src: Tables | pd.DataFrame | str | Path, video_id: str | None) -> tuple[pd.DataFrame,
                                                                                            pd.DataFrame]:
    """(skeletons, videos) rows from any of the accepted inputs; a directory reads only the asked video."""
    if isinstance(src, Tables):
        return src.skeletons, src.videos
    if isinstance(src, pd.DataFrame):
        return src, pd.DataFrame(columns=["video_id", "width", "height", "n_frames"])
    path = Path(src)
    if path.is_dir():
        if video_id is None:
            ids = store.stored_video_ids(path, "skeletons")
            if len(ids) != 1:
                raise ValueError(f"{path}: skeletons of {len(ids)} videos ({_few(ids)}); pass video_id=")
            video_id = ids[0]
        t = store.read_video_tables(path, video_id)
        if not len(t.skeletons):
            have = store.stored_video_ids(path, "skeletons")
            raise ValueError(f"{path}: no skeletons stored for video_id {video_id!r}; videos there: {_few(have)}")
        return t.skeletons, t.videos
    if path.is_file():
        return store.read_parquet(path, "skeletons"), pd.DataFrame(columns=["video_id", "width", "height",
                                                                             "n_frames"])
    raise FileNotFoundError(f"{path}: no such skeletons table (a run/import directory or a skeletons .parquet file)")


def _person(part: dict[str, Any], v: int, pid: int) -> PersonPose:
    keypoints = part.get("keypoints")
    if keypoints is None:
        keypoints = np.full((v, 2), np.nan, np.float32)  # 3D-only source: no image coordinates
    scores = part.get("scores")
    if scores is None:
        scores = np.ones(v, np.float32)
    return PersonPose(keypoints=keypoints, scores=scores, world=part.get("world"), person_id=pid)


@register_pose_backend("skeletons")
def build_skeletons(*, path: str | Path, video_id: str | None = None, source: str | None = None,
                    layout: str | None = None, image_size: tuple[int, int] | None = None) -> PrecomputedPoses:
    """Poses from a ``skeletons`` table (run/import directory or parquet file) instead of a model."""
    return PrecomputedPoses.from_skeletons(path, video_id=video_id, source=source, layout=layout,
                                           image_size=image_size)


@register_pose_backend("skeleton-pickle")
def build_skeleton_pickle(*, path: str | Path, frame_dir: str | None = None, layout: str | None = None,
                          fps: float | None = None) -> PrecomputedPoses:
    """Poses from one sample of an mmaction2/pyskl skeleton pickle instead of a model."""
    return PrecomputedPoses.from_pickle(path, frame_dir=frame_dir, layout=layout, fps=fps)
