"""Skeleton training (`videoact train`), checkpoints, resume, and the recognition evaluator round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from videoact.config import ConfigError
from videoact.eval.io import load_input
from videoact.eval.recognition import evaluate_recognition
from videoact.features.skeleton.input import prepare
from videoact.heads.recognition.skeleton import load_model
from videoact.train import load_train_config
from videoact.train.skeleton import train_skeleton

REPO = Path(__file__).resolve().parents[1]


def _config(tmp: Path, shared: Path, *overrides: str):
    """A tiny ST-GCN++ on the SBU 2D subset (84 real two-person sequences): seconds per epoch on a CPU."""
    tmp.mkdir(parents=True, exist_ok=True)
    yaml = tmp / "tiny.yaml"
    yaml.write_text(
        "trainer: skeleton\n"
        f"data: {{benchmark: sbu_partial, root: {shared / 'skeleton' / 'sbu_kinect_interaction_partial'}}}\n"
        "input: {frames: 16}\n"
        "augment: {rotate_degrees: [0, 0, 10], crop: [0.9, 1.0]}\n"
        "model: {name: stgcnpp, options: {width: 0.25, stages: [1, 1], modalities: [joint, bone]}}\n"
        "optim: {epochs: 15, batch_size: 8, lr: 0.1, warmup_epochs: 1, label_smoothing: 0.0, threads: 1,"
        " eval_every: 0}\n"
        f"output: {tmp / 'out'}\n"
    )
    return load_train_config(yaml, list(overrides))[1]


def test_training_lowers_the_loss_and_writes_evaluable_tables(tmp_path, shared_data):
    cfg = _config(tmp_path, shared_data)
    path = train_skeleton(cfg)
    assert path == tmp_path / "out" / "model.pt"
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"]]
    assert len(losses) == 15
    assert losses[-1] < 0.7 * losses[0], losses
    # the written tables reproduce the trainer's numbers through the public evaluator and the CLI
    gt = load_input("recognition", tmp_path / "out" / "eval" / "gt", "gt")
    pred = load_input("recognition", tmp_path / "out" / "eval" / "pred", "pred")
    res = evaluate_recognition(gt, pred)
    assert res["top1_acc"] == pytest.approx(metrics["top1_acc"])
    assert res["top5_acc"] == pytest.approx(metrics["top5_acc"])
    assert res["mean_class_accuracy"] == pytest.approx(metrics["mean_class_accuracy"])
    out = subprocess.run([sys.executable, "-m", "videoact.cli", "eval", "recognition", "--gt",
                          str(tmp_path / "out" / "eval" / "gt"), "--pred", str(tmp_path / "out" / "eval" / "pred"),
                          "--json"], capture_output=True, text=True, cwd=REPO, check=True)
    assert json.loads(out.stdout)["top1_acc"] == pytest.approx(metrics["top1_acc"])


def test_stopped_training_resumes_to_the_same_weights(tmp_path, shared_data):
    full = train_skeleton(_config(tmp_path / "a", shared_data, "optim.epochs=4"))
    stopped = train_skeleton(_config(tmp_path / "b", shared_data, "optim.epochs=4", "optim.stop_after=3"))
    assert stopped.name == "last.pt" and not (tmp_path / "b" / "out" / "model.pt").exists()
    assert torch.load(stopped, weights_only=True)["epoch"] == 3
    resumed = train_skeleton(_config(tmp_path / "b", shared_data, "optim.epochs=4", "optim.eval_every=2"))
    a = torch.load(full, weights_only=True)["state_dict"]
    b = torch.load(resumed, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # a different recipe must not silently continue someone else's run
    with pytest.raises(ConfigError, match=r"different config \(optim\.lr: 0\.1 -> 0\.2\)"):
        train_skeleton(_config(tmp_path / "b", shared_data, "optim.epochs=4", "optim.lr=0.2"))


def test_checkpoint_loads_weights_only_and_predicts_like_the_trained_model(tmp_path, shared_data):
    cfg = _config(tmp_path, shared_data, "optim.epochs=1")
    clf = load_model(train_skeleton(cfg))
    assert clf.layout == "sbu15" and clf.num_persons == 2 and len(clf.classes) == 8
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(2, 25, 15, 2)).astype(np.float32) for _ in range(3)]
    probs = clf.predict_proba(seqs)
    assert probs.shape == (3, 8) and np.allclose(probs.sum(1), 1, atol=1e-5)
    x = torch.from_numpy(np.stack([prepare(s, layout="sbu15", cfg=clf.input, num_persons=2) for s in seqs]))
    assert x.shape == (3, 2, 16, 15, 2)  # (N, C, T, V, M)
    with torch.no_grad():
        assert np.allclose(torch.softmax(clf.model(x), -1).numpy(), probs, atol=1e-6)
    bad = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(ValueError, match="not a videoact skeleton checkpoint"):
        load_model(bad)
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        load_model(tmp_path / "missing.pt")
