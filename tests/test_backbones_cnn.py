"""PyTorchVideo backbones (videoact.features.cnn): dense tokens of the last feature map, hub checkpoint loading.

The references are PyTorchVideo's own models, built with random weights in the test: a checkpoint written from
one (hub layout ``{"model_state": ...}``, keys ``blocks.N...``) must load key for key into our backbone, leave
only the classification head over, and give the same features as running PyTorchVideo's blocks by hand.
Sizes stay tiny (8 frames of 64x64); SlowFast R50 runs one forward.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("pytorchvideo", reason="the video extra is not installed: pip install 'videoact[video]'")

from videoact.decode import VideoSource
from videoact.features.backbones import BackboneOutput, build_backbone, list_backbones
from videoact.features.cnn import load_pytorchvideo_checkpoint
from videoact.heads.recognition.clip import ClipClassifier, ClipInputConfig, prepare_clip

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def real_clip(shared_data: Path) -> torch.Tensor:
    """(1, 3, 8, 64, 64): 8 frames of demo.mp4 (arm wrestling), resized, centre-cropped, normalised."""
    cfg = ClipInputConfig(frames=8, frame_step=2)
    with VideoSource(shared_data / "videos" / "demo.mp4") as src:
        frames = src.get_frames(range(100, 116, 2))
    return prepare_clip(frames, cfg)[None]


class NotWeights:
    """A pickled object that ``torch.load(weights_only=True)`` must refuse."""


def test_registry_lists_the_pytorchvideo_backbones() -> None:
    assert {"slowfast_r50", "x3d_s"} <= set(list_backbones())
    with pytest.raises(TypeError):
        build_backbone("x3d_s", 13)  # builders are keyword-only


def test_x3d_s_hub_checkpoint_loads_and_matches_pytorchvideo(tmp_path: Path, real_clip: torch.Tensor) -> None:
    from pytorchvideo.models.x3d import create_x3d

    torch.manual_seed(0)
    ref = create_x3d(input_clip_length=13, input_crop_size=160).eval()  # the hub's x3d_s, random weights
    with torch.no_grad():
        for m in ref.modules():  # non-trivial BatchNorm statistics, so loading them is checked too
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "X3D_S.pyth"
    torch.save({"model_state": ref.state_dict(), "epoch": 300}, path)  # the hub files' layout

    torch.manual_seed(1)
    model = build_backbone("x3d_s").eval()
    report = load_pytorchvideo_checkpoint(model, path)
    assert report.layout == "pytorchvideo" and not report.missing and not report.unexpected
    assert sorted(report.skipped) == ["blocks.5.pool.post_conv.weight", "blocks.5.proj.bias", "blocks.5.proj.weight"]
    assert set(report.loaded) == set(model.state_dict())
    assert "blocks.5.pool.pre_conv.weight" in report.loaded  # conv5 belongs to the backbone

    with torch.no_grad():
        out = model(real_clip)
        x = real_clip
        for block in ref.blocks[:5]:
            x = block(x)
        pool = ref.blocks[5].pool  # ProjectedPool: conv5 is its part before the pooling
        expect = pool.pre_act(pool.pre_norm(pool.pre_conv(x)))  # (1, 432, 8, 2, 2)
    assert isinstance(out, BackboneOutput) and out.grid == (8, 2, 2) and out.dim == model.dim == 432
    assert out.tokens.shape == (1, 8 * 2 * 2, 432)
    assert torch.equal(out.index[0], torch.arange(32))  # dense: every position kept
    torch.testing.assert_close(out.to_dense(), expect)


def test_checkpoint_problems_are_errors_that_say_what_to_do(tmp_path: Path) -> None:
    model = build_backbone("x3d_s")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    missing = dict(state)
    del missing["blocks.1.res_blocks.0.branch2.conv_a.weight"]
    with pytest.raises(ValueError, match=r"missing \(1\): blocks\.1\.res_blocks\.0\.branch2\.conv_a\.weight"
                                         r"(.|\n)*strict=False"):
        load_pytorchvideo_checkpoint(model, {"model_state": missing})
    report = load_pytorchvideo_checkpoint(model, {"model_state": missing}, strict=False)
    assert report.missing == ["blocks.1.res_blocks.0.branch2.conv_a.weight"]
    with pytest.raises(ValueError, match=r"unexpected \(1\): blocks\.9\.extra"):
        load_pytorchvideo_checkpoint(model, {"model_state": {**state, "blocks.9.extra": torch.zeros(1)}})
    bad = {**state, "blocks.0.conv.conv_t.weight": torch.zeros(3, 3, 3, 3, 3)}
    with pytest.raises(ValueError, match=r"blocks\.0\.conv\.conv_t\.weight is \(3, 3, 3, 3, 3\) in the checkpoint"):
        load_pytorchvideo_checkpoint(model, {"model_state": bad})
    pickled = tmp_path / "pickled.pyth"
    torch.save({"model_state": state, "cfg": NotWeights()}, pickled)
    with pytest.raises(ValueError, match=r"not a weights file: a pickle that needs Python objects"):
        load_pytorchvideo_checkpoint(model, pickled)
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pyth"):
        load_pytorchvideo_checkpoint(model, tmp_path / "nowhere.pyth")


def test_cnn_tokens_feed_the_clip_classifier(real_clip: torch.Tensor) -> None:
    torch.manual_seed(0)
    clf = ClipClassifier(build_backbone("x3d_s"), 5).eval()
    probs = clf.predict(real_clip)
    assert probs.shape == (1, 5) and torch.allclose(probs.sum(-1), torch.ones(1))


@pytest.mark.slow
def test_slowfast_r50_loads_hub_weights_and_concatenates_pathways(tmp_path: Path, real_clip: torch.Tensor) -> None:
    from pytorchvideo.models.slowfast import create_slowfast

    torch.manual_seed(0)
    ref = create_slowfast(model_depth=50, slowfast_fusion_conv_kernel_size=(7, 1, 1))  # the hub's slowfast_r50
    path = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": ref.state_dict()}, path)
    ref_state = ref.state_dict()
    del ref

    torch.manual_seed(1)
    model = build_backbone("slowfast_r50")
    report = load_pytorchvideo_checkpoint(model, path)
    assert sorted(report.skipped) == ["blocks.6.proj.bias", "blocks.6.proj.weight"]
    assert not report.missing and not report.unexpected
    for key, value in model.state_dict().items():
        assert torch.equal(value, ref_state[key]), key
    model.eval()

    seen: list[list[torch.Tensor]] = []
    hook = model.blocks[4].register_forward_hook(lambda _m, _i, out: seen.append(list(out)))
    with torch.no_grad():
        out = model(real_clip)  # fast pathway: 8 frames; slow: 2 (alpha = 4)
    hook.remove()
    slow, fast = seen[0]
    assert slow.shape == (1, 2048, 2, 2, 2) and fast.shape == (1, 256, 8, 2, 2)
    expect = torch.cat([slow, F.avg_pool3d(fast, kernel_size=(4, 1, 1))], dim=1)  # fast averaged over alpha frames
    assert out.grid == (2, 2, 2) and out.dim == model.dim == 2304
    torch.testing.assert_close(out.to_dense(), expect)
    with pytest.raises(ValueError, match="at least alpha = 4 frames"):
        model(real_clip[:, :, :3])
