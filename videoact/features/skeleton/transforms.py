"""Skeleton pre-processing and augmentation on ``(M, T, V, C)`` float arrays (numpy, one sample at a time).

The same functions prepare training samples and the poses extracted from a video at inference, so a model
sees the same normalisation in both places. All-zero joints (a person absent in a frame) stay zero.
"""

from __future__ import annotations

import numpy as np

from videoact.features.skeleton.layouts import Layout, get_layout


def valid_frames(x: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: frames where any person has a non-zero joint."""
    return np.abs(x).sum(axis=(0, 2, 3)) > 0


def trim(x: np.ndarray) -> np.ndarray:
    """Drop leading and trailing frames without any person (keeps at least one frame)."""
    ok = np.flatnonzero(valid_frames(x))
    if not len(ok):
        return x[:, :1]
    return x[:, ok[0]:ok[-1] + 1]


def center(x: np.ndarray, layout: str | Layout, joint: str | int | None = None) -> np.ndarray:
    """Subtract the position of ``joint`` (default: the layout's centre) of person 0 at its first valid frame."""
    lay = get_layout(layout)
    j = lay.center if joint is None else (lay.index(joint) if isinstance(joint, str) else int(joint))
    present = np.flatnonzero(np.abs(x[0]).sum(axis=(1, 2)) > 0)
    if not len(present):
        return x.copy()
    origin = x[0, present[0], j]
    mask = (np.abs(x).sum(-1, keepdims=True) > 0)
    return np.where(mask, x - origin, 0).astype(x.dtype)


def resample(x: np.ndarray, length: int, *, rng: np.random.Generator | None = None,
             crop: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Resample the valid frames to ``length`` frames.

    Evaluation (``rng=None``): evenly spaced frames over the whole sequence. Training: a random temporal crop
    whose length is a fraction in ``crop`` of the sequence, then evenly spaced frames with random jitter
    inside each step (CTR-GCN's NW-UCLA sampling and PYSKL's ``UniformSample``, in one function).
    """
    x = trim(x)
    t = x.shape[1]
    if rng is None:
        idx = np.linspace(0, t - 1, length)
        return x[:, np.round(idx).astype(np.int64)]
    frac = rng.uniform(*crop)
    span = max(1, min(t, round(t * frac)))
    start = int(rng.integers(0, t - span + 1))
    edges = np.linspace(start, start + span, length + 1)
    idx = np.floor(edges[:-1] + rng.random(length) * (edges[1:] - edges[:-1])).astype(np.int64)
    return x[:, np.clip(idx, start, start + span - 1)]


def rotation_matrix(angles_rad: np.ndarray) -> np.ndarray:
    """``(3, 3)`` rotation about x, then y, then z by the given angles."""
    ax, ay, az = angles_rad
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rotate_scale(x: np.ndarray, rng: np.random.Generator, *, max_degrees: tuple[float, float, float] = (
        30.0, 30.0, 30.0), scale: tuple[float, float] = (0.9, 1.1)) -> np.ndarray:
    """Random rotation (3D; 2D data rotates in-plane by the z angle) and per-axis scaling, about the origin."""
    c = x.shape[-1]
    angles = np.deg2rad([rng.uniform(-d, d) for d in max_degrees])
    s = rng.uniform(*scale, size=c)
    if c == 3:
        m = rotation_matrix(angles) * s[None, :]
    elif c == 2:
        a = angles[2]
        m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * s[None, :]
    else:
        raise ValueError(f"rotation needs 2 or 3 coordinates, got {c}")
    mask = np.abs(x).sum(-1, keepdims=True) > 0
    return np.where(mask, x @ m.T, 0).astype(x.dtype)


def mirror(x: np.ndarray, layout: str | Layout) -> np.ndarray:
    """Left/right mirror: swap the twin joints and negate x (an action's mirror image is the same action)."""
    lay = get_layout(layout)
    y = x[:, :, lay.mirror_permutation()].copy()
    y[..., 0] = -y[..., 0]
    return y


def align_view(x: np.ndarray, layout: str | Layout) -> np.ndarray:
    """Rotate 3D coordinates so person 0's first-frame hips lie along +x and the spine along +y.

    Removes the camera's viewpoint (NTU's usual pre-processing); useful when training and test views differ.
    """
    lay = get_layout(layout)
    if x.shape[-1] != 3:
        raise ValueError("align_view needs 3D coordinates")
    names = lay.joints
    left, right = lay.index("left_hip"), lay.index("right_hip")
    top = next((lay.index(n) for n in ("shoulder_center", "spine_shoulder", "neck") if n in names), None)
    if top is None:
        ls, rs = lay.index("left_shoulder"), lay.index("right_shoulder")
    present = np.flatnonzero(np.abs(x[0]).sum(axis=(1, 2)) > 0)
    if not len(present):
        return x.copy()
    f = x[0, present[0]]
    hip_mid = (f[left] + f[right]) / 2
    up = (f[top] if top is not None else (f[ls] + f[rs]) / 2) - hip_mid
    across = f[right] - f[left]
    ex = across / (np.linalg.norm(across) + 1e-8)
    ey = up - ex * (up @ ex)
    ey /= np.linalg.norm(ey) + 1e-8
    ez = np.cross(ex, ey)
    r = np.stack([ex, ey, ez])  # rows: new axes in old coordinates
    mask = np.abs(x).sum(-1, keepdims=True) > 0
    return np.where(mask, x @ r.T, 0).astype(x.dtype)


def pad_persons(x: np.ndarray, m: int) -> np.ndarray:
    """Keep the first ``m`` persons, zero-padding when there are fewer."""
    if x.shape[0] >= m:
        return x[:m]
    pad = np.zeros((m - x.shape[0], *x.shape[1:]), x.dtype)
    return np.concatenate([x, pad])
