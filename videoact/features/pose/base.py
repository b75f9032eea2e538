"""What every pose backend returns (``PersonPose``), the backend protocol, and the registry the backends register in.

Two kinds of backend share the registry:

* ``PoseBackend``: runs a model on one RGB frame (``mediapipe``, ``rtmpose``). It may keep tracking state
  between frames of one video; ``close()`` ends the video and frees the model (the next call starts fresh).
* ``PrecomputedPoses`` (``precomputed.py``): reads keypoints that already exist (a ``skeletons`` table, a
  pyskl/mmaction2 pickle) and answers ``poses_for_frame(frame_idx)``; no pixels are decoded.

``extract_poses`` accepts either, so a run can swap a model for a file without other changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from videoact.registry import Registry


@dataclass
class PersonPose:
    """One person in one frame.

    ``keypoints`` are image pixels ``(V, 2)`` (x right, y down, origin at the top-left pixel corner) on the
    backend's joint layout; NaN where a source has no image coordinates (3D-only skeleton files).
    ``scores`` ``(V,)`` are per-joint confidences in [0, 1]; what they mean depends on the backend (MediaPipe:
    visibility, RTMPose: SimCC peak). ``world`` ``(V, 3)`` are metric 3D coordinates when the backend has them.
    ``box`` ``(x1, y1, x2, y2)`` in pixels is the detector's person box when there is one.
    ``person_id`` is an identity within the video when the backend tracks one; None means "rank in this frame".
    """

    keypoints: np.ndarray  # (V, 2) float32, image pixels
    scores: np.ndarray  # (V,) float32
    world: np.ndarray | None = None  # (V, 3) float32, metres
    box: tuple[float, float, float, float] | None = None  # pixels
    person_id: int | None = None

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.scores = np.asarray(self.scores, dtype=np.float32)
        v = self.keypoints.shape[0]
        if self.keypoints.shape != (v, 2) or self.scores.shape != (v,):
            raise ValueError(f"PersonPose needs keypoints (V, 2) and scores (V,), got {self.keypoints.shape} "
                             f"and {self.scores.shape}")
        if self.world is not None:
            self.world = np.asarray(self.world, dtype=np.float32)
            if self.world.shape != (v, 3):
                raise ValueError(f"PersonPose world must be ({v}, 3), got {self.world.shape}")

    @property
    def num_joints(self) -> int:
        return int(self.keypoints.shape[0])


def person_ids(persons: list[PersonPose]) -> list[int]:
    """The id each pose is written under: its ``person_id``, or its rank in the frame when it has none."""
    return [p.person_id if p.person_id is not None else i for i, p in enumerate(persons)]


@runtime_checkable
class PoseBackend(Protocol):
    """A pose model run frame by frame, in frame order, over one video at a time."""

    name: str
    layout: str  # joint layout name, see videoact.features.skeleton.layouts

    def __call__(self, frame: np.ndarray, t_ms: int) -> list[PersonPose]:
        """Persons in one ``(H, W, 3)`` uint8 RGB frame shown at ``t_ms`` milliseconds."""
        ...

    def close(self) -> None:
        """End the current video: drop tracking state and free the model (the next call reopens it)."""
        ...


@runtime_checkable
class FramePoses(Protocol):
    """Poses that already exist, looked up by frame index (``precomputed.PrecomputedPoses``)."""

    name: str
    layout: str

    def poses_for_frame(self, frame: int) -> list[PersonPose]: ...

    def close(self) -> None: ...


@dataclass
class PoseFrame:
    """One processed frame: its index, its time, and the persons found (possibly none)."""

    frame: int
    t_s: float  # presentation time in seconds; NaN when the source has no clock
    persons: list[PersonPose]


@dataclass
class PoseTrack:
    """Per-frame poses of one video, frames in order, including processed frames where nobody was found.

    ``image_size`` ``(W, H)`` is the pixel frame the keypoints refer to (the decoded, upright frames for a
    model; the file's ``img_shape`` for precomputed poses), needed to normalise coordinates and boxes.
    """

    backend: str
    layout: str
    frames: list[PoseFrame] = field(default_factory=list)
    fps: float | None = None
    image_size: tuple[int, int] | None = None
    n_frames_video: int | None = None  # frames in the whole video (more than processed with every / max_frames)

    @property
    def n_frames_processed(self) -> int:
        return len(self.frames)

    @property
    def n_frames_with_pose(self) -> int:
        return sum(1 for f in self.frames if f.persons)

    @property
    def frame_indices(self) -> np.ndarray:
        return np.array([f.frame for f in self.frames], dtype=np.int64)

    @property
    def t_s(self) -> np.ndarray:
        return np.array([f.t_s for f in self.frames], dtype=np.float64)

    def __repr__(self) -> str:
        return (f"PoseTrack({self.backend}, {self.layout}, {self.n_frames_with_pose}/{self.n_frames_processed} "
                f"frames with a pose)")


Builder = Callable[..., Any]  # keyword-only options -> PoseBackend | PrecomputedPoses

# filled by the backend modules; ``features.pose.factory`` imports the built-ins and builds by name
POSE_BACKENDS: Registry[Builder] = Registry("pose backend")


def register_pose_backend(name: str) -> Callable[[Builder], Builder]:
    """Register a keyword-only builder under ``name``."""
    return POSE_BACKENDS.register(name)
