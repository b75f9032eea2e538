"""Pose extraction from RGB onto named joint layouts (BlazePose by default), and poses read from files.

``base``: ``PersonPose``, ``PoseTrack``, the ``PoseBackend`` / ``FramePoses`` protocols and the registry;
``factory``: ``build_pose_backend(name, ...)``; ``mediapipe_backend`` (``mediapipe``, default, offline),
``rtmlib_backend`` (``rtmpose``, user-supplied ONNX files), ``precomputed`` (``skeletons``, ``skeleton-pickle``);
``extract``: ``extract_poses``, ``pose_tables``, ``to_array``; ``boxes``: person proposals for the AVA head.
"""

from videoact.features.pose.base import (
    POSE_BACKENDS,
    FramePoses,
    PersonPose,
    PoseBackend,
    PoseFrame,
    PoseTrack,
)
from videoact.features.pose.boxes import boxes_from_keypoints, person_boxes
from videoact.features.pose.extract import extract_poses, pose_tables, to_array
from videoact.features.pose.factory import build_pose_backend, list_pose_backends

__all__ = [
    "POSE_BACKENDS",
    "FramePoses",
    "PersonPose",
    "PoseBackend",
    "PoseFrame",
    "PoseTrack",
    "boxes_from_keypoints",
    "build_pose_backend",
    "extract_poses",
    "list_pose_backends",
    "person_boxes",
    "pose_tables",
    "to_array",
]
