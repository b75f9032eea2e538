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
    ref = _mmaction2_ava(gt_rows, pred_rows)
    if np.isnan(ref["overall"]):  # no ground-truth class detected: mmaction2 prints nan, we refuse (rc 2)
        with pytest.raises(EvalError, match="nothing to average"):
            evaluate_ava(gt, pred, variant="mmaction2")
        return
    _assert_matches_reference(evaluate_ava(gt, pred, variant="mmaction2"), ref)


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
    official = evaluate_ava(gt, pred)
    ref = _mmaction2_ava(gt_rows, pred_rows)
    if not detected:  # a documented 0.0 officially; mmaction2 prints nan, which we refuse (rc 2)
        assert official["frame_mAP@0.5"] == 0.0 and np.isnan(ref["overall"])
        with pytest.raises(EvalError, match="nothing to average"):
            evaluate_ava(gt, pred, variant="mmaction2")
        return
    mm = evaluate_ava(gt, pred, variant="mmaction2")
    for c in gt_classes - detected:
        assert official["per_class_AP"][CLASSES[c]] == 0.0 and mm["per_class_AP"][CLASSES[c]] is None
    # official mean = mmaction2's mean over the detected classes, rescaled to all classes with ground truth
    assert official["frame_mAP@0.5"] == pytest.approx(ref["overall"] * len(detected) / len(gt_classes), abs=1e-6)


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


# ------------------------------------------------------------------------------------------------ official reference


def _official_ava(gt_csv: Path, det_csv: Path, labelmap: Path) -> dict[str, Any]:
    """ActivityNet ``get_ava_performance.py`` (current: 2/7/8 columns, ``%.6f`` Decimal keys, ``included_keys``)
    with ``PascalDetectionEvaluator``, written from its code; the box and metric helpers are the TF object
    detection API copies that mmaction2 ships (``np_box_list``, ``np_box_ops``, ``metrics``), under this numpy.
    """
    import csv
    import heapq
    from collections import defaultdict
    from decimal import Decimal

    from mmaction.evaluation.functional.ava_evaluation import metrics, np_box_list, np_box_ops

    names: dict[int, str] = {}
    name = ""
    for text in labelmap.read_text().splitlines(keepends=True):
        if text.startswith("  name:"):
            name = text.split('"')[1]
        elif text.startswith("  id:") or text.startswith("  label_id:"):
            names[int(text.strip().split(" ")[-1])] = name
    whitelist = set(names)

    def read(path: Path, capacity: int, keys: set[str] | None = None) -> dict[str, list[tuple]]:
        entries: dict[str, list[tuple]] = defaultdict(list)
        with path.open() as f:
            for row in csv.reader(f):
                assert len(row) in (2, 7, 8)
                key = "%s,%.6f" % (row[0], Decimal(row[1]))  # noqa: UP031 - the reference's key
                if keys is not None:
                    keys.add(key)
                if len(row) == 2:
                    continue
                x1, y1, x2, y2 = (float(v) for v in row[2:6])
                action = int(row[6])
                if action not in whitelist:
                    continue
                score = float(row[7]) if len(row) == 8 else 1.0
                if capacity < 1 or len(entries[key]) < capacity:
                    heapq.heappush(entries[key], (score, action, y1, x1, y2, x2))
                elif score > entries[key][0][0]:
                    heapq.heapreplace(entries[key], (score, action, y1, x1, y2, x2))
        return {k: sorted(v, key=lambda e: -e[0]) for k, v in entries.items()}

    included: set[str] = set()
    gt = read(gt_csv, 0, included)
    det = read(det_csv, 50)
    n_gt: dict[int, int] = defaultdict(int)
    for entries in gt.values():
        for e in entries:
            n_gt[e[1]] += 1
    scores: dict[int, list[np.ndarray]] = defaultdict(list)
    tps: dict[int, list[np.ndarray]] = defaultdict(list)
    for key, entries in det.items():
        if key not in included:
            continue
        boxes = np.array([e[2:] for e in entries], dtype=float).reshape(-1, 4)
        labels = np.array([e[1] for e in entries], dtype=int)
        sc = np.array([e[0] for e in entries], dtype=float)
        valid = (boxes[:, 0] < boxes[:, 2]) & (boxes[:, 1] < boxes[:, 3])  # _remove_invalid_boxes
        boxes, labels, sc = boxes[valid], labels[valid], sc[valid]
        g = gt.get(key, [])
        g_boxes = np.array([e[2:] for e in g], dtype=float).reshape(-1, 4)
        g_labels = np.array([e[1] for e in g], dtype=int)
        for c in range(1, max(whitelist) + 1):
            d_c, s_c, g_c = boxes[labels == c], sc[labels == c], g_boxes[g_labels == c]
            if d_c.size == 0:
                continue
            det_list, gt_list = np_box_list.BoxList(d_c), np_box_list.BoxList(g_c)  # both raise on reversed boxes
            tp = np.zeros(len(d_c), dtype=bool)
            if g_c.size:
                iou = np_box_ops.iou(det_list.get(), gt_list.get())
                taken = np.zeros(len(g_c), dtype=bool)
                for i, j in enumerate(np.argmax(iou, axis=1)):
                    if iou[i, j] >= 0.5 and not taken[j]:
                        tp[i] = taken[j] = True
            scores[c].append(s_c)
            tps[c].append(tp)
    aps: dict[int, float] = {}
    for c in sorted(whitelist):
        if n_gt.get(c, 0) == 0:
            continue
        s = np.concatenate(scores[c]) if scores[c] else np.array([], dtype=float)
        t = np.concatenate(tps[c]) if tps[c] else np.array([], dtype=bool)
        precision, recall = metrics.compute_precision_recall(s, t, n_gt[c])
        aps[c] = metrics.compute_average_precision(precision, recall)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        overall = float(np.nanmean(list(aps.values()))) if aps else float("nan")
    return {"mAP": overall, "per_class": {names[c]: ap for c, ap in aps.items()}}


def _perturbed(src: Path, dst: Path, seed: int, extra_per_key: int = 0) -> int:
    """``src`` detections with about a fifth of the boxes reversed (x, y or both) and ``extra_per_key`` more random
    detections (some reversed) per keyframe; returns the number of reversed rows written."""
    rng = np.random.default_rng(seed)
    lines = src.read_text().splitlines()
    keys = list(dict.fromkeys(tuple(ln.split(",")[:2]) for ln in lines))
    for vid, ts in keys:
        for _ in range(extra_per_key):
            x1, y1 = rng.integers(0, 800, 2) / 1000
            x2, y2 = x1 + rng.integers(50, 200) / 1000, y1 + rng.integers(50, 200) / 1000
            lines.append(f"{vid},{ts},{x1:.3f},{y1:.3f},{x2:.3f},{y2:.3f},{rng.integers(1, 4)},"
                         f"{rng.integers(0, 1000) / 1000:.3f}")
    out, n_rev = [], 0
    for ln in lines:
        f = ln.split(",")
        how = rng.integers(0, 10)
        if how == 0 and f[2] != f[4]:
            f[2], f[4] = f[4], f[2]
        elif how == 1 and f[3] != f[5]:
            f[3], f[5] = f[5], f[3]
        elif how == 2 and f[2] != f[4] and f[3] != f[5]:
            f[2], f[4], f[3], f[5] = f[4], f[2], f[5], f[3]
        n_rev += float(f[2]) > float(f[4]) or float(f[3]) > float(f[5])
        out.append(",".join(f))
    dst.write_text("\n".join(out) + "\n")
    return n_rev


def test_reference_reproduces_the_published_fixture_value(shared_data: Path) -> None:
    d = shared_data / FIXTURE
    ref = _official_ava(d / "gt.csv", d / "pred.csv", d / "action_list.txt")
    assert ref["mAP"] == pytest.approx(0.0938552189, abs=1e-9)


@pytest.mark.parametrize(("seed", "extra"), [(0, 0), (1, 0), (2, 25), (3, 45)])
def test_real_slice_with_reversed_boxes_equals_the_official_evaluator(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    seed: int, extra: int,
) -> None:
    """Reversed detections are read as written, dropped by ``_remove_invalid_boxes`` after the top-50 cap (they
    count toward it), and the score equals the reference run under this numpy; one warning gives the count."""
    d = shared_data / FIXTURE
    pred = tmp_path / "pred.csv"
    n_rev = _perturbed(d / "pred.csv", pred, seed, extra)
    assert n_rev > 0
    ref = _official_ava(d / "gt.csv", pred, d / "action_list.txt")
    caplog.set_level("WARNING")
    args = ["eval", "ava", "--gt", str(d / "gt.csv"), "--pred", str(pred), "--label-map", str(d / "action_list.txt")]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["frame_mAP@0.5"] - ref["mAP"]) <= 1e-9, (out, ref)
    for cls, ap in ref["per_class"].items():
        assert abs(out["per_class_AP"][cls] - ap) <= 1e-9, (cls, out, ref)
    assert out["counts"]["pred_reversed_boxes"] == n_rev
    lines = [r.getMessage() for r in caplog.records if "pred.csv" in r.getMessage()]
    assert len(lines) == 1 and f"{n_rev} reversed box(es)" in lines[0], lines
    # --strict refuses the same file, naming the first reversed line
    rows = [[float(v) for v in ln.split(",")[2:6]] for ln in pred.read_text().splitlines()]
    first = next(i for i, (x1, y1, x2, y2) in enumerate(rows, 1) if x1 > x2 or y1 > y2)
    assert main([*args, "--strict"]) == 2
    assert f"{pred}:{first}: wrong box order" in capsys.readouterr().err
    # the mmaction2 variant refuses them, as its BoxList raises
    assert main([*args, "--variant", "mmaction2"]) == 2
    assert "mmaction2's ava_eval raises on them" in capsys.readouterr().err


def test_gt_with_ids_outside_the_label_map_readme_recipe(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    """README: ``videoact import ava <gt csv> --label-map <pbtxt>`` on the real AVA csv sample, whose action 74 is
    not in its action_list.txt: the row is kept with a null label, counted in one warning, dropped by the
    evaluator (its keyframe still scores detections), and the mAP equals the official evaluator's."""
    ava = shared_data / "detection/ava/mmaction2_tests_ava_dataset"
    gt_csv, lmap = ava / "ava_sample.csv", ava / "action_list.txt"
    caplog.set_level("WARNING")
    assert main(["import", "ava", str(gt_csv), "--label-map", str(lmap), "-o", str(tmp_path / "gt")]) == 0
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "ava_sample.csv" in msgs[0] and "1 row(s) with an action id outside the label map" \
        in msgs[0], msgs
    assert "imported" in capsys.readouterr().out
    from videoact.annotations import store
    boxes = store.load(tmp_path / "gt").boxes
    assert len(boxes) == 8 and boxes["label"].isna().sum() == 1
    assert int(boxes.loc[boxes["label"].isna(), "label_id"].iloc[0]) == 74
    # detections: the ground-truth boxes themselves plus shifted copies, one reversed, one of action 74
    rows = gt_csv.read_text().splitlines()
    det = tmp_path / "det.csv"
    lines = [f"{','.join(r.split(',')[:7])},{0.9 - i / 100:.2f}" for i, r in enumerate(rows)]
    lines += ["_-Z6wFjXtGQ,0902,0.300,0.049,0.524,0.996,80,0.95", "0f39OWEqJ24,0902,0.670,0.162,0.031,0.995,12,0.97",
              "_-Z6wFjXtGQ,0902,0.063,0.049,0.524,0.996,74,0.99", "0f39OWEqJ24,0903,0.5,0.5,0.6,0.6,17,0.93"]
    det.write_text("\n".join(lines) + "\n")
    ref = _official_ava(gt_csv, det, lmap)
    assert main(["eval", "ava", "--gt", str(tmp_path / "gt"), "--pred", str(det), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["frame_mAP@0.5"] - ref["mAP"]) <= 1e-9, (out, ref)
    assert out["counts"]["gt_rows_not_in_label_map"] == 1 and out["counts"]["pred_rows_not_in_label_map"] == 2
    # the same with the official 60-class map, where 74 is known: nothing to warn about
    caplog.clear()
    assert main(["import", "ava", str(gt_csv), "--label-map", str(shared_data / "detection/ava/"
                 "ava_action_list_v2.1_for_activitynet_2018.pbtxt"), "-o", str(tmp_path / "gt60")]) == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    # --strict refuses the first unknown id with file and line
    assert main(["import", "ava", str(gt_csv), "--label-map", str(lmap), "-o", str(tmp_path / "s"), "--strict"]) == 2
    assert "ava_sample.csv:7: unknown label 74" in capsys.readouterr().err


def test_reversed_ground_truth_box_is_refused_as_the_reference_raises(tmp_path: Path) -> None:
    gt_csv = tmp_path / "gt.csv"
    gt_csv.write_text("v,0902,0.5,0.0,0.1,0.5,1,0\n")
    det_csv = tmp_path / "det.csv"
    det_csv.write_text("v,0902,0.0,0.0,0.5,0.5,1,0.9\n")
    lmap = tmp_path / "map.pbtxt"
    lmap.write_text("".join(f'item {{\n  name: "{n}"\n  id: {i}\n}}\n' for i, n in CLASSES.items()))
    with pytest.raises(ValueError, match="Invalid box data"):
        _official_ava(gt_csv, det_csv, lmap)
    gt = Tables.concat([import_annotations("ava", gt_csv, kind="gt"), import_annotations("ava-labelmap", lmap)])
    assert gt.boxes["flag"].iloc[0] == "lenient"
    pred = import_annotations("ava", det_csv, kind="pred")
    for variant in ("official", "mmaction2"):
        with pytest.raises(EvalError, match=r"ground truth: 1 reversed box.*source line 1.*Invalid box data"):
            evaluate_ava(gt, pred, variant=variant)


def test_no_ground_truth_boxes_is_rc2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pred = tmp_path / "pred.csv"
    pred.write_text("v,0902,0.1,0.1,0.5,0.5,1,0.9\n")
    only_empty = tmp_path / "gt.csv"
    only_empty.write_text("v,0902\nv,0903\n")
    assert main(["eval", "ava", "--gt", str(only_empty), "--pred", str(pred)]) == 2
    assert "ground truth: no boxes of the evaluated classes" in capsys.readouterr().err
    # a ground-truth directory with a label map only (no boxes at all)
    lmap = tmp_path / "map.pbtxt"
    lmap.write_text('item {\n  name: "walk"\n  id: 1\n}\n')
    assert main(["import", "ava-labelmap", str(lmap), "-o", str(tmp_path / "gtdir")]) == 0
    capsys.readouterr()
    assert main(["eval", "ava", "--gt", str(tmp_path / "gtdir"), "--pred", str(pred)]) == 2
    err = capsys.readouterr().err
    assert "gtdir: no annotation rows (ground truth is empty)" in err, err
    # boxes only of classes outside the label map
    outside = tmp_path / "gt2.csv"
    outside.write_text("v,0902,0.1,0.1,0.5,0.5,5,0\n")
    assert main(["eval", "ava", "--gt", str(outside), "--pred", str(pred), "--label-map", str(lmap)]) == 2
    assert "1 outside the label map" in capsys.readouterr().err
