"""Untrimmed skeleton recordings for temporal action segmentation and detection, by protocol name.

A protocol gives ``UntrimmedSequence`` s: joints on a uniform time grid (``step_frames`` video frames per grid
step), the per-frame ground truth over the whole video timeline (``frame_labels``, background included as a
class) and the action instances (``segments``, which may overlap). Heads predict per grid step (or per feature
step, a multiple of it); predictions are repeated back to frames and scored on the frame timeline.

=====================  ==========================================================================================
utkinect_untrimmed     UTKinect-Action3D, the 20 continuous recordings with Vemulapalli's corrected labels
                       (``actionLabel_modified.txt``: fixes e.g. ``s03_e01 push 2556-3622``, which would label a
                       third of the recording). **Leave-subjects-out**: half/half split 0 of ``tr_te_splits.mat``
                       (the ``utkinect_xsub`` split): subjects 2, 5, 7, 8, 9 train (10 recordings), subjects 1, 3,
                       4, 6, 10 test (10 recordings). 11 classes: the 10 actions and ``background`` (id 10).
nw_ucla_concat         long sequences made of real NW-UCLA sequences, one after the other (recipe below). 10
                       classes, no background. ``split="view3_xsub"`` (default): only view 3 (460 sequences, 47
                       long ones), the view the shipped ``builtin:nw_ucla_stgcnpp`` never saw, so the features of
                       the training and the test side are equally "unseen"; subjects 1, 3, 5, 7, 9 train (22 long
                       sequences), 2, 4, 6, 8, 10 test (25). ``split="xview"``: views 1+2 train (102), view 3 test
                       (47); there the shipped model has been trained on every training sequence, so a head learns
                       on cleaner features than it is tested on.
=====================  ==========================================================================================

``validation=True`` moves training subjects to the test side and drops the real test side (UTKinect: 8, 9;
NW-UCLA view3_xsub: 7, 9; xview: 9, 10): settings are chosen on it, never on the test subjects.

UTKinect timeline: joint rows are keyed by sparse video frame numbers (every 4-6 frames, some numbers twice).
The video is frames ``0 .. last row``; rows sharing a frame number are averaged; the grid (``step_frames`` = 2)
samples the joints at each step's centre by linear interpolation between rows (held constant before the first
and after the last row). Segments are inclusive frame ranges; where two overlap the later start owns the shared
frames (as ``utkinect.frame_labels``). Frame rate: the files do not state it; 30 fps (Kinect v1) is assumed for the
seconds columns; no metric depends on it (segmentation counts frames, tIoU is scale-free).

NW-UCLA concatenation recipe: per (view, subject), the sequences are shuffled (``numpy.random.default_rng(seed)``,
seed 0) and cut into groups of ``clips_per_sequence`` (10) in that order; a last group shorter than half of that
joins the previous one. Sequences with fewer than 10 frames (10 of 1,484) are left out. Each sequence is
translated so that its first-frame spine joint sits where the previous sequence's last-frame spine joint was, so
a cut shows as a change of pose, not as a jump of the whole body. 30 fps (the ``nw_ucla_xview`` benchmark's
rate), ``step_frames`` = 1. No sequence is on both sides (subjects or views split them), and each is used once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from videoact.datasets.skeleton.nw_ucla import NW_UCLA_CLASSES, NW_UCLA_TRAIN_VIEWS, load_nw_ucla
from videoact.datasets.skeleton.utkinect import UTKINECT_CLASSES, UTKINECT_HALF_SPLITS, load_utkinect
from videoact.features.skeleton.layouts import get_layout
from videoact.registry import Registry

BACKGROUND = "background"
Instance = tuple[int, int, int]  # (label_id, start_frame, end_frame exclusive)


@dataclass
class UntrimmedSequence:
    """One untrimmed video: joints on the grid, per-frame ground truth and the action instances."""

    name: str
    keypoints: np.ndarray  # (M, S, V, C) float32 on the grid
    step_frames: int  # video frames per grid step: step i is frames [i * step_frames, (i + 1) * step_frames)
    frame_labels: np.ndarray  # (n_frames,) int64 class id of every video frame
    segments: list[Instance]  # action instances (detection ground truth), possibly overlapping
    fps: float
    subject: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.frame_labels)

    @property
    def num_steps(self) -> int:
        return int(self.keypoints.shape[1])

    def step_labels(self, stride: int = 1) -> np.ndarray:
        """``(ceil(S / stride),)`` the frame label at the centre of every ``stride``-step block (training targets)."""
        span = self.step_frames * stride
        centres = np.minimum(np.arange(-(-self.n_frames // span)) * span + span // 2, self.n_frames - 1)
        return self.frame_labels[centres]


@dataclass
class UntrimmedBenchmark:
    name: str
    train: list[UntrimmedSequence]
    test: list[UntrimmedSequence]
    classes: tuple[str, ...]
    background: str | None  # the class name Edit / F1 / detection ignore (None: every frame is an action)
    layout: str
    fps: float
    protocol: str

    @property
    def background_id(self) -> int | None:
        return None if self.background is None else self.classes.index(self.background)

    def __post_init__(self) -> None:
        if not self.train or not self.test:
            raise ValueError(f"protocol {self.name}: empty split ({len(self.train)} train, {len(self.test)} test)")


def to_grid(x: np.ndarray, frames: np.ndarray, *, n_frames: int, step: int) -> np.ndarray:
    """Joints ``(M, T, V, C)`` at sparse, non-decreasing frame numbers -> ``(M, ceil(n_frames/step), V, C)``.

    Rows with the same frame number are averaged; each grid step takes the linear interpolation at its centre
    frame ``i*step + (step-1)/2``, clamped to the first / last row.
    """
    uniq, inv = np.unique(frames, return_inverse=True)
    rows = np.zeros((len(uniq), *x.shape[:1], *x.shape[2:]), np.float64)  # (U, M, V, C)
    np.add.at(rows, inv, x.transpose(1, 0, 2, 3))
    rows /= np.bincount(inv)[:, None, None, None]
    centres = np.arange(-(-n_frames // step)) * step + (step - 1) / 2
    if len(uniq) == 1:
        out = np.repeat(rows, len(centres), axis=0)
    else:
        j = np.clip(np.searchsorted(uniq, centres, side="right") - 1, 0, len(uniq) - 2)
        w = np.clip((centres - uniq[j]) / (uniq[j + 1] - uniq[j]), 0.0, 1.0)[:, None, None, None]
        out = (1 - w) * rows[j] + w * rows[j + 1]
    return out.transpose(1, 0, 2, 3).astype(np.float32)


def utkinect_untrimmed(root: str | Path, *, validation: bool = False, step_frames: int = 2,
                       fps: float = 30.0) -> UntrimmedBenchmark:
    """UTKinect-Action3D recordings, leave-subjects-out (split 0 of ``tr_te_splits.mat``; module docstring)."""
    recs = load_utkinect(root, labels="actionLabel_modified.txt")
    classes = (*UTKINECT_CLASSES, BACKGROUND)
    bg = len(UTKINECT_CLASSES)
    train_subjects = sorted(UTKINECT_HALF_SPLITS[0])
    if validation:
        train_subjects, test_subjects = train_subjects[:-2], train_subjects[-2:]
    else:
        test_subjects = sorted(set(range(1, 11)) - set(train_subjects))
    seqs: list[UntrimmedSequence] = []
    for rec in recs:
        assert rec.frames is not None
        n = int(rec.frames[-1]) + 1
        labels = np.full(n, bg, dtype=np.int64)
        for lab, start, end in sorted(rec.segments, key=lambda s: s[1]):
            labels[start:end + 1] = lab
        seqs.append(UntrimmedSequence(
            name=rec.name, keypoints=to_grid(rec.keypoints, rec.frames, n_frames=n, step=step_frames),
            step_frames=step_frames, frame_labels=labels,
            segments=sorted((lab, s, e + 1) for lab, s, e in rec.segments), fps=fps, subject=rec.subject,
            meta={"first_row_frame": int(rec.frames[0]), "rows": int(rec.num_frames)}))
    train = [s for s in seqs if s.subject in train_subjects]
    test = [s for s in seqs if s.subject in test_subjects]
    side = "validation: subjects " + ", ".join(map(str, test_subjects)) if validation else \
        "test subjects " + ", ".join(map(str, test_subjects))
    return UntrimmedBenchmark(
        "utkinect_untrimmed", train, test, classes, BACKGROUND, "kinect20", fps,
        f"UTKinect-Action3D untrimmed recordings (corrected labels), leave-subjects-out: train subjects "
        f"{', '.join(map(str, train_subjects))}, {side}")


def nw_ucla_concat(root: str | Path, *, validation: bool = False, clips_per_sequence: int = 10, seed: int = 0,
                   min_frames: int = 10, split: str = "view3_xsub") -> UntrimmedBenchmark:
    """Long sequences of real NW-UCLA sequences (recipe and ``split`` in the module docstring)."""
    samples = [s for s in load_nw_ucla(root) if s.num_frames >= min_frames]
    groups: dict[tuple[int, int], list] = defaultdict(list)
    for s in samples:
        groups[(int(s.view or 0), int(s.subject or 0))].append(s)
    rng = np.random.default_rng(seed)
    spine = get_layout("kinect20").index("spine")
    seqs: list[UntrimmedSequence] = []
    for (view, subject), members in sorted(groups.items()):
        order = [members[i] for i in rng.permutation(len(members))]
        chunks = [order[i:i + clips_per_sequence] for i in range(0, len(order), clips_per_sequence)]
        if len(chunks) > 1 and len(chunks[-1]) < clips_per_sequence / 2:
            last = chunks.pop()
            chunks[-1] = chunks[-1] + last
        for k, chunk in enumerate(chunks):
            parts, labels, segments, at = [], [], [], 0
            for s in chunk:
                x = s.keypoints.copy()  # (1, T, V, C)
                if parts:
                    x += parts[-1][:, -1:, spine:spine + 1] - x[:, :1, spine:spine + 1]
                parts.append(x)
                labels.append(np.full(s.num_frames, int(s.label), np.int64))
                segments.append((int(s.label), at, at + s.num_frames))
                at += s.num_frames
            seqs.append(UntrimmedSequence(
                name=f"nwucla_v{view}_s{subject:02d}_{k:02d}", keypoints=np.concatenate(parts, axis=1),
                step_frames=1, frame_labels=np.concatenate(labels), segments=segments, fps=30.0, subject=subject,
                meta={"view": view, "clips": [s.name for s in chunk]}))
    base = (f"NW-UCLA concatenated: {clips_per_sequence} real sequences per long sequence (same view and subject, "
            f"shuffled with seed {seed})")
    if split == "view3_xsub":
        seqs = [s for s in seqs if s.meta["view"] not in NW_UCLA_TRAIN_VIEWS]
        train_subjects, test_subjects = [1, 3, 5, 7, 9], [2, 4, 6, 8, 10]
        if validation:
            train_subjects, test_subjects = [1, 3, 5], [7, 9]
        train = [s for s in seqs if s.subject in train_subjects]
        test = [s for s in seqs if s.subject in test_subjects]
        protocol = (f"{base}, view 3 only (never seen by the shipped NW-UCLA model), train subjects "
                    f"{', '.join(map(str, train_subjects))}, test subjects {', '.join(map(str, test_subjects))}")
    elif split == "xview":
        train = [s for s in seqs if s.meta["view"] in NW_UCLA_TRAIN_VIEWS]
        test = [s for s in seqs if s.meta["view"] not in NW_UCLA_TRAIN_VIEWS]
        protocol = f"{base}, train views 1+2, test view 3"
        if validation:
            test = [s for s in train if s.subject in (9, 10)]
            train = [s for s in train if s.subject not in (9, 10)]
            protocol += "; validation: views 1+2, subjects 9, 10 held out"
    else:
        raise ValueError(f"nw_ucla_concat split must be view3_xsub or xview, got {split!r}")
    return UntrimmedBenchmark("nw_ucla_concat", train, test, tuple(NW_UCLA_CLASSES), None, "kinect20", 30.0,
                              protocol)


@dataclass(frozen=True)
class ProtocolSpec:
    """How to build a protocol from its data folder (with options), and which folder of ``../shared/data/skeleton``
    that is."""

    build: Callable[..., UntrimmedBenchmark]
    default_root: str

    def __call__(self, root: Path, **options: Any) -> UntrimmedBenchmark:
        return self.build(root, **options)


PROTOCOLS: Registry[ProtocolSpec] = Registry("untrimmed protocol")
PROTOCOLS.register("utkinect_untrimmed", ProtocolSpec(utkinect_untrimmed, "utkinect_action3d"))
PROTOCOLS.register("nw_ucla_concat", ProtocolSpec(nw_ucla_concat, "nw_ucla"))


def load_untrimmed(name: str, root: str | Path, **options: Any) -> UntrimmedBenchmark:
    """A protocol by name (``PROTOCOLS``; ``UnknownNameError``, a ``KeyError``, lists them); ``root`` is the
    dataset's folder."""
    spec = PROTOCOLS.get(name)
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: data folder of protocol {name} not found (expected the "
                                f"{spec.default_root!r} folder of ../shared/data/skeleton; set data.root)")
    return spec(root, **options)


def frames_from_steps(step_values: np.ndarray, *, frames_per_step: int, n_frames: int) -> np.ndarray:
    """Repeat per-step values (labels or ``(S, K)`` probabilities) back onto the ``n_frames`` video frames."""
    out = np.repeat(np.asarray(step_values), frames_per_step, axis=0)
    if len(out) < n_frames:
        raise ValueError(f"{len(step_values)} steps of {frames_per_step} frames do not cover {n_frames} frames")
    return out[:n_frames]


def instances_of(labels: Sequence[int] | np.ndarray, background: int | None) -> list[Instance]:
    """Runs of equal labels as ``(label, start, end_exclusive)``, background runs dropped."""
    labels = np.asarray(labels)
    if not len(labels):
        return []
    cut = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [len(labels)]])
    return [(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)
            if background is None or labels[s] != background]
