"""Temporal heads on real skeletons: MS-TCN / LAC / ASRF segmentation, ActionFormer detection, soft-NMS, the feature
cache, and the evaluation round trip through ``videoact eval tas|tad``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from videoact.annotations import schema, store
from videoact.annotations.tables import Tables
from videoact.config import ConfigError
from videoact.datasets.skeleton.untrimmed import load_untrimmed, to_grid
from videoact.eval.detection import evaluate_detection
from videoact.eval.io import load_input
from videoact.eval.segmentation import evaluate_segmentation
from videoact.features.sequence import sequence_features, skeleton_backbone, window_index
from videoact.features.skeleton.factory import list_models
from videoact.heads.localization.nms import batched_soft_nms, soft_nms, tiou_matrix
from videoact.heads.recognition.skeleton import load_recognizer
from videoact.heads.segmentation.rows import segmentation_rows, window_votes
from videoact.heads.temporal import load_temporal_model, predict_video
from videoact.train import load_train_config
from videoact.train.temporal import train_localization, train_segmentation

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One feature cache for the module: the NW-UCLA windows are encoded once, then read back."""
    return tmp_path_factory.mktemp("features")


@pytest.fixture(scope="module")
def nw_concat(shared_data: Path):
    """The ``nw_ucla_concat`` protocol (real NW-UCLA sequences, concatenated)."""
    return load_untrimmed("nw_ucla_concat", shared_data / "skeleton" / "nw_ucla")


def _config(name: str, shared: Path, out: Path, *overrides: str):
    root = {"nw_ucla": shared / "skeleton" / "nw_ucla", "utk": shared / "skeleton" / "utkinect_action3d"}
    data = "utk" if name.startswith("utkinect") else "nw_ucla"
    return load_train_config(REPO / "configs" / "temporal" / f"{name}.yaml",
                             [f"data.root={root[data]}", f"output={out}", "optim.threads=1", *overrides])[1]


def _cli_eval(task: str, folder: Path, *extra: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "videoact.cli", "eval", task, "--gt", str(folder / "gt"), "--pred",
                          str(folder / "pred"), "--json", *extra], capture_output=True, text=True, cwd=REPO,
                         check=True)
    return json.loads(out.stdout)


def _assert_predicts_like_the_trainer(model_pt: Path, pred: Tables, shared: Path, protocol: str, cache: Path) -> None:
    """``model.pt`` + ``predict_video`` on one test video give the rows the trainer wrote for it."""
    root = shared / "skeleton" / ("nw_ucla" if protocol == "nw_ucla_concat" else "utkinect_action3d")
    seq = load_untrimmed(protocol, root).test[0]
    model, meta = load_temporal_model(model_pt)
    rows = Tables(segments=predict_video(model, meta, seq.keypoints, video_id=seq.name, fps=seq.fps,
                                         step_frames=seq.step_frames, n_frames=seq.n_frames,
                                         cache_dir=cache)).validated().segments
    want = pred.segments[pred.segments["video_id"] == seq.name].reset_index(drop=True)
    order = ["t_start_s", "label"]
    rows, want = rows.sort_values(order).reset_index(drop=True), want.sort_values(order).reset_index(drop=True)
    assert list(rows["label"]) == list(want["label"])
    for col in ("t_start_s", "t_end_s", "score"):
        np.testing.assert_allclose(rows[col].to_numpy(float), want[col].to_numpy(float), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------- trainers


@pytest.mark.slow
def test_mstcn_trains_on_real_sequences_and_round_trips_through_eval_tas(tmp_path, shared_data, feature_cache):
    cfg = _config("nw_ucla_concat_mstcn", shared_data, tmp_path / "out", "data.max_videos=3", "optim.epochs=12",
                  "features.stride=8", "features.extra_windows=[]", f"features.cache={feature_cache}",
                  "optim.batch_size=1")
    train_segmentation(cfg)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"]]
    assert len(losses) == 12 and losses[-1] < 0.8 * losses[0], losses  # falls steadily: ~0.7x after 12 epochs
    # written tables are valid and tile every frame of every test video
    pred = store.load(tmp_path / "out" / "eval" / "pred")
    seg = schema.validate("segments", pred.segments)
    assert set(seg["task"]) == {"segmentation"} and seg["score"].between(0, 1).all()
    for vid, g in seg.groupby("video_id"):
        g = g.sort_values("frame_start")
        n = int(pred.videos.set_index("video_id").loc[vid, "n_frames"])
        assert g["frame_start"].iloc[0] == 0 and g["frame_end"].iloc[-1] == n
        assert (g["frame_start"].to_numpy()[1:] == g["frame_end"].to_numpy()[:-1]).all()
    # the same numbers in process and from the CLI
    folder = tmp_path / "out" / "eval"
    res = evaluate_segmentation(load_input("tas", folder / "gt", "gt"), load_input("tas", folder / "pred", "pred"),
                                background=[])
    cli = _cli_eval("tas", folder)
    for key in ("accuracy", "edit", "F1@10", "F1@25", "F1@50"):
        assert res[key] == pytest.approx(metrics[key]) and cli[key] == pytest.approx(metrics[key]), key
    assert metrics["accuracy"] > 0
    _assert_predicts_like_the_trainer(tmp_path / "out" / "model.pt", pred, shared_data, "nw_ucla_concat",
                                      feature_cache)


@pytest.mark.slow
def test_actionformer_with_csa_trains_and_round_trips_through_eval_tad(tmp_path, shared_data, feature_cache):
    # NW-UCLA concatenations (real sequences, short windows) keep this fast; the recipe is UTKinect's
    cfg = _config("utkinect_actionformer_csa", shared_data, tmp_path / "out", "optim.epochs=10",
                  "optim.batch_size=1", "optim.warmup_epochs=1", "optim.lr=0.001", "model.loss_normalizer=20",
                  "data.protocol=nw_ucla_concat",
                  f"data.root={shared_data / 'skeleton' / 'nw_ucla'}", "data.options={}", "data.max_videos=3",
                  "features.window=32", "features.stride=8", f"features.cache={feature_cache}")
    assert cfg.model.options["csa"] is True
    train_localization(cfg)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"]]
    assert losses[-1] < 0.7 * losses[0], losses
    folder = tmp_path / "out" / "eval"
    pred = store.load(folder / "pred")
    seg = schema.validate("segments", pred.segments)
    assert len(seg) and set(seg["task"]) == {"localization"}
    assert ((seg["score"] > 0) & (seg["score"] <= 1)).all() and (seg["t_end_s"] > seg["t_start_s"]).all()
    res = evaluate_detection(load_input("tad", folder / "gt", "gt"), load_input("tad", folder / "pred", "pred"),
                             tiou_thresholds=[0.3, 0.5, 0.7])
    cli = _cli_eval("tad", folder, "-O", "tiou_thresholds=[0.3,0.5,0.7]")
    for thr in ("0.3", "0.5", "0.7"):
        assert res["mAP"][thr] == pytest.approx(metrics[f"mAP@{thr}"])
        assert cli["mAP"][thr] == pytest.approx(metrics[f"mAP@{thr}"])
    _assert_predicts_like_the_trainer(tmp_path / "out" / "model.pt", pred, shared_data, "nw_ucla_concat",
                                      feature_cache)


@pytest.mark.slow
def test_lac_fine_tunes_the_skeleton_encoder_on_utkinect(tmp_path, shared_data):
    cfg = _config("utkinect_lac", shared_data, tmp_path / "out", "data.max_videos=2", "optim.epochs=3",
                  "lac.chunk=32", "optim.batch_size=4")
    path = train_segmentation(cfg)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"]]
    assert losses[-1] < losses[0], losses
    pred = store.load(tmp_path / "out" / "eval" / "pred")
    seg = schema.validate("segments", pred.segments)
    assert set(seg["label"]) <= set(load_untrimmed("utkinect_untrimmed", cfg.data.root).classes)
    # model.pt rebuilds without the starting checkpoint and predicts like the trained model
    _assert_predicts_like_the_trainer(path, pred, shared_data, "utkinect_untrimmed", tmp_path / "unused")
    model, meta = load_temporal_model(path)
    assert meta["task"] == "segmentation" and meta["head"] == "lac"
    x = torch.randn(2, 3, 32, 20, 1)
    trained = torch.load(tmp_path / "out" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())
    assert model(x).shape == (2, 11, 32)


@pytest.mark.slow
def test_asrf_trains_boundary_and_class_branches_on_real_sequences(tmp_path, shared_data):
    # real NW-UCLA concatenations; the whole-segment classifier is the shipped recognizer (same 10 classes)
    cfg = _config("nw_ucla_concat_asrf", shared_data, tmp_path / "out", "data.max_videos=2", "optim.epochs=4",
                  "lac.chunk=64", "optim.batch_size=4")
    path = train_segmentation(cfg)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"]]
    assert len(losses) == 4 and losses[-1] < 0.85 * losses[0], losses
    pred = store.load(tmp_path / "out" / "eval" / "pred")
    seg = schema.validate("segments", pred.segments)
    assert set(seg["task"]) == {"segmentation"} and seg["score"].between(0, 1).all()
    for vid, g in seg.groupby("video_id"):
        g = g.sort_values("frame_start")
        n = int(pred.videos.set_index("video_id").loc[vid, "n_frames"])
        assert g["frame_start"].iloc[0] == 0 and g["frame_end"].iloc[-1] == n
        assert (g["frame_start"].to_numpy()[1:] == g["frame_end"].to_numpy()[:-1]).all()
    # model.pt (no starting checkpoint needed) + predict_video give the trainer's rows, decoding included
    _assert_predicts_like_the_trainer(path, pred, shared_data, "nw_ucla_concat", tmp_path / "unused")
    model, meta = load_temporal_model(path)
    assert meta["head"] == "asrf" and meta["spec"]["asrf"]["segment_classifier"] == "builtin:nw_ucla_stgcnpp"
    logits, boundary = model(torch.randn(2, 3, 32, 20, 1))
    assert logits.shape == (2, 10, 32) and boundary.shape == (2, 32)


def test_asrf_decoding_cuts_at_boundary_peaks_and_gives_each_segment_one_label():
    from videoact.heads.segmentation.asrf import boundary_targets, decode_segments, refine

    # a run change and an instance start inside a run are both boundaries; step 0 never is
    np.testing.assert_array_equal(boundary_targets(np.array([0, 0, 1, 1, 1, 1]), [0, 2, 4]), [0, 0, 1, 0, 1, 0])
    b = np.zeros(30)
    b[[10, 11, 12]] = [0.6, 0.9, 0.7]  # one peak at 11
    b[[14, 20]] = [0.8, 0.4]  # 14: too close to 11 (min_distance 5); 20: below the threshold
    np.testing.assert_array_equal(decode_segments(b, threshold=0.5, min_distance=5), [0, 11])
    np.testing.assert_array_equal(decode_segments(b, threshold=0.3, min_distance=2), [0, 11, 14, 20])
    p = np.tile([[0.8, 0.2]], (30, 1))
    p[11:14] = [0.1, 0.9]  # a minority of the second segment prefers class 1
    out = refine(p, np.array([0, 11]))
    assert out.shape == (30, 2) and (out.argmax(1) == 0).all()
    np.testing.assert_allclose(out[11], p[11:].mean(0))
    # a whole-segment classifier that is sure of class 1 for the second segment wins at weight 1
    out = refine(p, np.array([0, 11]), segment_probs=lambda spans: np.array([[1.0, 0.0], [0.0, 1.0]]),
                 segment_weight=1.0)
    assert list(out.argmax(1)) == [0] * 11 + [1] * 19


@pytest.mark.slow
def test_stopped_segmentation_training_resumes_to_the_same_weights(tmp_path, shared_data, feature_cache):
    common = ("data.max_videos=2", "optim.epochs=4", "features.stride=8", "features.extra_windows=[]",
              f"features.cache={feature_cache}")
    full = train_segmentation(_config("nw_ucla_concat_mstcn", shared_data, tmp_path / "a", *common))
    stopped = train_segmentation(_config("nw_ucla_concat_mstcn", shared_data, tmp_path / "b", *common,
                                         "optim.stop_after=2"))
    assert stopped.name == "last.pt"
    resumed = train_segmentation(_config("nw_ucla_concat_mstcn", shared_data, tmp_path / "b", *common))
    a = torch.load(full, weights_only=True)["state_dict"]
    b = torch.load(resumed, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match=r"different config \(optim\.lr: 0\.0005 -> 0\.01\)"):
        train_segmentation(_config("nw_ucla_concat_mstcn", shared_data, tmp_path / "b", *common, "optim.lr=0.01"))


# ------------------------------------------------------------------------------------------- features


class _Counting:
    """A sequence backbone that counts the windows it encodes."""

    def __init__(self, inner) -> None:
        self.inner, self.windows = inner, 0
        self.name, self.dim = inner.name, inner.dim

    def key(self) -> dict:
        return self.inner.key()

    def num_frames(self, x: np.ndarray) -> int:
        return self.inner.num_frames(x)

    def encode(self, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        self.windows += len(index)
        return self.inner.encode(x, index)


def test_feature_cache_is_reused_and_invalidated_by_its_key(tmp_path, nw_concat):
    seq = nw_concat.test[0]
    torch.manual_seed(0)
    net = skeleton_backbone(name="stgcnpp", layout="kinect20", width=0.125, stages=[1, 1])
    bb = _Counting(net)
    kw = {"window": 32, "stride": 8, "video_id": seq.name, "cache_dir": tmp_path}
    first = sequence_features(seq.keypoints, bb, **kw)
    n = len(window_index(seq.num_steps, window=32, stride=8))
    assert first.shape == (n, bb.dim) and bb.windows == n
    assert (tmp_path / f"{seq.name}.npy").is_file() and (tmp_path / f"{seq.name}.json").is_file()
    again = sequence_features(seq.keypoints, bb, **kw)
    assert bb.windows == n and np.array_equal(first, again)  # read back, not recomputed
    sequence_features(seq.keypoints, bb, **{**kw, "stride": 16})  # another stride: recomputed
    assert bb.windows == n + len(window_index(seq.num_steps, window=32, stride=16))
    count = bb.windows
    sequence_features(seq.keypoints[:, :-5], bb, **{**kw, "stride": 16})  # another input: recomputed
    assert bb.windows > count
    count = bb.windows
    with torch.no_grad():
        next(net.model.parameters()).add_(0.01)  # other weights: recomputed
    changed = sequence_features(seq.keypoints[:, :-5], bb, **{**kw, "stride": 16})
    assert bb.windows > count and changed.shape[1] == bb.dim
    key = json.loads((tmp_path / f"{seq.name}.json").read_text())["key"]
    assert key["backbone"]["name"] == "stgcnpp" and key["stride"] == 16 and key["window"] == 32


def test_window_features_match_the_recognizer_on_a_real_sequence(nw_concat):
    """The shipped model's pooled window features give its own class scores through its classifier."""

    seq = nw_concat.test[1]
    bb = skeleton_backbone(load_recognizer("builtin:nw_ucla_stgcnpp"))
    feats = sequence_features(seq.keypoints, bb, window=32, stride=16, video_id=seq.name)
    clf = load_recognizer("builtin:nw_ucla_stgcnpp")
    idx = window_index(seq.num_steps, window=32, stride=16)
    probs = clf.predict_proba([seq.keypoints[:, i] for i in idx[:4]])
    with torch.no_grad():
        via_feats = torch.softmax(clf.model.fc(torch.from_numpy(feats[:4])), -1).numpy()
    np.testing.assert_allclose(via_feats, probs, atol=1e-5)


@pytest.mark.parametrize("net", list_models())
def test_every_registered_skeleton_network_gives_feature_sequences(net, nw_concat):
    seq = nw_concat.test[2]
    torch.manual_seed(0)
    bb = skeleton_backbone(name=net, layout="kinect20", num_classes=10)
    feats = sequence_features(seq.keypoints[:, :64], bb, window=16, stride=32, video_id=seq.name)
    assert feats.shape == (2, bb.dim) and np.isfinite(feats).all()


# ----------------------------------------------------------------------------------------------- NMS


def test_gaussian_soft_nms_decays_overlaps_instead_of_dropping_them():
    segs = np.array([[0.0, 10.0], [1.0, 11.0], [20.0, 30.0], [0.0, 10.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.05])
    out_s, out_c = soft_nms(segs, scores, sigma=0.5, min_score=0.001)
    iou = 9.0 / 11.0
    second = 0.8 * np.exp(-iou**2 / 0.5)
    # the twin of the best segment (tIoU 1) keeps 0.05 * exp(-2); the far segment is untouched
    np.testing.assert_allclose(out_c, [0.9, 0.7, second, 0.05 * np.exp(-1 / 0.5) * np.exp(-(iou**2) / 0.5)],
                               rtol=1e-9)
    np.testing.assert_array_equal(out_s[:3], segs[[0, 2, 1]])
    # hard NMS drops what overlaps more than the threshold; a high min_score drops decayed segments
    hard_s, _ = soft_nms(segs, scores, method="hard", iou_threshold=0.5)
    np.testing.assert_array_equal(hard_s, segs[[0, 2]])
    _, kept = soft_nms(segs, scores, min_score=0.3)
    np.testing.assert_allclose(kept, [0.9, 0.7])
    # per class: overlapping segments of different classes do not suppress each other
    _, bc, bl = batched_soft_nms(segs[:2], scores[:2], np.array([0, 1]))
    np.testing.assert_allclose(bc, [0.9, 0.8])
    assert list(bl) == [0, 1]
    assert tiou_matrix(segs[:1], segs[1:2])[0, 0] == pytest.approx(iou)


# ------------------------------------------------------------------------------------------- protocols


def test_untrimmed_protocols_split_subjects_and_views(shared_data, nw_concat):
    utk = load_untrimmed("utkinect_untrimmed", shared_data / "skeleton" / "utkinect_action3d")
    assert {s.subject for s in utk.train} == {2, 5, 7, 8, 9} and {s.subject for s in utk.test} == {1, 3, 4, 6, 10}
    assert utk.classes[-1] == "background" and len(utk.train) == len(utk.test) == 10
    rec = next(s for s in utk.test if s.name == "s03_e01")
    # the corrected label file: push is 3556-3622 (the original file's 2556 would cover other actions)
    assert (6, 3556, 3623) in rec.segments
    assert rec.num_steps == -(-rec.n_frames // rec.step_frames) and rec.frame_labels[3556] == 6
    val = load_untrimmed("utkinect_untrimmed", shared_data / "skeleton" / "utkinect_action3d", validation=True)
    assert {s.subject for s in val.test} == {8, 9} and {s.subject for s in val.train} == {2, 5, 7}
    nw = nw_concat  # split view3_xsub: the view the shipped model never saw, subjects odd / even
    assert {s.meta["view"] for s in nw.train + nw.test} == {3}
    assert {s.subject for s in nw.train} == {1, 3, 5, 7, 9} and {s.subject for s in nw.test} == {2, 4, 6, 8, 10}
    xview = load_untrimmed("nw_ucla_concat", shared_data / "skeleton" / "nw_ucla", split="xview")
    for bench, total in ((nw, 460), (xview, 1474)):  # every sequence of 10 frames or more, once
        train_clips = [c for s in bench.train for c in s.meta["clips"]]
        test_clips = [c for s in bench.test for c in s.meta["clips"]]
        assert len(set(train_clips)) == len(train_clips) and len(set(test_clips)) == len(test_clips)
        assert len(train_clips) + len(test_clips) == total and not set(train_clips) & set(test_clips)
    assert {s.meta["view"] for s in xview.test} == {3} and {s.meta["view"] for s in xview.train} == {1, 2}
    for s in nw.test[:5]:
        assert s.n_frames == s.keypoints.shape[1] and sum(b - a for _, a, b in s.segments) == s.n_frames
        spine = s.keypoints[0, :, 1]
        for _, a, _ in s.segments[1:]:  # clips join at the spine joint: no jump of the whole body
            np.testing.assert_allclose(spine[a], spine[a - 1], atol=1e-5)


def test_to_grid_interpolates_between_sparse_rows():
    x = np.zeros((1, 3, 1, 3), np.float32)
    x[0, :, 0, 0] = [0.0, 4.0, 8.0]
    grid = to_grid(x, np.array([2, 6, 6]), n_frames=10, step=2)  # rows at frames 2 and 6 (twice: averaged)
    # step centres 0.5, 2.5, 4.5, 6.5, 8.5 -> held at 0 before frame 2, then linear towards 6 (mean 6.0)
    np.testing.assert_allclose(grid[0, :, 0, 0], [0.0, 0.75, 3.75, 6.0, 6.0])


def test_segmentation_rows_and_window_votes():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6]])
    rows = segmentation_rows(probs, video_id="v", fps=10.0, classes=("a", "b"), label_space="ab", source="m")
    t = Tables(segments=rows).validated()
    assert list(t.segments["label"]) == ["a", "b"] and list(t.segments["frame_end"]) == [2, 5]
    np.testing.assert_allclose(t.segments["score"], [0.85, 0.7])
    assert t.segments["t_end_s"].iloc[-1] == pytest.approx(0.5)
    votes = window_votes(probs, span=3)  # windows i-1..i+1
    np.testing.assert_allclose(votes[2], probs[1:4].mean(0))
    np.testing.assert_allclose(votes[0], probs[:2].mean(0))
    pd.testing.assert_frame_equal(t.segments, Tables(segments=rows).validated().segments)


def test_video_backbone_sequence_from_a_real_video(tmp_path, shared_data):
    """A video ViT over windows of a real mp4, decoded on demand; the file's identity keys the cache."""
    from videoact.decode.source import VideoSource
    from videoact.features.sequence import video_backbone

    torch.manual_seed(0)
    bb = video_backbone("vit_tiny", img_size=64, num_frames=8, short_side=72, crop=64, frame_step=2)
    with VideoSource(shared_data / "videos" / "demo.mp4") as src:
        feats = sequence_features(src, bb, window=16, stride=40, video_id="demo", cache_dir=tmp_path)
        n = len(src)
        frames = src.get_frames(window_index(n, window=16, stride=40)[3]).numpy()  # (16, H, W, 3)
    assert feats.shape == (-(-n // 40), 64) and np.isfinite(feats).all()
    # the same window from an in-memory array gives the same vector
    one = bb.encode(frames, np.arange(16)[None])
    np.testing.assert_allclose(one[0], feats[3], atol=1e-5)
    st = (shared_data / "videos" / "demo.mp4").stat()
    identity = json.loads((tmp_path / "demo.json").read_text())["key"]["identity"]
    assert identity.endswith(f":{st.st_size}:{st.st_mtime_ns}")
