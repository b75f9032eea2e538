"""MediaPipe BlazePose (legacy ``mediapipe.solutions.pose``), the default pose backend: one person, 33 joints.

Why this one: ``mediapipe==0.10.21`` (extra ``pose``) ships the person detector and the ``full`` landmark
model inside its wheel, so it runs offline on a CPU. Only ``model_complexity=1`` is bundled; 0 (``lite``)
and 2 (``heavy``) make mediapipe download a ``.tflite`` file into its own package folder on first use, which
fails offline. This backend refuses them unless ``allow_download=True``.

Outputs, per frame, at most one ``PersonPose`` (``person_id=0``; BlazePose follows the most prominent person
and re-detects when it loses them, so the identity is "the tracked person", not a guaranteed individual):

* ``keypoints``: landmark ``x * W, y * H`` (image pixels; joints outside the frame are extrapolated and may
  lie outside ``[0, W) x [0, H)``). The landmark ``z`` (relative depth, no unit) is dropped.
* ``scores``: landmark ``visibility``, the model's probability that the joint is in the frame and not
  occluded. It is not a localisation confidence: a hidden wrist gets a low score and a plausible position.
* ``world``: ``pose_world_landmarks``, metres, origin at the hip centre, y down.

Tracking (``static_image_mode=False``) keeps state between frames, so one ``MediaPipePose`` serves one video
at a time: a timestamp earlier than the last one, or ``close()``, starts a fresh graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from videoact.features.pose.base import PersonPose, register_pose_backend

LANDMARK_MODELS = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}
_SIMULATED_STEP_US = 33333  # what the legacy API adds to its clock before each frame


def import_mediapipe() -> Any:
    try:
        import mediapipe
    except ImportError:
        raise ImportError('pose backend "mediapipe" needs mediapipe: pip install "videoact[pose]" '
                          "(mediapipe==0.10.21, the last release that bundles the BlazePose models)") from None
    return mediapipe


def landmark_model_path(model_complexity: int) -> Path:
    """Where mediapipe looks for the landmark model of ``model_complexity`` (it may not be there)."""
    mp = import_mediapipe()
    return Path(mp.__file__).parent / "modules" / "pose_landmark" / LANDMARK_MODELS[model_complexity]


class MediaPipePose:
    """BlazePose in video mode; see the module doc for what the outputs mean."""

    name = "mediapipe"
    layout = "mediapipe33"

    def __init__(self, *, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, smooth_landmarks: bool = True,
                 allow_download: bool = False) -> None:
        if model_complexity not in LANDMARK_MODELS:
            raise ValueError(f"mediapipe model_complexity must be 0, 1 or 2, got {model_complexity!r}")
        self._mp = import_mediapipe()
        path = landmark_model_path(model_complexity)
        if not path.is_file() and not allow_download:
            raise FileNotFoundError(
                f"{path}: the BlazePose landmark model for model_complexity={model_complexity} is not in the "
                "mediapipe wheel (only model_complexity=1 is bundled); use model_complexity=1, or pass "
                "allow_download=True to let mediapipe fetch it from storage.googleapis.com into that folder")
        self.model_complexity = model_complexity
        self._options = {"static_image_mode": False, "model_complexity": model_complexity,
                         "smooth_landmarks": smooth_landmarks, "min_detection_confidence": min_detection_confidence,
                         "min_tracking_confidence": min_tracking_confidence}
        self._pose: Any = None
        self._last_us: int | None = None

    def __call__(self, frame: np.ndarray, t_ms: int) -> list[PersonPose]:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"mediapipe needs an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
        t_us = int(t_ms) * 1000
        if self._last_us is not None and t_us < self._last_us:
            self.close()  # time went back: another video (or a seek), so the old tracking state is wrong
        if self._pose is None:
            self._pose = self._mp.solutions.pose.Pose(**self._options)
        if self._last_us is not None and t_us <= self._last_us:
            t_us = self._last_us + 1  # graph timestamps must increase (VFR files can repeat a millisecond)
        # The legacy API stamps frames on a simulated 30 fps clock; the landmark smoothing filter is
        # time-based, so give it the video's own clock (matters with every > 1 and for VFR videos).
        if hasattr(self._pose, "_simulated_timestamp"):
            self._pose._simulated_timestamp = t_us - _SIMULATED_STEP_US
        result = self._pose.process(np.ascontiguousarray(frame))
        self._last_us = t_us
        if result.pose_landmarks is None:
            return []
        h, w = frame.shape[:2]
        lm = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float32)
        keypoints = lm[:, :2] * np.array([w, h], dtype=np.float32)
        world = None
        if result.pose_world_landmarks is not None:
            world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], dtype=np.float32)
        return [PersonPose(keypoints=keypoints, scores=lm[:, 2], world=world, person_id=0)]

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
        self._pose = None
        self._last_us = None

    def __repr__(self) -> str:
        return f"MediaPipePose(model_complexity={self.model_complexity})"


@register_pose_backend("mediapipe")
def build_mediapipe(*, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                    min_tracking_confidence: float = 0.5, smooth_landmarks: bool = True,
                    allow_download: bool = False) -> MediaPipePose:
    """BlazePose; ``model_complexity=1`` is the model that ships in the wheel (0 and 2 need a download)."""
    return MediaPipePose(model_complexity=model_complexity, min_detection_confidence=min_detection_confidence,
                         min_tracking_confidence=min_tracking_confidence, smooth_landmarks=smooth_landmarks,
                         allow_download=allow_download)
