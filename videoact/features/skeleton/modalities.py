"""Input modalities computed from joints: bones, joint motion, bone motion (the 4-stream family).

All functions take and return ``(N, C, T, V, M)`` tensors, so they run inside models and on batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from videoact.features.skeleton.layouts import Layout, get_layout

MODALITIES = ("joint", "bone", "joint_motion", "bone_motion")


def bones(x: torch.Tensor, layout: str | Layout) -> torch.Tensor:
    """``x[v] - x[parent(v)]``; the centre joint's bone is zero.  (N, C, T, V, M) -> same."""
    parents = torch.as_tensor(get_layout(layout).parents, device=x.device)
    return x - x[:, :, :, parents]


def motion(x: torch.Tensor) -> torch.Tensor:
    """Frame difference ``x[t+1] - x[t]``, zero at the last frame.  (N, C, T, V, M) -> same."""
    out = torch.zeros_like(x)
    out[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return out


def modality(x: torch.Tensor, name: str, layout: str | Layout) -> torch.Tensor:
    if name == "joint":
        return x
    if name == "bone":
        return bones(x, layout)
    if name == "joint_motion":
        return motion(x)
    if name == "bone_motion":
        return motion(bones(x, layout))
    raise ValueError(f"unknown modality {name!r}; use one of {MODALITIES}")


def stack_modalities(x: torch.Tensor, names: Sequence[str], layout: str | Layout) -> torch.Tensor:
    """Concatenate modalities along channels: (N, C, T, V, M) -> (N, C * len(names), T, V, M)."""
    return torch.cat([modality(x, n, layout) for n in names], dim=1)


def present_persons(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V, M) -> (N, M) bool: persons with any non-zero joint; a sample with nobody keeps everyone.

    Zero-padded person slots (pyskl's convention for "fewer people than M") must not dilute pooled features.
    """
    present = (x != 0).flatten(1, 3).any(1)
    return present | ~present.any(1, keepdim=True)


def person_weights(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V, M) -> (N, M) weights of a mean over the persons present; rows sum to 1."""
    present = present_persons(x).to(x.dtype)
    return present / present.sum(1, keepdim=True)
