"""UTKinect-Action3D (Xia et al. 2012): 20 continuous recordings with 10 labelled actions each.

Format (``<root>/joints/``):

* ``joints_sSS_eEE.txt``: one line per captured skeleton, ``frame_no x1 y1 z1 ... x20 y20 z20`` (61 numbers),
  metres, Kinect SDK joint order (``kinect20``). ``frame_no`` is the RGB/depth frame number and is sparse.
* ``actionLabel.txt`` (or Vemulapalli's corrected ``actionLabel_modified.txt``): a ``sSS_eEE`` line, then
  ``action: start end`` lines, frame numbers inclusive, in class order (not time order).

``load_utkinect`` returns one ``UTKRecording`` per joints file: ``keypoints (1, T, 20, 3)``, ``frames (T,)`` the
frame numbers, ``segments [(label_id, start_frame, end_frame_inclusive)]``. ``utkinect_trimmed`` cuts the
segments by frame number (``start <= frame <= end``) into one ``SkeletonSample`` per action;
``frame_labels`` gives the per-row class id (-1 = background) for segmentation.

Quirks of the real files (``../shared/data/skeleton/utkinect_action3d``):

* **Repeated frame numbers**: 542 rows (20 files, 6-145 per file; ``s01_e01`` at frames 190, 214, ...; one
  number appears three times) share their frame number with the previous row but hold *different* joints
  (median difference 0.05 m, about that of neighbouring rows), so they are distinct captures, not copies.
  All rows are kept in file order; ``frames`` is non-decreasing, and ``meta["repeated_frames"]`` counts them.
  Frame numbers never go backwards (a file where they do is refused).
* ``s10_e02 carry: NaN NaN``: the one unlabelled action; it is not a segment (199 segments in all) and is
  listed in the recording's ``meta["unlabelled"]``.
* Segments overlap 11 times in ``actionLabel.txt`` (7 in the modified file): mostly a shared boundary frame
  (``s01_e01`` pull 1640-1686, push 1686-1748) but also ``s03_e01 push: 2556 3622`` (a typo for 3556, fixed in
  the modified file) and ``s09_e01`` push 3266-3390 / pull 3316-3390. ``frame_labels`` lets the segment that
  starts later own the shared frames; trimming gives each segment all of its frames.
* 4 boundaries are frame numbers without a joint row (e.g. ``s01_e02`` walk ends at 192, rows 190 and 194);
  cutting by ``start <= frame <= end`` handles them. Every segment has at least 5 rows.
* The label file has trailing spaces on 16 lines and a double space before ``NaN``.

The frame rate of ``frame_no`` is not stated in the shared files (``fps`` None); the rows are irregular in time.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from videoact.annotations.formats._common import FormatError, read_text
from videoact.datasets.skeleton._sample import SkeletonSample, parse_numbers

__all__ = [
    "UTKINECT_CLASSES",
    "UTKINECT_HALF_SPLITS",
    "UTKRecording",
    "frame_labels",
    "load_utkinect",
    "read_utkinect_labels",
    "utkinect_split",
    "utkinect_trimmed",
]

UTKINECT_CLASSES: tuple[str, ...] = (
    "walk", "sitDown", "standUp", "pickUp", "carry", "throw", "push", "pull", "waveHands", "clapHands",
)  # fmt: skip
# Vemulapalli et al. 2014 (meta/tr_te_splits.mat, tr_subjects): 10 random half/half subject splits, train side
UTKINECT_HALF_SPLITS: tuple[tuple[int, ...], ...] = (
    (2, 5, 7, 8, 9), (2, 3, 8, 9, 10), (2, 3, 6, 7, 8), (3, 5, 6, 8, 9), (2, 4, 5, 6, 10),
    (3, 6, 7, 8, 9), (1, 2, 4, 6, 7), (2, 7, 8, 9, 10), (1, 3, 6, 9, 10), (1, 6, 8, 9, 10),
)  # fmt: skip
_REC = re.compile(r"s(\d{2})_e(\d{2})")
_SEG = re.compile(r"(\w+):\s*(\S+)\s+(\S+)")

Segment = tuple[int, int, int]  # (label_id, start_frame, end_frame inclusive)


@dataclass
class UTKRecording(SkeletonSample):
    """A whole recording (``label`` None): ``frames`` holds the frame numbers, ``segments`` the actions."""

    segments: list[Segment] = field(default_factory=list)


def read_utkinect_labels(path: str | Path) -> dict[str, tuple[list[Segment], list[str]]]:
    """``actionLabel.txt`` -> ``{"sSS_eEE": (segments, unlabelled class names)}`` (NaN entries are unlabelled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such UTKinect label file")
    out: dict[str, tuple[list[Segment], list[str]]] = {}
    current: str | None = None
    for i, line in enumerate(read_text(path).splitlines()):
        text = line.strip()
        if not text:
            continue
        if _REC.fullmatch(text):
            if text in out:
                raise FormatError(path, i + 1, f"recording {text} is listed twice")
            current = text
            out[current] = ([], [])
            continue
        m = _SEG.fullmatch(text)
        if m is None:
            raise FormatError(path, i + 1, f"expected 'sSS_eEE' or 'action: start end', got {text!r}")
        if current is None:
            raise FormatError(path, i + 1, "segment line before the first sSS_eEE line")
        name, a, b = m.groups()
        if name not in UTKINECT_CLASSES:
            raise FormatError(path, i + 1, f"unknown action {name!r}; UTKinect has {', '.join(UTKINECT_CLASSES)}")
        if a == "NaN" and b == "NaN":
            out[current][1].append(name)
            continue
        try:
            start, end = int(a), int(b)
        except ValueError:
            raise FormatError(path, i + 1, f"frame numbers must be integers (or NaN NaN), got {a!r} {b!r}") from None
        if start > end:
            raise FormatError(path, i + 1, f"segment starts after it ends ({start} > {end})")
        out[current][0].append((UTKINECT_CLASSES.index(name), start, end))
    if not out:
        raise FormatError(path, None, "no sSS_eEE recordings in the file")
    return out


def _read_joints(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 20, 3)`` joints and ``(T,)`` frame numbers of one joints file."""
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise FormatError(path, 1, "empty joints file")
    values = parse_numbers(path, lines, 61)  # (T, 61)
    frames = values[:, 0]
    bad = np.flatnonzero(frames != np.round(frames))
    if bad.size:
        raise FormatError(path, int(bad[0]) + 1, f"frame number {frames[bad[0]]} is not an integer")
    back = np.flatnonzero(np.diff(frames) < 0)
    if back.size:
        raise FormatError(path, int(back[0]) + 2, "frame numbers go backwards; rows must be in time order")
    return values[:, 1:].reshape(-1, 20, 3), frames.astype(np.int64)


def load_utkinect(root: str | Path, *, labels: str | Path = "actionLabel.txt") -> list[UTKRecording]:
    """Every ``<root>/joints/joints_sSS_eEE.txt`` recording with its segments from ``labels``.

    ``labels`` is a file name inside ``<root>/joints`` (``actionLabel.txt``, ``actionLabel_modified.txt``) or
    a path. A recording without label lines gets no segments; label lines for a missing joints file fail.
    """
    folder = Path(root) / "joints"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not found; pass the UTKinect folder that contains joints/")
    label_path = Path(labels) if Path(labels).is_absolute() else folder / labels
    table = read_utkinect_labels(label_path)
    files = sorted(folder.glob("joints_s??_e??.txt"))
    if not files:
        raise FileNotFoundError(f"{folder}: no joints_sSS_eEE.txt files")
    names = [f.stem.removeprefix("joints_") for f in files]
    orphan = sorted(set(table) - set(names))
    if orphan:
        raise FormatError(label_path, None, f"labels for recordings without a joints file: {orphan}")
    out = []
    for f, name in zip(files, names, strict=True):
        xyz, frames = _read_joints(f)
        segments, unlabelled = table.get(name, ([], []))
        subject, rep = int(name[1:3]), int(name[5:7])  # the glob guarantees sSS_eEE
        out.append(
            UTKRecording(
                name=name,
                keypoints=xyz[None],
                layout="kinect20",
                label=None,
                subject=subject,
                frames=frames,
                segments=list(segments),
                meta={
                    "repetition": rep,
                    "unlabelled": list(unlabelled),
                    "repeated_frames": int((np.diff(frames) == 0).sum()),
                    "labels_file": label_path.name,
                },
            )
        )
    return out


def utkinect_trimmed(recordings: list[UTKRecording]) -> list[SkeletonSample]:
    """One sample per segment, named ``sSS_eEE_<action>``, holding the rows with ``start <= frame <= end``."""
    out = []
    for rec in recordings:
        assert rec.frames is not None
        for label, start, end in rec.segments:
            keep = (rec.frames >= start) & (rec.frames <= end)
            if not keep.any():
                msg = f"{rec.name}: segment {UTKINECT_CLASSES[label]} {start}-{end} has no joint rows; skipped"
                warnings.warn(msg, stacklevel=2)
                continue
            out.append(
                SkeletonSample(
                    name=f"{rec.name}_{UTKINECT_CLASSES[label]}",
                    keypoints=rec.keypoints[:, keep],
                    layout=rec.layout,
                    label=label,
                    fps=rec.fps,
                    subject=rec.subject,
                    frames=rec.frames[keep],
                    meta={"recording": rec.name, "start_frame": start, "end_frame": end},
                )
            )
    return out


def frame_labels(recording: UTKRecording) -> np.ndarray:
    """``(T,)`` class id of each row, -1 outside every segment; where segments overlap the later start wins."""
    assert recording.frames is not None
    labels = np.full(recording.num_frames, -1, dtype=np.int64)
    for label, start, end in sorted(recording.segments, key=lambda s: s[1]):
        labels[(recording.frames >= start) & (recording.frames <= end)] = label
    return labels


def utkinect_split(sample: SkeletonSample, *, split: int = 0) -> str:
    """Train/test side of a sample under Vemulapalli et al.'s half/half subject split ``split`` (0-9)."""
    if sample.subject is None:
        raise ValueError(f"sample {sample.name!r} has no subject id")
    if not 0 <= split < len(UTKINECT_HALF_SPLITS):
        raise ValueError(f"split must be 0..{len(UTKINECT_HALF_SPLITS) - 1}, got {split}")
    return "train" if sample.subject in UTKINECT_HALF_SPLITS[split] else "test"
