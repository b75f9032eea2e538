"""`videoact import` / `videoact export` on real files, through the command line a user types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import videoact


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videoact.cli", *args], capture_output=True, text=True, timeout=300)


def test_ava_ground_truth_directory_round_trip(shared_data: Path, tmp_path: Path) -> None:
    ava = shared_data / "detection" / "ava" / "mmaction2_tests_eval_detection"
    gt_dir = tmp_path / "gt"
    out = _cli("import", "ava", str(ava / "gt.csv"), "-o", str(gt_dir), "--kind", "gt",
               "--label-map", str(ava / "action_list.txt"))
    assert out.returncode == 0, out.stderr
    out = _cli("import", "ava-labelmap", str(ava / "action_list.txt"), "-o", str(gt_dir), "--append")
    assert out.returncode == 0, out.stderr
    # a second import into the same directory without --append is refused, not merged silently
    out = _cli("import", "ava", str(ava / "gt.csv"), "-o", str(gt_dir))
    assert out.returncode == 2 and "not empty" in out.stderr

    tables = videoact.load(gt_dir)
    assert len(tables.boxes) == 12 and set(tables.boxes["label"]) == {"action1", "action2", "action3"}
    assert tables.label_names("ava") == {1: "action1", 2: "action2", 3: "action3"}

    out = _cli("export", str(gt_dir), "--format", "ava", "-o", str(tmp_path / "gt.csv"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "gt.csv").read_bytes() == (ava / "gt.csv").read_bytes()
    out = _cli("export", str(gt_dir), "--format", "ava-labelmap", "-o", str(tmp_path / "labels.pbtxt"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "labels.pbtxt").read_bytes() == (ava / "action_list.txt").read_bytes()


def test_activitynet_round_trip_via_cli(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "localization" / "mmaction2_eval_localization" / "gt.json"
    assert _cli("import", "activitynet", str(src), "-o", str(tmp_path / "d")).returncode == 0
    out = _cli("export", str(tmp_path / "d"), "--format", "activitynet", "-o", str(tmp_path / "gt.json"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "gt.json").read_bytes() == src.read_bytes()


def test_malformed_file_is_reported_with_file_and_line(shared_data: Path, tmp_path: Path) -> None:
    lines = (shared_data / "detection" / "ava" / "mmaction2_tests_eval_detection" / "gt.csv").read_text().splitlines()
    broken = tmp_path / "broken.csv"
    vid, ts, x1, y1, x2, y2, *rest = lines[2].split(",")
    lines[2] = ",".join([vid, ts, x2, y1, x1, y2, *rest])  # x1 > x2 on line 3
    broken.write_text("\n".join(lines) + "\n")
    out = _cli("import", "ava", str(broken), "-o", str(tmp_path / "d"), "--strict")
    assert out.returncode == 2
    assert "broken.csv:3" in out.stderr and "box order" in out.stderr
    assert "Traceback" not in out.stderr
    # default: read as the official evaluator reads it, kept raw, one warning line with the count
    out = _cli("import", "ava", str(broken), "-o", str(tmp_path / "d"))
    assert out.returncode == 0, out.stderr
    warned = [ln for ln in out.stderr.splitlines() if "broken.csv" in ln]
    assert len(warned) == 1 and "1 reversed box(es)" in warned[0] and "--strict" in warned[0], out.stderr
    # ... and scoring it as ground truth is refused with the reason (the reference raises on it), rc 2
    pred = shared_data / "detection" / "ava" / "mmaction2_tests_eval_detection" / "pred.csv"
    out = _cli("eval", "ava", "--gt", str(tmp_path / "d"), "--pred", str(pred))
    assert out.returncode == 2 and "reversed box" in out.stderr and "source line 3" in out.stderr, out.stderr
    out = _cli("eval", "ava", "--gt", str(tmp_path / "d"), "--pred", str(pred), "--strict")
    assert out.returncode == 2 and "--strict" in out.stderr and "reversed_box" in out.stderr, out.stderr
    out = _cli("import", "no-such-format", str(broken), "-o", str(tmp_path / "e"))
    assert out.returncode == 2 and "unknown import format 'no-such-format'" in out.stderr
    out = _cli("import", "ava", str(broken), "-o", str(tmp_path / "f"), "-O", "colour=red")
    assert out.returncode == 2 and "does not take option(s) ['colour']" in out.stderr


def test_eval_cli_official_numbers_and_variants(shared_data: Path) -> None:
    import json

    ava = shared_data / "detection" / "ava" / "mmaction2_tests_eval_detection"
    out = _cli("eval", "ava", "--gt", str(ava / "gt.csv"), "--pred", str(ava / "pred.csv"),
               "--label-map", str(ava / "action_list.txt"), "--json")
    assert out.returncode == 0, out.stderr
    assert abs(json.loads(out.stdout)["frame_mAP@0.5"] - 0.0938552189) < 1e-9
    loc = shared_data / "localization" / "mmaction2_eval_localization"
    out = _cli("eval", "tad", "--gt", str(loc / "gt.json"), "--pred", str(loc / "result.json"), "--json",
               "--variant", "mmaction2")
    assert out.returncode == 0, out.stderr
    assert abs(json.loads(out.stdout)["average_mAP"] - 0.6177579365) < 1e-9
    out = _cli("eval", "tad", "--gt", str(loc / "gt.json"), "--pred", str(loc / "result.json"), "--json",
               "-O", "tiou_thresholds=[0.3,0.5,0.7]")
    assert out.returncode == 0, out.stderr
    assert set(json.loads(out.stdout)["mAP"]) == {"0.3", "0.5", "0.7"}
    out = _cli("eval", "lta", "--gt", str(loc / "gt.json"), "--pred", str(loc / "result.json"), "--variant", "x")
    assert out.returncode == 2 and "does not take ['variant']" in out.stderr


def test_train_cli_runs_the_registered_trainer(shared_data: Path, tmp_path: Path) -> None:
    import torch

    repo = Path(__file__).resolve().parents[1]
    ckpt = tmp_path / "alm.pt"
    out = _cli("train", str(repo / "configs/anticipation/action_lm_epic55.yaml"),
               f"data.root={shared_data / 'anticipation/epic_kitchens_55'}", "data.stride=8", "model.d_model=16",
               "model.n_layers=1", "model.n_heads=2", "optim.steps=3", "optim.warmup=1", "optim.batch_size=8",
               f"output={ckpt}")
    assert out.returncode == 0, out.stderr
    assert ckpt.is_file() and str(ckpt) in out.stdout
    assert torch.load(ckpt, weights_only=True)["format"] == "videoact.action_lm/1"  # the action LM's checkpoint
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: nope\n")
    out = _cli("train", str(bad))
    assert out.returncode == 2 and "set `trainer:` to one of action_lm" in out.stderr and "Traceback" not in out.stderr
