"""Video ViT backbone with EVAD keyframe-centric token dropout (videoact.features.vit.models).

Tiny configs only (``vit_tiny``: 64 wide, 4 blocks, 2 heads; 8 frames of 64x64 -> a 4x4x4 token grid). Weights
are re-drawn with a large spread so that attention is far from uniform and token scores are well separated.
"""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block

from videoact.features.backbones import build_backbone, list_backbones
from videoact.features.vit.models import EVAD_KEEP_RATES, TokenDropBlock, keep_count

GRID = (4, 4, 4)
S = 16  # tokens per tubelet slice (4 x 4)


def tiny(seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_backbone("vit_tiny", **kwargs)
    _spread(model, seed)
    return model.eval()


def _spread(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.endswith("fc_norm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))


def clip(batch: int = 2, seed: int = 0, frames: int = 8, size: int = 64) -> torch.Tensor:
    return torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed))


def mlp_token_counts(model: torch.nn.Module, x: torch.Tensor, **kwargs) -> list[int]:
    """Tokens each block's MLP really receives (a pre-hook, so it sees what forward does)."""
    counts: list[int] = []
    hooks = [b.mlp.register_forward_pre_hook(lambda _m, args: counts.append(args[0].shape[1])) for b in model.blocks]
    try:
        model(x, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    return counts


def test_registry_configs_and_presets():
    assert {"vit_s16", "vit_b16", "vit_tiny"} <= set(list_backbones())
    for name, dim, heads in (("vit_s16", 384, 6), ("vit_b16", 768, 12)):
        model = build_backbone(name, keep_rates="evad")
        assert (model.dim, len(model.blocks), model.blocks[0].attn.num_heads) == (dim, 12, heads)
        assert model.keep_rates == EVAD_KEEP_RATES == (1, 1, 1, 0.7, 1, 1, 0.7, 1, 1, 0.7, 1, 1)
        assert model.grid == (8, 14, 14)
    # VideoMAE's ViT-B backbone: 86.2 M parameters without the classifier
    assert 86.0e6 < sum(p.numel() for p in model.parameters()) < 86.5e6
    # ViT-B at 16x224x224 under the EVAD preset: 196 keyframe tokens + round-half-up(0.7 * non-keyframe)
    assert model.token_counts() == [1568] * 3 + [196 + 960] * 3 + [196 + 672] * 3 + [196 + 470] * 3
    with pytest.raises(ValueError, match="presets: evad"):
        build_backbone("vit_tiny", keep_rates="fast")
    with pytest.raises(ValueError, match="one per block"):
        build_backbone("vit_tiny", keep_rates=[1, 0.5])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        build_backbone("vit_tiny", keep_rates=[1, 0, 1, 1])


def test_keep_count_rounds_half_up():
    assert [keep_count(0.5, 33), keep_count(0.5, 32), keep_count(0.7, 1372), keep_count(0.7, 15)] == [17, 16, 960, 11]
    assert keep_count(0.01, 10) == 0 and keep_count(1.0, 10) == 10


def test_evad_keep_rule_counts_as_evads_code():
    # EVAD's KTP block: ceil(rate * all tokens) kept, keyframe tokens first: 0.7 of 1568 -> 1098 = 196 + 902
    assert keep_count(0.7, 1372, n_key=196, rule="evad") == 902
    model = build_backbone("vit_b16", keep_rates="evad", keep_rule="evad")
    assert model.token_counts() == [1568] * 3 + [196 + 902] * 3 + [196 + 573] * 3 + [196 + 343] * 3
    tiny = build_backbone("vit_tiny", keep_rates=[1, 0.5, 1, 0.5], keep_rule="evad").eval()
    x = torch.randn(1, 3, 8, 64, 64)  # grid 4 x 4 x 4: 16 keyframe tokens of 64
    assert mlp_token_counts(tiny, x) == [64, 32, 32, 16] == tiny.token_counts()
    with pytest.raises(ValueError, match="keep_rule"):
        build_backbone("vit_tiny", keep_rule="half")


def test_dense_output_layout():
    model = tiny(num_classes=5)
    out = model(clip())
    assert out.tokens.shape == (2, 64, 64) and out.grid == GRID and out.dim == 64
    assert torch.equal(out.index, torch.arange(64).expand(2, -1))
    dense = out.to_dense()  # (B, D, T', H', W') in the same flattening as the tokens
    assert torch.equal(dense.flatten(2).transpose(1, 2), out.tokens)
    assert model.forward_head(out).shape == (2, 5)


@pytest.mark.parametrize("keyframe", [None, 0, 1, 3, 6, 7, -1, -8])
def test_keyframe_tokens_always_kept(keyframe):
    model = tiny(keep_rates=[1, 0.5, 0.5, 0.5])
    x = clip()
    out = model(x, keyframe=keyframe)
    k = 4 if keyframe is None else keyframe % 8  # the centre frame of 8 by default
    key = set(range(k // 2 * S, (k // 2 + 1) * S))  # its tubelet slice (tubelet 2)
    # a dropped token never comes back, so kept at the end = kept at every layer
    for row in out.index.tolist():
        assert key <= set(row)
    assert mlp_token_counts(model, x, keyframe=keyframe) == [64, S + 24, S + 12, S + 6]


def test_kept_counts_match_keep_rates():
    model = tiny(keep_rates=[1, 0.6875, 0.5, 1])
    x = clip()
    # 48 non-keyframe tokens -> 0.6875 * 48 = 33 -> 0.5 * 33 = 16.5, rounded half up to 17
    assert mlp_token_counts(model, x) == [64, 16 + 33, 16 + 17, 16 + 17]
    assert model.token_counts() == [64, 49, 33, 33]
    assert model(x).tokens.shape == (2, 33, 64)


def test_keep_rates_of_one_equal_the_dense_model_exactly():
    dense = tiny(seed=3)
    ones = tiny(seed=3, keep_rates=[1.0] * 4)
    almost = tiny(seed=3, keep_rates=[1, 0.995, 1, 1])  # rounds to keeping all 48: no dropout step at all
    x = clip(seed=3)
    reference = dense(x)
    for model in (ones, almost):
        out = model(x, keyframe=0)
        assert torch.equal(out.tokens, reference.tokens) and torch.equal(out.index, reference.index)


@pytest.mark.parametrize("query_weight", [None, 1.0, 4.0])
def test_forward_drop_keeping_everything_is_timm_block(query_weight):
    """Our attention path (fused or explicit) is timm's Block.forward, up to the token order."""
    model = tiny(seed=5)
    block = model.blocks[1]
    x = torch.randn(2, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y, keep = block.forward_drop(x, key_start=32, n_key=S, n_keep=48, keyframe_query_weight=query_weight)
        ref = Block.forward(block, x)
    assert torch.equal(keep[:, :S], torch.arange(32, 48).expand(2, -1))
    assert torch.equal(keep.sort(dim=1).values, torch.arange(64).expand(2, -1))
    torch.testing.assert_close(y, ref.gather(1, keep[..., None].expand(-1, -1, 64)), atol=1e-5, rtol=1e-5)


def test_indices_sorted_unique_and_to_dense_consistent():
    model = tiny(keep_rates=[0.5, 1, 0.5, 1])
    out = model(clip(), keyframe=2)
    n = S + keep_count(0.5, keep_count(0.5, 48))
    assert out.tokens.shape == (2, n, 64)
    assert (out.index.diff(dim=1) > 0).all()  # strictly increasing: sorted and unique
    dense = out.to_dense().flatten(2).transpose(1, 2)  # (B, 64, D)
    for b in range(2):
        kept = out.index[b]
        torch.testing.assert_close(dense[b, kept], out.tokens[b], rtol=0, atol=0)
        dropped = torch.ones(64, dtype=torch.bool)
        dropped[kept] = False
        assert dropped.sum() == 64 - n and (dense[b, dropped] == 0).all()


def test_batch_rows_are_independent():
    model = tiny(seed=7, keep_rates=[1, 0.5, 0.7, 1])
    x = clip(seed=7)
    both = model(x, keyframe=5)
    assert not torch.equal(both.index[0], both.index[1])  # different clips keep different tokens
    for b in range(2):
        alone = model(x[b:b + 1], keyframe=5)
        assert torch.equal(alone.index[0], both.index[b])
        torch.testing.assert_close(alone.tokens[0], both.tokens[b], atol=1e-5, rtol=1e-5)


def test_gradient_flows_through_kept_tokens():
    model = tiny(keep_rates=[1, 0.5, 1, 0.5], pos_embed="learned", num_classes=3).train()
    out = model(clip())
    loss = F.cross_entropy(model.forward_head(out), torch.tensor([0, 2])) + out.tokens.pow(2).mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def _unit_patterns(dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two orthogonal, zero-mean, unit-variance vectors: LayerNorm (weight 1, bias 0) leaves their mixes alone."""
    a = torch.tensor([1.0, -1.0]).repeat(dim // 2)
    b = torch.tensor([1.0, 1.0, -1.0, -1.0]).repeat(dim // 4)
    return a, b


def test_selection_follows_keyframe_attention_in_a_constructed_block():
    """q = k = 2x (identity projections): the keyframe tokens are pattern ``a``, every other token mixes ``a`` and
    the orthogonal ``b`` at its own angle, so keyframe attention ranks them by cos(angle) and we know the winners."""
    dim = 64
    block = TokenDropBlock(dim, 2, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
        block.norm1.weight.fill_(1)
        block.norm2.weight.fill_(1)
        block.attn.qkv.weight.copy_(torch.cat([2 * torch.eye(dim), 2 * torch.eye(dim), torch.eye(dim)]))
    a, b = _unit_patterns(dim)
    n, key_start, n_key = 20, 8, 4
    angles = torch.linspace(0.1, 1.5, n - n_key)[torch.randperm(n - n_key, generator=torch.Generator().manual_seed(0))]
    others = angles.cos()[:, None] * a + angles.sin()[:, None] * b
    x = torch.cat([others[:key_start], a.expand(n_key, -1), others[key_start:]])[None]  # (1, 20, 64)
    positions = [p for p in range(n) if not key_start <= p < key_start + n_key]
    best = sorted(positions[i] for i in angles.argsort()[:5].tolist())  # smallest angles: most attention
    for weight in (None, 100.0):  # keyframe queries only; EVAD's all-query score dominated by keyframe rows
        _, keep = block.forward_drop(x, key_start=key_start, n_key=n_key, n_keep=5, keyframe_query_weight=weight)
        assert keep[0].tolist() == [8, 9, 10, 11, *best]


@pytest.mark.parametrize("query_weight", [None, 1.0, 4.0])
def test_block_matches_a_naive_reference(query_weight):
    """Selection and output against a plain re-computation of the block (explicit softmax, our own LayerNorm,
    linear, GELU calls), scoring as documented: mean keyframe-query attention, or EVAD's weighted all-query mean."""
    model = tiny(seed=11)
    block = model.blocks[2]
    x = torch.randn(2, 64, 64, generator=torch.Generator().manual_seed(11))
    key_start, n_key, n_keep = 16, S, 20
    with torch.no_grad():
        y, keep = block.forward_drop(x, key_start=key_start, n_key=n_key, n_keep=n_keep,
                                     keyframe_query_weight=query_weight)

        ln1, qkv, proj = block.norm1, block.attn.qkv, block.attn.proj
        h = F.layer_norm(x, (64,), ln1.weight, ln1.bias, 1e-6) @ qkv.weight.T + qkv.bias  # (B, N, 3D)
        q, k, v = (h[..., i * 64:(i + 1) * 64].reshape(2, 64, 2, 32).transpose(1, 2) for i in range(3))
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(32), dim=-1)  # (B, heads, N, N)
        if query_weight is None:
            score = p[:, :, key_start:key_start + n_key].mean(dim=(1, 2))
        else:
            w = torch.ones(64)
            w[key_start:key_start + n_key] = query_weight
            score = (p * w[:, None]).sum(dim=2).mean(dim=1)
        others = [i for i in range(64) if not key_start <= i < key_start + n_key]
        top = score[:, others].topk(n_keep, dim=1).indices
        expected = torch.tensor(others)[top].sort(dim=1).values
        assert torch.equal(keep[:, n_key:], expected)

        a = x + ((p @ v).transpose(1, 2).reshape(2, 64, 64) @ proj.weight.T + proj.bias)
        a = a.gather(1, keep[..., None].expand(-1, -1, 64))
        ln2, fc1, fc2 = block.norm2, block.mlp.fc1, block.mlp.fc2
        ref = a + F.gelu(F.layer_norm(a, (64,), ln2.weight, ln2.bias, 1e-6) @ fc1.weight.T + fc1.bias) @ fc2.weight.T
        ref = ref + fc2.bias
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)


def test_other_input_sizes_and_errors():
    model = tiny(keep_rates=[1, 0.5, 1, 1])
    out = model(clip(batch=1, size=96))  # 6x6 patches: the sin-cos table is resized per slice
    assert out.grid == (4, 6, 6) and out.tokens.shape == (1, 36 + 54, 64)
    with pytest.raises(ValueError, match="multiples"):
        model(clip(batch=1, frames=7))
    with pytest.raises(ValueError, match="outside the clip"):
        model(clip(batch=1), keyframe=8)
    with pytest.raises(ValueError, match="num_frames"):
        model(clip(batch=1, frames=16))
