"""EVAD's action head: actor features by RoIAlign over the restored token map, then context refinement.

Chen et al., "Efficient Video Action Detection with Token Dropout and Context Refinement" (ICCV 2023); the
released code is ``MCG-NJU/EVAD`` (``projects/evad/models/head_helper.py`` ``EVADRoIHead``, ``vit_model.py``
``ContextRefinementDecoder``). What this module keeps from it:

* the backbone's tokens get a LayerNorm (EVAD's final ViT norm; ``VideoViT`` has none) and a bias-free linear
  map to the decoder width (``encoder_to_decoder``);
* the spatio-temporal map is restored from the kept tokens (``BackboneOutput.to_dense``: zeros where tokens
  were dropped); dropped positions then hold one learned ``mask_token`` and every position gets the sin-cos
  position embedding of its grid index, as EVAD's "token remapping";
* each person box is widened (``roi_extension``, EVAD's ``(0.4, 0.2)``: 20 % of the width added on the left
  and on the right, 10 % of the height above and below, clipped to the frame), then RoIAlign (7x7, two
  samples per bin, half-pixel aligned: detectron2's ``ROIAlignV2``) runs on **every tubelet slice**; the 7x7 bins
  are max-pooled and the slices averaged (``AdaptiveMaxPool3d((T', 1, 1))`` then ``AvgPool3d((T', 1, 1))``);
* the context refinement decoder is a stack of pre-norm ViT blocks over ``[kept scene tokens + their position
  embedding; actor features]``: actors attend to the scene kept by token dropout and to each other (scene
  tokens are refined too). After every block a classifier (Linear without bias, LayerNorm, ReLU, Linear) reads
  the actor slots, so every block can be supervised (EVAD's deep supervision; inference uses the last one).

Where it departs, and why:

* boxes come from outside (pose keypoints, a proposals file, a detector), so EVAD's Sparse R-CNN person
  detector and its box refinement are not here; the number of actors varies per clip, so actor slots are
  padded and a padded actor is masked out as a key (it never changes a real actor's output);
* coordinates are normalised [0, 1] at the boundary; EVAD works in pixels with a +1 in box widths.

Shapes: ``B`` clips, ``A`` actor slots, ``N`` kept tokens, ``D`` decoder width, ``K`` classes, grid
``(T', H', W')``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from timm.models.vision_transformer import Block
from torch import nn
from torchvision.ops import roi_align

from videoact.features.backbones import BackboneOutput
from videoact.features.vit.models import resize_pos_embed, sincos_table
from videoact.registry import Registry

PAD_BOX = (0.0, 0.0, 1.0, 1.0)  # what padded actor slots pool (their outputs are masked and ignored)


def extend_boxes(boxes: torch.Tensor, extension: tuple[float, float]) -> torch.Tensor:
    """Widen normalised ``(..., 4)`` boxes by ``extension = (x, y)`` of their size in total, clipped to [0, 1]."""
    ex, ey = extension
    if ex == 0 and ey == 0:
        return boxes
    x1, y1, x2, y2 = boxes.unbind(-1)
    pw, ph = ex * (x2 - x1) / 2, ey * (y2 - y1) / 2
    return torch.stack([x1 - pw, y1 - ph, x2 + pw, y2 + ph], dim=-1).clamp(0.0, 1.0)


def roi_pool_actors(fmap: torch.Tensor, boxes: torch.Tensor, *, output_size: int = 7,
                    sampling_ratio: int = 2) -> torch.Tensor:
    """One feature per box over time: RoIAlign on every slice, max over the bins, mean over the slices.

    Args:
        fmap: ``(B, D, T', H', W')`` feature map; cell ``(i, j)`` covers ``[j, j+1) x [i, i+1)`` in grid units.
        boxes: ``(B, A, 4)`` normalised ``x1, y1, x2, y2``.

    Returns:
        ``(B, A, D)``. Bilinear samples lie inside the box, so only cells whose centre is within one cell of it
        contribute; a box whose edges pass through cell centres reads exactly the cells whose centres it holds.
    """
    b, d, t, h, w = fmap.shape
    a = boxes.shape[1]
    grid_xy = (boxes * boxes.new_tensor([w, h, w, h])).reshape(b * a, 4)  # grid units
    slices = fmap.permute(0, 2, 1, 3, 4).reshape(b * t, d, h, w)  # (B·T', D, H', W')
    clip = torch.arange(b, device=fmap.device).repeat_interleave(a)  # (B·A,) clip of each box
    image = (clip[:, None] * t + torch.arange(t, device=fmap.device)).reshape(-1, 1)  # (B·A·T', 1) slice index
    rois = torch.cat([image.to(fmap.dtype), grid_xy.repeat_interleave(t, dim=0)], dim=1)  # (B·A·T', 5)
    out = roi_align(slices, rois, output_size, spatial_scale=1.0, sampling_ratio=sampling_ratio, aligned=True)
    return out.amax(dim=(2, 3)).reshape(b, a, t, d).mean(dim=2)  # (B, A, D)


def pad_boxes(boxes: Sequence[np.ndarray | torch.Tensor], *, device: torch.device | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-clip ``(n_i, 4)`` boxes -> ``boxes (B, A, 4)`` float32 and ``valid (B, A)`` bool, ``A = max(n_i, 1)``."""
    a = max([len(x) for x in boxes] + [1])
    out = torch.tensor(PAD_BOX, dtype=torch.float32).repeat(len(boxes), a, 1)
    valid = torch.zeros(len(boxes), a, dtype=torch.bool)
    for i, x in enumerate(boxes):
        n = len(x)
        if n:
            out[i, :n] = torch.as_tensor(np.array(x, dtype=np.float32)).reshape(n, 4)  # a copy: x may be read-only
            valid[i, :n] = True
    return out.to(device), valid.to(device)


class EVADHead(nn.Module):
    """``forward(feats: BackboneOutput, boxes (B, A, 4), valid (B, A)) -> logits (B, A, K)`` (sigmoid scores).

    Args:
        in_dim: backbone token width.
        num_classes: ``K``, one sigmoid per action class (multi-label).
        grid: ``(T', H', W')`` the position table is made for (other spatial grids are resized, as the backbone).
        dim, depth, num_heads, mlp_ratio: the context refinement decoder (EVAD's ViT-B recipe: 384, 6, 6, 4).
        act_dim: width of each block's classifier MLP (EVAD: 2048).
        roi_size, sampling_ratio, roi_extension: RoIAlign bins, samples per bin, box widening ``(x, y)``.
        drop_path: stochastic depth of the decoder's last block (linear from 0).
    """

    def __init__(self, *, in_dim: int, num_classes: int, grid: Sequence[int], dim: int = 384, depth: int = 6,
                 num_heads: int = 6, mlp_ratio: float = 4.0, act_dim: int = 2048, roi_size: int = 7,
                 sampling_ratio: int = 2, roi_extension: Sequence[float] = (0.4, 0.2), drop_path: float = 0.0
                 ) -> None:
        super().__init__()
        if len(grid) != 3 or len(roi_extension) != 2:
            raise ValueError(f"grid must be (T', H', W') and roi_extension (x, y), got {grid} and {roi_extension}")
        self.grid = (int(grid[0]), int(grid[1]), int(grid[2]))
        self.num_classes, self.dim = num_classes, dim
        self.roi_size, self.sampling_ratio = roi_size, sampling_ratio
        self.roi_extension = (float(roi_extension[0]), float(roi_extension[1]))
        norm: Callable[[int], nn.Module] = partial(nn.LayerNorm, eps=1e-6)
        self.norm = norm(in_dim)  # EVAD's final ViT norm
        self.proj = nn.Linear(in_dim, dim, bias=False)  # EVAD's encoder_to_decoder
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.register_buffer("pos_embed", sincos_table(int(np.prod(self.grid)), dim), persistent=False)
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.ModuleList([Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=rates[i],
                                           norm_layer=norm) for i in range(depth)])
        self.classifiers = nn.ModuleList([
            nn.Sequential(nn.Linear(dim, act_dim, bias=False), nn.LayerNorm(act_dim), nn.ReLU(inplace=True),
                          nn.Linear(act_dim, num_classes))
            for _ in range(depth)
        ])
        self.apply(_init_weights)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def scene_map(self, feats: BackboneOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected tokens restored to ``(B, D, T', H', W')`` (zeros where dropped) and ``kept (B, T'·H'·W')``."""
        return self._restore(self.proj(self.norm(feats.tokens)), feats)

    def actor_features(self, feats: BackboneOutput, boxes: torch.Tensor) -> torch.Tensor:
        """``(B, A, D)`` RoI features of the (widened) boxes on the remapped map (mask token + position)."""
        return self._actors(self.proj(self.norm(feats.tokens)), feats, boxes)

    def forward(self, feats: BackboneOutput, boxes: torch.Tensor, valid: torch.Tensor | None = None, *,
                all_layers: bool = False) -> torch.Tensor:
        """Logits ``(B, A, K)`` of the last block, or ``(depth, B, A, K)`` of every block with ``all_layers``."""
        b, a = boxes.shape[:2]
        x = self.proj(self.norm(feats.tokens))  # (B, N, D)
        actors = self._actors(x, feats, boxes)  # (B, A, D)
        pos = self._pos(feats.grid, x).expand(b, -1, -1)
        scene = x + pos.gather(1, feats.index[..., None].expand(-1, -1, self.dim))  # kept tokens + their position
        n = scene.shape[1]
        seq = torch.cat([scene, actors], dim=1)  # (B, N + A, D)
        mask = None
        if valid is not None and not bool(valid.all()):
            keys = torch.cat([valid.new_ones(b, n), valid], dim=1)  # (B, N + A): padded actors are no keys
            mask = torch.zeros(b, 1, 1, n + a, dtype=seq.dtype, device=seq.device).masked_fill(
                ~keys[:, None, None, :], float("-inf"))
        logits = []
        for block, classify in zip(self.blocks, self.classifiers, strict=True):
            seq = block(seq, attn_mask=mask)
            logits.append(classify(seq[:, n:]))  # (B, A, K)
        return torch.stack(logits) if all_layers else logits[-1]

    def _restore(self, x: torch.Tensor, feats: BackboneOutput) -> tuple[torch.Tensor, torch.Tensor]:
        dense = BackboneOutput(tokens=x, index=feats.index, grid=feats.grid).to_dense()  # (B, D, T', H', W')
        kept = torch.zeros(dense.shape[0], int(np.prod(feats.grid)), dtype=torch.bool, device=x.device)
        return dense, kept.scatter_(1, feats.index, True)

    def _actors(self, x: torch.Tensor, feats: BackboneOutput, boxes: torch.Tensor) -> torch.Tensor:
        dense, kept = self._restore(x, feats)
        b, d, t, h, w = dense.shape
        flat = dense.flatten(2).transpose(1, 2)  # (B, T'·H'·W', D)
        flat = torch.where(kept[..., None], flat, self.mask_token.to(flat.dtype)) + self._pos(feats.grid, flat)
        fmap = flat.transpose(1, 2).reshape(b, d, t, h, w)  # EVAD's remapped map
        return roi_pool_actors(fmap, extend_boxes(boxes, self.roi_extension), output_size=self.roi_size,
                               sampling_ratio=self.sampling_ratio)

    def _pos(self, grid: tuple[int, int, int], like: torch.Tensor) -> torch.Tensor:
        return resize_pos_embed(self.pos_embed, self.grid, tuple(grid)).to(like.dtype)  # (1, T'·H'·W', D)


def _init_weights(m: nn.Module) -> None:
    # EVAD's head init: Xavier-uniform linears, zero biases, unit LayerNorms
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# heads by name, as ``model.pt`` records them; builders are keyword-only
DETECTION_HEADS: Registry[Callable[..., nn.Module]] = Registry("detection head")
DETECTION_HEADS.register("evad", EVADHead)


def build_detection_head(name: str, **kwargs: object) -> nn.Module:
    """A head by registered name; ``UnknownNameError`` (a ``KeyError``) lists the registered ones."""
    return DETECTION_HEADS.get(name)(**kwargs)
