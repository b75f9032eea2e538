"""Skeleton action recognition over a video: sliding windows of poses -> a skeleton network -> ``segments``.

The pose track of a video (from ``features.pose``) is cut into windows of ``window_s`` seconds every
``stride_s`` seconds; each window with enough poses is prepared exactly as the model's training samples
(``features.skeleton.input.prepare``: centre, resample) and classified. Every window writes its ``top_k`` classes as
``recognition`` segments scored by their probability, so ``videoact eval recognition`` and the notebooks read
them like any other prediction.

Coordinates: models trained on Kinect skeletons (NW-UCLA, NTU, MSR) read metric 3D camera-space joints with
y up and x towards the camera's left. BlazePose world landmarks are metric too but image-oriented (x right,
y down), so they are turned 180 degrees about the camera axis (``x, y -> -x, -y``; a rotation, not a mirror)
and mapped onto the model's layout with ``layouts.convert``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from videoact.annotations.store import atomic_torch_save, load_torch_checkpoint
from videoact.config import to_dict
from videoact.devices import module_device
from videoact.features.pose.base import PoseTrack
from videoact.features.pose.extract import to_array
from videoact.features.skeleton.factory import build_model
from videoact.features.skeleton.input import SkeletonInputConfig, prepare
from videoact.features.skeleton.layouts import convert

BUILTIN_PREFIX = "builtin:"
# BlazePose world axes (x right, y down, z away) -> Kinect camera space (x left, y up, z away)
MEDIAPIPE_TO_KINECT = np.diag([-1.0, -1.0, 1.0]).astype(np.float32)


# ------------------------------------------------------------------------------------------- checkpoints


def save_model(path: Path, model: nn.Module, *, model_name: str, model_kwargs: dict[str, Any],
               classes: Sequence[str], input_cfg: SkeletonInputConfig, extra: dict[str, Any]) -> Path:
    """The inference checkpoint: weights in float32 plus plain data only (loads with ``weights_only=True``)."""
    atomic_torch_save({"format": "videoact.skeleton/1", "model": model_name,
                  "model_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in model_kwargs.items()},
                  "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
                  "classes": list(classes), "input": to_dict(input_cfg), "extra": extra}, Path(path))
    return Path(path)


@dataclass
class SkeletonClassifier:
    """A trained network with its class names and input preparation: what the recognition head runs."""

    model: nn.Module
    classes: tuple[str, ...]
    layout: str
    num_persons: int
    in_channels: int
    input: SkeletonInputConfig
    meta: dict[str, Any]
    name: str = "skeleton"
    model_name: str = ""  # the registered network (features.skeleton.factory) and its builder's arguments
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label_space(self) -> str:
        return str(self.meta.get("benchmark", self.name))

    @torch.no_grad()
    def predict_proba(self, keypoints: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """``(M, T, V, C)`` sequences on ``self.layout`` -> ``(N, K)`` class probabilities."""
        seqs = [keypoints] if isinstance(keypoints, np.ndarray) else list(keypoints)
        x = torch.from_numpy(np.stack([prepare(s, layout=self.layout, cfg=self.input, num_persons=self.num_persons)
                                       for s in seqs]))
        self.model.eval()
        x = x.to(module_device(self.model))  # the model's device (``recognition`` stage: runner.device)
        return F.softmax(self.model(x).float(), dim=-1).cpu().numpy()


def load_model(path: str | Path) -> SkeletonClassifier:
    """Load ``model.pt`` written by ``train_skeleton`` (``weights_only=True``: tensors and plain data only)."""
    path = Path(path)
    state = load_torch_checkpoint(path, fmt="videoact.skeleton/1")
    kwargs = dict(state["model_kwargs"])
    model = build_model(state["model"], **kwargs)
    model.load_state_dict(state["state_dict"])
    model.eval()
    inp = state["input"]
    return SkeletonClassifier(model=model, classes=tuple(state["classes"]), layout=kwargs["layout"],
                              num_persons=int(kwargs.get("num_persons", 1)),
                              in_channels=int(kwargs.get("in_channels", 3)),
                              input=SkeletonInputConfig(**inp), meta=dict(state["extra"]), name=path.stem,
                              model_name=str(state["model"]), model_kwargs=kwargs)


# ----------------------------------------------------------------------------------------------- windows


def builtin_models() -> list[str]:
    """Names of the checkpoints shipped in ``videoact/models`` (``builtin:NAME``)."""
    folder = resources.files("videoact") / "models"
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".pt"))


def resolve_model(ref: str) -> Path:
    """``builtin:NAME`` -> the shipped file; anything else is a path that must exist."""
    if ref.startswith(BUILTIN_PREFIX):
        name = ref[len(BUILTIN_PREFIX):]
        path = Path(str(resources.files("videoact") / "models" / f"{name}.pt"))
        if not path.is_file():
            raise FileNotFoundError(f"no built-in skeleton model {name!r}; shipped: {', '.join(builtin_models())}")
        return path
    path = Path(ref)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: skeleton model not found (set recognition.model to builtin:NAME or a "
                                "model.pt written by `videoact train`)")
    return path


def load_recognizer(ref: str) -> SkeletonClassifier:
    return load_model(resolve_model(ref))


@dataclass(frozen=True)
class Window:
    start: int  # index into the track's processed frames
    stop: int  # exclusive


def windows(t_s: np.ndarray, *, window_s: float, stride_s: float) -> list[Window]:
    """Windows over processed-frame times; a video shorter than one window is one window."""
    if len(t_s) == 0:
        return []
    if window_s <= 0 or stride_s <= 0:
        raise ValueError(f"window_s and stride_s must be positive, got {window_s}, {stride_s}")
    t0, t_end = float(t_s[0]), float(t_s[-1])
    starts = np.arange(t0, max(t0, t_end - window_s) + 1e-9, stride_s)
    out = []
    for s in starts:
        lo = int(np.searchsorted(t_s, s, side="left"))
        hi = int(np.searchsorted(t_s, s + window_s, side="left"))
        if hi > lo:
            out.append(Window(lo, hi))
    # the tail: make sure the last frames are covered
    if out and out[-1].stop < len(t_s):
        lo = int(np.searchsorted(t_s, t_end - window_s, side="left"))
        out.append(Window(lo, len(t_s)))
    return out


def track_keypoints(track: PoseTrack, *, layout: str, dims: int = 3, num_persons: int = 1) -> np.ndarray:
    """Pose track -> ``(M, T, V, C)`` on ``layout``: metric Kinect camera space (``dims`` 3) or normalised image
    coordinates (``dims`` 2), as the skeleton models were trained."""
    if dims == 3:
        x, _ = to_array(track, coords="world", num_persons=num_persons)
        if track.layout == "mediapipe33":
            x = x @ MEDIAPIPE_TO_KINECT.T
    else:
        x, _ = to_array(track, coords="image_norm", num_persons=num_persons)
    if track.layout != layout:
        x = convert(x, track.layout, layout)
    return x.astype(np.float32)


def track_to_model_input(track: PoseTrack, clf: SkeletonClassifier | Any) -> np.ndarray:
    """Pose track -> ``(M, T, V, C)`` on the model's layout and coordinate frame (a classifier with its own
    ``track_input``, such as a zoo model's, says itself what it reads)."""
    own = getattr(clf, "track_input", None)
    if own is not None:
        return own(track)
    return track_keypoints(track, layout=clf.layout, dims=clf.in_channels, num_persons=clf.num_persons)


def track_on_grid(track: PoseTrack, *, layout: str, grid_s: float, duration_s: float | None = None,
                  dims: int = 3, num_persons: int = 1) -> np.ndarray:
    """``(M, S, V, C)`` poses every ``grid_s`` seconds from 0 to ``duration_s`` (a temporal model's time grid):
    the processed frame nearest each grid time, zeros where none lies within ``grid_s``."""
    x = track_keypoints(track, layout=layout, dims=dims, num_persons=num_persons)  # (M, T, V, C)
    t_s = np.asarray(track.t_s, dtype=float)
    end = duration_s if duration_s else (float(t_s[-1]) + grid_s if len(t_s) else 0.0)
    grid = np.arange(max(1, math.ceil(end / grid_s - 1e-9))) * grid_s
    out = np.zeros((x.shape[0], len(grid), *x.shape[2:]), np.float32)
    if not len(t_s):
        return out
    right = np.clip(np.searchsorted(t_s, grid), 1, len(t_s) - 1) if len(t_s) > 1 else np.zeros(len(grid), int)
    left = np.maximum(right - 1, 0)
    near = np.where(np.abs(t_s[left] - grid) <= np.abs(t_s[right] - grid), left, right)
    ok = np.abs(t_s[near] - grid) <= grid_s
    out[:, ok] = x[:, near[ok]]
    return out


def recognize_track(track: PoseTrack, clf: SkeletonClassifier | Any, *, video_id: str, label_space: str, source: str,
                    window_s: float = 2.0, stride_s: float = 1.0, top_k: int = 5,
                    min_pose_fraction: float = 0.5, batch_size: int = 8) -> pd.DataFrame:
    """``recognition`` segments (one row per window and top class) for one video's pose track; the windows are
    classified ``batch_size`` at a time (the rows do not depend on it, to float rounding)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    t_s = track.t_s
    frames = track.frame_indices
    x = track_to_model_input(track, clf)  # (M, T, V, C)
    present = np.abs(x).sum(axis=(0, 2, 3)) > 0  # (T,)
    wins = [w for w in windows(t_s, window_s=window_s, stride_s=stride_s)
            if present[w.start:w.stop].mean() >= min_pose_fraction and present[w.start:w.stop].sum() >= 2]
    rows = []
    if wins:
        extra = {"image_size": track.image_size} if getattr(clf, "wants_image_size", False) else {}
        seqs = [x[:, w.start:w.stop] for w in wins]
        probs = np.concatenate([clf.predict_proba(seqs[i:i + batch_size], **extra)
                                for i in range(0, len(seqs), batch_size)])
        fps = float(track.fps) if track.fps else None
        step = (float(np.median(np.diff(t_s))) if len(t_s) > 1 else (1.0 / fps if fps else 0.0))
        k = min(top_k, probs.shape[1])
        for w, p in zip(wins, probs, strict=True):
            t_start, t_end = float(t_s[w.start]), float(t_s[w.stop - 1]) + step
            for rank, c in enumerate(np.argsort(-p, kind="stable")[:k]):
                rows.append({"video_id": video_id, "task": "recognition", "t_start_s": t_start, "t_end_s": t_end,
                             "fps": fps, "frame_start": int(frames[w.start]), "frame_end": int(frames[w.stop - 1]) + 1,
                             "label": clf.classes[c], "label_id": int(c), "label_space": label_space,
                             "score": float(p[c]), "source": source, "attrs": f'{{"rank": {rank + 1}}}'})
    return pd.DataFrame(rows)
