"""Skeleton recognition benchmarks: a dataset, its standard train/test protocol and label names, by one name.

``load_benchmark("nw_ucla_xview", root)`` is what ``videoact train`` and the benchmark scripts call, so a
protocol is written down once:

=====================  ==============================================================================
nw_ucla_xview          NW-UCLA cross-view: train views 1+2 (1,020), test view 3 (464) (Wang et al. 2014)
msr_action3d_xsub      MSR Action3D, all 20 classes, the 557 files of Wang et al. 2012, subjects 1,3,5,7,9
                       train, 2,4,6,8,10 test
msr_action3d_as{1,2,3}  the same subject split on one 8-class action set (Li et al. 2010)
utkinect_xsub          UTKinect-Action3D segments, half/half subject split 0 of ``tr_te_splits.mat``
sbu_partial            the 84-sample SBU 2D subset: a fixed, stratified 2/3 - 1/3 split (seed 0); a sanity
                       check only, not comparable to published numbers
=====================  ==============================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from videoact.datasets.skeleton._sample import SkeletonSample
from videoact.datasets.skeleton.msr_action3d import (
    MSR_ACTION3D_CLASSES,
    MSR_ACTION_SETS,
    load_msr_action3d,
    msr_split,
)
from videoact.datasets.skeleton.nw_ucla import NW_UCLA_CLASSES, load_nw_ucla, nw_ucla_split
from videoact.datasets.skeleton.sbu import SBU_CLASSES, load_sbu_processed
from videoact.datasets.skeleton.utkinect import (
    UTKINECT_CLASSES,
    load_utkinect,
    utkinect_split,
    utkinect_trimmed,
)
from videoact.registry import Registry


@dataclass
class Benchmark:
    """Train and test samples of one protocol, with what a model needs to know about them."""

    name: str
    train: list[SkeletonSample]
    test: list[SkeletonSample]
    classes: tuple[str, ...]
    layout: str
    in_channels: int
    num_persons: int
    fps: float | None
    protocol: str

    def __post_init__(self) -> None:
        if not self.train or not self.test:
            raise ValueError(f"benchmark {self.name}: empty split ({len(self.train)} train, {len(self.test)} test)")


def _split(samples: list[SkeletonSample], fn: Callable[[SkeletonSample], str]) -> tuple[list, list]:
    parts = [fn(s) for s in samples]
    return ([s for s, p in zip(samples, parts, strict=True) if p == "train"],
            [s for s, p in zip(samples, parts, strict=True) if p == "test"])


def _nw_ucla(root: Path) -> Benchmark:
    samples = load_nw_ucla(root)
    train, test = _split(samples, nw_ucla_split)
    return Benchmark("nw_ucla_xview", train, test, tuple(NW_UCLA_CLASSES), "kinect20", 3, 1, 30.0,
                     "NW-UCLA cross-view: train views 1+2, test view 3")


def _msr(root: Path, action_set: int | None = None) -> Benchmark:
    samples = [s for s in load_msr_action3d(root, files="cvpr12") if not s.meta.get("all_zero")]
    classes: tuple[str, ...] = tuple(MSR_ACTION3D_CLASSES)
    name = "msr_action3d_xsub"
    protocol = "MSR Action3D cross-subject, 20 classes, 557 files (odd subjects train)"
    if action_set is not None:
        keep = list(MSR_ACTION_SETS[f"AS{action_set}"])
        remap = {c: i for i, c in enumerate(keep)}
        samples = [SkeletonSample(name=s.name, keypoints=s.keypoints, layout=s.layout, label=remap[s.label],
                                  scores=s.scores, fps=s.fps, subject=s.subject, view=s.view, meta=s.meta)
                   for s in samples if s.label in remap]
        classes = tuple(MSR_ACTION3D_CLASSES[c] for c in keep)
        name, protocol = f"msr_action3d_as{action_set}", f"MSR Action3D cross-subject, action set AS{action_set}"
    train, test = _split(samples, msr_split)
    return Benchmark(name, train, test, classes, "msr20", 3, 1, 15.0, protocol)


def _utkinect(root: Path) -> Benchmark:
    samples = utkinect_trimmed(load_utkinect(root))
    train, test = _split(samples, utkinect_split)
    return Benchmark("utkinect_xsub", train, test, tuple(UTKINECT_CLASSES), "kinect20", 3, 1, None,
                     "UTKinect-Action3D segments, half/half subject split 0 (Vemulapalli et al. 2014)")


def _sbu(root: Path) -> Benchmark:
    path = root / "val_2d_resampled25.json" if root.is_dir() else root
    samples = load_sbu_processed(path)
    rng = np.random.default_rng(0)
    train, test = [], []
    for c in range(len(SBU_CLASSES)):
        idx = [i for i, s in enumerate(samples) if s.label == c]
        rng.shuffle(idx)
        n_test = max(1, len(idx) // 3)
        test += [samples[i] for i in idx[:n_test]]
        train += [samples[i] for i in idx[n_test:]]
    return Benchmark("sbu_partial", train, test, tuple(SBU_CLASSES), "sbu15", 2, 2, 15.0,
                     "SBU partial 2D subset (84 samples), stratified 2/3 train - 1/3 test, seed 0")


@dataclass(frozen=True)
class BenchmarkSpec:
    """How to build a benchmark from its data folder, and which folder of ``../shared/data/skeleton`` that is."""

    build: Callable[[Path], Benchmark]
    default_root: str

    def __call__(self, root: Path) -> Benchmark:
        return self.build(root)


BENCHMARKS: Registry[BenchmarkSpec] = Registry("skeleton benchmark")
BENCHMARKS.register("nw_ucla_xview", BenchmarkSpec(_nw_ucla, "nw_ucla"))
BENCHMARKS.register("msr_action3d_xsub", BenchmarkSpec(_msr, "msr_action3d"))
for _set in (1, 2, 3):
    BENCHMARKS.register(f"msr_action3d_as{_set}", BenchmarkSpec(partial(_msr, action_set=_set), "msr_action3d"))
BENCHMARKS.register("utkinect_xsub", BenchmarkSpec(_utkinect, "utkinect_action3d"))
BENCHMARKS.register("sbu_partial", BenchmarkSpec(_sbu, "sbu_kinect_interaction_partial"))


def load_benchmark(name: str, root: str | Path) -> Benchmark:
    """A benchmark by name (``BENCHMARKS``; ``UnknownNameError``, a ``KeyError``, lists them) from its data folder."""
    spec = BENCHMARKS.get(name)
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: data folder of benchmark {name} not found (expected the "
                                f"{spec.default_root!r} folder of ../shared/data/skeleton; set data.root)")
    return spec(root)
