"""ISTA-Net: interactive spatiotemporal token attention (Wen et al., IROS 2023).

Interactive actions (two people shaking hands, a hand and an object) are usually modelled one entity at a time
and fused late, so the network never compares one person's hand with the other's shoulder. ISTA-Net puts every
entity's skeleton into one token set and lets attention relate any token to any other:

* **Interactive spatiotemporal tokenization**: a token is a short window of ``t_patch`` frames of one joint of
  one entity, embedded by a strided temporal convolution; the tokens of all ``M`` entities form one sequence of
  ``M * ceil(T / t_patch) * V`` tokens, tagged with learned joint and entity embeddings and a sinusoidal
  time-window code (any ``T`` works).
* **Token attention**: pre-norm transformer blocks with full multi-head attention over that sequence, a
  depthwise temporal convolution over each (entity, joint) track of tokens (the paper's temporal aggregation),
  and an MLP. Full attention is cheap at skeleton sizes (260 tokens for T=52, V=20, M=1; 800 for NTU's
  T=64, V=25, M=2); resample long sequences before the model.
* **Entity rearrangement**: interaction labels do not depend on which person is listed first, but the entity
  embedding lets the model tell entity slots apart. So in training mode ``forward`` shuffles the entity axis of
  every sample (``rearrange_entities``) before anything else; eval mode leaves the order alone. It is done
  inside the model so every trainer gets it; pass ``entity_rearrangement=False`` when the slot order carries
  meaning (left hand / right hand / object).
* Mean over all tokens -> linear classifier. Entities whose joints are all zero (the padding of a one-person
  sample in a two-person batch) are masked out of attention and pooling.

Simplified against the paper's code: tokens are one joint x ``t_patch`` frames of one entity embedded into a
vector (the paper's tokens are strided windows of frames x joints x entities whose contents stay an inner grid);
attention is standard softmax attention (the paper uses tanh-scaled scores plus a learned static attention map
and a convolution across tokens); the temporal aggregation is a depthwise convolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from videoact.features.skeleton.layouts import Layout, get_layout
from videoact.features.skeleton.modalities import MODALITIES, present_persons, stack_modalities
from videoact.features.skeleton.registry import register_model


def rearrange_entities(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random order of the entity axis for each sample: (N, C, T, V, M) -> (N, C, T, V, M)."""
    n, m = x.shape[0], x.shape[-1]
    if m < 2:
        return x
    perm = torch.rand(n, m, generator=generator).argsort(dim=1).to(x.device)  # (N, M), CPU draw: reproducible
    return x.gather(4, perm.view(n, 1, 1, 1, m).expand_as(x))



def _sinusoid(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(length, dim) transformer position code."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(length, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return out


class TokenBlock(nn.Module):
    """Full token attention, then temporal aggregation along each (entity, joint) track, then an MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float, attn_dropout: float,
                 t_kernel: int = 3) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"ISTA-Net dim {dim} is not divisible by heads {heads}")
        self.heads, self.attn_dropout = heads, attn_dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.tconv = nn.Conv1d(dim, dim, t_kernel, padding=t_kernel // 2, groups=dim)
        self.norm3 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, grid: tuple[int, int, int], mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, L, D) tokens in (entity, time window, joint) order, ``grid = (M, T', V)``; returns (N, L, D).

        ``mask``: (N, 1, 1, L) bool, False for tokens of absent entities (never attended to).
        """
        n, length, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(n, length, d)))
        m, t, j = grid
        h = self.norm2(x).view(n, m, t, j, d).permute(0, 1, 3, 4, 2).reshape(n * m * j, d, t)
        h = self.tconv(h).view(n, m, j, d, t).permute(0, 1, 4, 2, 3).reshape(n, length, d)
        x = x + self.drop(h)
        return x + self.drop(self.mlp(self.norm3(x)))


class ISTANet(nn.Module):
    """Tokens of all entities in one attention set; ``(N, C, T, V, M)`` -> ``(N, num_classes)`` logits."""

    def __init__(self, layout: str | Layout, num_classes: int, in_channels: int = 3, num_persons: int = 1,
                 dim: int = 96, depth: int = 6, heads: int = 4, t_patch: int = 4, mlp_ratio: float = 2.0,
                 modalities: Sequence[str] = ("joint",), entity_rearrangement: bool = True, dropout: float = 0.0,
                 attn_dropout: float = 0.0) -> None:
        super().__init__()
        unknown = [s for s in modalities if s not in MODALITIES]
        if unknown or not modalities:
            raise ValueError(f"ISTA-Net modalities {list(modalities)}: use a non-empty subset of {MODALITIES}")
        self.layout = get_layout(layout)
        self.in_channels, self.num_persons, self.t_patch = in_channels, num_persons, t_patch
        self.modalities = tuple(modalities)
        self.entity_rearrangement = entity_rearrangement
        v, c = self.layout.num_joints, in_channels * len(self.modalities)
        self.data_bn = nn.BatchNorm1d(c * v)  # per joint and channel, shared by entities
        self.embed = nn.Conv2d(c, dim, (t_patch, 1), stride=(t_patch, 1))
        self.joint_embed = nn.Parameter(torch.randn(v, dim) * 0.02)
        self.entity_embed = nn.Parameter(torch.randn(num_persons, dim) * 0.02)
        self.blocks = nn.ModuleList([TokenBlock(dim, heads, mlp_ratio, dropout, attn_dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, num_classes)

    def _check(self, x: torch.Tensor) -> None:
        expected = (self.in_channels, self.layout.num_joints, self.num_persons)
        if x.dim() != 5 or (x.shape[1], x.shape[3], x.shape[4]) != expected:
            raise ValueError(f"ISTA-Net built for (N, {self.in_channels}, T, {self.layout.num_joints}, "
                             f"{self.num_persons}) joints of layout {self.layout.name}, got {tuple(x.shape)}")

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """(N, C, T, V, M) -> tokens (N, M * T' * V, D) and their grid (M, T', V), T' = ceil(T / t_patch)."""
        self._check(x)
        n, _, t, v, m = x.shape
        x = stack_modalities(x, self.modalities, self.layout)  # (N, C', T, V, M)
        pad = -t % self.t_patch
        if pad:  # repeat the last frame so every window is full
            x = torch.cat([x, x[:, :, -1:].expand(-1, -1, pad, -1, -1)], dim=2)
        c, t = x.shape[1], x.shape[2]
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x).view(n * m, v, c, t).permute(0, 2, 3, 1)  # (N*M, C', T, V)
        x = self.embed(x)  # (N*M, D, T', V)
        d, tw = x.shape[1], x.shape[2]
        x = x.view(n, m, d, tw, v).permute(0, 1, 3, 4, 2)  # (N, M, T', V, D)
        x = (x + self.joint_embed + self.entity_embed[:, None, None, :]
             + _sinusoid(tw, d, x.device)[:, None, :])
        return x.reshape(n, m * tw * v, d), (m, tw, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, T, V, M) -> (N, num_classes)
        self._check(x)
        if self.training and self.entity_rearrangement:
            x = rearrange_entities(x)
        h, grid = self.tokens(x)  # (N, L, D)
        present = present_persons(x)  # (N, M)
        keep = present[:, :, None].expand(-1, -1, grid[1] * grid[2]).reshape(h.shape[0], -1)  # (N, L)
        mask = None if bool(present.all()) else keep[:, None, None, :]
        for block in self.blocks:
            h = block(h, grid, mask)
        w = keep.to(h.dtype)[:, :, None]
        pooled = (self.norm(h) * w).sum(1) / w.sum(1)  # mean over the tokens of present entities
        return self.fc(self.drop(pooled))


@register_model
def build_ista(*, layout: str, num_classes: int, in_channels: int = 3, num_persons: int = 1, dim: int = 96,
               depth: int = 6, heads: int = 4, t_patch: int = 4, mlp_ratio: float = 2.0,
               modalities: Sequence[str] = ("joint",), entity_rearrangement: bool = True, dropout: float = 0.0,
               attn_dropout: float = 0.0) -> ISTANet:
    """ISTA-Net token attention over all entities' spatiotemporal tokens; ``dim``/``depth`` set the size."""
    return ISTANet(layout, num_classes, in_channels, num_persons, dim, depth, heads, t_patch, mlp_ratio,
                   tuple(modalities), entity_rearrangement, dropout, attn_dropout)
