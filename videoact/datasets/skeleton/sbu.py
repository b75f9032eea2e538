"""SBU Kinect Interaction (Yun et al. 2012): two people, 15 joints each (``sbu15``), 8 interactions.

Two formats, both only partially available in ``../shared/data/skeleton/sbu_kinect_interaction_partial``:

* ``load_sbu_processed``: ``val_2d_resampled25.json`` from xrenaa/SBU_Kinect_dataset_process, a JSON *string*
  that itself holds JSON (``json.loads(json.load(f))``; a plain JSON object is accepted too):
  ``{"x": [N][2 persons][25 frames][15 joints][2], "label": [N] 0..7}``. x/y only, mapped to about [-1, 1],
  linearly resampled to 25 frames and shuffled, so samples have no original id: they are named
  ``<file stem>_<index>`` (``val_2d_resampled25_000``) and carry no fps. Real file: N = 84, label counts
  0:9 1:9 2:10 3:15 4:6 5:10 6:14 7:11, values in [-1.12, 1.23].
* ``read_sbu_raw``: the original ``skeleton_pos.txt`` CSV, one row per frame: ``frame, (x, y, z) x 15 joints of
  person A, (x, y, z) x 15 of person B`` (91 values; x, y normalised image coordinates in [0, 1], z depth),
  15 fps. ``frames`` keeps the frame numbers; ``label`` is None (the raw file does not say its class).
  **Quirk**: ``skeleton_pos_2.txt`` is two recordings glued together: frames 566-594 (29 rows), then 350-366
  (17 rows) with a jump in every joint; ``read_sbu_raw`` therefore splits a file wherever the frame number
  does not increase and returns one sample per run (``skeleton_pos_2_0``, ``skeleton_pos_2_1``; a file with
  one run keeps its stem as the name). ``skeleton_pos.txt``: one run, frames 278-298.

Split helper: the official 5-fold cross-validation over the 21 two-person sets (``SBU_FOLDS``, from the SBU
README); the partial data here has no set names, so ``sbu_fold`` takes a set name such as ``"s01s02"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from videoact.annotations.formats._common import FormatError, read_json, read_text
from videoact.datasets.skeleton._sample import SkeletonSample, parse_numbers

__all__ = ["SBU_CLASSES", "SBU_FOLDS", "load_sbu_processed", "read_sbu_raw", "sbu_fold"]

SBU_CLASSES: tuple[str, ...] = (
    "approaching", "departing", "kicking", "punching", "pushing", "hugging", "shaking hands", "exchanging",
)  # fmt: skip
SBU_FOLDS: tuple[tuple[str, ...], ...] = (
    ("s01s02", "s03s04", "s05s02", "s06s04"),
    ("s02s03", "s02s07", "s03s05", "s05s03"),
    ("s01s03", "s01s07", "s07s01", "s07s03"),
    ("s02s01", "s02s06", "s03s02", "s03s06"),
    ("s04s02", "s04s03", "s04s06", "s06s02", "s06s03"),
)
SBU_FPS = 15.0
SBU_JOINTS = 15


def sbu_fold(set_name: str) -> int:
    """Fold (1-5) of a two-person set such as ``"s01s02"`` in the official 5-fold cross-validation."""
    for k, fold in enumerate(SBU_FOLDS, start=1):
        if set_name in fold:
            return k
    raise ValueError(f"{set_name!r} is not one of the 21 SBU sets ({', '.join(s for f in SBU_FOLDS for s in f)})")


def load_sbu_processed(path: str | Path) -> list[SkeletonSample]:
    """The resampled 2D JSON as ``(2, 25, 15, 2)`` samples, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such SBU JSON file")
    data, _ = read_json(path)
    if isinstance(data, str):  # the file is a JSON string that encodes the JSON object
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise FormatError(path, None, f"the JSON string does not hold valid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not {"x", "label"} <= set(data):
        raise FormatError(path, None, "expected an object with 'x' [N][2][T][15][2] and 'label' [N]")
    try:
        x = np.asarray(data["x"], dtype=np.float32)  # (N, M, T, V, C)
        labels = np.asarray(data["label"])
    except (ValueError, TypeError):
        raise FormatError(path, None, "'x' must be a regular [N][2][T][15][2] list of numbers") from None
    if x.ndim != 5 or x.shape[1] != 2 or x.shape[3] != SBU_JOINTS or x.shape[4] not in (2, 3):
        raise FormatError(path, None, f"'x' must be [N][2][T][15][2 or 3], got shape {x.shape}")
    if labels.shape != (x.shape[0],) or labels.dtype.kind not in "iu":
        raise FormatError(path, None, f"'label' must hold {x.shape[0]} integers, got {labels.shape} {labels.dtype}")
    if labels.size and not (0 <= labels.min() and labels.max() < len(SBU_CLASSES)):
        raise FormatError(path, None, f"labels must be 0..{len(SBU_CLASSES) - 1}")
    return [
        SkeletonSample(
            name=f"{path.stem}_{i:03d}", keypoints=x[i], layout="sbu15", label=int(labels[i]), meta={"index": i}
        )
        for i in range(x.shape[0])
    ]


def read_sbu_raw(path: str | Path) -> list[SkeletonSample]:
    """A raw SBU ``skeleton_pos.txt`` as ``(2, T, 15, 3)`` samples, one per run of increasing frame numbers."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such SBU skeleton file")
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise FormatError(path, 1, "empty file")
    values = parse_numbers(path, [line.replace(",", " ") for line in lines], 1 + 2 * SBU_JOINTS * 3)  # (T, 91)
    frames = values[:, 0]
    bad = np.flatnonzero(frames != np.round(frames))
    if bad.size:
        raise FormatError(path, int(bad[0]) + 1, f"frame number {frames[bad[0]]} is not an integer")
    kp = values[:, 1:].reshape(-1, 2, SBU_JOINTS, 3).transpose(1, 0, 2, 3)  # (M=2, T, V, C)
    cuts = np.flatnonzero(np.diff(frames) <= 0) + 1
    runs = np.split(np.arange(len(frames)), cuts)
    return [
        SkeletonSample(
            name=path.stem if len(runs) == 1 else f"{path.stem}_{k}",
            keypoints=kp[:, rows],
            layout="sbu15",
            label=None,
            fps=SBU_FPS,
            frames=frames[rows].astype(np.int64),
            meta={"source_rows": (int(rows[0]) + 1, int(rows[-1]) + 1)},
        )
        for k, rows in enumerate(runs)
    ]
