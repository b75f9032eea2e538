"""``videoact.viz`` on a real run and real evaluation results: PNG sizes, pixels where boxes are, overlay mp4s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import videoact
import videoact.viz as viz
from videoact.annotations.formats import import_annotations
from videoact.decode.source import VideoSource
from videoact.eval import evaluate_ava, evaluate_recognition


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _not_blank(img: np.ndarray, min_fraction: float = 0.01) -> None:
    """More than ``min_fraction`` of the pixels differ from the background (the most common colour)."""
    flat = img.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    assert (flat != background).any(axis=1).mean() > min_fraction


def _red(img: np.ndarray) -> np.ndarray:
    return (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)


@pytest.fixture(scope="module")
def run(short_run: Path) -> videoact.Tables:
    return videoact.load(short_run)


def test_timeline_stacks_ground_truth_above_predictions(run: videoact.Tables, tmp_path: Path) -> None:
    best = viz.top1(run.segments)
    gt = best.assign(source="ground_truth:review", score=1.0)
    fig = viz.timeline(pd.concat([best, gt], ignore_index=True), figsize=(10, 4), dpi=100,
                       save=tmp_path / "t.png")
    img = _png(tmp_path / "t.png")
    assert img.shape == (400, 1000, 3)
    _not_blank(img)
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows[0].startswith("ground_truth:review") and rows[-1].startswith("nw_ucla_stgcnpp")
    assert len(rows) == 2 * best["label"].nunique()


def test_confusion_matrix_and_per_class_ap_from_real_results(shared_data: Path, tmp_path: Path) -> None:
    ava = shared_data / "detection" / "ava" / "mmaction2_tests_eval_detection"
    gt = import_annotations("ava", ava / "gt.csv", kind="gt", label_map=ava / "action_list.txt")
    pred = import_annotations("ava", ava / "pred.csv", kind="pred", label_map=ava / "action_list.txt")
    res = evaluate_ava(gt, pred)
    fig = viz.per_class_ap(res, figsize=(8, 6), dpi=100, save=tmp_path / "ap.png")
    img = _png(tmp_path / "ap.png")
    assert img.shape == (600, 800, 3)
    _not_blank(img)
    bars = fig.axes[0].patches
    expected = sorted((v for v in res["per_class_AP"].values() if v is not None), reverse=True)
    assert [b.get_width() for b in bars] == pytest.approx(expected)

    # recognition: the top-1 class of the ActivityNet-style tables vs a shuffled truth gives off-diagonal cells
    labels = pd.DataFrame({"label_space": "s", "id": [0, 1, 2], "name": ["a", "b", "c"]})
    segs = pd.DataFrame({"video_id": ["v0", "v1", "v2", "v3"], "task": "recognition", "t_start_s": 0.0,
                         "t_end_s": 1.0, "label_id": [0, 1, 2, 2], "label_space": "s", "score": 1.0, "source": "gt"})
    gt_t = videoact.Tables(segments=segs, labels=labels)
    pred_t = videoact.Tables(segments=segs.assign(label_id=[0, 2, 2, 1], source="p"), labels=labels)
    rec = evaluate_recognition(gt_t, pred_t)
    fig = viz.confusion_matrix(rec, figsize=(7, 6), dpi=100, save=tmp_path / "cm.png")
    img = _png(tmp_path / "cm.png")
    assert img.shape == (600, 700, 3)
    _not_blank(img)
    shown = fig.axes[0].images[0].get_array()
    assert np.allclose(shown, [[1, 0, 0], [0, 0, 1], [0, 0.5, 0.5]])


def test_draw_frame_puts_boxes_where_they_are(run: videoact.Tables, short_run: Path) -> None:
    uri = run.videos["uri"].iloc[0]
    with VideoSource(uri) as src:
        frame = src.get_frames([0]).numpy()[0]
    box = run.boxes[run.boxes["frame"] == 0].iloc[[0]]
    drawn = viz.draw_frame(frame, boxes=box, width=2)
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (box[["x1", "y1", "x2", "y2"]].to_numpy()[0] * [w - 1, h - 1, w - 1, h - 1]).round().astype(int)
    red = _red(drawn) & ~_red(frame)
    ys, xs = np.nonzero(red)
    # the outline's extent is the box (a label text may sit above it, so only the sides and bottom are tight)
    inside = ys >= y1 - 1
    assert abs(xs[inside].min() - x1) <= 1 and abs(xs[inside].max() - x2) <= 1
    assert abs(ys[inside].max() - y2) <= 1
    mid = (y1 + y2) // 2
    assert red[mid, x1 - 1:x1 + 2].any() and red[mid, x2 - 1:x2 + 2].any() and not red[mid, x1 + 5:x2 - 5].any()
    sk = run.skeletons[(run.skeletons["frame"] == 0) & (run.skeletons["coord_space"] == "image_px")]
    with_bones = viz.draw_frame(frame, skeletons=sk)
    green = (with_bones[..., 1] > 200) & (with_bones[..., 0] < 60) & (with_bones[..., 2] < 60)
    kp = np.asarray(sk["keypoints"].iloc[0]).reshape(-1, 2)
    _, gx = np.nonzero(green)
    assert green.sum() > 500 and kp[:, 0].min() - 5 <= gx.mean() <= kp[:, 0].max() + 5


def test_keyframe_grid_draws_boxes_in_the_right_panel_place(run: videoact.Tables, tmp_path: Path) -> None:
    uri = run.videos["uri"].iloc[0]
    frames = [0, 10, 20, 30]
    fig = viz.keyframe_grid(uri, boxes=run.boxes, frames=frames, ncols=4, figsize=(12, 3), dpi=100,
                            save=tmp_path / "g.png")
    img = _png(tmp_path / "g.png")
    assert img.shape == (300, 1200, 3)
    fig.canvas.draw()
    height = fig.canvas.get_width_height()[1]
    for ax, f in zip(fig.axes, frames, strict=True):
        b = run.boxes[run.boxes["frame"] == f].iloc[0]
        w_img, h_img = 1920, 1080
        (px1, py1), (px2, py2) = ax.transData.transform([(b.x1 * (w_img - 1), b.y1 * (h_img - 1)),
                                                         (b.x2 * (w_img - 1), b.y2 * (h_img - 1))])
        # display coordinates have y up; PNG rows go down
        top, bottom = height - max(py1, py2), height - min(py1, py2)
        x0, x1 = round(min(px1, px2)), round(max(px1, px2))
        panel = _red(img[int(top) - 2:int(bottom) + 3, x0 - 2:x1 + 3])
        ys, xs = np.nonzero(panel)
        assert len(xs), f"no red outline near the box of frame {f}"
        assert xs.min() <= 4 and xs.max() >= panel.shape[1] - 5  # both vertical sides drawn at the box's x
        assert ys.max() >= panel.shape[0] - 5


@pytest.mark.slow
def test_overlay_video_decodes_with_the_right_frames_and_size(run: videoact.Tables, tmp_path: Path) -> None:
    uri = run.videos["uri"].iloc[0]
    out = viz.write_overlay_video(uri, tmp_path / "o.mp4", boxes=run.boxes, skeletons=run.skeletons,
                                  segments=run.segments, start=4, stop=16)
    data = out.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # faststart: playable while downloading
    with VideoSource(out) as src:
        info = src.info
        assert (info.n_frames, info.width, info.height, info.codec, info.pix_fmt) == (12, 1920, 1080, "h264",
                                                                                     "yuv420p")
        assert abs(info.fps - float(run.videos["fps"].iloc[0])) < 0.01
        first = src.get_frames([0]).numpy()[0]
    b = run.boxes[run.boxes["frame"] == 4].iloc[0]
    x1, y1, y2 = round(b.x1 * 1919), round(b.y1 * 1079), round(b.y2 * 1079)
    edge = first[y1 + 20:y2 - 20, x1 - 1:x1 + 3].reshape(-1, 3).astype(int).mean(axis=0)
    assert edge[0] > 150 and edge[1] < 110 and edge[2] < 110  # the red box edge survives H.264
