"""Preprocessed (model-input) skeleton files: mmaction2 / pyskl pickles and PaddleVideo ``.npy`` arrays.

* ``read_pyskl_pickle``: the three containers ``videoact.annotations.formats.skeleton_pickle`` accepts (whole
  dataset ``{"split", "annotations"}``, a bare list of annotations, or one annotation dict such as PaddleVideo's
  ``example_UCF101_skeleton.pkl``), loaded with ``safe_pickle_load`` (never plain pickle). Each annotation
  ``{frame_dir, label, keypoint (M,T,V,C), [keypoint_score (M,T,V)], total_frames, img_shape, ...}`` becomes a
  sample named ``frame_dir``; arrays are stored as float16 by pyskl and come back float32. Layout: option
  ``layout``, else ``coco17`` for V=17, C=2 and ``ntu25`` for V=25, C=3 (else ``unknown<V>``). The splits the
  sample is listed in go to ``meta["splits"]``, every other key to ``meta``; an NTU ``frame_dir`` also sets
  ``subject`` and ``view``. No fps: the pickle does not store one.
* ``read_paddle_npy``: PaddleVideo's ``(C, T, V, M)`` arrays, zero-padded to a fixed T (300 for NTU, 2500 for
  FSD-10) and M. Trailing all-zero frames and all-zero persons are dropped (``meta["padded_shape"]`` keeps the
  stored shape); zero frames inside the sequence stay. ``score_channel`` moves one channel to ``scores``
  (FSD-10 stores OpenPose x, y, score).

Real files (``../shared/data/skeleton/samples_misc``): the UCF101 pickle is one annotation, keypoint float16
(2, 163, 17, 2) with scores, img_shape (256, 340). ``example_NTU-RGB-D_sketeton.npy`` (sic) float32
(3, 300, 25, 2): 72 real frames, second person all zeros -> (1, 72, 25, 3). ``fsd10_example_skeleton.npy``
float64 (3, 2500, 25, 1): 117 real frames -> (1, 117, 25, 2) + scores. Its joints are OpenPose BODY_25, which
has no registered layout yet: read it with ``layout="unknown25"`` (not ``ntu25``: a different joint order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from videoact.annotations.formats._common import FormatError, safe_pickle_load
from videoact.annotations.formats.skeleton_pickle import (
    _check_arrays,
    _container,
    _default_layout,
    _int_value,
    parse_ntu_name,
)
from videoact.datasets.skeleton._sample import SkeletonSample

__all__ = ["read_paddle_npy", "read_pyskl_pickle"]

_ARRAYS = ("keypoint", "keypoint_score", "frame_dir", "label")


def read_pyskl_pickle(path: str | Path, *, layout: str | None = None) -> list[SkeletonSample]:
    """Every annotation of an mmaction2 / pyskl skeleton pickle, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such pickle")
    kind, anns, split, _ = _container(safe_pickle_load(path), path)
    member: dict[str, list[str]] = {}
    for sname, names in split.items():
        for fd in names:
            member.setdefault(fd, []).append(sname)
    out = []
    for i, ann in enumerate(anns):
        where = f"annotations[{i}]" if kind != "single" else "annotation"
        if not isinstance(ann, dict) or not isinstance(ann.get("frame_dir"), str):
            raise FormatError(path, None, f"{where}: must be a dict with a 'frame_dir' string")
        fd = ann["frame_dir"]
        where = f"{where} (frame_dir={fd!r})"
        if "keypoint" not in ann:
            raise FormatError(path, None, f"{where}: no 'keypoint' array")
        kp, score = _check_arrays(path, where, ann["keypoint"], ann.get("keypoint_score"))
        label = _int_value(ann["label"]) if "label" in ann else None
        if "label" in ann and label is None:
            raise FormatError(path, None, f"{where}: 'label' must be an integer, got {ann['label']!r}")
        try:
            ntu: dict[str, int] | None = parse_ntu_name(fd)
        except ValueError:
            ntu = None
        meta: dict[str, Any] = {k: v for k, v in ann.items() if k not in _ARRAYS}
        if split:
            meta["splits"] = member.get(fd, [])
        try:
            sample = SkeletonSample(
                name=fd,
                keypoints=kp,
                layout=layout or _default_layout(kp.shape[2], kp.shape[3]),
                label=label,
                scores=score,
                subject=ntu["performer"] if ntu else None,
                view=ntu["camera"] if ntu else None,
                meta=meta,
            )
        except ValueError as exc:
            raise FormatError(path, None, f"{where}: {exc}") from None
        out.append(sample)
    return out


def read_paddle_npy(path: str | Path, layout: str, *, score_channel: int | None = None) -> SkeletonSample:
    """A PaddleVideo ``(C, T, V, M)`` array as one ``(M, T, V, C)`` sample without the zero padding."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .npy file")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise FormatError(path, None, f"not a plain numpy array ({exc})") from None
    if arr.ndim != 4 or not np.issubdtype(arr.dtype, np.number):
        raise FormatError(path, None, f"expected a numeric (C, T, V, M) array, got {arr.dtype} {arr.shape}")
    kp = np.ascontiguousarray(arr.transpose(3, 1, 2, 0))  # (C, T, V, M) -> (M, T, V, C)
    alive = kp.any(axis=(0, 2, 3))  # (T,)
    t_end = int(np.flatnonzero(alive)[-1]) + 1 if alive.any() else 0
    persons = kp.any(axis=(1, 2, 3))  # (M,)
    keep = persons if persons.any() else np.arange(kp.shape[0]) == 0
    kp = kp[keep, :t_end]
    scores = None
    if score_channel is not None:
        if not -kp.shape[3] <= score_channel < kp.shape[3]:
            raise ValueError(f"{path}: score_channel {score_channel} is outside the {kp.shape[3]} channels")
        scores = kp[..., score_channel]
        kp = np.delete(kp, score_channel, axis=3)
    return SkeletonSample(
        name=path.stem,
        keypoints=kp,
        layout=layout,
        label=None,
        scores=scores,
        meta={"padded_shape": tuple(arr.shape)},
    )
