"""How a skeleton sequence becomes a network input, the same at training and at inference: centre, optional view
alignment, augmentation (training only) and temporal resampling. The settings are stored in every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from videoact.config import doc
from videoact.features.skeleton import transforms as T


@dataclass(frozen=True)
class SkeletonInputConfig:
    """How a sample becomes a model input; saved in the checkpoint and reused at inference."""

    frames: int = doc("frames per sample after resampling", default=32)
    center_joint: str | None = doc("joint subtracted (person 0, first frame); null: the layout's centre",
                                   default=None)
    align_view: bool = doc("rotate 3D skeletons into a body frame (hips along x, spine along y)", default=False)


@dataclass(frozen=True)
class SkeletonAugmentConfig:
    rotate_degrees: tuple[float, float, float] = doc("max random rotation about x, y, z (2D: z only)",
                                                     default=(30.0, 30.0, 30.0))
    scale: tuple[float, float] = doc("random per-axis scale range", default=(0.85, 1.15))
    crop: tuple[float, float] = doc("random temporal crop, as a fraction of the sequence", default=(0.7, 1.0))
    mirror: float = doc("chance of a left/right mirrored sample", default=0.0)


def prepare(x: np.ndarray, *, layout: str, cfg: SkeletonInputConfig, num_persons: int,
            rng: np.random.Generator | None = None, augment: SkeletonAugmentConfig | None = None) -> np.ndarray:
    """One sample ``(M, T, V, C)`` -> model input ``(C, frames, V, num_persons)``; random only when ``rng`` is given."""
    x = T.pad_persons(np.asarray(x, np.float32), num_persons)
    x = T.center(x, layout, cfg.center_joint)
    if cfg.align_view and x.shape[-1] == 3:
        x = T.align_view(x, layout)
    if rng is not None and augment is not None:
        x = T.random_rotate_scale(x, rng, max_degrees=augment.rotate_degrees, scale=augment.scale)
        if augment.mirror and rng.random() < augment.mirror:
            x = T.mirror(x, layout)
        x = T.resample(x, cfg.frames, rng=rng, crop=augment.crop)
    else:
        x = T.resample(x, cfg.frames)
    return np.ascontiguousarray(x.transpose(3, 1, 2, 0))  # (C, T, V, M)
