"""Checkpoint interop of the video ViT: VideoMAE and mmaction2 layouts (videoact.features.vit.checkpoints).

Foreign checkpoints are written from randomly initialised models (ours, and mmaction2's own
``VisionTransformer`` class as an independent reference), saved with ``torch.save`` and loaded back through
the file path. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import warnings
from pathlib import Path

import pytest
import torch

from videoact import models
from videoact.features.backbones import build_backbone
from videoact.features.vit.checkpoints import (
    detect_layout,
    export_state_dict,
    load_pretrained,
    read_checkpoint,
)
from videoact.features.vit.models import sincos_table

KEEP = [1, 0.5, 1, 0.5]  # dropout on, so equal outputs also mean equal token selection


def ours(seed: int, **kwargs) -> torch.nn.Module:
    """vit_tiny with every tensor random, the k bias included (it must not matter)."""
    torch.manual_seed(seed)
    model = build_backbone("vit_tiny", **kwargs)
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


def clip(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, 8, 64, 64, generator=torch.Generator().manual_seed(seed))


def assert_same_outputs(a: torch.nn.Module, b: torch.nn.Module, keyframe: int | None = None) -> None:
    x = clip()
    with torch.no_grad():
        oa, ob = a(x, keyframe=keyframe), b(x, keyframe=keyframe)
        assert torch.equal(oa.index, ob.index)
        torch.testing.assert_close(ob.tokens, oa.tokens, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(b.forward_head(ob), a.forward_head(oa), atol=1e-5, rtol=1e-5)


# VideoMAE modeling_finetune.py names of one block and the rest, as in the repository (use_mean_pooling=True)
VIDEOMAE_BLOCK_KEYS = {
    "norm1.weight", "norm1.bias", "attn.q_bias", "attn.v_bias", "attn.qkv.weight", "attn.proj.weight",
    "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
    "mlp.fc2.bias",
}
VIDEOMAE_OTHER_KEYS = {"patch_embed.proj.weight", "patch_embed.proj.bias", "fc_norm.weight", "fc_norm.bias",
                       "head.weight", "head.bias"}


@pytest.mark.parametrize("pos_embed", ["sincos", "learned"])
@pytest.mark.parametrize("wrapper", ["model", "module"])
def test_videomae_round_trip_through_a_file(tmp_path, pos_embed, wrapper):
    src = ours(1, keep_rates=KEEP, pos_embed=pos_embed, num_classes=7)
    state = export_state_dict(src, "videomae")
    expected = {f"blocks.{i}.{k}" for i in range(4) for k in VIDEOMAE_BLOCK_KEYS} | VIDEOMAE_OTHER_KEYS
    assert set(state) == expected | ({"pos_embed"} if pos_embed == "learned" else set())
    path = tmp_path / "videomae.pth"
    # VideoMAE's save_model stores the argparse namespace beside the weights
    torch.save({wrapper: state, "epoch": 29, "args": argparse.Namespace(model="vit_tiny", nb_classes=7)}, path)

    dst = ours(2, keep_rates=KEEP, pos_embed=pos_embed, num_classes=7)
    report = load_pretrained(dst, path)
    assert report.layout == "videomae" and not report.missing and not report.unexpected
    assert_same_outputs(src, dst, keyframe=7)
    for a, b in zip(src.blocks, dst.blocks, strict=True):  # VideoMAE has no k bias: zero after the trip
        assert a.attn.qkv.bias[64:128].abs().sum() > 0 and not b.attn.qkv.bias[64:128].any()


def test_videomae_qv_biases_land_in_the_right_slices(tmp_path):
    src = ours(3, num_classes=0, layer_scale=0.1)
    state = export_state_dict(src, "videomae")
    assert {"blocks.0.gamma_1", "blocks.0.gamma_2"} <= set(state)
    dst = ours(4, num_classes=0, layer_scale=0.1)
    load_pretrained(dst, {"model": state})
    for a, b in zip(src.blocks, dst.blocks, strict=True):
        qkv_a, qkv_b = a.attn.qkv.bias.detach(), b.attn.qkv.bias.detach()
        assert torch.equal(qkv_b[:64], qkv_a[:64]) and torch.equal(qkv_b[128:], qkv_a[128:])
        assert torch.equal(b.ls1.gamma, a.ls1.gamma) and torch.equal(b.ls2.gamma, a.ls2.gamma)
    assert_same_outputs(src, dst)


def test_mmaction2_round_trip_through_a_file(tmp_path):
    src = ours(5, keep_rates=KEEP, num_classes=7)
    state = export_state_dict(src, "mmaction2")
    assert {"backbone.patch_embed.projection.weight", "backbone.blocks.3.attn.q_bias", "backbone.blocks.3.attn.v_bias",
            "backbone.blocks.3.mlp.layers.0.0.weight", "backbone.blocks.3.mlp.layers.1.bias", "backbone.fc_norm.bias",
            "backbone.pos_embed", "cls_head.fc_cls.weight", "cls_head.fc_cls.bias"} <= set(state)
    path = tmp_path / "mmaction2.pth"
    torch.save({"meta": {"epoch": 1, "mmengine_version": "0.10.4", "dataset_meta": {"classes": list("abcdefg")}},
                "state_dict": state}, path)
    dst = ours(6, keep_rates=KEEP, num_classes=7)
    report = load_pretrained(dst, str(path))
    assert report.layout == "mmaction2" and not report.missing and not report.unexpected
    assert "pos_embed" in report.skipped  # mmaction2 stores the fixed table: verified, not loaded
    assert_same_outputs(src, dst, keyframe=0)


def test_videoact_layout_and_backbone_only_loading(tmp_path):
    src = ours(7, num_classes=7)
    path = tmp_path / "ours.pt"
    torch.save({"model": src.state_dict()}, path)
    assert detect_layout(read_checkpoint(path)) == "videoact"
    no_head = ours(8, num_classes=0)  # the classifier is optional on both sides
    report = load_pretrained(no_head, path)
    assert set(report.skipped) == {"head.weight", "head.bias"}
    other_classes = ours(9, num_classes=3)
    report = load_pretrained(other_classes, path)
    assert set(report.skipped) == {"head.weight", "head.bias"} and "another class count" in report.notes[-1]
    x = clip()
    with torch.no_grad():
        torch.testing.assert_close(no_head(x).tokens, src(x).tokens, atol=1e-6, rtol=1e-6)


def _mmaction2_vit():
    """mmaction2's own VisionTransformer class, loaded from its file (mmaction.models' package import is broken
    in mmaction2 1.2.0, the file itself imports fine with mmcv-lite)."""
    mmaction = pytest.importorskip("mmaction")
    path = Path(mmaction.__file__).parent / "models" / "backbones" / "vit_mae.py"
    spec = importlib.util.spec_from_file_location("_mmaction2_vit_mae", path)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            spec.loader.exec_module(module)
        except KeyError:  # registered already by another test module (test_zoo_videomae): take that class
            from mmaction.registry import MODELS

            module.VisionTransformer = MODELS.module_dict["VisionTransformer"]
    return module


@pytest.fixture(scope="module")
def mm():
    return _mmaction2_vit()


def _mm_features(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)  # fc_norm(mean of tokens), the backbone's output in mmaction2


def test_sincos_table_equals_mmaction2s(mm):
    for n, d in ((64, 64), (1568, 768)):
        torch.testing.assert_close(sincos_table(n, d), mm.get_sinusoid_encoding(n, d), atol=1e-6, rtol=0)


def test_real_mmaction2_model_into_ours(tmp_path, mm):
    torch.manual_seed(0)
    ref = mm.VisionTransformer(img_size=64, embed_dims=64, depth=4, num_heads=2, num_frames=8).eval()
    gen = torch.Generator().manual_seed(12)
    with torch.no_grad():
        for p in ref.parameters():  # q_bias / v_bias start at zero: make every tensor count
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    state = {"backbone." + k: v for k, v in ref.state_dict().items()}
    state["cls_head.fc_cls.weight"], state["cls_head.fc_cls.bias"] = torch.randn(5, 64), torch.randn(5)
    path = tmp_path / "vit-tiny_mmaction2.pth"
    torch.save({"meta": {"epoch": 3}, "state_dict": state}, path)

    model = ours(13, num_classes=5)
    report = load_pretrained(model, path)
    assert report.layout == "mmaction2" and not report.missing and not report.unexpected
    x = clip(1)
    with torch.no_grad():
        pooled = model.fc_norm(model(x).tokens.mean(dim=1))
        logits = model.forward_head(model(x))
    torch.testing.assert_close(pooled, _mm_features(ref, x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, _mm_features(ref, x) @ state["cls_head.fc_cls.weight"].T
                               + state["cls_head.fc_cls.bias"], atol=1e-4, rtol=1e-5)


def test_our_export_loads_strictly_into_real_mmaction2(mm):
    src = ours(14, num_classes=0)
    state = export_state_dict(src, "mmaction2")
    ref = mm.VisionTransformer(img_size=64, embed_dims=64, depth=4, num_heads=2, num_frames=8).eval()
    ref.load_state_dict({k.removeprefix("backbone."): v for k, v in state.items()}, strict=True)
    x = clip(2)
    with torch.no_grad():
        torch.testing.assert_close(src.forward_head(src(x)), _mm_features(ref, x), atol=1e-5, rtol=1e-5)


def test_videomae_pretraining_checkpoint(tmp_path):
    """A VideoMAE pretraining file: encoder.* keys, an encoder norm, decoder keys and no fc_norm / head."""
    src = ours(15)
    state = {"encoder." + k: v for k, v in export_state_dict(src, "videomae").items() if not k.startswith("fc_norm")}
    state |= {"encoder.norm.weight": torch.ones(64), "encoder.norm.bias": torch.zeros(64),
              "mask_token": torch.zeros(1, 1, 32), "encoder_to_decoder.weight": torch.zeros(32, 64),
              "decoder.blocks.0.attn.qkv.weight": torch.zeros(96, 32), "decoder.norm.weight": torch.ones(32)}
    torch.save({"model": state}, tmp_path / "pretrain.pth")
    dst = ours(16)
    report = load_pretrained(dst, tmp_path / "pretrain.pth")
    assert report.layout == "videomae"
    assert set(report.missing) == {"fc_norm.weight", "fc_norm.bias"}  # allowed: the classifier side
    assert len(report.skipped) == 6 and not report.unexpected
    x = clip()
    with torch.no_grad():
        torch.testing.assert_close(dst(x).tokens, src(x).tokens, atol=1e-5, rtol=1e-5)


def test_learned_table_needs_a_learned_model_and_is_resized(tmp_path):
    learned = ours(17, pos_embed="learned")
    state = export_state_dict(learned, "videomae")
    with pytest.raises(ValueError, match="pos_embed='learned'"):
        load_pretrained(ours(18), {"model": state})
    big = build_backbone("vit_tiny", img_size=96, pos_embed="learned")  # 6x6 patches instead of 4x4
    report = load_pretrained(big, {"model": state})
    assert big.pos_embed.shape == (1, 4 * 36, 64) and "resized from 4x4x4 to 4x6x6" in report.notes[-1]


def test_strict_errors_name_the_problem(tmp_path):
    state = export_state_dict(ours(19), "videomae")
    with pytest.raises(ValueError, match="vit_s16 is 384"):
        load_pretrained(build_backbone("vit_tiny", img_size=64, num_frames=8, tubelet=4), {"model": state})
    extra = dict(state, **{"blocks.9.attn.proj.weight": torch.zeros(64, 64)})
    with pytest.raises(ValueError, match=r"unexpected \(1\): blocks.9.attn.proj.weight"):
        load_pretrained(ours(20), {"model": extra})
    report = load_pretrained(ours(20), {"model": extra}, strict=False)
    assert report.unexpected == ["blocks.9.attn.proj.weight"]
    partial = {k: v for k, v in state.items() if not k.startswith("blocks.3.")}
    with pytest.raises(ValueError, match="missing"):
        load_pretrained(ours(21), {"model": partial})
    with pytest.raises(ValueError, match="cannot tell the checkpoint layout"):
        load_pretrained(ours(21), {"weights": torch.zeros(3)})


def test_unsafe_pickles_are_refused_with_the_fix(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"model": {}, "extra": Path("x")}, path)  # a pickled class torch will not load weights-only
    with pytest.raises(ValueError, match=r"not a weights file: a pickle that needs Python objects.*save only the "
                                         r"weights"):
        read_checkpoint(path)
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        read_checkpoint(tmp_path / "nope.pth")


def test_urls_and_hub_ids(tmp_path, monkeypatch):
    src = ours(22)
    path = tmp_path / "served" / "vit_tiny_videomae.pth"
    path.parent.mkdir()
    torch.save({"model": export_state_dict(src, "videomae")}, path)
    # file:// goes through the same download-and-cache code as https:// zoo URLs
    report = load_pretrained(ours(23), path.as_uri(), cache_dir=tmp_path / "cache")
    assert report.layout == "videomae" and (tmp_path / "cache" / path.name).is_file()
    with pytest.raises(RuntimeError, match=r"could not download http://127\.0\.0\.1:9/vit\.pth.*put it at"):
        read_checkpoint("http://127.0.0.1:9/vit.pth", cache_dir=tmp_path / "cache")
    # a model-zoo name resolves to its card's file (verified in $VIDEOACT_HOME) and layout; offline, no download
    cards, home = tmp_path / "cards", tmp_path / "home"
    zoo_file = home / "models" / "tiny_zoo_vit" / "tiny.pth"
    zoo_file.parent.mkdir(parents=True)
    cards.mkdir()
    torch.save({"meta": {}, "state_dict": export_state_dict(src, "mmaction2")}, zoo_file)
    digest = hashlib.sha256(zoo_file.read_bytes()).hexdigest()
    (cards / "tiny_zoo_vit.yaml").write_text(
        "name: tiny_zoo_vit\ntask: recognition\nsummary: test\nlicence: test\nlayout: mmaction2\n"
        f"files: [{{role: weights, filename: tiny.pth, urls: ['http://127.0.0.1:9/tiny.pth'], sha256: {digest}}}]\n")
    for key, value in {"VIDEOACT_CARDS": str(cards), "VIDEOACT_HOME": str(home), "VIDEOACT_OFFLINE": "1"}.items():
        monkeypatch.setenv(key, value)
    models.reload_cards()
    try:
        report = load_pretrained(ours(24), "tiny_zoo_vit")
    finally:
        monkeypatch.undo()
        models.reload_cards()
    assert report.layout == "mmaction2" and report.source == "tiny_zoo_vit" and not report.missing
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match=r"Hugging Face hub repo MCG-NJU/videomae-weights.*local path"):
        read_checkpoint("hf-hub:MCG-NJU/videomae-weights/vit_b_k400.pth", cache_dir=tmp_path / "hf")
