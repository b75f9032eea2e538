"""The temporal stage of ``videoact run``: a segmentation model trained here on real NW-UCLA concatenations
labels every frame of a real video from its BlazePose track; its feature sequence is cached next to the run and
read back on a re-run instead of being recomputed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import videoact
from videoact.heads.temporal import load_temporal_model
from videoact.train import load_train_config
from videoact.train.temporal import train_segmentation

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "videoact.cli", "run", *args], capture_output=True, text=True,
                          cwd=REPO)


@pytest.fixture(scope="module")
def mstcn(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MS-TCN on three real concatenated NW-UCLA sequences (a few seconds)."""
    out = tmp_path_factory.mktemp("mstcn")
    cfg = load_train_config(REPO / "configs/temporal/nw_ucla_concat_mstcn.yaml", [
        f"data.root={shared_data / 'skeleton/nw_ucla'}", f"output={out}", "optim.threads=1", "data.max_videos=3",
        "optim.epochs=3", "features.stride=8", "features.extra_windows=[]", "optim.batch_size=1"])[1]
    return train_segmentation(cfg)


def test_run_segments_a_video_and_reuses_its_cached_features(mstcn: Path, shared_data: Path, tmp_path: Path) -> None:
    model_pt = mstcn if mstcn.suffix == ".pt" else mstcn / "model.pt"
    _, meta = load_temporal_model(model_pt)
    assert meta["grid_s"] == pytest.approx(1 / 30)
    video = shared_data / "videos" / "demo_skeleton.mp4"
    args = [str(video), "-o", str(tmp_path / "run"), "pose.max_frames=60", "recognition.enabled=false",
            "temporal.enabled=true", f"temporal.model={model_pt}"]
    first = _run(*args)
    assert first.returncode == 0, first.stderr
    t = videoact.load(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"] == ["decode", "pose", "temporal"]
    seg = t.segments.sort_values("frame_start")
    n_frames = int(t.videos["n_frames"].iloc[0])
    assert set(seg["task"]) == {"segmentation"} and set(seg["label_space"]) == {"nw_ucla_concat"}
    # one label per frame of the whole video, in the video's frames
    assert seg["frame_start"].iloc[0] == 0 and seg["frame_end"].iloc[-1] == n_frames
    assert (seg["frame_start"].to_numpy()[1:] == seg["frame_end"].to_numpy()[:-1]).all()
    assert set(seg["fps"]) == {float(t.videos["fps"].iloc[0])} and seg["score"].between(0, 1).all()
    assert set(seg["label"]) <= set(meta["classes"]) and set(meta["classes"]) <= set(t.labels["name"])
    cached = sorted((tmp_path / "run" / "cache").rglob("*.npy"))
    assert cached, list((tmp_path / "run").rglob("*"))
    stamps = {p: p.stat().st_mtime_ns for p in cached}
    again = _run(*args, "runner.skip_done=false")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in sorted((tmp_path / "run" / "cache").rglob("*.npy"))} == stamps
    rerun = videoact.load(tmp_path / "run").segments.sort_values("frame_start")
    assert rerun["label"].tolist() == seg["label"].tolist()


def test_temporal_stage_needs_a_model_and_poses(tmp_path: Path, shared_data: Path, mstcn: Path) -> None:
    video = str(shared_data / "videos" / "demo_skeleton.mp4")
    proc = _run(video, "-o", str(tmp_path / "a"), "temporal.enabled=true")
    assert proc.returncode != 0 and "temporal.model is not set" in proc.stderr
    proc = _run(video, "-o", str(tmp_path / "b"), "temporal.enabled=true", f"temporal.model={tmp_path / 'no.pt'}")
    assert proc.returncode != 0 and "no.pt" in proc.stderr
