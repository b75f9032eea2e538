"""Anchor-free temporal action detection in the style of ActionFormer (Zhang et al., ECCV 2022).

Pipeline (``ActionFormer.forward``): feature projection (two masked 1D convs + LayerNorm) -> a stem of local-window
transformer blocks -> a branch of blocks that each halve the length, giving a ``levels``-level pyramid (strides
1, 2, 4, ...) -> optional class-semantics attention (CSA) -> heads shared across levels: a classifier (one
sigmoid per class at every step of every level) and a regressor (distances from the step to the action's start
and end, in units of the level's stride, through a per-level learned scale and a ReLU).

Training targets (``assign_targets``, as ActionFormer's ``label_points``): a step is positive for an action when
it lies within ``center_radius * stride`` of the action's centre (centre sampling, clipped to the action) and the
larger of its two distances falls in the level's regression range; among several candidates the shortest action
wins. Losses: sigmoid focal loss over every valid step and class, DIoU loss (1D IoU minus the squared centre
distance over the squared hull length) over the positives, both divided by an exponential moving average of the
number of positives. Inference: scores above ``pre_nms_thresh``, the ``pre_nms_topk`` best per level, decoded
segments, then Gaussian soft-NMS per class (``nms.batched_soft_nms``).

CSA (``csa=True``; after Sridhar et al., "Class Semantics-based Attention for Action Detection", ICCV 2021):
learned class embeddings ``(K, D)``; every step of every level attends over them (multi-head attention, query =
the encoded step, keys and values = the class embeddings) and the attended class semantics are added back to the
step's features before the heads, so each step is pulled towards the classes it resembles. The paper instead
derives channel and temporal attention weights from the recognition features that enter the encoder and applies
them to the encoded features; the class-embedding form here is the one this project's issue asked for.

Coordinates: the model works in feature steps; step ``i`` is the window centred on ``(i + 0.5)`` steps of video,
so a boundary ``x`` (in steps) is video time ``(x + 0.5) * seconds_per_step`` (``decode`` returns steps).
Differences from the reference: attention is full attention under a band mask of ``window`` steps (the same
result as its local attention, simpler, fine for the ~1k-step sequences here); no relative / absolute
position encoding; soft-NMS is numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from videoact.heads.localization.nms import batched_soft_nms

DEFAULT_RANGES: tuple[tuple[float, float], ...] = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10_000))


class ChannelNorm(nn.Module):
    """LayerNorm over channels of (B, C, T)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class MaskedConv1d(nn.Module):
    """Conv1d whose output is zero at padded steps.  (B, C, T), (B, T) -> (B, C', T)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * mask[:, None].to(x.dtype)


class LocalAttention(nn.Module):
    """Multi-head self-attention within a band of ``window`` steps; ``stride`` 2 halves the length.

    Queries, keys and values go through depthwise convs (stride ``stride``) and a LayerNorm, as ActionFormer's
    ``MaskedMHCA``.  (B, C, T), (B, T) -> (B, C, T / stride), (B, T / stride).
    """

    def __init__(self, dim: int, heads: int, window: int, stride: int = 1, attn_dropout: float = 0.0,
                 proj_dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        self.heads, self.window, self.stride = heads, window, stride
        self.q_conv, self.k_conv, self.v_conv = (
            nn.Conv1d(dim, dim, 3, stride=stride, padding=1, groups=dim, bias=False) for _ in range(3))
        self.q_norm, self.k_norm, self.v_norm = ChannelNorm(dim), ChannelNorm(dim), ChannelNorm(dim)
        self.qkv = nn.Conv1d(dim * 3, dim * 3, 1, groups=3)
        self.proj = nn.Conv1d(dim, dim, 1)
        self.attn_dropout, self.drop = attn_dropout, nn.Dropout(proj_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = mask[:, :: self.stride]
        q, k, v = self.q_norm(self.q_conv(x)), self.k_norm(self.k_conv(x)), self.v_norm(self.v_conv(x))
        q, k, v = self.qkv(torch.cat([q, k, v], 1)).chunk(3, dim=1)  # each (B, C, T')
        b, c, t = q.shape
        q, k, v = (z.view(b, self.heads, c // self.heads, t).transpose(2, 3) for z in (q, k, v))  # (B, H, T', C/H)
        pos = torch.arange(t, device=x.device)
        band = (pos[:, None] - pos[None, :]).abs() <= self.window // 2  # (T', T')
        allowed = band[None, None] & mask[:, None, None, :]  # keys must be real steps
        allowed = allowed | ~allowed.any(-1, keepdim=True)  # a padded query row attends to anything (then masked)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                             dropout_p=self.attn_dropout if self.training else 0.0)
        out = out.transpose(2, 3).reshape(b, c, t)
        return self.drop(self.proj(out)) * mask[:, None].to(out.dtype), mask


class TransformerBlock(nn.Module):
    """Pre-norm local attention + MLP, residual; ``stride`` 2 max-pools the skip path.  (B, C, T) -> (B, C, T/s)."""

    def __init__(self, dim: int, heads: int, window: int, stride: int = 1, mlp_ratio: int = 4,
                 dropout: float = 0.0, path_drop: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.norm2 = ChannelNorm(dim), ChannelNorm(dim)
        self.attn = LocalAttention(dim, heads, window, stride, proj_dropout=dropout)
        self.skip = nn.MaxPool1d(3, stride=stride, padding=1) if stride > 1 else nn.Identity()
        self.mlp = nn.Sequential(nn.Conv1d(dim, dim * mlp_ratio, 1), nn.GELU(), nn.Dropout(dropout),
                                 nn.Conv1d(dim * mlp_ratio, dim, 1), nn.Dropout(dropout))
        self.path_drop = path_drop

    def _drop_path(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.path_drop:
            return x
        keep = (torch.rand(x.shape[0], 1, 1, device=x.device) >= self.path_drop).to(x.dtype)
        return x * keep / (1 - self.path_drop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, mask = self.attn(self.norm1(x), mask)
        m = mask[:, None].to(x.dtype)
        x = self.skip(x) * m + self._drop_path(out)
        x = x + self._drop_path(self.mlp(self.norm2(x)) * m)
        return x, mask


class ClassSemanticAttention(nn.Module):
    """Steps attend over learned class embeddings; the attended semantics are added back.  (B, C, T) -> same."""

    def __init__(self, dim: int, num_classes: int, heads: int = 4) -> None:
        super().__init__()
        self.classes = nn.Parameter(torch.randn(num_classes, dim) * dim**-0.5)  # (K, C)
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q = self.norm_q(x.transpose(1, 2))  # (B, T, C)
        kv = self.norm_kv(self.classes)[None].expand(x.shape[0], -1, -1)  # (B, K, C)
        ctx, _ = self.attn(q, kv, kv, need_weights=False)  # (B, T, C)
        return x + self.out(ctx).transpose(1, 2) * mask[:, None].to(x.dtype)


class ConvHead(nn.Module):
    """Shared head over pyramid levels: (layers-1) x [masked conv, LayerNorm, ReLU] then a masked conv."""

    def __init__(self, dim: int, out: int, layers: int = 3, kernel: int = 3) -> None:
        super().__init__()
        self.convs = nn.ModuleList([MaskedConv1d(dim, dim, kernel, bias=False) for _ in range(layers - 1)])
        self.norms = nn.ModuleList([ChannelNorm(dim) for _ in range(layers - 1)])
        self.out = MaskedConv1d(dim, out, kernel)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.relu(norm(conv(x, mask)))
        return self.out(x, mask)


@dataclass
class DetectorOutput:
    logits: list[torch.Tensor]  # per level (B, T_l, K)
    offsets: list[torch.Tensor]  # per level (B, T_l, 2), in units of the level's stride, >= 0
    masks: list[torch.Tensor]  # per level (B, T_l) bool


class ActionFormer(nn.Module):
    """(B, D, T) features + (B, T) mask -> per-level class logits and boundary offsets (``DetectorOutput``)."""

    def __init__(self, *, in_dim: int, num_classes: int, dim: int = 128, heads: int = 4, window: int = 19,
                 stem_blocks: int = 2, levels: int = 6, head_layers: int = 3, dropout: float = 0.0,
                 path_drop: float = 0.1, input_dropout: float = 0.0, csa: bool = False,
                 regression_ranges: Sequence[Sequence[float]] = DEFAULT_RANGES, prior_prob: float = 0.01) -> None:
        super().__init__()
        if len(regression_ranges) != levels:
            raise ValueError(f"need one regression range per level: {levels} levels, {len(regression_ranges)} ranges")
        self.num_classes, self.levels = num_classes, levels
        self.ranges = [tuple(float(v) for v in r) for r in regression_ranges]
        self.input_dropout = nn.Dropout1d(input_dropout)
        self.embed = nn.ModuleList([MaskedConv1d(in_dim, dim, 3, bias=False), MaskedConv1d(dim, dim, 3, bias=False)])
        self.embed_norms = nn.ModuleList([ChannelNorm(dim), ChannelNorm(dim)])
        self.stem = nn.ModuleList([TransformerBlock(dim, heads, window, 1, dropout=dropout, path_drop=path_drop)
                                   for _ in range(stem_blocks)])
        self.branch = nn.ModuleList([TransformerBlock(dim, heads, window, 2, dropout=dropout, path_drop=path_drop)
                                     for _ in range(levels - 1)])
        self.neck = nn.ModuleList([ChannelNorm(dim) for _ in range(levels)])
        self.csa = ClassSemanticAttention(dim, num_classes, heads) if csa else None
        self.cls_head = ConvHead(dim, num_classes, head_layers)
        self.reg_head = ConvHead(dim, 2, head_layers)
        self.scales = nn.Parameter(torch.ones(levels))
        nn.init.constant_(self.cls_head.out.conv.bias, -math.log((1 - prior_prob) / prior_prob))

    @property
    def divisor(self) -> int:
        """Input lengths must be a multiple of this (the coarsest level's stride)."""
        return 2 ** (self.levels - 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> DetectorOutput:
        if x.shape[-1] % self.divisor:
            raise ValueError(f"sequence length {x.shape[-1]} must be a multiple of {self.divisor}; pad it "
                             "(pad_batch does)")
        x = self.input_dropout(x)
        for conv, norm in zip(self.embed, self.embed_norms, strict=True):
            x = F.relu(norm(conv(x, mask)))
        for block in self.stem:
            x, mask = block(x, mask)
        feats, masks = [x], [mask]
        for block in self.branch:
            x, mask = block(x, mask)
            feats.append(x)
            masks.append(mask)
        logits, offsets = [], []
        for lvl, (f, m) in enumerate(zip(feats, masks, strict=True)):
            f = self.neck[lvl](f)
            if self.csa is not None:
                f = self.csa(f, m)
            logits.append(self.cls_head(f, m).transpose(1, 2))  # (B, T_l, K)
            offsets.append(F.relu(self.scales[lvl] * self.reg_head(f, m)).transpose(1, 2))  # (B, T_l, 2)
        return DetectorOutput(logits, offsets, masks)

    def points(self, lengths: Sequence[int]) -> torch.Tensor:
        """(P, 4) rows ``(position in steps, range min, range max, stride)`` over all levels of lengths ``T_l``."""
        rows = []
        for lvl, t in enumerate(lengths):
            s = 2**lvl
            pos = torch.arange(t, dtype=torch.float32) * s
            lo, hi = self.ranges[lvl]
            rows.append(torch.stack([pos, torch.full_like(pos, lo), torch.full_like(pos, hi),
                                     torch.full_like(pos, float(s))], 1))
        return torch.cat(rows)


def pad_batch(seqs: Sequence[np.ndarray | torch.Tensor], divisor: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_i, D) sequences -> (B, D, T) zero-padded to a multiple of ``divisor`` and (B, T) bool mask."""
    lengths = [len(s) for s in seqs]
    t = -(-max(lengths) // divisor) * divisor
    x = torch.zeros(len(seqs), seqs[0].shape[1], t)
    mask = torch.zeros(len(seqs), t, dtype=torch.bool)
    for i, s in enumerate(seqs):
        x[i, :, : len(s)] = torch.as_tensor(np.asarray(s), dtype=torch.float32).T
        mask[i, : len(s)] = True
    return x, mask


@torch.no_grad()
def assign_targets(points: torch.Tensor, segments: torch.Tensor, labels: torch.Tensor, num_classes: int, *,
                   center_radius: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets of one video: ``(P, K)`` class targets and ``(P, 2)`` offsets / stride.

    ``segments`` (N, 2) in steps, ``labels`` (N,); see the module docstring for the rule.
    """
    p = points.shape[0]
    if not len(segments):
        return points.new_zeros(p, num_classes), points.new_zeros(p, 2)
    pos, lo, hi, stride = points[:, 0:1], points[:, 1:2], points[:, 2:3], points[:, 3:4]
    start, end = segments[None, :, 0], segments[None, :, 1]  # (1, N)
    reg = torch.stack([pos - start, end - pos], -1)  # (P, N, 2)
    centre = 0.5 * (start + end)
    t_min = torch.maximum(centre - stride * center_radius, start)
    t_max = torch.minimum(centre + stride * center_radius, end)
    inside = torch.minimum(pos - t_min, t_max - pos) > 0  # (P, N)
    far = reg.max(-1).values
    in_range = (far >= lo) & (far <= hi)
    lens = (end - start).expand(p, -1).clone()
    lens[~(inside & in_range)] = float("inf")
    min_len, idx = lens.min(1)
    best = (lens <= min_len[:, None] + 1e-3) & torch.isfinite(lens)  # ties: every equally short action
    cls = (best.to(torch.float32) @ F.one_hot(labels, num_classes).to(torch.float32)).clamp(0, 1)
    off = reg[torch.arange(p), idx] / stride
    return cls, off


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, *, alpha: float = 0.25,
                       gamma: float = 2.0) -> torch.Tensor:
    """Summed RetinaNet focal loss (fvcore's definition)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.sum()


def diou_loss_1d(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Summed 1D DIoU loss of (N, 2) distances (left, right) from a shared point: ``1 - IoU + d^2 / c^2``."""
    lp, rp, lg, rg = pred[:, 0], pred[:, 1], target[:, 0], target[:, 1]
    inter = torch.minimum(lp, lg) + torch.minimum(rp, rg)
    union = (lp + rp) + (lg + rg) - inter
    iou = inter / union.clamp_min(eps)
    hull = torch.maximum(lp, lg) + torch.maximum(rp, rg)
    centre_dist = 0.5 * ((rp - lp) - (rg - lg))
    return (1.0 - iou + centre_dist.square() / hull.square().clamp_min(eps)).sum()


class DetectionLoss:
    """Focal + DIoU loss with ActionFormer's moving-average normaliser (kept in the training state)."""

    def __init__(self, *, num_classes: int, center_radius: float = 1.5, reg_weight: float = 1.0,
                 label_smoothing: float = 0.0, init_normalizer: float = 100.0, momentum: float = 0.9) -> None:
        self.num_classes, self.center_radius, self.reg_weight = num_classes, center_radius, reg_weight
        self.label_smoothing, self.normalizer, self.momentum = label_smoothing, init_normalizer, momentum

    def __call__(self, model: ActionFormer, out: DetectorOutput, segments: Sequence[torch.Tensor],
                 labels: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        points = model.points([lg.shape[1] for lg in out.logits])
        cls_t, off_t = zip(*(assign_targets(points, s, lab, self.num_classes, center_radius=self.center_radius)
                             for s, lab in zip(segments, labels, strict=True)), strict=True)
        gt_cls, gt_off = torch.stack(cls_t), torch.stack(off_t)  # (B, P, K), (B, P, 2)
        valid = torch.cat(out.masks, 1)  # (B, P)
        logits, offsets = torch.cat(out.logits, 1), torch.cat(out.offsets, 1)
        pos = (gt_cls.sum(-1) > 0) & valid
        n_pos = int(pos.sum())
        self.normalizer = self.momentum * self.normalizer + (1 - self.momentum) * max(n_pos, 1)
        target = gt_cls[valid] * (1 - self.label_smoothing) + self.label_smoothing / (self.num_classes + 1)
        cls_loss = sigmoid_focal_loss(logits[valid], target) / self.normalizer
        reg_loss = (diou_loss_1d(offsets[pos], gt_off[pos]) / self.normalizer if n_pos
                    else offsets.sum() * 0.0)
        return {"cls": cls_loss, "reg": reg_loss, "loss": cls_loss + self.reg_weight * reg_loss}


@torch.no_grad()
def decode(model: ActionFormer, out: DetectorOutput, index: int = 0, *, pre_nms_thresh: float = 1e-3,
           pre_nms_topk: int = 2000, min_duration: float = 0.05, nms_sigma: float = 0.5,
           min_score: float = 1e-3, max_segments: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections of batch item ``index``: segments (N, 2) in steps, scores (N,), class ids (N,)."""
    k = model.num_classes
    points = model.points([lg.shape[1] for lg in out.logits])
    segs, scores, labels = [], [], []
    at = 0
    for lg, off, m in zip(out.logits, out.offsets, out.masks, strict=True):
        pts = points[at: at + lg.shape[1]]
        at += lg.shape[1]
        prob = (torch.sigmoid(lg[index]) * m[index][:, None]).flatten()  # (T_l * K,)
        keep = torch.nonzero(prob > pre_nms_thresh).flatten()
        keep = keep[prob[keep].argsort(descending=True)[:pre_nms_topk]]
        step, cls = keep // k, keep % k
        o, p = off[index][step], pts[step]
        left, right = p[:, 0] - o[:, 0] * p[:, 3], p[:, 0] + o[:, 1] * p[:, 3]
        ok = (right - left) > min_duration
        segs.append(torch.stack([left, right], 1)[ok])
        scores.append(prob[keep][ok])
        labels.append(cls[ok])
    s = torch.cat(segs).numpy().astype(np.float64)
    sc = torch.cat(scores).numpy().astype(np.float64)
    lab = torch.cat(labels).numpy()
    return batched_soft_nms(s, sc, lab, sigma=nms_sigma, min_score=min_score, max_segments=max_segments)


def build_actionformer(*, in_dim: int, num_classes: int, **kwargs: object) -> ActionFormer:
    """ActionFormer-style detector (keyword arguments as ``ActionFormer``)."""
    return ActionFormer(in_dim=in_dim, num_classes=num_classes, **kwargs)  # type: ignore[arg-type]
