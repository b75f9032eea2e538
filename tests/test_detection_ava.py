"""AVA spatio-temporal action detection: the EVAD head, the ``ava_detection`` trainer and ``videoact run``'s stage.

Head tests use a tiny ViT (8 frames of 64x64, 8x8 patches: a 4x8x8 token grid). The end-to-end tests run on
``demo_spatiotemporal_det.mp4`` (mmaction2's AVA demo video, 57 frames at 6 fps): BlazePose through
``videoact run`` gives the person boxes, the test writes an AVA ground-truth csv on those boxes with fixed
actions from the real AVA label map, trains the tiny recipe on it, then runs, exports and evaluates with the
command line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import videoact
from videoact.annotations.formats import import_annotations
from videoact.cli import main
from videoact.config import ConfigError
from videoact.features.backbones import BackboneOutput, build_backbone
from videoact.heads.detection.boxes import keyframe_boxes, read_proposals
from videoact.heads.detection.evad import pad_boxes, roi_pool_actors
from videoact.heads.detection.model import build_action_detector, load_detection_model, prepare_clip

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "detection" / "ava_tiny.yaml"
VIDEO_ID = "demo_spatiotemporal_det"
TEXT_MAP = Path("detection/ava/mmaction2_ava_label_map.txt")  # the official 60 classes, mmaction2's text map
PBTXT = Path("detection/ava/ava_action_list_v2.1_for_activitynet_2018.pbtxt")  # the same 60, official pbtxt
EARLY, LATE = (11, 64), (12, 80)  # sit + fight/hit (a person) before 5 s; stand + watch (a person) after
KEYFRAMES = [float(t) for t in range(10)]  # 1 Hz over the 9.5 s video


def tiny_detector(seed: int = 0, keep_rates: list[float] | None = None, num_classes: int = 5) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = build_action_detector(
        backbone="vit_tiny", num_classes=num_classes,
        backbone_kwargs={"img_size": [64, 64], "num_frames": 8, "patch_size": 8, "keep_rates": keep_rates},
        head_kwargs={"dim": 32, "depth": 2, "num_heads": 2, "act_dim": 64})
    return net.eval()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videoact.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


@pytest.fixture(scope="module")
def real_clip(shared_data: Path) -> torch.Tensor:
    """(1, 3, 8, 64, 64): 8 frames two apart centred on t = 4 s of the demo video, as the tiny recipe feeds them."""
    from videoact.decode.samplers import keyframe_clips
    from videoact.decode.source import VideoSource
    from videoact.heads.detection.detect import frame_times
    from videoact.heads.detection.model import ClipInput

    with VideoSource(shared_data / "videos" / f"{VIDEO_ID}.mp4") as src:
        (idx,) = keyframe_clips(frame_times(src), [4.0], clip_len=8, frame_step=2)
        return prepare_clip(src.get_frames(idx), ClipInput())[None]


# ------------------------------------------------------------------------------------------------- the head


def test_roi_pool_reads_only_the_cells_inside_the_box() -> None:
    # box edges through cell centres: x 2.5..5.5, y 1.5..6.5 in grid units of an 8x8 map
    box = torch.tensor([[[2.5 / 8, 1.5 / 8, 5.5 / 8, 6.5 / 8]]])
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[1:7, 2:6] = True  # rows (y) 1..6, columns (x) 2..5: the cells whose centres the box holds
    gen = torch.Generator().manual_seed(0)
    outside_only = (torch.rand(1, 4, 3, 8, 8, generator=gen) + 1) * ~inside
    assert torch.equal(roi_pool_actors(outside_only, box), torch.zeros(1, 1, 4))
    inside_only = (torch.rand(1, 4, 3, 8, 8, generator=gen) + 1) * inside
    assert (roi_pool_actors(inside_only, box) >= 1).all()
    # the same, read off the gradient: the pooled feature depends on exactly those cells
    fmap = torch.randn(1, 4, 3, 8, 8, generator=gen, requires_grad=True)
    roi_pool_actors(fmap, box).sum().backward()
    assert torch.equal(fmap.grad.abs().sum(dim=(0, 1, 2)) > 0, inside)
    # over time: max over the bins of each slice, then the mean of the slices
    per_slice = torch.tensor([1.0, 2.0, 6.0]).view(1, 1, 3, 1, 1).expand(1, 4, 3, 8, 8).clone()
    assert torch.allclose(roi_pool_actors(per_slice, box), torch.full((1, 1, 4), 3.0))
    per_slice[:, :, 0, 3, 3] = 100.0  # one hot cell inside the box in slice 0 raises that slice's maximum
    assert (roi_pool_actors(per_slice, box) > 3.0 + 1.0).all()


def test_head_shapes_padding_and_deep_supervision() -> None:
    net = tiny_detector(keep_rates=[1, 0.5, 1, 0.5])
    x = torch.randn(2, 3, 8, 64, 64, generator=torch.Generator().manual_seed(1))
    boxes, valid = pad_boxes([np.array([[0.1, 0.1, 0.5, 0.9]]),
                              np.array([[0.1, 0.1, 0.5, 0.9], [0.5, 0.2, 0.9, 0.8], [0.0, 0.0, 0.3, 0.3]])])
    assert boxes.shape == (2, 3, 4) and valid.tolist() == [[True, False, False], [True, True, True]]
    with torch.no_grad():
        out = net(x, boxes, valid)
        layers = net(x, boxes, valid, all_layers=True)
        alone = net(x[:1], boxes[:1, :1], valid[:1, :1])
    assert out.shape == (2, 3, 5) and layers.shape == (2, 2, 3, 5)
    assert torch.allclose(layers[-1], out)
    # padded actor slots are masked as keys: a clip's real actors come out as if it were alone
    assert torch.allclose(out[0, :1], alone[0], atol=1e-5)


def test_dropped_tokens_are_zeros_in_the_restored_map(real_clip: torch.Tensor) -> None:
    net = tiny_detector(keep_rates=[1, 0.5, 1, 0.5])
    with torch.no_grad():
        feats = net.backbone(real_clip)
        dense, kept = net.head.scene_map(feats)
        projected = net.head.proj(net.head.norm(feats.tokens))[0]  # (N, D)
    n_all = 4 * 8 * 8
    assert feats.grid == (4, 8, 8) and feats.tokens.shape[1] < n_all and dense.shape == (1, 32, 4, 8, 8)
    flat = dense.flatten(2)[0].T  # (T'·H'·W', D)
    assert int((~kept).sum()) == n_all - feats.tokens.shape[1]
    assert torch.equal(flat[~kept[0]], torch.zeros_like(flat[~kept[0]]))
    assert torch.equal(flat[feats.index[0]], projected) and (projected.abs().sum(1) > 0).all()
    assert kept[0].reshape(4, 8, 8)[2].all()  # the keyframe's slice (frame 4 of 8, tubelet 2) is whole


def test_keep_rate_one_equals_the_dense_path(real_clip: torch.Tensor) -> None:
    boxes, valid = pad_boxes([np.array([[0.2, 0.1, 0.6, 0.9], [0.5, 0.3, 0.95, 1.0]])])
    with_rates = tiny_detector(seed=3, keep_rates=[1.0, 1.0, 1.0, 1.0])
    plain = tiny_detector(seed=3)
    with torch.no_grad():
        out = with_rates(real_clip, boxes, valid)
        feats = plain.backbone(real_clip)
        dense = plain.head(BackboneOutput.from_dense(feats.to_dense()), boxes, valid)
        dropped = tiny_detector(seed=3, keep_rates=[1, 0.5, 1, 0.5])(real_clip, boxes, valid)
    assert torch.allclose(out, dense, atol=1e-5)
    assert not torch.allclose(out, dropped, atol=1e-3)  # dropout does change them: the comparison can fail


# ------------------------------------------------------------------------------------------------- person boxes


def test_boxes_from_proposals_files_and_ground_truth_targets(shared_data: Path) -> None:
    from videoact.train.detection import class_list, gt_samples

    folder = shared_data / "detection" / "ava" / "mmaction2_tests_ava_dataset"
    proposals = read_proposals(folder / "ava_proposals_sample.pkl")
    assert set(proposals["task"]) == {"proposal"}
    kbs = keyframe_boxes(proposals[proposals["video_id"] == "_-Z6wFjXtGQ"], [902.0, 902.4, 903.0], max_gap_s=0.0,
                         min_score=0.5)
    assert np.allclose(kbs[0].boxes, [[0.076, 0.051, 0.554, 0.975], [0.387, 0.263, 0.916, 0.984]])
    assert np.allclose(kbs[0].scores, [0.994488, 0.996238]) and len(kbs[1]) == len(kbs[2]) == 0
    assert len(keyframe_boxes(proposals[proposals["video_id"] == "_-Z6wFjXtGQ"], [902.4], max_gap_s=0.5)[0]) == 3
    # a ground-truth csv as boxes: one box per person and keyframe, not one per action row
    from_csv = read_proposals(folder / "ava_sample.csv")
    assert len(from_csv) == 3 and from_csv["label_id"].isna().all()
    ids, _ = class_list(shared_data / TEXT_MAP)
    samples = gt_samples(import_annotations("ava", folder / "ava_sample.csv", kind="gt").boxes, ids)
    targets = {(s.video_id, s.boxes.t_s): {ids[k] for k in np.flatnonzero(s.labels[0])} for s in samples}
    assert targets == {("0f39OWEqJ24", 902.0): {12, 17, 79}, ("0f39OWEqJ24", 903.0): {12, 17},
                       ("_-Z6wFjXtGQ", 902.0): {12, 74, 80}}


# ------------------------------------------------------------------------------------------------- end to end


def _reference_frame_map(gt_csv: Path, dets: pd.DataFrame) -> float:
    """Official AVA frame-mAP@0.5 (evaluation.md section 1) recomputed here with numpy, from the ground-truth csv
    and detection rows (video_id, t_s, x1, y1, x2, y2, label_id, score): top 50 detections per keyframe pooled over
    classes, each matched to its best-IoU box of the class (no fallback), VOC all-point AP per class with ground
    truth, and their mean. Keyframes absent from the ground truth are ignored."""
    rows = [line.split(",") for line in gt_csv.read_text().splitlines() if line.strip()]
    keys = {(r[0], float(r[1])) for r in rows}
    gt = pd.DataFrame([(r[0], float(r[1]), *map(float, r[2:6]), int(r[6])) for r in rows if len(r) >= 7],
                      columns=["video_id", "t_s", "x1", "y1", "x2", "y2", "label_id"])
    dets = dets[[(v, float(t)) in keys for v, t in zip(dets["video_id"], dets["t_s"], strict=True)]]
    top = dets.sort_values("score", ascending=False, kind="stable").groupby(["video_id", "t_s"]).head(50)

    def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
        h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return w * h / ((box[2] - box[0]) * (box[3] - box[1]) + area - w * h)

    aps = []
    for c, g_c in gt.groupby("label_id"):
        scores, hits = [], []
        for (vid, t), d in top[top["label_id"] == c].groupby(["video_id", "t_s"]):
            g = g_c[(g_c["video_id"] == vid) & (g_c["t_s"] == t)][["x1", "y1", "x2", "y2"]].to_numpy(float)
            used = np.zeros(len(g), bool)
            for box, score in zip(d[["x1", "y1", "x2", "y2"]].to_numpy(float), d["score"], strict=True):
                overlap = iou(box, g) if len(g) else np.zeros(1)
                j = int(overlap.argmax())
                hit = bool(overlap[j] >= 0.5 and not used[j])
                if hit:
                    used[j] = True
                scores.append(float(score))
                hits.append(hit)
        tp = np.asarray(hits, float)[np.argsort(-np.asarray(scores), kind="stable")]
        rec = np.concatenate([[0.0], np.cumsum(tp) / len(g_c), [1.0]])
        prec = np.concatenate([[0.0], np.cumsum(tp) / np.arange(1, len(tp) + 1), [0.0]])
        prec = np.maximum.accumulate(prec[::-1])[::-1]
        step = np.flatnonzero(rec[1:] != rec[:-1]) + 1
        aps.append(float(np.sum((rec[step] - rec[step - 1]) * prec[step])))
    return float(np.mean(aps))


@pytest.fixture(scope="module")
def demo_gt(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """BlazePose boxes of the demo video (``videoact run``) and an AVA ground-truth csv on them."""
    tmp = tmp_path_factory.mktemp("ava_demo")
    proc = _cli("run", str(shared_data / "videos" / f"{VIDEO_ID}.mp4"), "-o", str(tmp / "pose"),
                "recognition.enabled=false", "-q")
    assert proc.returncode == 0, proc.stderr
    proposals = videoact.load(tmp / "pose").boxes
    kbs = keyframe_boxes(proposals, KEYFRAMES, max_gap_s=0.25)
    lines = []
    for kb in kbs:
        if not len(kb):
            lines.append(f"{VIDEO_ID},{int(kb.t_s):04d}")  # a keyframe without a person (2-column row)
        for box, actor in zip(kb.boxes, kb.actor_ids, strict=True):
            for action in (EARLY if kb.t_s < 5 else LATE):
                lines.append(f"{VIDEO_ID},{int(kb.t_s):04d},{','.join(f'{v:.3f}' for v in box)},{action},{actor}")
    gt = tmp / "gt.csv"
    gt.write_text("\n".join(lines) + "\n")
    with_boxes = [kb for kb in kbs if len(kb)]
    assert {kb.t_s < 5 for kb in with_boxes} == {True, False}  # both label sets have keyframes
    return SimpleNamespace(tmp=tmp, gt=gt, keyframes=[kb.t_s for kb in with_boxes], proposals=proposals)


def _train_overrides(shared_data: Path, gt: Path, output: Path) -> list[str]:
    return [f"data.videos={shared_data / 'videos'}", f"data.train_csv={gt}", f"data.val_csv={gt}",
            f"data.label_map={shared_data / TEXT_MAP}", f"data.eval_label_map={shared_data / PBTXT}",
            f"output={output}"]


@pytest.fixture(scope="module")
def trained(shared_data: Path, demo_gt: SimpleNamespace) -> SimpleNamespace:
    from videoact.train import train_from_file

    out = demo_gt.tmp / "train"
    overrides = _train_overrides(shared_data, demo_gt.gt, out)
    path = train_from_file(TINY, overrides)
    return SimpleNamespace(model=path, out=out, overrides=overrides,
                           metrics=json.loads((out / "metrics.json").read_text()))


@pytest.mark.slow
def test_training_loss_falls_and_model_loads(trained: SimpleNamespace, demo_gt: SimpleNamespace,
                                            shared_data: Path) -> None:
    history = trained.metrics["history"]
    assert [h["epoch"] for h in history] == list(range(1, 11))
    assert history[-1]["loss"] < 0.6 * history[0]["loss"], [h["loss"] for h in history]
    assert history[-1]["frame_mAP@0.5"] == trained.metrics["frame_mAP@0.5"]  # per epoch on the val csv; last reported
    model = load_detection_model(trained.model)  # torch.load(weights_only=True) inside
    ids = sorted(int(line.split(":")[0]) for line in (shared_data / TEXT_MAP).read_text().splitlines())
    assert list(model.class_ids) == ids and model.label_space == "ava" and model.name == "model"
    assert model.input.clip_len == 8 and tuple(model.input.size) == (64, 64)
    assert model.meta["metrics"]["frame_mAP@0.5"] == trained.metrics["frame_mAP@0.5"]
    state = torch.load(trained.model, map_location="cpu", weights_only=True)
    assert state["backbone"] == "vit_tiny" and state["backbone_kwargs"]["keep_rates"] == [1, 0.7, 1, 0.7]
    # the eval tables reproduce the final number through `videoact eval`
    from videoact.eval import evaluate
    from videoact.eval.io import load_input

    gt, pred = (load_input("ava", trained.out / "eval" / name, name) for name in ("gt", "pred"))
    assert evaluate("ava", gt, pred)["frame_mAP@0.5"] == trained.metrics["frame_mAP@0.5"]
    assert trained.metrics["frame_mAP@0.5"] == pytest.approx(_reference_frame_map(demo_gt.gt, pred.boxes), abs=1e-9)


@pytest.mark.slow
def test_training_resumes_and_refuses_another_config(trained: SimpleNamespace) -> None:
    from videoact.train import train_from_file

    before = torch.load(trained.out / "last.pt", map_location="cpu", weights_only=True)
    assert before["epoch"] == 10
    train_from_file(TINY, trained.overrides)  # every epoch done: nothing trains, model.pt is rewritten
    again = load_detection_model(trained.model)
    assert all(torch.equal(v, before["model"][k]) for k, v in again.net.state_dict().items())
    with pytest.raises(ConfigError, match=r"last\.pt: written by a different config \(optim\.lr: 0\.003 -> 0\.1\)"):
        train_from_file(TINY, [*trained.overrides, "optim.lr=0.1"])


@pytest.mark.slow
def test_pretrained_videomae_weights_reach_the_backbone(shared_data: Path, demo_gt: SimpleNamespace,
                                                        tmp_path: Path) -> None:
    from videoact.features.vit.checkpoints import export_state_dict
    from videoact.train import train_from_file

    torch.manual_seed(7)
    src = build_backbone("vit_tiny", img_size=[64, 64], num_frames=8, patch_size=8, keep_rates=[1, 0.7, 1, 0.7]).eval()
    torch.save({"model": export_state_dict(src, "videomae")}, tmp_path / "videomae.pth")
    path = train_from_file(TINY, [*_train_overrides(shared_data, demo_gt.gt, tmp_path / "out"), "data.val_csv=null",
                                  "optim.epochs=0", f"model.pretrained={tmp_path / 'videomae.pth'}"])
    backbone = load_detection_model(path).net.backbone
    assert torch.equal(backbone.patch_embed.proj.weight, src.patch_embed.proj.weight)
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():  # the k bias VideoMAE lacks changes no output
        assert torch.allclose(backbone(x).tokens, src(x).tokens, atol=1e-5)


@pytest.mark.slow
def test_detection_run_exports_an_official_csv_that_evaluates(trained: SimpleNamespace, demo_gt: SimpleNamespace,
                                                              shared_data: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's acceptance: run with keypoint boxes -> valid boxes rows -> AVA csv -> `videoact eval ava`."""
    run = tmp_path / "run"
    proc = _cli("run", str(shared_data / "videos" / f"{VIDEO_ID}.mp4"), "-o", str(run), "recognition.enabled=false",
                "detection.enabled=true", f"detection.model={trained.model}", "-q")
    assert proc.returncode == 0, proc.stderr
    t = videoact.load(run)  # validates every table
    det = t.boxes[t.boxes["task"] == "detection"]
    assert len(det) and set(det["label_space"]) == {"ava"} and set(det["t_s"]) == set(demo_gt.keyframes)
    names = dict(line.split(": ", 1) for line in (shared_data / TEXT_MAP).read_text().splitlines())
    assert all(names[str(i)] == n for i, n in zip(det["label_id"], det["label"], strict=True))
    assert det["score"].between(0.002, 1.0).all() and (det["frame"] == (det["t_s"] * 6).round()).all()
    assert det.groupby(["t_s", "actor_id"]).size().max() <= 5  # detection.top_k per person box
    # the boxes are the pose stage's at the keyframes (the ground truth's, before its 3-decimal rounding)
    gt_boxes = import_annotations("ava", demo_gt.gt, kind="gt").boxes.dropna(subset=["x1"])
    for t_s, g in det.groupby("t_s"):
        expected = gt_boxes[gt_boxes["t_s"] == t_s][["x1", "y1", "x2", "y2"]].to_numpy()[0]
        assert np.allclose(g[["x1", "y1", "x2", "y2"]].to_numpy(), expected, atol=6e-4)
    assert set(t.labels["label_space"]) == {"ava"} and len(t.labels) == 60
    assert json.loads((run / "manifest.json").read_text())["stages"] == ["decode", "pose", "detection"]

    pred = tmp_path / "pred.csv"
    assert main(["export", str(run), "--format", "ava", "-o", str(pred)]) == 0
    rows = [line.split(",") for line in pred.read_text().splitlines()]
    assert len(rows) == len(det) and {len(r) for r in rows} == {8}
    assert {r[1] for r in rows} == {f"{int(k):04d}" for k in demo_gt.keyframes}
    capsys.readouterr()
    assert main(["eval", "ava", "--gt", str(demo_gt.gt), "--pred", str(pred), "--label-map",
                 str(shared_data / PBTXT), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["counts"]["pred_keyframes_not_in_gt"] == 0
    exported = pd.DataFrame([(r[0], float(r[1]), *map(float, r[2:6]), int(r[6]), float(r[7])) for r in rows],
                            columns=["video_id", "t_s", "x1", "y1", "x2", "y2", "label_id", "score"])
    assert result["frame_mAP@0.5"] == pytest.approx(_reference_frame_map(demo_gt.gt, exported), abs=1e-9)
    # the run directory itself scores the same as its exported csv
    assert main(["eval", "ava", "--gt", str(demo_gt.gt), "--pred", str(run), "--label-map",
                 str(shared_data / PBTXT), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frame_mAP@0.5"] == result["frame_mAP@0.5"]


@pytest.mark.slow
def test_detection_with_boxes_from_a_file_or_a_detector(trained: SimpleNamespace, demo_gt: SimpleNamespace,
                                                        shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "videos" / f"{VIDEO_ID}.mp4"
    # boxes from an AVA csv (here the ground truth: oracle boxes); the pose stage is not needed
    assert main(["run", str(video), "-o", str(tmp_path / "file"), "pose.enabled=false", "detection.enabled=true",
                 f"detection.model={trained.model}", f"detection.boxes={demo_gt.gt}", "-q"]) == 0
    det = videoact.load(tmp_path / "file").boxes
    assert set(det["task"]) == {"detection"} and set(det["t_s"]) == set(demo_gt.keyframes)
    # a pluggable person detector, called on each keyframe's frame
    from videoact.decode.source import VideoSource
    from videoact.heads.detection.detect import detect_video

    seen: list[tuple[int, ...]] = []

    def detector(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.append((*frame.shape, frame.dtype.itemsize))
        return np.array([[0.1, 0.2, 0.6, 0.9]]), np.array([0.8])

    model = load_detection_model(trained.model)
    with VideoSource(video) as src:
        rows = detect_video(src, model, video_id=VIDEO_ID, source="test", detector=detector, top_k=3,
                            score_threshold=0.0)
    assert seen == [(256, 340, 3, 1)] * 10  # one uint8 frame per keyframe, 0..9 s
    assert sorted(set(rows["t_s"])) == KEYFRAMES and rows.groupby("t_s").size().eq(3).all()
    assert np.allclose(rows[["x1", "y1", "x2", "y2"]].to_numpy(), [0.1, 0.2, 0.6, 0.9])


def test_detection_config_errors_name_the_fix(shared_data: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    video = str(shared_data / "videos" / f"{VIDEO_ID}.mp4")
    cases = [
        (["detection.enabled=true"], "detection.model is not set"),
        (["detection.enabled=true", f"detection.model={tmp_path / 'nope.pt'}"],
         "nope.pt: AVA detection model not found"),
        (["detection.enabled=true", "detection.model=x.pt", "pose.enabled=false"],
         "detection.boxes=pose reads the pose stage's person boxes"),
    ]
    for i, (overrides, message) in enumerate(cases):
        assert main(["run", video, "-o", str(tmp_path / f"r{i}"), *overrides, "-q"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


def test_shipped_detection_recipes_load() -> None:
    from videoact.train import load_train_config

    name, tiny = load_train_config(TINY)
    assert name == "ava_detection" and tiny.model.backbone == "vit_tiny" and tiny.input.clip_len == 8
    name, real = load_train_config(REPO / "configs" / "detection" / "ava_vit_b16_evad.yaml")
    assert name == "ava_detection" and real.model.backbone == "vit_b16"
    assert real.model.backbone_options["keep_rates"] == "evad" and real.model.pretrained
    assert (real.input.clip_len, real.input.frame_step) == (16, 4)
    assert real.model.head_options == {"dim": 384, "depth": 6, "num_heads": 6, "act_dim": 2048,
                                       "roi_extension": [0.4, 0.2], "drop_path": 0.1}
