"""ST-GCN++ (Duan et al., "PYSKL: Towards Good Practices for Skeleton Action Recognition", 2022): the baseline.

ST-GCN (Yan et al., AAAI 2018) alternates a spatial graph convolution over the joints with a temporal
convolution over frames. ST-GCN++ keeps that skeleton and changes three things, all kept here:

* the adjacency is **learned**, initialised from ST-GCN's spatial partition (self / inward / outward);
* the temporal module is **multi-scale**: parallel dilated 3x1 convolutions (dilations 1-4), a max-pool
  branch and a 1x1 branch, concatenated, instead of one 9x1 convolution (cheaper, larger receptive field);
* residual connections inside every block.

``width`` scales every channel count (PYSKL's base is 64; 0.5 gives a model that trains on a CPU).
``modalities`` picks what the network reads, stacked as channels (``("joint", "bone")`` is early fusion of
the two streams CTR-GCN ensembles separately).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from videoact.features.skeleton.layouts import get_layout
from videoact.features.skeleton.modalities import MODALITIES, person_weights, stack_modalities
from videoact.features.skeleton.registry import register_model


class GraphConv(nn.Module):
    """Spatial graph convolution with a learned adjacency: ``sum_k A_k X W_k``.  (N, C, T, V) -> (N, C', T, V)."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor) -> None:
        super().__init__()
        self.k = adjacency.shape[0]
        self.adjacency = nn.Parameter(adjacency.clone())  # (K, V, V), row = receiving joint
        self.conv = nn.Conv2d(in_channels, out_channels * self.k, 1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.down: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.k, -1, t, v)  # (N, K, C', T, V)
        y = torch.einsum("nkctv,kwv->nctw", y, self.adjacency)
        return self.act(self.bn(y) + self.down(x))


class MultiScaleTCN(nn.Module):
    """ST-GCN++'s temporal module: dilated 3x1 branches, max-pool and 1x1, concatenated.

    (N, C, T, V) -> (N, C', T', V)
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilations: Sequence[int] = (1, 2, 3, 4),
                 dropout: float = 0.0) -> None:
        super().__init__()
        n_branches = len(dilations) + 2
        mid = out_channels // n_branches
        first = out_channels - mid * (n_branches - 1)  # the 1x1 branch takes the remainder
        branches: list[nn.Module] = []
        for d in dilations:
            branches.append(nn.Sequential(
                nn.Conv2d(in_channels, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                nn.Conv2d(mid, mid, (3, 1), stride=(stride, 1), padding=(d, 0), dilation=(d, 1)),
            ))
        branches.append(nn.Sequential(
            nn.Conv2d(in_channels, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)),
        ))
        branches.append(nn.Conv2d(in_channels, first, 1, stride=(stride, 1)))
        self.branches = nn.ModuleList(branches)
        self.bn = nn.BatchNorm2d(out_channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(torch.cat([b(x) for b in self.branches], dim=1)))


class STGCNBlock(nn.Module):
    """Graph convolution then multi-scale temporal convolution, with a residual path.

    (N, C, T, V) -> (N, C', T', V)
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor, stride: int = 1,
                 residual: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels, adjacency)
        self.tcn = MultiScaleTCN(out_channels, out_channels, stride=stride, dropout=dropout)
        if not residual:
            self.residual: nn.Module | None = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=(stride, 1)),
                                          nn.BatchNorm2d(out_channels))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.act(y)


class STGCNPP(nn.Module):
    """ST-GCN++ classifier.  (N, C, T, V, M) joints -> (N, num_classes) logits."""

    def __init__(self, *, layout: str, num_classes: int, in_channels: int = 3, num_persons: int = 1,
                 width: float = 1.0, modalities: Sequence[str] = ("joint",), stages: Sequence[int] = (4, 3, 3),
                 dropout: float = 0.0, head_dropout: float = 0.0) -> None:
        super().__init__()
        lay = get_layout(layout)
        for m in modalities:
            if m not in MODALITIES:
                raise ValueError(f"unknown modality {m!r}; use some of {MODALITIES}")
        self.layout = lay.name
        self.modalities = tuple(modalities)
        self.num_classes = num_classes
        c_in = in_channels * len(self.modalities)
        v = lay.num_joints
        self.data_bn = nn.BatchNorm1d(c_in * v * num_persons)
        adjacency = torch.as_tensor(lay.adjacency("spatial"))
        base = max(8, round(64 * width / 8) * 8)
        blocks: list[nn.Module] = []
        c_prev = c_in
        for i, n_blocks in enumerate(stages):
            c_out = base * 2**i
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(STGCNBlock(c_prev, c_out, adjacency, stride=stride, residual=not (i == 0 and j == 0),
                                         dropout=dropout))
                c_prev = c_out
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = c_prev
        self.drop = nn.Dropout(head_dropout)
        self.fc = nn.Linear(c_prev, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> (N, D) pooled over time, joints and persons."""
        n, c, t, v, m = x.shape
        raw = x
        x = stack_modalities(x, self.modalities, self.layout)
        c = x.shape[1]
        x = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)  # (N, M*V*C, T)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)  # (N*M, C, T, V)
        x = self.blocks(x)
        x = x.mean(dim=(2, 3)).view(n, m, -1)  # (N, M, D)
        return torch.einsum("nmd,nm->nd", x, person_weights(raw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.features(x)))


@register_model
def build_stgcnpp(*, layout: str, num_classes: int, in_channels: int = 3, num_persons: int = 1,
                  width: float = 1.0, modalities: Sequence[str] = ("joint",), stages: Sequence[int] = (4, 3, 3),
                  dropout: float = 0.0, head_dropout: float = 0.0) -> STGCNPP:
    """ST-GCN++; ``width=1`` is PYSKL's size (64-128-256 channels, 10 blocks)."""
    return STGCNPP(layout=layout, num_classes=num_classes, in_channels=in_channels, num_persons=num_persons,
                   width=width, modalities=modalities, stages=stages, dropout=dropout, head_dropout=head_dropout)
