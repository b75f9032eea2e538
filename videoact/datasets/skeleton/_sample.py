"""The one in-memory sample type every skeleton reader returns, and the checks it enforces."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from videoact.annotations.formats._common import FormatError
from videoact.features.skeleton.layouts import LAYOUTS

_UNKNOWN = re.compile(r"unknown(\d+)")


def layout_num_joints(layout: str) -> int:
    """Joints of a registered layout, or ``V`` of ``"unknown<V>"`` (a skeleton with no registered layout, the
    name ``skeleton_pickle`` already uses for such arrays)."""
    if layout in LAYOUTS:
        return LAYOUTS[layout].num_joints
    m = _UNKNOWN.fullmatch(layout)
    if m is None:
        raise ValueError(
            f"unknown joint layout {layout!r}; use one of {', '.join(LAYOUTS)} or 'unknown<V>' for an unregistered one"
        )
    return int(m.group(1))


@dataclass
class SkeletonSample:
    """One skeleton sequence: persons x frames x joints x coordinates, plus what the dataset says about it.

    ``__post_init__`` checks the shapes (and makes ``keypoints``/``scores`` float32), so a reader cannot
    hand out an array whose joint count disagrees with its ``layout``.
    """

    name: str  # dataset sample id, e.g. "a01_s01_e00_v01", "S001C001P001R001A001"
    keypoints: np.ndarray  # (M, T, V, C) float32
    layout: str  # a name from videoact.features.skeleton.layouts.LAYOUTS (or "unknown<V>")
    label: int | None  # 0-based class id
    scores: np.ndarray | None = None  # (M, T, V) float32
    fps: float | None = None
    subject: int | None = None
    view: int | None = None  # camera / view id
    frames: np.ndarray | None = None  # (T,) original frame numbers when not 0..T-1
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints)
        if kp.ndim != 4:
            raise ValueError(f"sample {self.name!r}: keypoints must be (M, T, V, C), got shape {kp.shape}")
        self.keypoints = kp.astype(np.float32, copy=False)
        v = layout_num_joints(self.layout)
        if kp.shape[2] != v:
            raise ValueError(
                f"sample {self.name!r}: keypoints have {kp.shape[2]} joints, layout {self.layout!r} has {v}"
            )
        if self.scores is not None:
            sc = np.asarray(self.scores)
            if sc.shape != kp.shape[:3]:
                raise ValueError(f"sample {self.name!r}: scores must be (M, T, V) = {kp.shape[:3]}, got {sc.shape}")
            self.scores = sc.astype(np.float32, copy=False)
        if self.frames is not None:
            fr = np.asarray(self.frames)
            if fr.shape != (kp.shape[1],):
                raise ValueError(f"sample {self.name!r}: frames must be (T,) = ({kp.shape[1]},), got {fr.shape}")
            self.frames = fr

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[1])


def parse_numbers(path: Path, lines: list[str], per_line: int, first_line: int = 1) -> np.ndarray:
    """``(len(lines), per_line)`` float64 from whitespace-separated text lines.

    Every line must hold exactly ``per_line`` finite numbers (checked per line, so two bad lines cannot cancel
    out); the conversion is one numpy call for the whole block. Only on failure are the lines walked one by
    one to name the first bad line (``first_line`` = the file line of ``lines[0]``).
    """
    rows = [line.split() for line in lines]
    if all(len(r) == per_line for r in rows):
        try:
            values = np.array(list(chain.from_iterable(rows)), dtype=np.float64)
        except ValueError:
            values = None
        if values is not None and np.isfinite(values).all():
            return values.reshape(len(lines), per_line)
    for i, parts in enumerate(rows):
        if len(parts) != per_line:
            raise FormatError(
                path, first_line + i, f"expected {per_line} numbers, got {len(parts)}: {lines[i].strip()!r}"
            )
        for tok in parts:
            try:
                ok = bool(np.isfinite(float(tok)))
            except ValueError:
                ok = False
            if not ok:
                raise FormatError(path, first_line + i, f"not a finite number: {tok!r}")
    raise AssertionError("unreachable: the block failed to parse but every line is valid")  # pragma: no cover
