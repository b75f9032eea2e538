"""Skeleton-based segmentation in the spirit of LAC (Yang et al., "LAC: Latent Action Composition for
Skeleton-based Action Segmentation", ICCV 2023): a skeleton encoder is fine-tuned end to end with a frame-wise
linear classifier; there is no separate temporal model over features.

The encoder is an ST-GCN++ (``features.skeleton.stgcn``) kept dense in time: its blocks run over a chunk of
``L`` steps of joints, the output ``(D, L/4, V)`` is averaged over joints (and persons) only, interpolated
back to ``L`` steps, and a 1x1 convolution classifies every step. Start it from a trained recognition
checkpoint (``pretrained``: ``builtin:nw_ucla_stgcnpp`` or a ``model.pt``) so that the encoder already knows
actions; LAC's own pre-training (contrastive learning on synthesised action compositions) is not done here.

Chunks are centred on the spine joint of their first step (as the recognition samples are); at inference
chunks of ``L`` steps with stride ``L/2`` cover the video and the probabilities of overlapping chunks are
averaged (``predict_chunks``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from videoact.features.skeleton import transforms as T
from videoact.features.skeleton.modalities import person_weights, stack_modalities
from videoact.features.skeleton.stgcn import STGCNPP


class LACSegmenter(nn.Module):
    """Dense ST-GCN++ encoder + frame-wise classifier.  (N, C, L, V, M) joints -> (N, K, L) logits."""

    def __init__(self, encoder: STGCNPP, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(encoder, STGCNPP):
            raise TypeError(f"the LAC encoder must be an stgcnpp network, got {type(encoder).__name__}")
        self.encoder = encoder
        self.encoder.fc = nn.Identity()  # the recognition classifier is not used
        self.num_classes = num_classes
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Conv1d(encoder.feature_dim, num_classes, 1)

    def dense_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, L, V, M) -> (N, D, L): the encoder without temporal pooling, upsampled to ``L`` steps."""
        enc = self.encoder
        n, _, t, v, m = x.shape
        h = stack_modalities(x, enc.modalities, enc.layout)
        c = h.shape[1]
        h = enc.data_bn(h.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))  # (N, M*V*C, L)
        h = h.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)  # (N*M, C, L, V)
        h = enc.blocks(h).mean(3)  # (N*M, D, L')
        h = torch.einsum("nmdt,nm->ndt", h.view(n, m, h.shape[1], h.shape[2]), person_weights(x))
        return F.interpolate(h, size=t, mode="linear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.drop(self.dense_features(x)))


def build_lac(*, num_classes: int, layout: str = "kinect20", pretrained: str | None = None,
              encoder_kwargs: dict[str, Any] | None = None, dropout: float = 0.0) -> LACSegmenter:
    """LAC-style segmenter; ``pretrained`` (a skeleton checkpoint) gives the encoder its weights and size,
    else ``encoder_kwargs`` build a fresh ``stgcnpp`` on ``layout``."""
    from videoact.features.skeleton.factory import build_model

    if pretrained is not None:
        from videoact.heads.recognition.skeleton import load_recognizer

        clf = load_recognizer(pretrained)
        if not isinstance(clf.model, STGCNPP):
            raise TypeError(f"{pretrained}: LAC needs an stgcnpp checkpoint, got {type(clf.model).__name__}")
        if clf.layout != layout:
            raise ValueError(f"{pretrained}: the encoder reads {clf.layout!r} joints, the data are {layout!r}")
        return LACSegmenter(clf.model, num_classes, dropout)
    kwargs = {"width": 0.5, "modalities": ["joint", "bone"], **(encoder_kwargs or {})}
    encoder = build_model("stgcnpp", layout=layout, num_classes=1, **kwargs)
    return LACSegmenter(encoder, num_classes, dropout)  # type: ignore[arg-type]


def prepare_chunk(x: np.ndarray, *, layout: str, center_joint: str | None = "spine",
                  rng: np.random.Generator | None = None, rotate_degrees: tuple[float, float, float] = (0, 0, 0),
                  scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """(M, L, V, C) joints -> (C, L, V, M) input: centred on the first step, randomly rotated / scaled with ``rng``."""
    x = T.center(np.asarray(x, np.float32), layout, center_joint)
    if rng is not None:
        x = T.random_rotate_scale(x, rng, max_degrees=rotate_degrees, scale=scale)
    return np.ascontiguousarray(x.transpose(3, 1, 2, 0))


def chunk_starts(n: int, chunk: int) -> list[int]:
    """Starts of chunks of ``chunk`` steps, stride ``chunk // 2``, the last one ending at ``n``."""
    if n <= chunk:
        return [0]
    starts = list(range(0, n - chunk + 1, max(1, chunk // 2)))
    if starts[-1] != n - chunk:
        starts.append(n - chunk)
    return starts


@torch.no_grad()
def average_over_chunks(keypoints: np.ndarray, fn: Callable[[torch.Tensor], list[np.ndarray]], *, chunk: int,
                        layout: str, center_joint: str | None = "spine", batch_size: int = 16) -> list[np.ndarray]:
    """Run ``fn`` on the half-overlapping chunks of a whole video's (M, S, V, C) joints and average its per-step
    outputs: ``fn`` maps a (B, C, chunk, V, M) batch to arrays of shape (B, chunk, ...); each comes back (S, ...)."""
    s = keypoints.shape[1]
    if s < chunk:  # pad by repeating the last step; the padded steps are dropped below
        keypoints = np.concatenate([keypoints, np.repeat(keypoints[:, -1:], chunk - s, axis=1)], axis=1)
    n = keypoints.shape[1]
    starts = chunk_starts(n, chunk)
    sums: list[np.ndarray] | None = None
    count = np.zeros(n)
    for lo in range(0, len(starts), batch_size):
        part = starts[lo:lo + batch_size]
        x = torch.from_numpy(np.stack([prepare_chunk(keypoints[:, a:a + chunk], layout=layout,
                                                     center_joint=center_joint) for a in part]))
        outs = fn(x)
        if sums is None:
            sums = [np.zeros((n, *o.shape[2:])) for o in outs]
        for i, a in enumerate(part):
            for total, o in zip(sums, outs, strict=True):
                total[a:a + chunk] += o[i]
            count[a:a + chunk] += 1
    assert sums is not None
    return [(total / count.reshape(-1, *([1] * (total.ndim - 1))))[:s] for total in sums]


def predict_chunks(model: LACSegmenter, keypoints: np.ndarray, *, chunk: int, layout: str,
                   center_joint: str | None = "spine", batch_size: int = 16) -> np.ndarray:
    """(M, S, V, C) joints of a whole video -> (S, K) step probabilities (overlapping chunks averaged)."""
    model.eval()
    return average_over_chunks(keypoints, lambda x: [F.softmax(model(x), dim=1).numpy().transpose(0, 2, 1)],
                               chunk=chunk, layout=layout, center_joint=center_joint, batch_size=batch_size)[0]
