"""Skeleton dataset readers: raw files of NTU RGB+D, NW-UCLA, MSR Action3D, UTKinect, SBU and the
mmaction2/pyskl/PaddleVideo preprocessed files, each turned into ``SkeletonSample`` (``keypoints`` float32
``(M, T, V, C)``, a ``layout`` from ``videoact.features.skeleton.layouts``, 0-based ``label``).

Every module docstring states its format and the quirks found in the real files.
"""

from __future__ import annotations

from videoact.datasets.skeleton._sample import SkeletonSample, layout_num_joints
from videoact.datasets.skeleton.msr_action3d import (
    MSR_ACTION3D_CLASSES,
    MSR_ACTION_SETS,
    load_msr_action3d,
    msr_split,
    read_msr_skeleton,
)
from videoact.datasets.skeleton.ntu import (
    NTU60_CLASSES,
    NTU120_CLASSES,
    ntu_split,
    parse_ntu_name,
    read_ntu_missing,
    read_ntu_skeleton,
)
from videoact.datasets.skeleton.nw_ucla import (
    NW_UCLA_CLASSES,
    load_nw_ucla,
    nw_ucla_split,
    read_nw_ucla_json,
)
from videoact.datasets.skeleton.pyskl import read_paddle_npy, read_pyskl_pickle
from videoact.datasets.skeleton.sbu import SBU_CLASSES, SBU_FOLDS, load_sbu_processed, read_sbu_raw, sbu_fold
from videoact.datasets.skeleton.utkinect import (
    UTKINECT_CLASSES,
    UTKINECT_HALF_SPLITS,
    UTKRecording,
    frame_labels,
    load_utkinect,
    read_utkinect_labels,
    utkinect_split,
    utkinect_trimmed,
)

__all__ = [
    "MSR_ACTION3D_CLASSES",
    "MSR_ACTION_SETS",
    "NTU60_CLASSES",
    "NTU120_CLASSES",
    "NW_UCLA_CLASSES",
    "SBU_CLASSES",
    "SBU_FOLDS",
    "UTKINECT_CLASSES",
    "UTKINECT_HALF_SPLITS",
    "SkeletonSample",
    "UTKRecording",
    "frame_labels",
    "layout_num_joints",
    "load_msr_action3d",
    "load_nw_ucla",
    "load_sbu_processed",
    "load_utkinect",
    "msr_split",
    "ntu_split",
    "nw_ucla_split",
    "parse_ntu_name",
    "read_msr_skeleton",
    "read_ntu_missing",
    "read_ntu_skeleton",
    "read_nw_ucla_json",
    "read_paddle_npy",
    "read_pyskl_pickle",
    "read_sbu_raw",
    "read_utkinect_labels",
    "sbu_fold",
    "utkinect_split",
    "utkinect_trimmed",
]
