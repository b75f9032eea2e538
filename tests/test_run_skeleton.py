"""`videoact run` end to end on a real NTU RGB+D video: decode -> BlazePose -> the shipped ST-GCN++ -> tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import videoact
from videoact.datasets.skeleton import NW_UCLA_CLASSES
from videoact.heads.recognition.skeleton import builtin_models, load_recognizer, windows

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "videoact.cli", "run", *args], capture_output=True, text=True,
                          cwd=REPO)


@pytest.fixture(scope="module")
def ntu_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "x"
    proc = _run(str(shared_data / "videos" / "S001C001P001R001A001_rgb.avi"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_run_writes_one_pose_per_decoded_frame_and_recognition_events(ntu_run: Path) -> None:
    t = videoact.load(ntu_run)
    n_frames = int(t.videos["n_frames"].iloc[0])
    img = t.skeletons[t.skeletons["coord_space"] == "image_px"]
    world = t.skeletons[t.skeletons["coord_space"] == "world_m"]
    # one person is in view for the whole clip: one 2D and one 3D pose per decoded frame
    assert sorted(img["frame"]) == list(range(n_frames))
    assert sorted(world["frame"]) == list(range(n_frames))
    assert set(img["layout"]) == {"mediapipe33"} and set(img["dims"]) == {2}
    segs = t.segments
    assert len(segs) and set(segs["task"]) == {"recognition"}
    assert set(segs["label"]) <= set(NW_UCLA_CLASSES)
    assert set(segs["label_space"]) == {"nw_ucla_xview"}
    assert segs["score"].between(0, 1).all()
    # each window writes its top-5 classes, ranked, and they cover the video
    per_window = segs.groupby(["t_start_s", "t_end_s"])
    assert set(per_window.size()) == {5}
    for _, w in per_window:
        assert list(w["score"]) == sorted(w["score"], reverse=True)
    assert segs["frame_start"].min() == 0 and segs["frame_end"].max() == n_frames
    assert list(t.labels["name"]) == list(NW_UCLA_CLASSES)
    manifest = json.loads((ntu_run / "manifest.json").read_text())
    assert manifest["stages"] == ["decode", "pose", "recognition"]
    assert len(t.boxes) == n_frames and t.boxes[["x1", "y1", "x2", "y2"]].stack().between(0, 1).all()


def test_recognition_agrees_with_the_model_applied_by_hand(ntu_run: Path) -> None:
    """The written scores are the model's probabilities for the written window, recomputed from the table."""
    from videoact.features.pose.precomputed import PrecomputedPoses

    t = videoact.load(ntu_run)
    clf = load_recognizer("builtin:nw_ucla_stgcnpp")
    poses = PrecomputedPoses.from_skeletons(ntu_run, video_id=t.videos["video_id"].iloc[0])
    track = poses.to_track()
    from videoact.heads.recognition.skeleton import track_to_model_input

    x = track_to_model_input(track, clf)
    first = t.segments.sort_values(["t_start_s", "score"], ascending=[True, False]).iloc[:5]
    lo, hi = int(first["frame_start"].iloc[0]), int(first["frame_end"].iloc[0])
    probs = clf.predict_proba(x[:, lo:hi])[0]
    assert np.allclose(probs[first["label_id"].to_numpy()], first["score"].to_numpy(), atol=1e-5)


def test_stages_can_be_switched_off(shared_data: Path, tmp_path: Path) -> None:
    video = str(shared_data / "videos" / "demo.mp4")
    proc = _run(video, "-o", str(tmp_path / "a"), "recognition.enabled=false", "pose.max_frames=10")
    assert proc.returncode == 0, proc.stderr
    t = videoact.load(tmp_path / "a")
    assert len(t.segments) == 0 and len(t.skeletons) > 0
    proc = _run(video, "-o", str(tmp_path / "b"), "pose.enabled=false")
    assert proc.returncode == 0, proc.stderr
    t = videoact.load(tmp_path / "b")
    assert len(t.videos) == 1 and len(t.skeletons) == 0 and len(t.segments) == 0


def test_a_missing_model_is_a_clear_error(shared_data: Path, tmp_path: Path) -> None:
    proc = _run(str(shared_data / "videos" / "demo.mp4"), "-o", str(tmp_path / "c"),
                f"recognition.model={tmp_path / 'nope.pt'}")
    assert proc.returncode == 2
    assert "nope.pt: skeleton model not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = _run(str(shared_data / "videos" / "demo.mp4"), "-o", str(tmp_path / "d"), "recognition.model=builtin:x")
    assert proc.returncode == 2 and "no built-in skeleton model 'x'" in proc.stderr


def test_shipped_model_is_small_and_documented() -> None:
    assert "nw_ucla_stgcnpp" in builtin_models()
    path = REPO / "videoact" / "models" / "nw_ucla_stgcnpp.pt"
    assert path.stat().st_size < 5 * 2**20
    card = (REPO / "videoact" / "models" / "nw_ucla_stgcnpp.md").read_text()
    for needed in ("CC BY-NC 4.0", "videoact train configs/skeleton/nw_ucla_stgcnpp.yaml", "top-1"):
        assert needed in card
    clf = load_recognizer("builtin:nw_ucla_stgcnpp")
    assert clf.meta["metrics"]["top1_acc"] >= 0.90 and clf.meta["train_seconds"] <= 45 * 60


def test_windows_cover_the_track() -> None:
    t = np.arange(100) / 30.0
    ws = windows(t, window_s=2.0, stride_s=1.0)
    assert ws[0].start == 0 and ws[-1].stop == 100
    assert all(w.stop - w.start <= 61 for w in ws)
    assert windows(np.arange(10) / 30.0, window_s=2.0, stride_s=1.0)[0].stop == 10  # shorter than a window
