"""Pose backends by name: ``build_pose_backend("mediapipe", model_complexity=1)``.

The registry lives in ``base`` (below the backends); this module sits above them and imports the built-ins
(mediapipe / rtmlib themselves are imported lazily inside the builders).
"""

from __future__ import annotations

from typing import Any

from videoact.features.pose import mediapipe_backend, precomputed, rtmlib_backend  # noqa: F401  (they register)
from videoact.features.pose.base import POSE_BACKENDS


def list_pose_backends(pattern: str = "*") -> list[str]:
    return POSE_BACKENDS.names(pattern)


def build_pose_backend(name: str, **kwargs: Any) -> Any:
    """A backend by name with its options; ``UnknownNameError`` (a ``KeyError``) names the registered ones."""
    return POSE_BACKENDS.get(name)(**kwargs)
