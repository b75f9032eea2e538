"""Train the tiny models the equivalence harness needs, ONCE, with the reference tree's code.

Run:  cd /tmp/equiv && OMP_NUM_THREADS=1 PYTHONPATH=/tmp/equiv/ref_tree python make_models.py [--only NAME ...]

Writes /tmp/equiv/models/:
  rgb/model.pt              RGB clip recognizer (tests/test_rgb_recognition.py make_config, 12 epochs vit_tiny)
  det/gt.csv                AVA ground truth on BlazePose boxes of demo_spatiotemporal_det.mp4
                            (tests/test_detection_ava.py
                            demo_gt fixture); also used as detection.boxes=<file> in capture
  det/train/model.pt        AVA detector (configs/detection/ava_tiny.yaml + _train_overrides), eval/{gt,pred}
  mstcn/model.pt            MS-TCN on NW-UCLA concatenations (tests/test_run_temporal.py mstcn fixture), eval/{gt,pred}
  loc/model.pt              ActionFormer+CSA localization (tests/test_temporal_heads.py), eval/{gt,pred}
  alm/action_lm.pt          action LM (tests/conftest.py action_lm_checkpoint fixture)
  every_class_map.csv       tests/test_run_anticipation.py every_class_map fixture
  nw_ucla_eval/{gt,pred}    eval tables of the shipped NW-UCLA ST-GCN++ on the cross-view test split
                            (the 91.2 % number),
                            written with the trainer's own predict + write_eval_tables
  fixtures/                 small eval fixtures copied from the eval tests (LTA json, ms-tcn txt) and a THUMOS14
                            results file derived from the real val ground truth
Everything is read from /work/shared/data in place.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)

import videoact  # noqa: E402

TREE = Path(videoact.__file__).resolve().parents[1]
SHARED = Path("/work/shared/data")
MODELS = Path("/tmp/equiv/models")
VIDEO_ID = "demo_spatiotemporal_det"
TEXT_MAP = SHARED / "detection/ava/mmaction2_ava_label_map.txt"
PBTXT = SHARED / "detection/ava/ava_action_list_v2.1_for_activitynet_2018.pbtxt"
EARLY, LATE = (11, 64), (12, 80)
KEYFRAMES = [float(t) for t in range(10)]


def log(msg: str) -> None:
    print(f"[make_models {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cli(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(TREE), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "videoact.cli", *args], capture_output=True, text=True,
                          cwd="/tmp/equiv", env=env)
    if proc.returncode != 0:
        raise SystemExit(f"videoact {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")


# ------------------------------------------------------------------------------------------------- RGB
def make_rgb() -> None:
    from videoact.runner.inputs import sample_path
    from videoact.train import load_train_config
    from videoact.train.rgb import train_rgb_recognition

    folder = MODELS / "rgb"
    folder.mkdir(parents=True, exist_ok=True)
    videos = {"arm wrestling": SHARED / "videos" / "demo.mp4", "riding a bike": sample_path("bikes"),
              "talking on the phone": sample_path("carphone")}
    spans = {"arm wrestling": [(0, 3), (3, 6), (6.5, 10)], "riding a bike": [(0, 3), (3, 6), (6.5, 10)],
             "talking on the phone": [(0, 1.3), (1.3, 2.6), (2.6, 4)]}
    train, val = ["path,label,t_start_s,t_end_s"], ["path,label,t_start_s,t_end_s"]
    for label, path in videos.items():
        (a, b), (c, d), (e, f) = spans[label]
        train += [f"{path},{label},{a},{b}", f"{path},{label},{c},{d}"]
        val.append(f"{path},{label},{e},{f}")
    (folder / "train.csv").write_text("\n".join(train) + "\n")
    (folder / "val.csv").write_text("\n".join(val) + "\n")
    yaml = folder / "rgb.yaml"
    yaml.write_text(
        "trainer: rgb_recognition\n"
        f"data: {{train: {folder / 'train.csv'}, val: {folder / 'val.csv'}, label_space: three_videos}}\n"
        "input: {frames: 8, frame_step: 2, short_side: 72, crop: 64}\n"
        "augment: {temporal_jitter: true, flip: 0.5}\n"
        "model: {backbone: vit_tiny, head: linear, dropout: 0.0}\n"
        "optim: {epochs: 12, batch_size: 3, lr: 0.003, warmup_epochs: 0, threads: 1}\n"
        f"output: {folder}\n")
    _, cfg = load_train_config(yaml)
    log(f"rgb -> {train_rgb_recognition(cfg)}")


# ------------------------------------------------------------------------------------------------- AVA detection
def make_det() -> None:
    from videoact.heads.detection.boxes import keyframe_boxes
    from videoact.train import train_from_file

    folder = MODELS / "det"
    folder.mkdir(parents=True, exist_ok=True)
    pose_run = folder / "pose"
    cli("run", str(SHARED / "videos" / f"{VIDEO_ID}.mp4"), "-o", str(pose_run), "recognition.enabled=false", "-q")
    proposals = videoact.load(pose_run).boxes
    lines = []
    for kb in keyframe_boxes(proposals, KEYFRAMES, max_gap_s=0.25):
        if not len(kb):
            lines.append(f"{VIDEO_ID},{int(kb.t_s):04d}")
        for box, actor in zip(kb.boxes, kb.actor_ids, strict=True):
            for action in (EARLY if kb.t_s < 5 else LATE):
                lines.append(f"{VIDEO_ID},{int(kb.t_s):04d},{','.join(f'{v:.3f}' for v in box)},{action},{actor}")
    gt = folder / "gt.csv"
    gt.write_text("\n".join(lines) + "\n")
    overrides = [f"data.videos={SHARED / 'videos'}", f"data.train_csv={gt}", f"data.val_csv={gt}",
                 f"data.label_map={TEXT_MAP}", f"data.eval_label_map={PBTXT}", f"output={folder / 'train'}"]
    log(f"det -> {train_from_file(TREE / 'configs/detection/ava_tiny.yaml', overrides)}")


# ------------------------------------------------------------------------------------------------- temporal
def make_mstcn() -> None:
    from videoact.train import load_train_config
    from videoact.train.temporal import train_segmentation

    out = MODELS / "mstcn"
    cfg = load_train_config(TREE / "configs/temporal/nw_ucla_concat_mstcn.yaml", [
        f"data.root={SHARED / 'skeleton/nw_ucla'}", f"output={out}", "optim.threads=1", "data.max_videos=3",
        "optim.epochs=3", "features.stride=8", "features.extra_windows=[]", "optim.batch_size=1",
        f"features.cache={MODELS / 'feature_cache'}"])[1]
    log(f"mstcn -> {train_segmentation(cfg)}")


def make_loc() -> None:
    from videoact.train import load_train_config
    from videoact.train.temporal import train_localization

    out = MODELS / "loc"
    cfg = load_train_config(TREE / "configs/temporal/utkinect_actionformer_csa.yaml", [
        f"data.root={SHARED / 'skeleton/nw_ucla'}", f"output={out}", "optim.threads=1", "optim.epochs=10",
        "optim.batch_size=1", "optim.warmup_epochs=1", "optim.lr=0.001", "model.loss_normalizer=20",
        "data.protocol=nw_ucla_concat", "data.options={}", "data.max_videos=3", "features.window=32",
        "features.stride=8", f"features.cache={MODELS / 'feature_cache'}"])[1]
    log(f"loc -> {train_localization(cfg)}")


# ------------------------------------------------------------------------------------------------- anticipation
def make_alm() -> None:
    import pandas as pd

    from videoact.heads.anticipation.action_lm import train_action_lm
    from videoact.train import load_train_config

    _, cfg = load_train_config(TREE / "configs/anticipation/action_lm_epic55.yaml", [
        f"data.root={SHARED / 'anticipation/epic_kitchens_55'}", "data.stride=4", "model.d_model=32",
        "model.n_layers=1", "model.n_heads=2", "optim.steps=60", "optim.batch_size=32", "optim.warmup=10",
        "optim.log_every=10", "optim.lr=0.003", "optim.threads=1"])
    (MODELS / "alm").mkdir(parents=True, exist_ok=True)
    log(f"alm -> {train_action_lm(replace(cfg, output=MODELS / 'alm' / 'action_lm.pt'))}")
    m = pd.read_csv(TREE / "configs/anticipation/nw_ucla_to_epic55.csv", dtype=str, keep_default_na=False)
    m.loc[m["verb"] == "", ["verb", "noun"]] = ["walk", "Nothing"]
    m.to_csv(MODELS / "every_class_map.csv", index=False)


# ------------------------------------------------------------------------------------------------- eval fixtures
def make_nw_ucla_eval() -> None:
    """The shipped model's predictions on NW-UCLA cross-view test (what its model card's `videoact eval recognition`
    reads; the trainer's own predict + write_eval_tables, without the 28-minute training)."""
    from videoact.datasets.skeleton.benchmarks import load_benchmark
    from videoact.train.skeleton import SkeletonDataset, load_model, predict, write_eval_tables

    clf = load_model(TREE / "videoact/models/nw_ucla_stgcnpp.pt")
    bench = load_benchmark(clf.meta["benchmark"], SHARED / "skeleton/nw_ucla")
    test_set = SkeletonDataset(bench.test, layout=bench.layout, cfg=clf.input, num_persons=bench.num_persons)
    probs = predict(clf.model, test_set)
    write_eval_tables(MODELS / "nw_ucla_eval", bench.name, bench.test, probs, bench.classes,
                      model_source="stgcnpp@shipped")
    top1 = float((probs.argmax(1) == [s.label for s in bench.test]).mean())
    log(f"nw_ucla_eval: {len(bench.test)} test samples, top-1 {top1:.4f}")


def make_fixtures() -> None:
    fx = MODELS / "fixtures"
    # tests/test_eval_lta.py test_cli_on_ego4d_files
    lta = fx / "lta"
    lta.mkdir(parents=True, exist_ok=True)
    clips = [{"clip_uid": "clipA", "video_uid": "vid", "action_idx": i, "action_clip_start_sec": float(i),
              "action_clip_end_sec": i + 1.0, "action_clip_start_frame": 30 * i, "action_clip_end_frame": 30 * i + 30,
              "verb": f"v{i % 3}", "noun": f"n{i % 4}", "verb_label": i % 3, "noun_label": i % 4} for i in range(8)]
    (lta / "gt.json").write_text(json.dumps({"version": "v1", "split": "val", "clips": clips}))
    target_v, target_n, wrong = [(i % 3) for i in range(4, 8)], [(i % 4) for i in range(4, 8)], [9] * 4
    (lta / "sub_k2.json").write_text(json.dumps({"clipA_3": {"verb": [wrong, target_v], "noun": [target_n, target_n]}}))
    (lta / "sub_k1.json").write_text(json.dumps({"clipA_3": {"verb": [wrong], "noun": [target_n]}}))
    # tests/test_eval_segmentation.py test_cli_tas (ms-tcn layout: gt one label a line, result header + labels)
    tas = fx / "tas"
    (tas / "gt").mkdir(parents=True, exist_ok=True)
    (tas / "res").mkdir(parents=True, exist_ok=True)
    (tas / "gt" / "v.txt").write_text("".join(f + "\n" for f in ["a", "a", "b", "b"]))
    (tas / "res" / "v").write_text("### Frame level recognition: ###\n" + " ".join(["a", "b", "b", "b"]))
    # THUMOS14: detections = the val ground truth (non-ambiguous), and a copy shifted by 1 s
    # (tests/test_eval_detection.py test_thumos14_real_ground_truth_scored_against_itself, as files)
    thumos = SHARED / "localization/thumos14"
    ids = dict(line.split()[::-1] for line in (thumos / "detclasslist_ucf101_ids.txt").read_text().splitlines()
               if line.strip())
    for name, shift in (("thumos_self.txt", 0.0), ("thumos_shift1.txt", 1.0)):
        rows = []
        for f in sorted((thumos / "annotations_val").glob("*_val.txt")):
            cls = f.name[: -len("_val.txt")]
            if cls not in ids:
                continue
            for line in f.read_text().splitlines():
                if line.strip():
                    vid, s, e = line.split()
                    rows.append(f"{vid} {float(s) + shift:.1f} {float(e) + shift:.1f} {ids[cls]} 1.0")
        (fx / name).write_text("\n".join(rows) + "\n")
    log(f"fixtures -> {fx}")


STEPS = {"fixtures": make_fixtures, "nw_ucla_eval": make_nw_ucla_eval, "alm": make_alm, "mstcn": make_mstcn,
         "loc": make_loc, "rgb": make_rgb, "det": make_det}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", choices=list(STEPS))
    args = ap.parse_args()
    log(f"tree {TREE}")
    MODELS.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(STEPS):
        t0 = time.time()
        STEPS[name]()
        log(f"{name}: {time.time() - t0:.0f} s")
