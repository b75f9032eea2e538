"""MSR Action3D skeletons in real-world coordinates (``MSRAction3DSkeletonReal3D``, Li et al. 2010).

Format: ``<root>/skeleton3D_real_world/aAA_sSS_eEE_skeleton3D.txt``, 4 numbers per line ``x y z c``, 20 lines
(joints, ``msr20`` order) per frame, frames stacked: metres in the camera frame (z = depth), ``c`` the
joint's tracking confidence (-> ``scores``). 15 fps. ``label = AA - 1``, ``subject = SS``,
``meta["repetition"] = EE``. ``<root>/meta/files_used_in_cvpr12_paper.txt`` lists the 557 ids of Wang et al.
CVPR 2012 (the standard 20-class set); ``files="all"`` reads all 567 files instead.

Quirks of the real files (``../shared/data/skeleton/msr_action3d``):

* ``c`` is not 0/1 as documented: 592 distinct values in [0, 1] (about 64 % are 1, 36 % are 0).
* Some frames are all zeros (no skeleton): 13 of the 557 files hold 252 such frames, some in the middle of the
  sequence (a20_s02_e01: frames 24-55 of 56). They are kept; ``meta["zero_frames"]`` counts them per sample.
* ``a13_s09_e02`` is all zeros (38 frames). It is not in the CVPR 2012 list; with ``files="all"`` it is
  loaded like the others and flagged ``meta["all_zero"] = True`` so a caller can drop it (we do not guess).
"""

from __future__ import annotations

import re
from pathlib import Path

from videoact.annotations.formats._common import FormatError, read_text
from videoact.datasets.skeleton._sample import SkeletonSample, parse_numbers

__all__ = ["MSR_ACTION3D_CLASSES", "MSR_ACTION_SETS", "load_msr_action3d", "msr_split", "read_msr_skeleton"]

MSR_ACTION3D_CLASSES: tuple[str, ...] = (
    "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw", "draw x",
    "draw tick", "draw circle", "hand clap", "two hand wave", "side boxing", "bend", "forward kick", "side kick",
    "jogging", "tennis swing", "tennis serve", "golf swing", "pick up & throw",
)  # fmt: skip
# Li et al. 2010 action subsets as 0-based labels (1-based action ids: AS1 2,3,5,6,10,13,18,20;
# AS2 1,4,7,8,9,11,12,14; AS3 6,14,15,16,17,18,19,20; as tr_te_splits.mat's action_sets)
MSR_ACTION_SETS: dict[str, tuple[int, ...]] = {
    "AS1": (1, 2, 4, 5, 9, 12, 17, 19),
    "AS2": (0, 3, 6, 7, 8, 10, 11, 13),
    "AS3": (5, 13, 14, 15, 16, 17, 18, 19),
}
MSR_FPS = 15.0
MSR_JOINTS = 20
_NAME = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})")
_FILES = ("cvpr12", "all")


def read_msr_skeleton(path: str | Path) -> SkeletonSample:
    """One ``aAA_sSS_eEE_skeleton3D.txt`` file as a ``(1, T, 20, 3)`` ``msr20`` sample with scores ``c``."""
    path = Path(path)
    m = _NAME.match(path.name)
    if m is None:
        raise ValueError(f"{path}: MSR Action3D files are named aAA_sSS_eEE_skeleton3D.txt")
    action, subject, rep = (int(g) for g in m.groups())
    if not 1 <= action <= len(MSR_ACTION3D_CLASSES):
        raise ValueError(f"{path}: action a{action:02d} is outside a01..a20")
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise FormatError(path, 1, "empty file")
    if len(lines) % MSR_JOINTS:
        raise FormatError(path, len(lines), f"{len(lines)} lines is not a multiple of {MSR_JOINTS} (one per joint)")
    values = parse_numbers(path, lines, 4).reshape(-1, MSR_JOINTS, 4)  # (T, 20, 4)
    zero = ~values[..., :3].any(axis=(1, 2))
    return SkeletonSample(
        name=m.group(0),
        keypoints=values[None, ..., :3],
        layout="msr20",
        label=action - 1,
        scores=values[None, ..., 3],
        fps=MSR_FPS,
        subject=subject,
        meta={"repetition": rep, "zero_frames": int(zero.sum()), "all_zero": bool(zero.all())},
    )


def load_msr_action3d(root: str | Path, *, files: str = "cvpr12") -> list[SkeletonSample]:
    """The 557 CVPR 2012 sequences (``files="cvpr12"``, list order) or all 567 files (``"all"``, sorted)."""
    root = Path(root)
    folder = root / "skeleton3D_real_world"
    if files not in _FILES:
        raise ValueError(f"files must be one of {', '.join(_FILES)}, got {files!r}")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not found; pass the MSR Action3D folder with skeleton3D_real_world/")
    if files == "all":
        paths = sorted(folder.glob("a??_s??_e??_skeleton3D.txt"))
    else:
        listing = root / "meta" / "files_used_in_cvpr12_paper.txt"
        if not listing.is_file():
            raise FileNotFoundError(f"{listing}: not found (needed for files='cvpr12'; or pass files='all')")
        ids = read_text(listing).split()
        for i, sid in enumerate(ids):
            if _NAME.fullmatch(sid) is None:
                raise FormatError(listing, i + 1, f"expected a sequence id aAA_sSS_eEE, got {sid!r}")
        paths = [folder / f"{sid}_skeleton3D.txt" for sid in ids]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{folder}: {len(missing)} files of {listing.name} are missing: {missing[:5]}")
    if not paths:
        raise FileNotFoundError(f"{folder}: no aAA_sSS_eEE_skeleton3D.txt files")
    return [read_msr_skeleton(p) for p in paths]


def msr_split(sample: SkeletonSample) -> str:
    """Li et al. 2010 cross-subject protocol: odd subjects (1,3,5,7,9) train, even subjects test."""
    if sample.subject is None:
        raise ValueError(f"sample {sample.name!r} has no subject id")
    return "train" if sample.subject % 2 == 1 else "test"
