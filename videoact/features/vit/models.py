"""Video ViT (VideoMAE fine-tuning layout) with keyframe-centric token dropout (EVAD).

The network is VideoMAE's encoder as fine-tuned for recognition: a 2x16x16 tubelet embedding (Conv3d), a
fixed sin-cos table over the flattened tubelet grid (or a learned one), timm's pre-norm ``Block`` s, no CLS
token, and mean pooling + ``fc_norm`` + ``head`` for clip logits. The state-dict keys are timm's, so
``checkpoints.py`` only renames VideoMAE / mmaction2 keys.

Token dropout (Chen et al., "Efficient Video Action Detection with Token Dropout and Context Refinement",
ICCV 2023) happens inside the blocks whose keep rate is below 1, between attention and MLP, as in EVAD's
``KTPBlock``: every token of the keyframe's tubelet slice is kept, and of the others the ``k`` with the
highest score are kept, where the score of a token is the attention it receives from the keyframe queries
of that block, averaged over those queries and the heads. ``k = floor(rate * n + 0.5)`` (round half up)
with ``n`` the non-keyframe tokens entering the block. Dropped tokens never come back, so the output holds
``H'·W'`` keyframe tokens plus the last ``k``, with their positions in the full grid (``BackboneOutput``).

Differences from EVAD's released code (``projects/evad/models/vit_model.py``), on purpose:

* EVAD averages the attention over *all* queries (keyframe rows multiplied by ``ENHANCED_WEIGHT``: 1 in its
  0.7 config, 4 in its 0.6 "EW" config). The default here scores with the keyframe queries only, which needs
  only ``H'·W' x N`` extra logits next to the fused attention; ``keyframe_query_weight=w`` reproduces EVAD's
  scoring (all queries, keyframe rows times ``w``) at the price of materialising the full attention matrix
  in the dropout blocks.
* EVAD applies the rate to all tokens and subtracts the keyframe tokens (``ceil(rate·N) - H'·W'``); by
  default the rate applies to the non-keyframe tokens here, so the same preset keeps more tokens (ViT-B,
  16x224²: 960/672/470 non-keyframe tokens after the three dropout layers, against EVAD's 902/573/343).
  ``keep_rule="evad"`` counts as EVAD does (use it with EVAD's checkpoints).
* EVAD keeps tokens keyframe-first; ``BackboneOutput`` returns them sorted by grid position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from videoact.features.backbones import BackboneOutput, register_backbone

EVAD_KEEP_RATES: tuple[float, ...] = (1, 1, 1, 0.7, 1, 1, 0.7, 1, 1, 0.7, 1, 1)
PosEmbed = Literal["sincos", "learned"]
KEEP_RATE_PRESETS: dict[str, tuple[float, ...]] = {
    "evad": EVAD_KEEP_RATES,  # EVAD's ViT-B config (ViT_B_16x4_KTP.yaml)
    "evad_0.6": (1, 1, 1, 0.6, 1, 1, 0.6, 1, 1, 0.6, 1, 1),  # its faster variant (ViT_B_16x4_KTP_EW.yaml)
}


def sincos_table(n_position: int, dim: int) -> torch.Tensor:
    """VideoMAE's 1-D sinusoid table over the flattened tubelet grid: (1, n_position, dim) float32.

    Angle ``pos / 10000^(2·(j // 2) / dim)``; sin on even channels, cos on odd ones (computed in float64 as
    VideoMAE's numpy version is, so checkpoints that store the table verify bit-close).
    """
    j = torch.arange(dim, dtype=torch.float64)
    angle = torch.arange(n_position, dtype=torch.float64)[:, None] / torch.pow(10000.0, 2 * (j // 2) / dim)
    table = torch.empty_like(angle)
    table[:, 0::2] = angle[:, 0::2].sin()
    table[:, 1::2] = angle[:, 1::2].cos()
    return table.to(torch.float32)[None]


def resize_pos_embed(pos: torch.Tensor, old: tuple[int, int, int], new: tuple[int, int, int]) -> torch.Tensor:
    """Bicubic resize of a (1, T'·H'·W', D) table to another spatial grid, slice by slice (as VideoMAE and EVAD
    do for inputs of another size). The temporal size must match: a 1-D table has no temporal axis to stretch."""
    if old == new:
        return pos
    if old[0] != new[0]:
        raise ValueError(f"position table is for {old[0]} tubelet slices, input has {new[0]}: build the model "
                         f"with num_frames = {new[0]} x tubelet")
    d = pos.shape[-1]
    x = pos.reshape(old[0], old[1], old[2], d).permute(0, 3, 1, 2)  # (T', D, H', W')
    x = F.interpolate(x, size=new[1:], mode="bicubic", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(1, -1, d)


KeepRule = Literal["non_keyframe", "evad"]


def keep_count(rate: float, n: int, *, n_key: int = 0, rule: KeepRule = "non_keyframe") -> int:
    """Non-keyframe tokens kept of ``n`` (with ``n_key`` keyframe tokens beside them).

    ``non_keyframe``: ``floor(rate·n + 0.5)`` (round half up); ``evad``: EVAD's ``ceil(rate·(n + n_key)) - n_key``.
    """
    if rule == "evad":
        k = math.ceil(rate * (n + n_key)) - n_key
    elif rule == "non_keyframe":
        k = math.floor(rate * n + 0.5)
    else:
        raise ValueError(f"keep_rule must be 'non_keyframe' or 'evad', got {rule!r}")
    return min(n, max(0, k))


def resolve_keep_rates(keep_rates: Sequence[float] | str | None, depth: int) -> tuple[float, ...]:
    if keep_rates is None:
        return (1.0,) * depth
    if isinstance(keep_rates, str):
        if keep_rates not in KEEP_RATE_PRESETS:
            raise ValueError(f"unknown keep-rate preset {keep_rates!r}; presets: {', '.join(KEEP_RATE_PRESETS)}")
        keep_rates = KEEP_RATE_PRESETS[keep_rates]
    rates = tuple(float(r) for r in keep_rates)
    if len(rates) != depth:
        raise ValueError(f"keep_rates has {len(rates)} entries, the model has {depth} blocks: give one per block")
    if not all(0.0 < r <= 1.0 for r in rates):
        raise ValueError(f"keep rates must lie in (0, 1], got {list(rates)}")
    return rates


class TokenDropBlock(Block):
    """timm's ``Block`` (same submodules, same state-dict keys) plus ``forward_drop``.

    ``forward`` is timm's; ``forward_drop`` runs the same computation but, between attention and MLP, keeps
    the keyframe tokens and the ``n_keep`` other tokens the keyframe attends to most.
    """

    def forward_drop(
        self,
        x: torch.Tensor,  # (B, N, D)
        *,
        key_start: int,
        n_key: int,
        n_keep: int,
        keyframe_query_weight: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the block output (B, n_key + n_keep, D) and the kept positions in ``x`` (B, n_key + n_keep):
        the keyframe tokens first, then the others in ascending position."""
        b, n, d = x.shape
        attn = self.attn
        qkv = attn.qkv(self.norm1(x)).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, H, N, hd) each
        q, k = attn.q_norm(q), attn.k_norm(k)
        drop_p = attn.attn_drop.p if self.training else 0.0
        key = slice(key_start, key_start + n_key)
        if keyframe_query_weight is None:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop_p)  # fused: no N x N matrix
            with torch.no_grad():  # only the keyframe rows of the attention matrix are needed for the score
                probs = ((q[:, :, key] * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, H, S, N)
                score = probs.mean(dim=(1, 2))  # (B, N)
        else:
            probs = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, H, N, N)
            weight = probs.new_ones(n)
            weight[key] = keyframe_query_weight
            score = torch.einsum("bhqk,q->bk", probs.detach(), weight)  # EVAD's ranking (up to a constant)
            out = attn.attn_drop(probs) @ v
        out = out.transpose(1, 2).reshape(b, n, -1)  # (B, N, D)
        x = x + self.drop_path1(self.ls1(attn.proj_drop(attn.proj(attn.norm(out)))))

        keep = select_tokens(score, key_start=key_start, n_key=n_key, n_keep=n_keep)  # (B, n_key + n_keep)
        x = x.gather(1, keep[..., None].expand(-1, -1, d))
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return x, keep


def select_tokens(score: torch.Tensor, *, key_start: int, n_key: int, n_keep: int) -> torch.Tensor:
    """Positions kept from a (B, N) score: ``key_start .. key_start + n_key`` always, then the ``n_keep``
    best-scored other positions in ascending order. (B, n_key + n_keep) long."""
    b = score.shape[0]
    others = torch.cat([score[:, :key_start], score[:, key_start + n_key:]], dim=1)  # (B, N - n_key)
    top = others.topk(n_keep, dim=1, sorted=False).indices.sort(dim=1).values
    top = top + n_key * (top >= key_start)  # back to positions in the full sequence
    key = torch.arange(key_start, key_start + n_key, device=score.device).expand(b, -1)
    return torch.cat([key, top], dim=1)


class TubeletEmbed(nn.Module):
    """VideoMAE's patch embedding: one Conv3d over ``tubelet`` x ``patch`` x ``patch`` cubes.

    (B, C, T, H, W) -> (B, D, T / tubelet, H / patch, W / patch)
    """

    def __init__(self, in_chans: int, dim: int, *, tubelet: int, patch_size: int) -> None:
        super().__init__()
        size = (tubelet, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, dim, size, stride=size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class VideoViT(nn.Module):
    """Video ViT; ``forward(x (B, 3, T, H, W), keyframe=...) -> BackboneOutput`` of the kept tokens.

    Tokens are the last block's outputs without a final norm (VideoMAE's fine-tuned models have none under
    mean pooling); ``forward_head`` mean-pools them, applies ``fc_norm`` and the classifier, if any.
    """

    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        num_heads: int,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        num_frames: int = 16,
        tubelet: int = 2,
        in_chans: int = 3,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        layer_scale: float | None = None,  # timm LayerScale init (VideoMAE's init_values); None: no layer scale
        keep_rates: Sequence[float] | str | None = None,  # one per block, or a preset name ("evad")
        keyframe_query_weight: float | None = None,  # None: keyframe queries score; w: EVAD's all-query scoring
        keep_rule: KeepRule = "non_keyframe",  # what a keep rate counts (module docstring)
        pos_embed: PosEmbed = "sincos",  # sincos: fixed, not in the state dict
        num_classes: int = 0,  # 0: no classifier, forward_head returns pooled features
    ) -> None:
        super().__init__()
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        if h % patch_size or w % patch_size or num_frames % tubelet:
            raise ValueError(f"img_size {h}x{w} / num_frames {num_frames} must be multiples of the patch "
                             f"({patch_size}) / tubelet ({tubelet})")
        self.dim, self.depth, self.patch_size, self.tubelet = dim, depth, patch_size, tubelet
        self.grid = (num_frames // tubelet, h // patch_size, w // patch_size)
        self.keep_rates = resolve_keep_rates(keep_rates, depth)
        keep_count(1.0, 1, rule=keep_rule)  # checks the name
        self.keep_rule = keep_rule
        self.keyframe_query_weight = keyframe_query_weight
        self.num_classes = num_classes

        self.patch_embed = TubeletEmbed(in_chans, dim, tubelet=tubelet, patch_size=patch_size)
        n = math.prod(self.grid)
        if pos_embed == "sincos":
            self.register_buffer("pos_embed", sincos_table(n, dim), persistent=False)
        elif pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, n, dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        else:
            raise ValueError(f"pos_embed must be 'sincos' or 'learned', got {pos_embed!r}")
        self.pos_embed_kind = pos_embed

        norm = partial(nn.LayerNorm, eps=1e-6)
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.ModuleList([
            TokenDropBlock(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, init_values=layer_scale,
                           drop_path=rates[i], norm_layer=norm)
            for i in range(depth)
        ])
        self.fc_norm = norm(dim)
        self.head = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(_init_weights)

    def keep_plan(self, grid: tuple[int, int, int]) -> list[int | None]:
        """Per block: non-keyframe tokens kept after it, or None where it keeps everything."""
        n_key = grid[1] * grid[2]
        n = (grid[0] - 1) * n_key
        plan: list[int | None] = []
        for rate in self.keep_rates:
            k = keep_count(rate, n, n_key=n_key, rule=self.keep_rule) if rate < 1 else n
            plan.append(None if k == n else k)
            n = k
        return plan

    def token_counts(self, grid: tuple[int, int, int] | None = None) -> list[int]:
        """Tokens each block's MLP sees (= its output count) for an input grid (default: the built one)."""
        t, h, w = grid or self.grid
        counts, n = [], t * h * w
        for k in self.keep_plan((t, h, w)):
            n = n if k is None else h * w + k
            counts.append(n)
        return counts

    def forward(self, x: torch.Tensor, *, keyframe: int | None = None) -> BackboneOutput:
        """``x`` (B, C, T, H, W); ``keyframe`` a frame index in [-T, T) (default: the centre frame ``T // 2``)."""
        b, _, t, h, w = x.shape
        if t % self.tubelet or h % self.patch_size or w % self.patch_size:
            raise ValueError(f"input {t}x{h}x{w} (T x H x W) must be multiples of the tubelet ({self.tubelet}) "
                             f"and patch ({self.patch_size}) sizes")
        x = self.patch_embed(x)  # (B, D, T', H', W')
        grid = (int(x.shape[2]), int(x.shape[3]), int(x.shape[4]))
        x = x.flatten(2).transpose(1, 2)  # (B, N, D)
        x = x + resize_pos_embed(self.pos_embed, self.grid, grid).to(x.dtype)

        n_key = grid[1] * grid[2]
        key_start = self._keyframe_slice(keyframe, t) * n_key
        index: torch.Tensor | None = None  # (B, N) grid position of each current token; None: all, in order
        for block, n_keep in zip(self.blocks, self.keep_plan(grid), strict=True):
            if n_keep is None:
                x = block(x)
                continue
            x, keep = block.forward_drop(x, key_start=key_start, n_key=n_key, n_keep=n_keep,
                                         keyframe_query_weight=self.keyframe_query_weight)
            index = keep if index is None else index.gather(1, keep)
            key_start = 0  # kept sequences start with the keyframe tokens

        if index is None:
            return BackboneOutput(tokens=x, index=torch.arange(x.shape[1], device=x.device).expand(b, -1),
                                  grid=grid)
        index, order = index.sort(dim=1)
        x = x.gather(1, order[..., None].expand(-1, -1, x.shape[-1]))
        return BackboneOutput(tokens=x, index=index, grid=grid)

    def forward_head(self, out: BackboneOutput) -> torch.Tensor:
        """Clip logits (B, num_classes), or pooled features (B, D) without a classifier."""
        return self.head(self.fc_norm(out.tokens.mean(dim=1)))

    def _keyframe_slice(self, keyframe: int | None, t: int) -> int:
        if keyframe is None:
            keyframe = t // 2
        if not -t <= keyframe < t:
            raise ValueError(f"keyframe {keyframe} is outside the clip's {t} frames")
        return (keyframe % t) // self.tubelet


def _init_weights(m: nn.Module) -> None:
    # VideoMAE's init: truncated normal linears, unit LayerNorms (the conv keeps PyTorch's default)
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


@register_backbone
def build_vit_s16(*, img_size: int = 224, num_frames: int = 16, tubelet: int = 2, drop_path: float = 0.0,
                  keep_rates: Sequence[float] | str | None = None, pos_embed: PosEmbed = "sincos", num_classes: int = 0,
                  keyframe_query_weight: float | None = None, layer_scale: float | None = None,
                  keep_rule: KeepRule = "non_keyframe") -> VideoViT:
    """ViT-S/16 (384 wide, 12 blocks, 6 heads), VideoMAE's ``vit_small_patch16_224``."""
    return VideoViT(dim=384, depth=12, num_heads=6, img_size=img_size, num_frames=num_frames, tubelet=tubelet,
                    drop_path=drop_path, keep_rates=keep_rates, pos_embed=pos_embed, num_classes=num_classes,
                    keyframe_query_weight=keyframe_query_weight, layer_scale=layer_scale, keep_rule=keep_rule)


@register_backbone
def build_vit_b16(*, img_size: int = 224, num_frames: int = 16, tubelet: int = 2, drop_path: float = 0.0,
                  keep_rates: Sequence[float] | str | None = None, pos_embed: PosEmbed = "sincos", num_classes: int = 0,
                  keyframe_query_weight: float | None = None, layer_scale: float | None = None,
                  keep_rule: KeepRule = "non_keyframe") -> VideoViT:
    """ViT-B/16 (768 wide, 12 blocks, 12 heads), VideoMAE's ``vit_base_patch16_224``; EVAD's backbone."""
    return VideoViT(dim=768, depth=12, num_heads=12, img_size=img_size, num_frames=num_frames, tubelet=tubelet,
                    drop_path=drop_path, keep_rates=keep_rates, pos_embed=pos_embed, num_classes=num_classes,
                    keyframe_query_weight=keyframe_query_weight, layer_scale=layer_scale, keep_rule=keep_rule)


@register_backbone
def build_vit_tiny(*, img_size: int = 64, num_frames: int = 8, tubelet: int = 2, drop_path: float = 0.0,
                   keep_rates: Sequence[float] | str | None = None, pos_embed: PosEmbed = "sincos",
                   num_classes: int = 0, keyframe_query_weight: float | None = None,
                   layer_scale: float | None = None, patch_size: int = 16,
                   keep_rule: KeepRule = "non_keyframe") -> VideoViT:
    """A 64-wide, 4-block, 2-head ViT for tests and smoke runs (not a published model)."""
    return VideoViT(dim=64, depth=4, num_heads=2, img_size=img_size, patch_size=patch_size, num_frames=num_frames,
                    tubelet=tubelet, drop_path=drop_path, keep_rates=keep_rates, pos_embed=pos_embed,
                    num_classes=num_classes, keyframe_query_weight=keyframe_query_weight, layer_scale=layer_scale,
                    keep_rule=keep_rule)
