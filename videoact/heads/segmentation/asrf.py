"""Boundary-aware segmentation in the spirit of ASRF (Ishikawa et al., "Alleviating Over-segmentation Errors by
Detecting Action Boundaries", WACV 2021): a frame-wise classifier and an **action-boundary regression branch**
side by side; at inference the boundary branch cuts the video into segments and every segment takes one label.

Here the class branch is the LAC-style segmenter (``lac.LACSegmenter``: an ST-GCN++ fine-tuned end to end, dense
in time) and the boundary branch is a small dilated TCN over the encoder's dense features **and** the low-level
motion of the joints (spine-relative pose and its frame-to-frame change). The encoder runs at a quarter of the
step rate and is interpolated back, so on its own it cannot place a cut to the frame; the motion input can.

Decoding (``decode_segments``, ``refine``): boundaries are the local maxima of the boundary probability above
``threshold`` that are at least ``min_distance`` steps apart (ASRF's peak picking); each segment between two
boundaries takes the label of the mean class probability over its steps (ASRF's refinement), optionally blended
with a **whole-segment** classifier's probabilities (e.g. the skeleton recognizer the encoder started from, which
was trained on trimmed clips and so is at its best on a whole segment).

Boundary targets (``boundary_targets``) are the first step of every run of equal labels and of every action
instance, so a cut between two instances of the same class is a boundary too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from videoact.features.skeleton.layouts import get_layout
from videoact.heads.segmentation.lac import LACSegmenter, average_over_chunks, build_lac
from videoact.heads.segmentation.mstcn import DilatedResidualLayer


class BoundaryBranch(nn.Module):
    """(N, D, L) encoder features + (N, C, L, V, M) joints -> (N, L) boundary logits."""

    def __init__(self, feature_dim: int, motion_dim: int, *, channels: int = 64, layers: int = 4,
                 dropout: float = 0.3, center_joint: int = 0) -> None:
        super().__init__()
        self.center_joint = center_joint
        self.motion_bn = nn.BatchNorm1d(motion_dim)
        self.conv_in = nn.Conv1d(feature_dim + motion_dim, channels, 1)
        self.layers = nn.ModuleList([DilatedResidualLayer(2**i, channels, dropout) for i in range(layers)])
        self.conv_out = nn.Conv1d(channels, 1, 1)

    def motion(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, L, V, M) -> (N, 2*C*V, L): spine-relative pose of person 0 and its step-to-step change."""
        p = x[..., 0]  # (N, C, L, V)
        rel = p - p[:, :, :, self.center_joint:self.center_joint + 1]
        vel = F.pad(rel[:, :, 1:] - rel[:, :, :-1], (0, 0, 1, 0))  # zero at the first step
        n, c, t, v = rel.shape
        return torch.cat([rel, vel], 1).permute(0, 1, 3, 2).reshape(n, 2 * c * v, t)

    def forward(self, feats: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(torch.cat([feats, self.motion_bn(self.motion(x))], 1))
        mask = h.new_ones(h.shape[0], 1, h.shape[2])
        for layer in self.layers:
            h = layer(h, mask)
        return self.conv_out(h)[:, 0]


class ASRFSegmenter(nn.Module):
    """LAC class branch + boundary branch.  (N, C, L, V, M) -> ((N, K, L) class logits, (N, L) boundary logits)."""

    def __init__(self, lac: LACSegmenter, *, in_channels: int, num_joints: int, center_joint: int = 0,
                 channels: int = 64, layers: int = 4, boundary_dropout: float = 0.3) -> None:
        super().__init__()
        self.lac = lac
        self.num_classes = lac.num_classes
        self.boundary = BoundaryBranch(lac.encoder.feature_dim, 2 * in_channels * num_joints, channels=channels,
                                       layers=layers, dropout=boundary_dropout, center_joint=center_joint)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.lac.dense_features(x)  # (N, D, L)
        return self.lac.classifier(self.lac.drop(feats)), self.boundary(feats, x)


def build_asrf(*, num_classes: int, layout: str = "kinect20", pretrained: str | None = None,
               encoder_kwargs: dict[str, Any] | None = None, dropout: float = 0.0, in_channels: int = 3,
               center_joint: str = "spine", channels: int = 64, layers: int = 4,
               boundary_dropout: float = 0.3) -> ASRFSegmenter:
    """ASRF-style segmenter on a LAC encoder (``pretrained`` / ``encoder_kwargs`` as ``lac.build_lac``)."""
    lac = build_lac(num_classes=num_classes, layout=layout, pretrained=pretrained, encoder_kwargs=encoder_kwargs,
                    dropout=dropout)
    lay = get_layout(layout)
    return ASRFSegmenter(lac, in_channels=in_channels, num_joints=len(lay.joints), center_joint=lay.index(center_joint),
                         channels=channels, layers=layers, boundary_dropout=boundary_dropout)


def boundary_targets(step_labels: np.ndarray, instance_starts: Sequence[int] = ()) -> np.ndarray:
    """(S,) float 0/1: 1 at the first step of every label run and of every instance (never at step 0)."""
    lab = np.asarray(step_labels)
    out = np.zeros(len(lab), np.float32)
    out[1:][lab[1:] != lab[:-1]] = 1.0
    for a in instance_starts:
        if 0 < a < len(lab):
            out[a] = 1.0
    return out


def asrf_loss(class_logits: torch.Tensor, boundary_logits: torch.Tensor, labels: torch.Tensor,
              boundaries: torch.Tensor, *, tau: float = 4.0, smooth_weight: float = 0.15,
              boundary_weight: float = 1.0, pos_weight: float | None = None) -> torch.Tensor:
    """CE + truncated-MSE smoothing on the classes (``mstcn_loss``) + ``boundary_weight`` * boundary BCE, the
    positives weighted by the batch's negative / positive ratio (ASRF) unless ``pos_weight`` is given.
    class_logits (N, K, L), boundary_logits (N, L), labels (N, L) long, boundaries (N, L) float 0/1."""
    from videoact.heads.segmentation.mstcn import mstcn_loss

    mask = torch.ones_like(labels, dtype=torch.bool)
    loss = mstcn_loss(class_logits[None], labels, mask, tau=tau, smooth_weight=smooth_weight)
    pos = boundaries.sum()
    w = pos_weight if pos_weight is not None else float(((boundaries.numel() - pos) / pos.clamp_min(1)).item())
    bce = F.binary_cross_entropy_with_logits(boundary_logits, boundaries,
                                             pos_weight=boundary_logits.new_tensor(w))
    return loss + boundary_weight * bce


@torch.no_grad()
def predict_asrf_chunks(model: ASRFSegmenter, keypoints: np.ndarray, *, chunk: int, layout: str,
                        center_joint: str | None = "spine", batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(M, S, V, C) joints of a whole video -> (S, K) class and (S,) boundary probabilities (half-overlapping
    chunks averaged, as ``lac.predict_chunks``)."""
    model.eval()

    def both(x: torch.Tensor) -> list[np.ndarray]:
        logits, blogits = model(x)  # (B, K, L), (B, L)
        return [F.softmax(logits, dim=1).numpy().transpose(0, 2, 1), torch.sigmoid(blogits).numpy()]

    probs, bnd = average_over_chunks(keypoints, both, chunk=chunk, layout=layout, center_joint=center_joint,
                                     batch_size=batch_size)
    return probs, bnd


def decode_segments(boundary_probs: np.ndarray, *, threshold: float = 0.5, min_distance: int = 5) -> np.ndarray:
    """(S,) boundary probabilities -> sorted segment starts (0 first): local maxima above ``threshold``, greedily
    kept from the highest down while at least ``min_distance`` steps from every kept one."""
    b = np.asarray(boundary_probs, dtype=np.float64)
    if len(b) < 3:
        return np.zeros(1, np.int64)
    peak = np.zeros(len(b), bool)
    peak[1:-1] = (b[1:-1] >= b[:-2]) & (b[1:-1] > b[2:])
    peak &= b >= threshold
    kept: list[int] = []
    for i in np.flatnonzero(peak)[np.argsort(-b[peak], kind="stable")]:
        if i >= min_distance and all(abs(int(i) - k) >= min_distance for k in kept):
            kept.append(int(i))
    return np.array([0, *sorted(kept)], np.int64)


def refine(class_probs: np.ndarray, starts: np.ndarray, *,
           segment_probs: Callable[[list[tuple[int, int]]], np.ndarray] | None = None,
           segment_weight: float = 0.0) -> np.ndarray:
    """(S, K) class probabilities + segment starts -> (S, K): every step holds its segment's probabilities, the
    mean over the segment's steps, blended ``(1 - w) * mean + w * segment_probs`` when a whole-segment
    classifier is given (``segment_probs``: [(start, end)] -> (n_segments, K))."""
    p = np.asarray(class_probs, dtype=np.float64)
    ends = np.concatenate([starts[1:], [len(p)]])
    spans = [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]
    seg = np.stack([p[a:b].mean(0) for a, b in spans])
    if segment_probs is not None and segment_weight > 0:
        seg = (1 - segment_weight) * seg + segment_weight * np.asarray(segment_probs(spans), dtype=np.float64)
    return np.repeat(seg, ends - starts, axis=0)
