"""Shared fixtures. Real data is read in place from ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VIDEOACT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set VIDEOACT_SHARED_DATA or clone beside shared/)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of small models (``pytestmark = pytest.mark.usefixtures(...)``): on a shared
    2-core machine a second thread mostly waits (a vit_tiny step: ~25 ms on one thread, over 1 s on two under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def nw_ucla_batch(shared_data: Path):
    """40 real NW-UCLA sequences (4 per class, spread over subjects and views) as one network input.

    ``(x, y)``: ``x`` float ``(40, 3, 32, 20, 1)`` = (N, C, T, V, M), centred on the spine of frame 0 and
    resampled to 32 frames as the trainer does; ``y`` labels 0-9.
    """
    import numpy as np
    import torch

    from videoact.datasets.skeleton import load_nw_ucla
    from videoact.features.skeleton import transforms as T

    samples = load_nw_ucla(shared_data / "skeleton" / "nw_ucla")
    xs, ys = [], []
    for label in range(10):
        of_class = [s for s in samples if s.label == label]
        for i in np.linspace(0, len(of_class) - 1, 4).round().astype(int):
            s = of_class[i]
            x = T.resample(T.center(s.keypoints, "kinect20", "spine"), 32)  # (1, 32, 20, 3)
            xs.append(x.transpose(3, 1, 2, 0))
            ys.append(label)
    return torch.from_numpy(np.stack(xs)).float(), torch.tensor(ys)


@pytest.fixture(scope="session")
def short_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``videoact run`` over ``videos/demo_skeleton.mp4`` (48 frames of poses: ~10 s on 2 cores), shared by
    the viz, review-format and notebook tests, which only read it."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("short_run") / "run"
    video = shared_data / "videos" / "demo_skeleton.mp4"
    proc = subprocess.run([sys.executable, "-m", "videoact.cli", "run", str(video), "-o", str(out),
                           "pose.max_frames=48"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def action_lm_checkpoint(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small action LM trained for a few steps on the real EPIC-55 training participants (~10 s on 2 cores)."""
    from dataclasses import replace

    import torch

    from videoact.train import load_train_config
    from videoact.train.anticipation import train_action_lm

    _, cfg = load_train_config(REPO / "configs/anticipation/action_lm_epic55.yaml", [
        f"data.root={shared_data / 'anticipation/epic_kitchens_55'}", "data.stride=4", "model.d_model=32",
        "model.n_layers=1", "model.n_heads=2", "optim.steps=60", "optim.batch_size=32", "optim.warmup=10",
        "optim.log_every=10", "optim.lr=0.003", "optim.threads=1"])
    before = torch.get_num_threads()
    try:
        return train_action_lm(replace(cfg, output=tmp_path_factory.mktemp("alm") / "action_lm.pt"))
    finally:
        torch.set_num_threads(before)
