"""Segmentation metrics against a plain transcription of ms-tcn ``eval.py``; the ``mstcn`` format round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videoact.annotations import store
from videoact.annotations.formats import FormatError, export_annotations, import_annotations
from videoact.cli import main
from videoact.eval import EvalError, evaluate_segmentation

BG = ["background"]


# --- reference: ms-tcn eval.py semantics, written as plainly as the original (frame loops, full DP table) ---


def _ref_segments(frames: list[str], bg: list[str]) -> tuple[list[str], list[int], list[int]]:
    labels, starts, ends = [], [], []
    last = frames[0]
    if frames[0] not in bg:
        labels.append(frames[0])
        starts.append(0)
    i = 0
    for i in range(len(frames)):
        if frames[i] != last:
            if frames[i] not in bg:
                labels.append(frames[i])
                starts.append(i)
            if last not in bg:
                ends.append(i)
            last = frames[i]
    if last not in bg:
        ends.append(i + 1)
    return labels, starts, ends


def _ref_edit(p: list[str], y: list[str]) -> float:
    m, n = len(p), len(y)
    d = np.zeros((m + 1, n + 1))
    d[:, 0] = np.arange(m + 1)
    d[0, :] = np.arange(n + 1)
    for j in range(1, n + 1):
        for i in range(1, m + 1):
            d[i, j] = d[i - 1, j - 1] if y[j - 1] == p[i - 1] else min(d[i - 1, j], d[i, j - 1], d[i - 1, j - 1]) + 1
    return (1 - d[-1, -1] / max(m, n)) * 100


def _ref_f(pred: list[str], gt: list[str], overlap: float, bg: list[str]) -> tuple[int, int, int]:
    pl, ps, pe = _ref_segments(pred, bg)
    yl, ys, ye = _ref_segments(gt, bg)
    tp = fp = 0
    hits = np.zeros(len(yl))
    for j in range(len(pl)):
        inter = np.minimum(pe[j], ye) - np.maximum(ps[j], ys)
        union = np.maximum(pe[j], ye) - np.minimum(ps[j], ys)
        iou = (1.0 * inter / union) * np.array([pl[j] == yl[x] for x in range(len(yl))])
        idx = int(np.array(iou).argmax())
        if iou[idx] >= overlap and not hits[idx]:
            tp += 1
            hits[idx] = 1
        else:
            fp += 1
    return tp, fp, len(yl) - int(hits.sum())


def _reference(videos: dict[str, tuple[list[str], list[str]]], bg: list[str]) -> dict[str, float]:
    correct = total = 0
    edit = 0.0
    tp, fp, fn = np.zeros(3), np.zeros(3), np.zeros(3)
    for gt, rec in videos.values():
        for i in range(len(gt)):
            total += 1
            correct += gt[i] == rec[i]
        p, _, _ = _ref_segments(rec, bg)
        y, _, _ = _ref_segments(gt, bg)
        edit += _ref_edit(p, y)
        for s, ov in enumerate((0.1, 0.25, 0.5)):
            a, b, c = _ref_f(rec, gt, ov, bg)
            tp[s], fp[s], fn[s] = tp[s] + a, fp[s] + b, fn[s] + c
    out = {"accuracy": 100 * correct / total, "edit": edit / len(videos)}
    for s, key in enumerate(("F1@10", "F1@25", "F1@50")):
        with np.errstate(invalid="ignore", divide="ignore"):
            prec, rec_ = tp[s] / (tp[s] + fp[s]), tp[s] / (tp[s] + fn[s])
            out[key] = float(np.nan_to_num(2 * prec * rec_ / (prec + rec_)) * 100)
    return out


def _write(folder: Path, videos: dict[str, list[str]], *, result: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for vid, frames in videos.items():
        if result:
            (folder / vid).write_text("### Frame level recognition: ###\n" + " ".join(frames))
        else:
            (folder / f"{vid}.txt").write_text("".join(f + "\n" for f in frames))
    return folder


_frames = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "background"]), st.integers(1, 6)),
                   min_size=1, max_size=8).map(lambda runs: [lab for lab, n in runs for _ in range(n)])


@st.composite
def _videos(draw: st.DrawFn) -> dict[str, tuple[list[str], list[str]]]:
    out = {}
    for v in range(draw(st.integers(1, 3))):
        gt = draw(_frames.filter(lambda f: any(x != "background" for x in f)))
        pred = draw(_frames)
        pred = (pred * (len(gt) // len(pred) + 1))[: len(gt)]
        out[f"vid{v}"] = (gt, pred)
    return out


@settings(max_examples=40, deadline=None)
@given(_videos())
def test_metrics_equal_mstcn_reference(videos: dict[str, tuple[list[str], list[str]]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        gt = import_annotations("mstcn", _write(Path(d) / "gt", {k: v[0] for k, v in videos.items()}, result=False))
        pred = import_annotations("mstcn", _write(Path(d) / "res", {k: v[1] for k, v in videos.items()}, result=True))
    ours = evaluate_segmentation(gt, pred)
    ref = _reference(videos, BG)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_background_is_configurable() -> None:
    videos = {"v": (["SIL", "SIL", "a", "a", "SIL"], ["SIL", "a", "a", "a", "SIL"])}
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        gt = import_annotations("mstcn", _write(Path(d) / "gt", {"v": videos["v"][0]}, result=False))
        pred = import_annotations("mstcn", _write(Path(d) / "res", {"v": videos["v"][1]}, result=True))
    sil = evaluate_segmentation(gt, pred, background=["SIL"])
    for key, value in _reference(videos, ["SIL"]).items():
        assert sil[key] == pytest.approx(value), key
    assert sil["edit"] == 100.0
    default = evaluate_segmentation(gt, pred)  # "SIL" is a class under ms-tcn's default
    assert default["edit"] == pytest.approx(_reference(videos, BG)["edit"]) and default["edit"] == 100.0
    assert default["F1@50"] == pytest.approx(_reference(videos, BG)["F1@50"])


def test_mstcn_round_trip_is_byte_identical(tmp_path: Path) -> None:
    gt_dir = tmp_path / "data" / "gtea" / "groundTruth"
    gt_dir.mkdir(parents=True)
    (gt_dir / "S1_Cheese_C1.txt").write_bytes(b"background\r\ntake\r\ntake\r\nopen\r\nbackground\r\n")
    (gt_dir / "S2_Tea_C1.txt").write_bytes(b"take\nput\nput")  # no final newline
    (tmp_path / "data" / "gtea" / "mapping.txt").write_text("0 take\n1 open\n2 put\n10 background\n")
    res = tmp_path / "results" / "split_1"
    res.mkdir(parents=True)
    (res / "S1_Cheese_C1").write_bytes(b"### Frame level recognition: ###\nbackground take open open background")
    gt = import_annotations("mstcn", gt_dir)
    assert list(gt.segments["label"]) == ["background", "take", "open", "background", "take", "put"]
    assert list(gt.segments["label_id"]) == [10, 0, 1, 10, 0, 2]  # mapping.txt beside groundTruth/
    assert list(gt.segments["frame_end"]) == [1, 3, 4, 5, 1, 3] and gt.segments["task"].eq("segmentation").all()
    # through the on-disk store and back out
    assert main(["import", "mstcn", str(gt_dir), "-o", str(tmp_path / "imp")]) == 0
    for tables, src, out in ((gt, gt_dir, tmp_path / "out1"), (store.load(tmp_path / "imp"), gt_dir, tmp_path / "o2"),
                             (import_annotations("mstcn", res), res, tmp_path / "out3")):
        written = export_annotations("mstcn", tables, out)
        assert sorted(p.name for p in written) == sorted(p.name for p in src.iterdir())
        for p in written:
            assert p.read_bytes() == (src / p.name).read_bytes()


def test_mstcn_bad_files(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(FormatError, match="empty file"):
        import_annotations("mstcn", tmp_path / "empty.txt")
    (tmp_path / "blank.txt").write_text("a\n\nb\n")
    with pytest.raises(FormatError, match=r"blank.txt:2: bad frame label"):
        import_annotations("mstcn", tmp_path / "blank.txt")
    (tmp_path / "m.txt").write_text("0 a\n")
    (tmp_path / "v.txt").write_text("a\nb\n")
    with pytest.raises(FormatError, match=r"v.txt:2: label 'b' is not in the mapping"):
        import_annotations("mstcn", tmp_path / "v.txt", mapping=tmp_path / "m.txt")


def test_bad_input_and_counted_treatments(tmp_path: Path) -> None:
    gt = import_annotations("mstcn", _write(tmp_path / "gt", {"v": ["a", "a", "b"], "w": ["a"]}, result=False))
    short = import_annotations("mstcn", _write(tmp_path / "short", {"v": ["a", "a"], "w": ["a"]}, result=True))
    with pytest.raises(EvalError, match="has 2 frames, the ground truth 3"):
        evaluate_segmentation(gt, short)
    long = import_annotations("mstcn", _write(tmp_path / "long", {"v": ["a", "a", "b", "b"], "w": ["a"]},
                                              result=True))
    out = evaluate_segmentation(gt, long)
    assert out["accuracy"] == 100.0 and out["counts"]["extra_pred_frames"] == 1
    missing = import_annotations("mstcn", _write(tmp_path / "missing", {"v": ["a", "a", "b"]}, result=True))
    with pytest.raises(EvalError, match="no segmentation for video 'w'"):
        evaluate_segmentation(gt, missing)
    gap = long.segments.copy()
    gap = gap[~((gap["video_id"] == "v") & (gap["frame_start"] == 0))]
    from videoact.annotations.tables import Tables

    with pytest.raises(EvalError, match="gap at frame 0"):
        evaluate_segmentation(gt, Tables(segments=gap))
    bg = import_annotations("mstcn", _write(tmp_path / "bg", {"v": ["background"] * 3, "w": ["a"]}, result=False))
    out = evaluate_segmentation(bg, import_annotations(
        "mstcn", _write(tmp_path / "bgp", {"v": ["background"] * 3, "w": ["a"]}, result=True)))
    assert out["counts"]["videos_without_edit"] == 1 and out["edit"] == 100.0


def test_cli_tas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "gt", {"v": ["a", "a", "b", "b"]}, result=False)
    _write(tmp_path / "res", {"v": ["a", "b", "b", "b"]}, result=True)
    assert main(["eval", "tas", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "res"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy"] == 75.0 and out["edit"] == 100.0 and set(out) >= {"F1@10", "F1@25", "F1@50"}
