"""Northwestern-UCLA Multiview Action 3D (NW-UCLA), the CTR-GCN ``all_sqe`` JSON release.

Format: ``<root>/all_sqe/aAA_sSS_eEE_vVV.json`` = ``{"file_name": "aAA_sSS_eEE_vVV", "skeletons": [T][20][3],
"label": 1..10}``: one Kinect v1 skeleton (``kinect20`` order), metres, camera frame. ``label`` is 1-based and
maps the original action ids a01-a06, a08, a09, a11, a12 to 1..10; the reader checks that mapping and that
``file_name`` matches the file, then returns ``label - 1``. ``subject`` = SS, ``view`` = VV (camera 1-3),
``meta["action"]`` = AA, ``meta["repetition"]`` = EE. The files carry no frame rate (``fps`` None).

Real files (``../shared/data/skeleton/nw_ucla``): 1,484 samples (v1 516, v2 504, v3 464), T = 1-201 frames
(mean 39.4; two samples have a single frame), no NaN, no all-zero frame, file_name and label consistent in
every file. Repetition ids run e00-e10 (not 1-based). ``val_label.pkl`` lists exactly the 464 view-3 samples.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from videoact.annotations.formats._common import FormatError, read_json
from videoact.datasets.skeleton._sample import SkeletonSample

__all__ = ["NW_UCLA_ACTION_IDS", "NW_UCLA_CLASSES", "load_nw_ucla", "nw_ucla_split", "read_nw_ucla_json"]

NW_UCLA_CLASSES: tuple[str, ...] = (
    "pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down", "stand up",
    "donning", "doffing", "throw", "carry",
)  # fmt: skip
NW_UCLA_ACTION_IDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)  # original aAA of labels 0..9
NW_UCLA_TRAIN_VIEWS: frozenset[int] = frozenset({1, 2})  # cross-view protocol (Wang et al. 2014)
_NAME = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})")


def read_nw_ucla_json(path: str | Path) -> SkeletonSample:
    """One ``all_sqe`` JSON file as a ``(1, T, 20, 3)`` ``kinect20`` sample."""
    path = Path(path)
    m = _NAME.fullmatch(path.stem)
    if m is None:
        raise ValueError(f"{path}: NW-UCLA files are named aAA_sSS_eEE_vVV.json")
    action, subject, rep, view = (int(g) for g in m.groups())
    data, _ = read_json(path)
    if not isinstance(data, dict) or set(data) != {"file_name", "skeletons", "label"}:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise FormatError(path, None, f"expected keys file_name, skeletons, label; got {got}")
    if data["file_name"] != path.stem:
        raise FormatError(path, None, f"file_name {data['file_name']!r} does not match the file name")
    label = data["label"]
    if not isinstance(label, int) or not 1 <= label <= len(NW_UCLA_CLASSES):
        raise FormatError(path, None, f"label must be an integer 1..{len(NW_UCLA_CLASSES)}, got {label!r}")
    expected = NW_UCLA_ACTION_IDS[label - 1]
    if expected != action:
        raise FormatError(path, None, f"label {label} belongs to action a{expected:02d}, the name says a{action:02d}")
    try:
        xyz = np.asarray(data["skeletons"], dtype=np.float32)  # (T, 20, 3)
    except (ValueError, TypeError):
        raise FormatError(path, None, "'skeletons' must be a [T][20][3] list of numbers") from None
    if xyz.ndim != 3 or xyz.shape[1:] != (20, 3) or xyz.shape[0] == 0:
        raise FormatError(path, None, f"'skeletons' must be [T][20][3] with T >= 1, got shape {xyz.shape}")
    if not np.isfinite(xyz).all():
        raise FormatError(path, None, "'skeletons' holds NaN or infinite values")
    return SkeletonSample(
        name=path.stem,
        keypoints=xyz[None],
        layout="kinect20",
        label=label - 1,
        subject=subject,
        view=view,
        meta={"action": action, "repetition": rep},
    )


def load_nw_ucla(root: str | Path) -> list[SkeletonSample]:
    """Every ``<root>/all_sqe/*.json`` sample, sorted by name."""
    folder = Path(root) / "all_sqe"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not found; pass the NW-UCLA folder that contains all_sqe/")
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .json files")
    return [read_nw_ucla_json(f) for f in files]


def nw_ucla_split(sample: SkeletonSample) -> str:
    """Cross-view protocol: views 1 and 2 train, view 3 test."""
    if sample.view is None:
        raise ValueError(f"sample {sample.name!r} has no view id")
    return "train" if sample.view in NW_UCLA_TRAIN_VIEWS else "test"
