"""Devices, precision and batched inference (``videoact.devices``; ``runner.device`` / ``runner.precision``,
``optim.device`` / ``optim.precision``, ``recognition.batch_size``). CPU only: CUDA paths are checked for their
clean failure on a machine without CUDA (skipped where one is present).

Measured tolerances (this machine, torch 2.14 CPU autocast): bf16 moves the probabilities of the tiny ViT clip
recognizer by at most ~3e-3 and those of the shipped ST-GCN++ by at most ~6e-3 (over the demo clip's windows); the
tests allow 3e-2 (bf16 keeps 8 mantissa bits: ~4e-3 relative per rounding) and ask for the same top-1 class.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from videoact.config import ConfigError, RunConfig, fingerprint, load_config
from videoact.devices import autocast, check_precision, host_io, resolve, resolve_device

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[1]
HAS_CUDA = torch.cuda.is_available()
BF16_ATOL = 3e-2
no_cuda = pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: the no-CUDA failure cannot be shown")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videoact.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


# ------------------------------------------------------------------------------------------- resolution


def test_auto_picks_cuda_only_when_available() -> None:
    assert resolve_device("auto") == torch.device("cuda" if HAS_CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve(*("auto", "fp32")) == (resolve_device("auto"), "fp32")


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:3"])
def test_cuda_without_cuda_is_a_config_error_naming_the_key(spec: str) -> None:
    with pytest.raises(ConfigError, match=rf"^runner\.device: {spec} asked for, but this machine has no CUDA"):
        resolve_device(spec)
    with pytest.raises(ConfigError, match=r"^optim\.device: "):
        resolve(spec, "fp32", prefix="optim")


def test_bad_spellings_and_fp16_on_cpu_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^runner\.device: 'gpu' is not a device; use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match=r"^runner\.precision: fp16 runs on CUDA only"):
        check_precision("fp16", torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"^runner\.precision: 'fp8' is not one of fp32, bf16, fp16"):
        check_precision("fp8", torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"runner\.precision: 'fp64' is not one of"):
        load_config(RunConfig, None, ["runner.precision=fp64"])


@no_cuda
@pytest.mark.parametrize("override", ["runner.device=cuda", "runner.device=cuda:3", "runner.precision=fp16"])
def test_cli_fails_cleanly_before_any_video(override: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _cli("run", "sample:carphone", "-o", str(out), override)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"videoact: error: {override.split('=')[0]}: ")
    assert not out.exists()  # nothing decoded, no run directory


def test_fingerprint_counts_precision_but_not_device_or_batch_size() -> None:
    base = fingerprint(load_config(RunConfig))
    for same in (["runner.device=cpu"], ["runner.precision=fp32"], ["recognition.batch_size=1"],
                 ["detection.batch_size=16"]):
        assert fingerprint(load_config(RunConfig, None, same)) == base, same
    assert fingerprint(load_config(RunConfig, None, ["runner.precision=bf16"])) != base


def test_autocast_fp32_is_a_no_op_and_bf16_computes_in_bf16() -> None:
    lin = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast("cpu", "fp32"):
        assert torch.equal(lin(x), lin(x)) and lin(x).dtype == torch.float32
    with autocast(torch.device("cpu"), "bf16"):
        assert lin(x).dtype == torch.bfloat16
    assert host_io(lin, "cpu") is lin and not lin._forward_pre_hooks  # nothing wrapped on the CPU


# ------------------------------------------------------------------------------------------- trainers


def test_train_loop_on_cpu_with_bf16_steps_and_cuda_fails_cleanly(tmp_path: Path) -> None:
    from dataclasses import dataclass, field

    from videoact.train.common import OptimConfig, TrainLoop

    @dataclass(frozen=True)
    class Cfg:
        optim: OptimConfig = field(default_factory=OptimConfig)
        output: str = str(tmp_path)
        resume: bool = False

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    loop = TrainLoop(model, Cfg(optim=OptimConfig(precision="bf16")), steps_per_epoch=1)
    assert loop.device == resolve_device("auto") and loop.scaler is None
    x, y = loop.to_device(torch.randn(8, 4), torch.randint(0, 2, (8,)))
    before = model.weight.detach().clone()
    with loop.autocast():
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loop.step(loss)
    assert torch.isfinite(loss) and not torch.equal(before, model.weight.detach().cpu())
    if not HAS_CUDA:
        with pytest.raises(ConfigError, match=r"^optim\.device: cuda asked for"):
            TrainLoop(model, Cfg(optim=OptimConfig(device="cuda")), steps_per_epoch=1)
        with pytest.raises(ConfigError, match=r"^optim\.precision: fp16 runs on CUDA only"):
            TrainLoop(model, Cfg(optim=OptimConfig(device="cpu", precision="fp16")), steps_per_epoch=1)


# ------------------------------------------------------------------------------- RGB windows: batch, bf16


@pytest.fixture(scope="module")
def demo(shared_data: Path) -> Path:
    return shared_data / "videos" / "demo.mp4"


@pytest.fixture(scope="module")
def clip_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised vit_tiny + linear head, saved as ``videoact train`` saves one."""
    from videoact.heads.recognition.clip import ClipInputConfig, build_clip_model, save_clip_recognizer

    torch.manual_seed(0)
    spec = {"backbone": "vit_tiny", "backbone_kwargs": {"img_size": 64, "num_frames": 8}, "head": "linear",
            "head_kwargs": {"pooling": "mean"}}
    model = build_clip_model(backbone=spec["backbone"], backbone_kwargs=spec["backbone_kwargs"], head="linear",
                             num_classes=6, head_kwargs=spec["head_kwargs"])
    return save_clip_recognizer(tmp_path_factory.mktemp("clip") / "model.pt", model, spec=spec,
                                classes=[f"c{i}" for i in range(6)], label_space="tiny",
                                input_cfg=ClipInputConfig(frames=8, frame_step=2, short_side=72, crop=64))


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["t_start_s", "attrs"]).reset_index(drop=True)


def _same_rows(a: pd.DataFrame, b: pd.DataFrame, atol: float) -> None:
    a, b = _rows(a), _rows(b)
    assert len(a) == len(b) > 0
    pd.testing.assert_frame_equal(a.drop(columns="score"), b.drop(columns="score"))
    np.testing.assert_allclose(a["score"], b["score"], atol=atol, rtol=0)


def test_rgb_windows_batch_8_equal_batch_1_and_bf16_is_close(clip_model: Path, demo: Path) -> None:
    from videoact.decode.probe import open_video
    from videoact.heads.recognition.clip import load_clip_recognizer, recognize_windows

    rec = load_clip_recognizer(clip_model)
    out = {}
    for name, bs, prec in (("b1", 1, "fp32"), ("b8", 8, "fp32"), ("bf16", 8, "bf16")):
        with open_video(demo) as src, autocast("cpu", prec):
            out[name] = recognize_windows(rec, src, video_id="demo", stride_s=0.5, k=6, batch_size=bs)
    assert out["b1"]["frame_start"].nunique() > 16  # windows enough for two full batches and a partial one
    _same_rows(out["b1"], out["b8"], atol=1e-5)
    a, b = _rows(out["b8"]), _rows(out["bf16"])
    # the same windows; the class order may swap between classes closer than bf16's rounding
    key = ["frame_start", "label_id"]
    merged = a.merge(b, on=key, suffixes=("", "_bf16"))
    assert len(merged) == len(a)
    err = float((merged["score"] - merged["score_bf16"]).abs().max())
    assert 0 < err < BF16_ATOL, err


# --------------------------------------------------------------------------- skeleton windows: batch, bf16


@pytest.fixture(scope="module")
def demo_track(demo: Path, tmp_path_factory: pytest.TempPathFactory):
    """BlazePose's track of demo.mp4, from a real ``videoact run`` (pose stage only)."""
    from videoact.features.pose.precomputed import PrecomputedPoses

    run = tmp_path_factory.mktemp("pose") / "run"
    proc = _cli("run", str(demo), "-o", str(run), "recognition.enabled=false")
    assert proc.returncode == 0, proc.stderr
    return PrecomputedPoses.from_skeletons(run, video_id="demo").to_track()


def test_skeleton_windows_batch_8_equal_batch_1_and_bf16_is_close(demo_track) -> None:
    from videoact.heads.recognition.skeleton import load_recognizer, recognize_track

    clf = load_recognizer("builtin:nw_ucla_stgcnpp")
    kw = {"video_id": "demo", "label_space": clf.label_space, "source": "t", "stride_s": 0.25, "top_k": 10}
    b1 = recognize_track(demo_track, clf, batch_size=1, **kw)
    b8 = recognize_track(demo_track, clf, batch_size=8, **kw)
    assert b1["t_start_s"].nunique() > 16
    _same_rows(b1, b8, atol=1e-5)
    with autocast("cpu", "bf16"):
        bf = recognize_track(demo_track, clf, batch_size=8, **kw)
    merged = _rows(b8).merge(_rows(bf), on=["t_start_s", "label_id"], suffixes=("", "_bf16"))
    assert len(merged) == len(b8)
    err = float((merged["score"] - merged["score_bf16"]).abs().max())
    assert 0 < err < BF16_ATOL, err
    top = lambda df: df[df["attrs"] == '{"rank": 1}'].set_index("t_start_s")["label_id"]  # noqa: E731
    assert (top(b8) == top(bf)).mean() >= 0.9  # the top class stays, but for near-ties
