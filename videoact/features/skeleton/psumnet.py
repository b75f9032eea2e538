"""PSUMNet: unified-modality part streams (Trivedi & Sarvadevabhatla, ECCV-W 2022).

The usual 4-stream recipe trains one network per modality (joint, bone, joint motion, bone motion) and sums
their scores. PSUMNet turns this around: every stream sees *all four modalities at once* (stacked as
``4 * C`` input channels) but only a *part* of the skeleton, so the arms and legs streams are small graphs
with few layers, and the ensemble costs a fraction of the modality-wise one.

Streams (``part_streams``), derived from any ``Layout.parts``:

* ``body``: every joint;
* ``arms``: the union of the parts whose name contains ``arm`` or ``hand``;
* ``legs``: the union of the parts whose name contains ``leg`` or ``foot``;

each widened to the smallest connected piece of the skeleton tree that holds it (the joints on the way to the
parts' common ancestor), so the stream's graph is connected. On ``ntu25`` this gives the joint sets of the
paper's hand and leg streams: 13 joints (spine-shoulder + both arms with hands) and 9 (spine-base + both
legs). A layout without arm or leg parts gets only the streams it can have. Bones are taken on the whole
skeleton before the joints are picked, so a stream's root keeps its bone to the joint outside the stream.

Training: the streams share nothing, so the sum of per-stream cross-entropies (``stream_loss`` on
``stream_logits``, which is also what ``videoact.train.skeleton`` sums) trains them exactly as the paper's
separate runs do, in one run. Inference (``forward``) fuses the streams' softmax scores with weights
``stream_weights`` (the paper's alpha) and returns the log of the weighted mean, so ``argmax`` is the paper's
score-sum decision and ``softmax`` gives the fused probabilities.

Simplified against the paper's code: the graph convolution has a learned adjacency offset per subset
(2s-AGCN style) instead of CTR-GCN's channel-wise topology refinement; blocks per stream are 6/4/3
(body/arms/legs) instead of 10/6/4; the multi-scale temporal unit has four branches (dilation 1 and 2,
max-pool, 1x1) with kernel 5; all streams train jointly in one module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from videoact.features.skeleton.layouts import Layout, get_layout
from videoact.features.skeleton.modalities import MODALITIES, person_weights, stack_modalities
from videoact.features.skeleton.registry import register_model

STREAMS = ("body", "arms", "legs")
_LIMB_WORDS = {"arms": ("arm", "hand"), "legs": ("leg", "foot")}

# (channel multiplier of `width`, temporal stride) per block: body is deep, limbs are shallow (paper: 10/6/4)
_PLANS: dict[str, tuple[tuple[int, int], ...]] = {
    "body": ((1, 1), (1, 1), (2, 2), (2, 1), (4, 2), (4, 1)),
    "arms": ((1, 1), (2, 2), (2, 1), (4, 2)),
    "legs": ((1, 1), (2, 2), (4, 2)),
}


# ------------------------------------------------------------------------------------------------ streams


def _connected_closure(parents: np.ndarray, joints: set[int]) -> list[int]:
    """Smallest subtree of the skeleton tree containing ``joints``: add the paths up to their common ancestor."""

    def path_to_root(j: int) -> list[int]:
        out = [j]
        while parents[out[-1]] != out[-1]:
            out.append(int(parents[out[-1]]))
        return out

    paths = [path_to_root(j) for j in sorted(joints)]
    common = set(paths[0]).intersection(*paths[1:])
    lca = next(j for j in paths[0] if j in common)  # the deepest shared ancestor
    closure = set()
    for p in paths:
        closure.update(p[: p.index(lca) + 1])
    return sorted(closure)


def part_streams(layout: str | Layout) -> dict[str, tuple[int, ...]]:
    """Joint indices of each stream (``body`` always; ``arms``/``legs`` when the layout has such parts)."""
    lay = get_layout(layout)
    streams = {"body": tuple(range(lay.num_joints))}
    for stream, words in _LIMB_WORDS.items():
        joints = {j for name, idx in lay.parts.items() if any(w in name for w in words) for j in idx}
        if joints:
            streams[stream] = tuple(_connected_closure(lay.parents, joints))
    return streams


def stream_layout(layout: str | Layout, joints: Sequence[int], name: str) -> Layout:
    """The sub-skeleton on ``joints`` (a connected subtree): its edges are the layout's edges inside it."""
    lay = get_layout(layout)
    pos = {j: i for i, j in enumerate(joints)}
    edges = tuple((pos[a], pos[b]) for a, b in lay.edges if a in pos and b in pos)
    # the subtree's root: the joint whose parent is outside the stream (or the layout centre itself)
    parents = lay.parents
    root = next(j for j in joints if parents[j] == j or int(parents[j]) not in pos)
    return Layout(name=f"{lay.name}:{name}", joints=tuple(lay.joints[j] for j in joints), edges=edges,
                  center=pos[root])


# ------------------------------------------------------------------------------------------------ blocks


class GraphConv(nn.Module):
    """Spatial graph convolution over K adjacency subsets, each with a learned offset (zero at init).

    Joints are aggregated per subset first and the K results mixed by one 1x1 convolution, which is the same
    map as one convolution per subset but without a ``(K, C_out)`` intermediate.
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray) -> None:
        super().__init__()
        k, v, _ = adjacency.shape
        self.register_buffer("A", torch.as_tensor(adjacency, dtype=torch.float32))  # (K, V, V) row = receiver
        self.offset = nn.Parameter(torch.zeros(k, v, v))
        self.conv = nn.Conv2d(k * in_channels, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T, V) -> (B, C_out, T, V)
        b, c, t, v = x.shape
        k = self.A.shape[0]
        a = (self.A + self.offset).permute(2, 0, 1).reshape(v, k * v)  # (V_send, K * V_recv)
        y = torch.matmul(x, a).view(b, c, t, k, v).permute(0, 1, 3, 2, 4)  # one GEMM -> (B, C_in, K, T, V)
        return self.bn(self.conv(y.reshape(b, c * k, t, v)))


class MultiScaleTemporal(nn.Module):
    """Four temporal branches (dilations 1 and 2, max-pool, 1x1), concatenated: several time scales per layer.

    The three branch stems share one 1x1 convolution and the branch outputs one batch norm (both per channel,
    so the same map as separate ones, with fewer small ops on CPU).
    """

    def __init__(self, channels: int, stride: int = 1, kernel: int = 5) -> None:
        super().__init__()
        if channels % 4:
            raise ValueError(f"temporal unit needs channels divisible by 4, got {channels}")
        c = channels // 4
        self.stem = nn.Sequential(nn.Conv2d(channels, 3 * c, 1), nn.BatchNorm2d(3 * c), nn.ReLU(inplace=True))
        self.dil1 = nn.Conv2d(c, c, (kernel, 1), (stride, 1), ((kernel - 1) // 2, 0))
        self.dil2 = nn.Conv2d(c, c, (kernel, 1), (stride, 1), (kernel - 1, 0), (2, 1))
        self.pool = nn.MaxPool2d((3, 1), (stride, 1), (1, 0))
        self.point = nn.Conv2d(channels, c, 1, (stride, 1))
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, V) -> (B, C, ceil(T / stride), V)
        a, b, p = self.stem(x).chunk(3, dim=1)
        return self.bn(torch.cat([self.dil1(a), self.dil2(b), self.pool(p), self.point(x)], dim=1))


class STBlock(nn.Module):
    """Graph convolution then multi-scale temporal convolution, with residual connections."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray, stride: int = 1,
                 residual: bool = True) -> None:
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels, adjacency)
        self.gcn_res: nn.Module = (nn.Identity() if in_channels == out_channels
                                   else nn.Sequential(nn.Conv2d(in_channels, out_channels, 1),
                                                      nn.BatchNorm2d(out_channels)))
        self.tcn = MultiScaleTemporal(out_channels, stride)
        if not residual:
            self.res: nn.Module | None = None
        elif in_channels == out_channels and stride == 1:
            self.res = nn.Identity()
        else:
            self.res = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)),
                                     nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T, V) -> (B, C_out, T / stride, V)
        y = F.relu(self.gcn(x) + self.gcn_res(x))
        y = self.tcn(y)
        if self.res is not None:
            y = y + self.res(x)
        return F.relu(y)


class PartStream(nn.Module):
    """One part stream: unified modalities of the part's joints -> spatio-temporal GCN -> class logits."""

    def __init__(self, sub: Layout, plan: Sequence[tuple[int, int]], in_channels: int, width: int,
                 num_classes: int, dropout: float) -> None:
        super().__init__()
        a = sub.adjacency("spatial")
        self.data_bn = nn.BatchNorm1d(in_channels * sub.num_joints)
        blocks, c_in = [], in_channels
        for i, (mult, stride) in enumerate(plan):
            blocks.append(STBlock(c_in, width * mult, a, stride, residual=i > 0))
            c_in = width * mult
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V_s, M) part joints and (N, M) person weights summing to 1 -> (N, num_classes)."""
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x).view(n * m, v, c, t).permute(0, 2, 3, 1)  # (N*M, C, T, V_s)
        x = self.blocks(x)
        x = x.mean(dim=(2, 3)).view(n, m, -1)  # (N, M, C): pooled over time and joints
        x = torch.einsum("nmc,nm->nc", x, weights)
        return self.fc(self.drop(x))


# ------------------------------------------------------------------------------------------------ model


class PSUMNet(nn.Module):
    """Part streams over unified modalities; ``forward`` returns fused log-scores ``(N, num_classes)``.

    Weights are shared across persons (each person is a batch item, features are averaged over the persons
    that have any non-zero joint), so any ``M`` works; ``num_persons`` is kept for the builder convention.
    """

    def __init__(self, layout: str | Layout, num_classes: int, in_channels: int = 3, num_persons: int = 1,
                 width: int = 64, streams: Sequence[str] = STREAMS, stream_weights: Mapping[str, float] | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.layout = get_layout(layout)
        self.in_channels, self.num_persons = in_channels, num_persons
        available = part_streams(self.layout)
        unknown = [s for s in streams if s not in STREAMS]
        if unknown:
            raise ValueError(f"unknown PSUMNet streams {unknown}; use a subset of {STREAMS}")
        names = [s for s in streams if s in available]
        if not names:
            raise ValueError(f"layout {self.layout.name} has none of the streams {list(streams)}; "
                             f"it has {list(available)}")
        weights = dict(stream_weights or {})
        if any(w <= 0 for w in weights.values()) or set(weights) - set(STREAMS):
            raise ValueError(f"stream_weights {weights}: positive weights for streams among {STREAMS}")
        self.stream_joints = {s: available[s] for s in names}
        for s in names:
            self.register_buffer(f"idx_{s}", torch.tensor(available[s], dtype=torch.long), persistent=False)
        w = torch.tensor([float(weights.get(s, 1.0)) for s in names])
        self.register_buffer("log_weights", torch.log(w / w.sum()), persistent=False)
        c = len(MODALITIES) * in_channels
        self.streams = nn.ModuleDict({
            s: PartStream(stream_layout(self.layout, available[s], s), _PLANS[s], c, width, num_classes, dropout)
            for s in names
        })

    @property
    def stream_names(self) -> list[str]:
        return list(self.streams)

    def stream_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> per-stream logits (S, N, num_classes), order ``stream_names``; train on these."""
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[3] != self.layout.num_joints:
            raise ValueError(f"PSUMNet built for (N, {self.in_channels}, T, {self.layout.num_joints}, M) joints "
                             f"of layout {self.layout.name}, got {tuple(x.shape)}")
        weights = person_weights(x)  # (N, M): a mean over the persons present
        x = stack_modalities(x, MODALITIES, self.layout)  # (N, 4C, T, V, M): joint, bone, their motions
        return torch.stack([net(x[:, :, :, getattr(self, f"idx_{s}")], weights) for s, net in self.streams.items()])

    def fuse(self, logits: torch.Tensor) -> torch.Tensor:
        """(S, N, K) stream logits -> (N, K): log of the ``stream_weights``-weighted mean of their softmax."""
        return torch.logsumexp(logits.log_softmax(-1) + self.log_weights[:, None, None], dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, T, V, M) -> (N, num_classes)
        return self.fuse(self.stream_logits(x))


def stream_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Sum over streams of each stream's cross-entropy ((S, N, K), (N,) -> scalar): the paper's separate runs."""
    return torch.stack([F.cross_entropy(z, target, label_smoothing=label_smoothing) for z in logits]).sum()


@register_model
def build_psumnet(*, layout: str, num_classes: int, in_channels: int = 3, num_persons: int = 1, width: int = 64,
                  streams: Sequence[str] = STREAMS, stream_weights: Mapping[str, float] | None = None,
                  dropout: float = 0.0) -> PSUMNet:
    """PSUMNet part streams (body, arms, legs) over the four unified modalities; ``width`` sets channels."""
    return PSUMNet(layout, num_classes, in_channels, num_persons, width, tuple(streams), stream_weights, dropout)
