"""mmaction2's ST-GCN / ST-GCN++ and its skeleton test pipeline, as plain torch / numpy: its checkpoints load as is.

Why a port and not a key converter to ``stgcn.STGCNPP``: the two networks differ in ways weights cannot express:

* ``data_bn``: mmaction2's default (``data_bn_type='VC'``) normalises ``V * C`` channels shared by all persons;
  ours normalises ``M * V * C`` (a separate statistic per person slot);
* the multi-scale TCN: mmaction2 follows the concatenated branches with ``transform`` (BN, ReLU, 1x1 conv) before
  the final BN, and gives the channel remainder to the first (dilation 1) branch; ours has no ``transform`` and
  gives the remainder to the 1x1 branch;
* the graph product: mmaction2 computes ``x_out[w] = sum_v x[v] A[k, v, w]`` (ours: ``A[k, w, v]``).

So the modules here keep mmaction2's names and structure (``backbone.gcn.{i}.gcn.A``, ``...tcn.branches.{j}``,
``cls_head.fc``): ``state_dict`` keys of a released ``stgcnpp_*.pth`` match one to one and load strictly.
Sources: ``mmaction/models/backbones/stgcn.py``, ``models/utils/gcn_utils.py``, ``models/utils/graph.py``,
``models/heads/gcn_head.py``, ``datasets/transforms/pose_transforms.py`` and ``formatting.py`` of mmaction2 1.2.0.

Input of the network: ``(N, M, T, V, C)`` as ``FormatGCNInput`` writes it (one row per clip); output: logits
``(N, num_classes)``, features averaged over time, joints and then persons (``GCNHead``). ``Recognizer.predict``
reshapes ``(B, num_clips, M, T, V, C)`` and averages softmax probabilities over the clips (``average_clips='prob'``,
``GCNHead``'s default and what every ST-GCN++ config uses).

The test pipeline (``MMAction2SkeletonPipeline``): ``PreNormalize2D`` (or ``PreNormalize3D``), ``GenSkeFeat``,
``UniformSampleFrames(test_mode=True)``, ``PoseDecode``, ``FormatGCNInput``; each step is a function below.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-4

# mmaction2 graph / dataset names <-> videoact layouts (features.skeleton.layouts)
MM_TO_LAYOUT = {"coco": "coco17", "nturgb+d": "ntu25"}
LAYOUT_TO_MM = {v: k for k, v in MM_TO_LAYOUT.items()}

# ------------------------------------------------------------------------------------------------- graph

_INWARD = {
    "openpose": ([(4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1),
                  (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)], 18, 1),
    "nturgb+d": ([(i - 1, j - 1) for i, j in [
        (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
        (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 8), (23, 8), (24, 12),
        (25, 12)]], 25, 20),
    "coco": ([(15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6), (5, 0),
              (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)], 17, 0),
}


def _edge2mat(edges: Sequence[tuple[int, int]], v: int) -> np.ndarray:
    a = np.zeros((v, v))
    for i, j in edges:
        a[j, i] = 1
    return a


def _normalize_digraph(a: np.ndarray) -> np.ndarray:
    d = a.sum(0)
    dn = np.zeros((a.shape[1], a.shape[1]))
    for i in range(a.shape[1]):
        if d[i] > 0:
            dn[i, i] = d[i] ** (-1)
    return a @ dn


def _hop_distance(v: int, edges: Sequence[tuple[int, int]], max_hop: int) -> np.ndarray:
    a = np.eye(v)
    for i, j in edges:
        a[i, j] = a[j, i] = 1
    hop = np.zeros((v, v)) + np.inf
    arrive = np.stack([np.linalg.matrix_power(a, d) for d in range(max_hop + 1)]) > 0
    for d in range(max_hop, -1, -1):
        hop[arrive[d]] = d
    return hop


def graph_adjacency(layout: str = "coco", mode: str = "spatial", max_hop: int = 1) -> np.ndarray:
    """mmaction2's ``Graph(layout, mode, max_hop).A`` ``(K, V, V)`` float64: ``spatial`` or ``stgcn_spatial``."""
    layout = LAYOUT_TO_MM.get(layout, layout)
    if layout not in _INWARD:
        raise ValueError(f"unknown mmaction2 graph layout {layout!r}; use one of {', '.join(_INWARD)}")
    inward, v, center = _INWARD[layout]
    outward = [(j, i) for i, j in inward]
    if mode == "spatial":
        return np.stack([_edge2mat([(i, i) for i in range(v)], v), _normalize_digraph(_edge2mat(inward, v)),
                         _normalize_digraph(_edge2mat(outward, v))])
    if mode == "stgcn_spatial":
        hop = _hop_distance(v, inward, max_hop)
        adj = np.zeros((v, v))
        adj[hop <= max_hop] = 1
        norm = _normalize_digraph(adj)
        out = []
        for h in range(max_hop + 1):
            close, further = np.zeros((v, v)), np.zeros((v, v))
            for i in range(v):
                for j in range(v):
                    if hop[j, i] == h:
                        if hop[j, center] >= hop[i, center]:
                            close[j, i] = norm[j, i]
                        else:
                            further[j, i] = norm[j, i]
            out.append(close)
            if h > 0:
                out.append(further)
        return np.stack(out)
    raise ValueError(f"unknown mmaction2 graph mode {mode!r}; use 'spatial' or 'stgcn_spatial'")


# ----------------------------------------------------------------------------------------------- modules


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> Any:
        return 0


class UnitGCN(nn.Module):
    """``gcn_utils.unit_gcn``: ``A`` learned (``adaptive='init'``), a buffer (None), or with ``PA``."""

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, adaptive: str | None = "importance",
                 conv_pos: str = "pre", with_res: bool = False) -> None:
        super().__init__()
        if adaptive not in (None, "init", "offset", "importance"):
            raise ValueError(f"gcn_adaptive {adaptive!r}")
        if conv_pos not in ("pre", "post"):
            raise ValueError(f"gcn_conv_pos {conv_pos!r}")
        self.num_subsets = A.size(0)
        self.adaptive, self.conv_pos, self.with_res = adaptive, conv_pos, with_res
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()
        if adaptive == "init":
            self.A = nn.Parameter(A.clone())
        else:
            self.register_buffer("A", A)
        if adaptive in ("offset", "importance"):
            self.PA = nn.Parameter(A.clone())
            if adaptive == "offset":
                nn.init.uniform_(self.PA, -1e-6, 1e-6)
            else:
                nn.init.constant_(self.PA, 1)
        if conv_pos == "pre":
            self.conv = nn.Conv2d(in_channels, out_channels * A.size(0), 1)
        else:
            self.conv = nn.Conv2d(A.size(0) * in_channels, out_channels, 1)
        if with_res:
            self.down: nn.Module = (nn.Sequential(nn.Conv2d(in_channels, out_channels, 1),
                                                  nn.BatchNorm2d(out_channels))
                                    if in_channels != out_channels else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        res = self.down(x) if self.with_res else 0
        a = self.A
        if self.adaptive == "offset":
            a = self.A + self.PA
        elif self.adaptive == "importance":
            a = self.A * self.PA
        if self.conv_pos == "pre":
            x = self.conv(x).view(n, self.num_subsets, -1, t, v)
            x = torch.einsum("nkctv,kvw->nctw", x, a).contiguous()
        else:
            x = torch.einsum("nctv,kvw->nkctw", x, a).contiguous().view(n, -1, t, v)
            x = self.conv(x)
        return self.act(self.bn(x) + res)


class UnitTCN(nn.Module):
    """``gcn_utils.unit_tcn``: a (k, 1) temporal convolution and BN (none with ``norm=None``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1,
                 dilation: int = 1, norm: str | None = "BN", dropout: float = 0.0) -> None:
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(pad, 0),
                              stride=(stride, 1), dilation=(dilation, 1))
        self.bn = nn.BatchNorm2d(out_channels) if norm is not None else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(self.conv(x)))


MS_CFG: tuple[Any, ...] = ((3, 1), (3, 2), (3, 3), (3, 4), ("max", 3), "1x1")


class MSTCN(nn.Module):
    """``gcn_utils.mstcn``: branches, concatenated, ``transform`` (BN, ReLU, 1x1), BN."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: float | None = None, dropout: float = 0.0,
                 ms_cfg: Sequence[Any] = MS_CFG, stride: int = 1) -> None:
        super().__init__()
        nb = len(ms_cfg)
        if mid_channels is None:
            mid = out_channels // nb
            rem = out_channels - mid * (nb - 1)
        else:
            mid = rem = int(out_channels * mid_channels)
        self.act = nn.ReLU()
        branches: list[nn.Module] = []
        for i, cfg in enumerate(ms_cfg):
            c = rem if i == 0 else mid
            if cfg == "1x1":
                branches.append(nn.Conv2d(in_channels, c, kernel_size=1, stride=(stride, 1)))
            elif cfg[0] == "max":
                branches.append(nn.Sequential(nn.Conv2d(in_channels, c, 1), nn.BatchNorm2d(c), self.act,
                                              nn.MaxPool2d((cfg[1], 1), stride=(stride, 1), padding=(1, 0))))
            else:
                branches.append(nn.Sequential(nn.Conv2d(in_channels, c, 1), nn.BatchNorm2d(c), self.act,
                                              UnitTCN(c, c, kernel_size=cfg[0], stride=stride, dilation=cfg[1],
                                                      norm=None)))
        self.branches = nn.ModuleList(branches)
        tin = mid * (nb - 1) + rem
        self.transform = nn.Sequential(nn.BatchNorm2d(tin), self.act, nn.Conv2d(tin, out_channels, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.transform(torch.cat([b(x) for b in self.branches], dim=1))
        return self.drop(self.bn(feat))


class STGCNBlock(nn.Module):
    """``backbones.stgcn.STGCNBlock``; ``gcn_*`` / ``tcn_*`` keyword arguments as mmaction2's."""

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, stride: int = 1,
                 residual: bool = True, **kwargs: Any) -> None:
        super().__init__()
        gcn_kw = {k[4:]: v for k, v in kwargs.items() if k.startswith("gcn_")}
        tcn_kw = {k[4:]: v for k, v in kwargs.items() if k.startswith("tcn_")}
        other = {k: v for k, v in kwargs.items() if k[:4] not in ("gcn_", "tcn_")}
        if other:
            raise TypeError(f"invalid ST-GCN block arguments: {other}")
        tcn_type = tcn_kw.pop("type", "unit_tcn")
        if gcn_kw.pop("type", "unit_gcn") != "unit_gcn":
            raise ValueError("only gcn_type='unit_gcn' is ported")
        self.gcn = UnitGCN(in_channels, out_channels, A, **gcn_kw)
        if tcn_type == "unit_tcn":
            self.tcn: nn.Module = UnitTCN(out_channels, out_channels, 9, stride=stride, **tcn_kw)
        elif tcn_type == "mstcn":
            self.tcn = MSTCN(out_channels, out_channels, stride=stride, **tcn_kw)
        else:
            raise ValueError(f"tcn_type {tcn_type!r}; use 'unit_tcn' or 'mstcn'")
        self.relu = nn.ReLU()
        if not residual:
            self.residual: nn.Module = _Zero()
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = UnitTCN(in_channels, out_channels, kernel_size=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.residual(x)
        return self.relu(self.tcn(self.gcn(x)) + res)


class STGCN(nn.Module):
    """``backbones.stgcn.STGCN``: ``(N, M, T, V, C)`` -> ``(N, M, C', T', V)``.

    ST-GCN++ is ``STGCN(graph_cfg=dict(layout='coco', mode='spatial'), gcn_adaptive='init', gcn_with_res=True,
    tcn_type='mstcn')``.
    """

    def __init__(self, graph_cfg: dict[str, Any], in_channels: int = 3, base_channels: int = 64,
                 data_bn_type: str = "VC", ch_ratio: int = 2, num_person: int = 2, num_stages: int = 10,
                 inflate_stages: Sequence[int] = (5, 8), down_stages: Sequence[int] = (5, 8), **kwargs: Any) -> None:
        super().__init__()
        A = torch.tensor(graph_adjacency(**graph_cfg), dtype=torch.float32)
        self.data_bn_type = data_bn_type
        if data_bn_type == "MVC":
            self.data_bn: nn.Module = nn.BatchNorm1d(num_person * in_channels * A.size(1))
        elif data_bn_type == "VC":
            self.data_bn = nn.BatchNorm1d(in_channels * A.size(1))
        else:
            self.data_bn = nn.Identity()
        lw = [copy.deepcopy(kwargs) for _ in range(num_stages)]
        for k, v in kwargs.items():
            if isinstance(v, (tuple, list)) and len(v) == num_stages:
                for i in range(num_stages):
                    lw[i][k] = v[i]
        lw[0].pop("tcn_dropout", None)
        modules: list[nn.Module] = []
        if in_channels != base_channels:
            modules.append(STGCNBlock(in_channels, base_channels, A.clone(), 1, residual=False, **lw[0]))
        inflate = 0
        base = base_channels
        for i in range(2, num_stages + 1):
            stride = 1 + (i in down_stages)
            c_in = base
            if i in inflate_stages:
                inflate += 1
            c_out = int(base_channels * ch_ratio**inflate + EPS)
            base = c_out
            modules.append(STGCNBlock(c_in, c_out, A.clone(), stride, **lw[i - 1]))
        self.num_stages = len(modules)
        self.out_channels = base
        self.gcn = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, m, t, v, c = x.size()
        x = x.permute(0, 1, 3, 4, 2).contiguous()
        if self.data_bn_type == "MVC":
            x = self.data_bn(x.view(n, m * v * c, t))
        else:
            x = self.data_bn(x.view(n * m, v * c, t))
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for block in self.gcn:
            x = block(x)
        return x.reshape((n, m, *x.shape[1:]))


class GCNHead(nn.Module):
    """``heads.gcn_head.GCNHead``: average pool over (T, V), mean over persons, dropout, ``fc``."""

    def __init__(self, num_classes: int, in_channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, m, c, t, v = x.shape
        x = F.adaptive_avg_pool2d(x.reshape(n * m, c, t, v), 1).view(n, m, c).mean(dim=1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(x)


class Recognizer(nn.Module):
    """``RecognizerGCN``: ``backbone`` + ``cls_head``, the checkpoint's top-level names."""

    def __init__(self, backbone: STGCN, cls_head: GCNHead, average_clips: str | None = "prob") -> None:
        super().__init__()
        self.backbone = backbone
        self.cls_head = cls_head
        self.average_clips = average_clips

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, M, T, V, C)`` -> logits ``(N, num_classes)``."""
        return self.cls_head(self.backbone(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, num_clips, M, T, V, C)`` -> ``(B, num_classes)`` clip-averaged scores (``BaseHead.average_clip``)."""
        b, nc = x.shape[:2]
        scores = self(x.reshape((b * nc, *x.shape[2:]))).view(b, nc, -1)
        if self.average_clips == "prob":
            return F.softmax(scores, dim=2).mean(dim=1)
        if self.average_clips == "score":
            return scores.mean(dim=1)
        if self.average_clips is None:
            return scores
        raise ValueError(f"average_clips {self.average_clips!r}; use 'prob', 'score' or None")


STGCNPP_BACKBONE: dict[str, Any] = {"gcn_adaptive": "init", "gcn_with_res": True, "tcn_type": "mstcn"}


def build_recognizer(*, num_classes: int, graph_layout: str = "coco", graph_mode: str = "spatial",
                     in_channels: int = 3, head_in_channels: int = 256, dropout: float = 0.0,
                     average_clips: str | None = "prob", **backbone: Any) -> Recognizer:
    """mmaction2's ST-GCN++ recognizer (the ``stgcnpp_8xb16-*`` configs) unless ``backbone`` says otherwise."""
    kw = {**STGCNPP_BACKBONE, **backbone}
    net = STGCN(graph_cfg={"layout": graph_layout, "mode": graph_mode}, in_channels=in_channels, **kw)
    return Recognizer(net, GCNHead(num_classes, head_in_channels, dropout=dropout), average_clips=average_clips)


def load_checkpoint(model: Recognizer, path: str | Path) -> Recognizer:
    """Load an mmaction2 checkpoint (``{"state_dict": {"backbone.*", "cls_head.*"}, "meta": ...}``) strictly,
    with ``torch.load(weights_only=True)``; a missing or unexpected key raises naming the first few."""
    from videoact.features.vit.checkpoints import read_checkpoint

    state = read_checkpoint(path)
    state = {k.removeprefix("module."): v for k, v in state.items() if ".loss_cls." not in k}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path}: not an mmaction2 ST-GCN checkpoint of this shape (missing: {missing[:5]}, "
                         f"unexpected: {unexpected[:5]})")
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        raise ValueError(f"{path}: shape mismatch for {bad[:5]} (e.g. {bad[0]}: {tuple(state[bad[0]].shape)} in "
                         f"the file, {tuple(own[bad[0]].shape)} in the model)")
    model.load_state_dict(state, strict=True)
    return model.eval()


# ---------------------------------------------------------------------------------------------- pipeline


def pre_normalize_2d(keypoint: np.ndarray, img_shape: tuple[int, int] = (1080, 1920)) -> np.ndarray:
    """``PreNormalize2D``: pixels -> ``(x - w/2) / (w/2)``, ``(y - h/2) / (h/2)``; ``img_shape`` is ``(h, w)``.

    A copy (mmaction2 writes in place); zeros (absent joints) become -1 as there."""
    h, w = img_shape
    kp = np.array(keypoint, copy=True)
    kp[..., 0] = (kp[..., 0] - (w / 2)) / (w / 2)
    kp[..., 1] = (kp[..., 1] - (h / 2)) / (h / 2)
    return kp


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _angle(v1: np.ndarray, v2: np.ndarray) -> float:
    if np.abs(v1).sum() < 1e-6 or np.abs(v2).sum() < 1e-6:
        return 0
    return float(np.arccos(np.clip(np.dot(_unit(v1), _unit(v2)), -1.0, 1.0)))


def _rotation(axis: np.ndarray, theta: float) -> np.ndarray:
    if np.abs(axis).sum() < 1e-6 or np.abs(theta) < 1e-6:
        return np.eye(3)
    axis = np.asarray(axis)
    axis = axis / np.sqrt(np.dot(axis, axis))
    a = np.cos(theta / 2.0)
    b, c, d = -axis * np.sin(theta / 2.0)
    aa, bb, cc, dd = a * a, b * b, c * c, d * d
    bc, ad, ac, ab, bd, cd = b * c, a * d, a * c, a * b, b * d, c * d
    return np.array([[aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac)],
                     [2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab)],
                     [2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc]])


def pre_normalize_3d(skeleton: np.ndarray, zaxis: Sequence[int] = (0, 1), xaxis: Sequence[int] = (8, 4),
                     align_spine: bool = True, align_shoulder: bool = True,
                     align_center: bool = True) -> np.ndarray:
    """``PreNormalize3D`` (NTU 3D): drop frames where the main person is absent, centre on joint 1 of frame 0,
    rotate the spine onto z and the shoulders onto x. ``(M, T, V, 3)`` -> ``(M, T', V, 3)``."""
    skeleton = np.asarray(skeleton)
    m, t, v, _ = skeleton.shape
    if skeleton.sum() == 0:
        return skeleton
    if m not in (1, 2):
        raise ValueError(f"PreNormalize3D takes 1 or 2 persons, got {m}")
    index0 = [i for i in range(t) if not np.all(np.isclose(skeleton[0, i], 0))]
    if m == 2:
        index1 = [i for i in range(t) if not np.all(np.isclose(skeleton[1, i], 0))]
        if len(index0) < len(index1):
            skeleton = skeleton[:, np.array(index1)][[1, 0]]
        else:
            skeleton = skeleton[:, np.array(index0)]
    else:
        skeleton = skeleton[:, np.array(index0)]
    if align_center:
        center = skeleton[0, 0, 1].copy() if v == 25 else skeleton[0, 0, -1].copy()
        mask = ((skeleton != 0).sum(-1) > 0)[..., None]
        skeleton = (skeleton - center) * mask
    if align_spine:
        bottom, top = skeleton[0, 0, zaxis[0]], skeleton[0, 0, zaxis[1]]
        rot = _rotation(np.cross(top - bottom, [0, 0, 1]), _angle(top - bottom, [0, 0, 1]))
        skeleton = np.einsum("abcd,kd->abck", skeleton, rot)
    if align_shoulder:
        r, l_ = skeleton[0, 0, xaxis[0]], skeleton[0, 0, xaxis[1]]
        rot = _rotation(np.cross(r - l_, [1, 0, 0]), _angle(r - l_, [1, 0, 0]))
        skeleton = np.einsum("abcd,kd->abck", skeleton, rot)
    return skeleton


BONE_PAIRS = {
    "nturgb+d": ((0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9),
                 (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18), (21, 22),
                 (20, 20), (22, 7), (23, 24), (24, 11)),
    "openpose": ((0, 0), (1, 0), (2, 1), (3, 2), (4, 3), (5, 1), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9), (11, 5),
                 (12, 11), (13, 12), (14, 0), (15, 0), (16, 14), (17, 15)),
    "coco": ((0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 0), (6, 0), (7, 5), (8, 6), (9, 7), (10, 8), (11, 0),
             (12, 0), (13, 11), (14, 12), (15, 13), (16, 14)),
}


def joint_to_bone(keypoint: np.ndarray, dataset: str = "nturgb+d") -> np.ndarray:
    """``JointToBone``: joint minus its parent; for 2D+score datasets the score is the pair's mean."""
    m, t, v, c = keypoint.shape
    bone = np.zeros((m, t, v, c), dtype=np.float32)
    for v1, v2 in BONE_PAIRS[dataset]:
        bone[..., v1, :] = keypoint[..., v1, :] - keypoint[..., v2, :]
        if c == 3 and dataset in ("openpose", "coco"):
            bone[..., v1, 2] = (keypoint[..., v1, 2] + keypoint[..., v2, 2]) / 2
    return bone


def to_motion(data: np.ndarray, dataset: str = "nturgb+d") -> np.ndarray:
    """``ToMotion``: frame differences (last frame 0); for 2D+score datasets the score is the pair's mean."""
    t, c = data.shape[1], data.shape[-1]
    motion = np.zeros_like(data)
    motion[:, :t - 1] = np.diff(data, axis=1)
    if c == 3 and dataset in ("openpose", "coco"):
        motion[:, :t - 1, :, 2] = (data[:, :t - 1, :, 2] + data[:, 1:, :, 2]) / 2
    return motion


def gen_ske_feat(keypoint: np.ndarray, keypoint_score: np.ndarray | None = None, *, dataset: str = "nturgb+d",
                 feats: Sequence[str] = ("j",)) -> np.ndarray:
    """``GenSkeFeat``: score appended as a channel (2D), then ``j`` / ``b`` / ``jm`` / ``bm`` concatenated."""
    if keypoint_score is not None:
        if keypoint.shape[-1] != 2:
            raise ValueError("only 2D keypoints have a keypoint_score")
        keypoint = np.concatenate([keypoint, keypoint_score[..., None]], -1)
    out = {"j": keypoint}
    if "b" in feats or "bm" in feats:
        out["b"] = joint_to_bone(keypoint, dataset)
    if "jm" in feats:
        out["jm"] = to_motion(out["j"], dataset)
    if "bm" in feats:
        out["bm"] = to_motion(out["b"], dataset)
    return np.concatenate([out[f] for f in feats], axis=-1)


def uniform_sample_test(num_frames: int, clip_len: int, num_clips: int = 1, seed: int = 255) -> np.ndarray:
    """``UniformSampleFrames(test_mode=True)`` indices ``(num_clips * clip_len,)`` int, taken modulo ``num_frames``.

    Shorter than ``clip_len``: clip ``i`` loops the video from ``i * num_frames // num_clips`` (from ``i`` when
    there are fewer frames than clips). Up to twice ``clip_len``: every frame once plus ``num_frames - clip_len``
    random skips. Longer: one random frame in each of ``clip_len`` equal segments. The randomness is a
    ``RandomState(seed)`` created per call, the stream mmaction2 gets from ``np.random.seed(seed)`` (which it
    sets globally; we do not touch the global state)."""
    rng = np.random.RandomState(seed)
    all_inds = []
    for i in range(num_clips):
        if num_frames < clip_len:
            start = i if num_frames < num_clips else i * num_frames // num_clips
            inds = np.arange(start, start + clip_len)
        elif num_frames < 2 * clip_len:
            basic = np.arange(clip_len)
            skip = rng.choice(clip_len + 1, num_frames - clip_len, replace=False)
            offset = np.zeros(clip_len + 1, dtype=np.int64)
            offset[skip] = 1
            inds = basic + np.cumsum(offset)[:-1]
        else:
            bids = np.array([j * num_frames // clip_len for j in range(clip_len + 1)])
            inds = bids[:clip_len] + rng.randint(np.diff(bids))
        all_inds.append(inds)
    return np.mod(np.concatenate(all_inds), num_frames).astype(np.int32)


def format_gcn_input(keypoint: np.ndarray, num_person: int = 2, num_clips: int = 1, mode: str = "zero") -> np.ndarray:
    """``FormatGCNInput``: persons zero-padded (or looped) / cut to ``num_person``; ``(M, nc*T, V, C)`` ->
    ``(nc, M, T, V, C)``."""
    m = keypoint.shape[0]
    if m < num_person:
        pad = np.zeros((num_person - m, *keypoint.shape[1:]), dtype=keypoint.dtype)
        keypoint = np.concatenate((keypoint, pad), axis=0)
        if mode == "loop" and m == 1:
            keypoint[1:] = keypoint[0]
    elif m > num_person:
        keypoint = keypoint[:num_person]
    m, t, v, c = keypoint.shape
    if t % num_clips:
        raise ValueError(f"{t} frames do not split into {num_clips} clips")
    return np.ascontiguousarray(keypoint.reshape((m, num_clips, t // num_clips, v, c)).transpose(1, 0, 2, 3, 4))


@dataclass(frozen=True)
class MMAction2SkeletonPipeline:
    """mmaction2's skeleton test pipeline for one sample: ``PreNormalize2D`` / ``3D``, ``GenSkeFeat``,
    ``UniformSampleFrames(test_mode=True)``, ``PoseDecode``, ``FormatGCNInput``."""

    clip_len: int = 100
    num_clips: int = 10
    num_person: int = 2
    dataset: str = "coco"  # GenSkeFeat / JointToBone pairs: coco, nturgb+d, openpose
    feats: tuple[str, ...] = ("j",)
    normalize: str = "2d"  # 2d (PreNormalize2D), 3d (PreNormalize3D) or none
    img_shape: tuple[int, int] = (1080, 1920)  # PreNormalize2D's default (h, w) when the sample has none
    seed: int = 255

    def __call__(self, keypoint: np.ndarray, keypoint_score: np.ndarray | None = None,
                 img_shape: tuple[int, int] | None = None) -> np.ndarray:
        """``keypoint (M, T, V, 2 | 3)`` (pixels for 2D), ``keypoint_score (M, T, V)`` -> float32
        ``(num_clips, num_person, clip_len, V, C)``."""
        kp = np.asarray(keypoint)
        if self.normalize == "2d":
            kp = pre_normalize_2d(kp, img_shape or self.img_shape)
        elif self.normalize == "3d":
            kp = pre_normalize_3d(kp)
        elif self.normalize != "none":
            raise ValueError(f"normalize {self.normalize!r}; use 2d, 3d or none")
        x = gen_ske_feat(kp, keypoint_score, dataset=self.dataset, feats=self.feats)
        inds = uniform_sample_test(x.shape[1], self.clip_len, self.num_clips, self.seed)
        x = x[:, inds].astype(np.float32)  # PoseDecode
        return format_gcn_input(x, self.num_person, self.num_clips)
