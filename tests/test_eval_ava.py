"""AVA frame-mAP: the real mmaction2 fixture, mmaction2's ``ava_eval`` as an independent reference, bad input."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import types
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videoact.annotations import schema
from videoact.annotations.formats import import_annotations
from videoact.annotations.schema import AnnotationError
from videoact.annotations.tables import Tables
from videoact.cli import main
from videoact.eval import EvalError, evaluate, evaluate_ava

FIXTURE = "detection/ava/mmaction2_tests_eval_detection"
CLASSES = {1: "walk", 20: "hold", 70: "talk"}  # one class in each sub-mAP range


def _labels(classes: dict[int, str] = CLASSES) -> pd.DataFrame:
    return pd.DataFrame({"label_space": "ava", "id": list(classes), "name": list(classes.values())})


def _boxes(rows: list[tuple], *, gt: bool) -> pd.DataFrame:
    """rows: (video, t, x1, y1, x2, y2, label_id, actor_or_score) or (video, t, flag) for flagged keyframes."""
    recs = []
    for i, r in enumerate(rows):
        rec = {"video_id": r[0], "task": "detection", "t_s": float(r[1]), "score": 1.0, "seq": i,
               "source": "ground_truth:ava" if gt else "predictions:test", "label_space": "ava"}
        if len(r) == 3:
            rec["flag"] = r[2]
        else:
            rec.update(dict(zip(("x1", "y1", "x2", "y2"), map(float, r[2:6]), strict=True)), label_id=r[6])
            rec["actor_id" if gt else "score"] = r[7]
        recs.append(rec)
    return pd.DataFrame(recs) if recs else schema.empty("boxes")


def _tables(gt_rows: list[tuple], pred_rows: list[tuple]) -> tuple[Tables, Tables]:
    return (Tables(boxes=_boxes(gt_rows, gt=True), labels=_labels()), Tables(boxes=_boxes(pred_rows, gt=False)))


class _SerialPool:
    """mmaction2's ava_eval opens a 32-process pool per call; run its map in this process instead."""

    def __init__(self, *args: object) -> None:
        pass

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return list(map(fn, items))


def _mmaction2_ava(gt_rows: list[tuple], pred_rows: list[tuple], excluded: list[tuple] = ()) -> dict[str, float]:
    """Run mmaction2's ``ava_eval`` on csv files written from the same rows (7/8-column rows only)."""
    from mmaction.evaluation.functional import ava_utils

    def line(r: tuple) -> str:
        return ",".join([r[0], f"{int(r[1]):04d}", *map(repr, map(float, r[2:6])), str(r[6]), repr(r[7])])

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "gt.csv").write_text("".join(line(r) + "\n" for r in gt_rows if len(r) == 8))
        (root / "pred.csv").write_text("".join(line(r) + "\n" for r in pred_rows))
        (root / "labels.pbtxt").write_text("".join(f'item {{\n  name: "{n}"\n  id: {i}\n}}\n'
                                                   for i, n in CLASSES.items()))
        exc = None
        if excluded:
            (root / "excl.csv").write_text("".join(f"{v},{int(t):04d}\n" for v, t in excluded))
            exc = str(root / "excl.csv")
        orig = ava_utils.multiprocessing
        ava_utils.multiprocessing = types.SimpleNamespace(Pool=_SerialPool)
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ava_utils.ava_eval(str(root / "pred.csv"), "mAP", str(root / "labels.pbtxt"),
                                          str(root / "gt.csv"), exc, verbose=False)
        finally:
            ava_utils.multiprocessing = orig


def _close(a: float | None, b: float) -> bool:
    return (a is None and np.isnan(b)) or (a is not None and abs(a - b) <= 1e-6)


def _assert_matches_reference(ours: dict, ref: dict[str, float]) -> None:
    assert _close(ours["frame_mAP@0.5"], ref["overall"]), (ours, ref)
    for name in ("person_movement", "object_manipulation", "person_interaction"):
        assert _close(ours["sub_mAP"][name], ref[name]), (name, ours, ref)


# ------------------------------------------------------------------------------------------------ real fixture


def _fixture(shared_data: Path) -> tuple[Tables, Tables]:
    d = shared_data / FIXTURE
    gt = Tables.concat([import_annotations("ava", d / "gt.csv", kind="gt"),
                        import_annotations("ava-labelmap", d / "action_list.txt")])
    return gt, import_annotations("ava", d / "pred.csv", kind="pred")


def test_fixture_official_frame_map(shared_data: Path) -> None:
    gt, pred = _fixture(shared_data)
    out = evaluate_ava(gt, pred)
    assert out["variant"] == "official"
    assert out["frame_mAP@0.5"] == pytest.approx(0.0938552189, abs=1e-9)
    assert out["per_class_AP"] == pytest.approx({"action1": 0.1704545454, "action2": 0.0, "action3": 0.1111111111},
                                                abs=1e-9)
    assert out["sub_mAP"]["person_movement"] == pytest.approx(0.0938552189, abs=1e-9)
    assert out["sub_mAP"]["person_interaction"] is None
    assert out["counts"]["gt_boxes"] == 12 and out["counts"]["pred_rows"] == 30


def test_fixture_mmaction2_variant_equals_reference(shared_data: Path) -> None:
    gt, pred = _fixture(shared_data)
    ours = evaluate_ava(gt, pred, variant="mmaction2")
    assert ours["frame_mAP@0.5"] == pytest.approx(0.09385522, abs=1e-8)  # mmaction2 test_ava_detection


def test_cli_on_fixture_prints_json(shared_data: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = shared_data / FIXTURE
    args = ["eval", "ava", "--gt", str(d / "gt.csv"), "--pred", str(d / "pred.csv"),
            "--label-map", str(d / "action_list.txt")]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frame_mAP@0.5"] == pytest.approx(0.0938552189, abs=1e-9)
    # the same through imported directories
    assert main(["import", "ava", str(d / "gt.csv"), "-o", str(tmp_path / "gt"), "--kind", "gt"]) == 0
    assert main(["import", "ava-labelmap", str(d / "action_list.txt"), "-o", str(tmp_path / "gt"), "--append"]) == 0
    assert main(["import", "ava", str(d / "pred.csv"), "-o", str(tmp_path / "pred"), "--kind", "pred"]) == 0
    capsys.readouterr()
    assert main(["eval", "ava", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred")]) == 0
    text = capsys.readouterr().out
    assert "frame_mAP@0.5" in text and "0.093855" in text


# ------------------------------------------------------------------------------------------------ property tests

_coord = st.integers(0, 16)


@st.composite
def _scene(draw: st.DrawFn, max_dets: int = 8) -> tuple[list[tuple], list[tuple]]:
    """Random keyframes with ground truth and detections on a 1/16 grid (exact in float32 and float64)."""
    n_keys = draw(st.integers(1, 3))
    gt: list[tuple] = []
    dets: list[tuple] = []
    for k in range(n_keys):
        vid, t = f"vid{k % 2}", 902 + k
        boxes = []
        for person in range(draw(st.integers(1, 3))):
            x1, y1 = draw(st.integers(0, 12)), draw(st.integers(0, 12))
            box = (x1 / 16, y1 / 16, draw(st.integers(x1 + 1, 16)) / 16, draw(st.integers(y1 + 1, 16)) / 16)
            boxes.append(box)
            for c in draw(st.lists(st.sampled_from(list(CLASSES)), min_size=1, max_size=2, unique=True)):
                gt.append((vid, t, *box, c, person))
        for _ in range(draw(st.integers(0, max_dets))):
            if boxes and draw(st.booleans()):
                b = draw(st.sampled_from(boxes))
                dx = draw(st.integers(-2, 2)) / 16
                box = (max(0.0, b[0] + dx), b[1], min(1.0, b[2] + dx), b[3])
                if box[2] <= box[0]:
                    box = b
            else:
                x1, y1 = draw(_coord.filter(lambda v: v < 16)), draw(_coord.filter(lambda v: v < 16))
                box = (x1 / 16, y1 / 16, draw(st.integers(x1 + 1, 16)) / 16, draw(st.integers(y1 + 1, 16)) / 16)
            dets.append((vid, t, *box, draw(st.sampled_from(list(CLASSES)))))
    # detections on a keyframe without ground truth: both definitions ignore them
    if draw(st.booleans()) or not dets:
        dets.append(("vid9", 903, 0.0, 0.0, 0.5, 0.5, 1))
    # distinct scores (k/1024 is exact in float32), so rank ties cannot differ between implementations
    perm = draw(st.permutations(range(len(dets))))
    preds = [(*d, (p + 1) / 1024) for d, p in zip(dets, perm, strict=True)]
    return gt, preds


def _detected_classes_cover_gt(gt: list[tuple], preds: list[tuple]) -> list[tuple]:
    """Add one detection per ground-truth class that has none on a ground-truth keyframe."""
    keys = {(r[0], r[1]) for r in gt}
    have = {r[6] for r in preds if (r[0], r[1]) in keys}
    extra = [(r[0], r[1], 0.0, 0.0, 1.0, 1.0, r[6], 1 / 2048) for r in gt if r[6] not in have]
    return preds + list({e[6]: e for e in extra}.values())


_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_scene())
def test_mmaction2_variant_equals_mmaction2_ava_eval(scene: tuple[list[tuple], list[tuple]]) -> None:
    gt_rows, pred_rows = scene
    gt, pred = _tables(gt_rows, pred_rows)
    _assert_matches_reference(evaluate_ava(gt, pred, variant="mmaction2"), _mmaction2_ava(gt_rows, pred_rows))


@_SETTINGS
@given(_scene())
def test_official_equals_mmaction2_where_definitions_coincide(scene: tuple[list[tuple], list[tuple]]) -> None:
    # Coincide: every ground-truth class has a detection on a ground-truth keyframe, <= 50 detections per
    # keyframe, no empty boxes, no 2-column keyframes, no exclusions.
    gt_rows, pred_rows = scene
    pred_rows = _detected_classes_cover_gt(gt_rows, pred_rows)
    gt, pred = _tables(gt_rows, pred_rows)
    official = evaluate_ava(gt, pred)
    _assert_matches_reference(official, _mmaction2_ava(gt_rows, pred_rows))
    assert official["per_class_AP"] == evaluate_ava(gt, pred, variant="mmaction2")["per_class_AP"]


@_SETTINGS
@given(_scene())
def test_undetected_class_counts_zero_officially_and_is_dropped_by_mmaction2(scene: tuple) -> None:
    gt_rows, pred_rows = scene
    gt, pred = _tables(gt_rows, pred_rows)
    keys = {(r[0], r[1]) for r in gt_rows}
    gt_classes = {r[6] for r in gt_rows}
    detected = {r[6] for r in pred_rows if (r[0], r[1]) in keys} & gt_classes
    official, mm = evaluate_ava(gt, pred), evaluate_ava(gt, pred, variant="mmaction2")
    for c in gt_classes - detected:
        assert official["per_class_AP"][CLASSES[c]] == 0.0 and mm["per_class_AP"][CLASSES[c]] is None
    ref = _mmaction2_ava(gt_rows, pred_rows)
    if detected:
        # official mean = mmaction2's mean over the detected classes, rescaled to all classes with ground truth
        assert official["frame_mAP@0.5"] == pytest.approx(ref["overall"] * len(detected) / len(gt_classes), abs=1e-6)
    else:
        assert official["frame_mAP@0.5"] == 0.0 and np.isnan(ref["overall"])


def test_top50_cap_pooled_over_classes() -> None:
    gt_rows = [("v", 902, 0.0, 0.0, 0.5, 0.5, 1, 0)]
    # 50 high-scoring misses of class 20, then the one hit of class 1 with a lower score
    preds = [("v", 902, 0.5, 0.5, 1.0, 1.0, 20, 0.9 - i / 1000) for i in range(50)]
    preds.append(("v", 902, 0.0, 0.0, 0.5, 0.5, 1, 0.5))
    gt, pred = _tables(gt_rows, preds)
    official = evaluate_ava(gt, pred)
    assert official["per_class_AP"]["walk"] == 0.0  # the hit fell outside the pooled top 50
    assert official["counts"]["pred_rows_beyond_top50"] == 1
    mm = evaluate_ava(gt, pred, variant="mmaction2")
    assert mm["per_class_AP"]["walk"] == 1.0
    _assert_matches_reference(mm, _mmaction2_ava(gt_rows, preds))
    assert evaluate_ava(gt, pred, capacity=51)["per_class_AP"]["walk"] == 1.0


def test_empty_box_detections_are_removed_officially_but_fp_in_mmaction2() -> None:
    gt_rows = [("v", 902, 0.0, 0.0, 0.5, 0.5, 1, 0)]
    preds = [("v", 902, 0.25, 0.25, 0.25, 0.75, 1, 0.9), ("v", 902, 0.0, 0.0, 0.5, 0.5, 1, 0.8)]
    gt, pred = _tables(gt_rows, preds)
    official = evaluate_ava(gt, pred)
    assert official["frame_mAP@0.5"] == 1.0 and official["counts"]["pred_rows_empty_box"] == 1
    mm = evaluate_ava(gt, pred, variant="mmaction2")
    assert mm["frame_mAP@0.5"] == pytest.approx(0.5)
    _assert_matches_reference(mm, _mmaction2_ava(gt_rows, preds))


def test_two_column_keyframe_makes_detections_false_positives_officially() -> None:
    gt_rows = [("v", 902, 0.0, 0.0, 0.5, 0.5, 1, 0), ("v", 903, "empty")]
    preds = [("v", 903, 0.0, 0.0, 0.5, 0.5, 1, 0.9), ("v", 902, 0.0, 0.0, 0.5, 0.5, 1, 0.8)]
    gt, pred = _tables(gt_rows, preds)
    official = evaluate_ava(gt, pred)
    assert official["frame_mAP@0.5"] == pytest.approx(0.5)  # FP ranked first, then the TP
    assert official["counts"]["gt_empty_keyframes"] == 1
    mm = evaluate_ava(gt, pred, variant="mmaction2")
    assert mm["frame_mAP@0.5"] == 1.0  # the keyframe without boxes is not scored
    _assert_matches_reference(mm, _mmaction2_ava(gt_rows, preds))  # reference file without the 2-column row


def test_excluded_keyframes() -> None:
    gt_rows = [("v", 902, 0.0, 0.0, 0.5, 0.5, 1, 0), ("v", 903, 0.0, 0.0, 0.5, 0.5, 1, 0), ("v", 903, "excluded")]
    preds = [("v", 902, 0.0, 0.0, 0.5, 0.5, 1, 0.8), ("v", 903, 0.5, 0.5, 1.0, 1.0, 1, 0.9)]
    gt, pred = _tables(gt_rows, preds)
    official = evaluate_ava(gt, pred)
    assert official["frame_mAP@0.5"] == 1.0  # keyframe 903 left out of ground truth and detections
    assert official["counts"]["excluded_keyframes"] == 1
    # mmaction2 skips excluded keyframes when matching but still counts their ground truth (gt_count)
    mm = evaluate_ava(gt, pred, variant="mmaction2")
    assert mm["frame_mAP@0.5"] == pytest.approx(0.5)
    gt8 = [r for r in gt_rows if len(r) == 8]
    _assert_matches_reference(mm, _mmaction2_ava(gt8, preds, excluded=[("v", 903)]))


def test_no_fallback_to_second_best_box() -> None:
    gt_rows = [("v", 902, 0.0, 0.0, 0.5, 1.0, 1, 0), ("v", 902, 0.5, 0.0, 1.0, 1.0, 1, 1)]
    # both detections overlap the left person best; the second overlaps the right one with IoU 0.6 too
    preds = [("v", 902, 0.0, 0.0, 0.5, 1.0, 1, 0.9), ("v", 902, 0.1, 0.0, 0.6, 1.0, 1, 0.8)]
    gt, pred = _tables(gt_rows, preds)
    assert evaluate_ava(gt, pred)["frame_mAP@0.5"] == pytest.approx(0.5)


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_input() -> None:
    gt_rows = [("v", 902, 0.0, 0.0, 0.5, 0.5, 1, 0)]
    good = [("v", 902, 0.0, 0.0, 0.5, 0.5, 1, 0.9)]
    with pytest.raises(AnnotationError, match=r"normalised to \[0, 1\]"):
        evaluate_ava(*_tables(gt_rows, [("v", 902, 0.0, 0.0, 1.5, 0.5, 1, 0.9)]))
    with pytest.raises(AnnotationError, match="wrong order"):
        evaluate_ava(*_tables(gt_rows, [("v", 902, 0.5, 0.0, 0.1, 0.5, 1, 0.9)]))
    with pytest.raises(EvalError, match="duplicate detection"):
        evaluate_ava(*_tables(gt_rows, good + good))
    out = evaluate_ava(*_tables(gt_rows, good + good), duplicates="drop")
    assert out["frame_mAP@0.5"] == 1.0 and out["counts"]["pred_duplicate_rows"] == 1
    # kept, the copy is an FP; tied scores rank as np.argsort(scores)[::-1] puts them (copy first)
    assert evaluate_ava(*_tables(gt_rows, good + good), duplicates="keep")["frame_mAP@0.5"] == 0.5
    with pytest.raises(EvalError, match="duplicate ground-truth"):
        evaluate_ava(*_tables(gt_rows + gt_rows, good))
    with pytest.raises(EvalError, match="predictions: no AVA"):
        evaluate_ava(*_tables(gt_rows, []))
    with pytest.raises(EvalError, match="ground truth: no AVA"):
        evaluate(task="ava", gt=Tables(), pred=_tables(gt_rows, good)[1])
    with pytest.raises(EvalError, match="unknown ava variant"):
        evaluate_ava(*_tables(gt_rows, good), variant="slowfast")
    # classes outside the label map: dropped as the official whitelist does, and counted
    out = evaluate_ava(*_tables(gt_rows, [*good, ("v", 902, 0.0, 0.0, 0.5, 0.5, 5, 0.95)]))
    assert out["frame_mAP@0.5"] == 1.0 and out["counts"]["pred_rows_not_in_label_map"] == 1


def test_cli_bad_files_are_clean_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = tmp_path / "gt.csv"
    gt.write_text("v,0902,0.1,0.1,0.5,0.5,1,0\n")
    bad = tmp_path / "pred.csv"
    bad.write_text("v,0902,0.1,0.1,1.5,0.5,1,0.9\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["eval", "ava", "--gt", str(gt), "--pred", str(bad)]) == 2
    assert f"{bad}:1" in capsys.readouterr().err
    assert main(["eval", "ava", "--gt", str(gt), "--pred", str(empty)]) == 2
    assert f"{empty}: no annotation rows" in capsys.readouterr().err
