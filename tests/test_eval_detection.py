"""Temporal detection mAP: real fixtures, mmaction2's ``ActivityNetLocalization`` as reference, THUMOS14 evalkit."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from videoact.annotations import schema
from videoact.annotations.formats import import_annotations
from videoact.annotations.schema import AnnotationError
from videoact.annotations.tables import Tables
from videoact.cli import main
from videoact.eval import EvalError, evaluate_detection
from videoact.eval.detection import THRESHOLD_PRESETS

FIXTURE = "localization/mmaction2_eval_localization"
EXPECTED = [.71428571, .71428571, .71428571, .6875, .6875, .59722222, .52083333, .52083333, .52083333, .5]


def _segments(rows: list[tuple], *, gt: bool) -> pd.DataFrame:
    """rows: (video, start, end, label[, score][, flag])."""
    recs = []
    for i, r in enumerate(rows):
        rec = {"video_id": r[0], "task": "localization", "t_start_s": float(r[1]), "t_end_s": float(r[2]),
               "label": r[3], "score": 1.0 if gt else float(r[4]), "seq": i,
               "source": "ground_truth:test" if gt else "predictions:test"}
        if gt and len(r) > 4:
            rec["flag"] = r[4]
        recs.append(rec)
    return pd.DataFrame(recs) if recs else schema.empty("segments")


def _tables(gt_rows: list[tuple], pred_rows: list[tuple]) -> tuple[Tables, Tables]:
    return Tables(segments=_segments(gt_rows, gt=True)), Tables(segments=_segments(pred_rows, gt=False))


def _mmaction2(gt_rows: list[tuple], pred_rows: list[tuple], thresholds: np.ndarray) -> tuple[np.ndarray, float]:
    """mmaction2's ActivityNetLocalization on json files written from the same rows (flat ``v_`` ground truth)."""
    from mmaction.evaluation.functional import ActivityNetLocalization

    gt: dict[str, dict] = {}
    for v, s, e, lab in gt_rows:
        gt.setdefault(f"v_{v}", {"annotations": []})["annotations"].append({"segment": [s, e], "label": lab})
    res: dict[str, list] = {}
    for v, s, e, lab, sc in pred_rows:
        res.setdefault(v, []).append({"label": lab, "score": sc, "segment": [s, e]})
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "gt.json").write_text(json.dumps(gt))
        (Path(d) / "pred.json").write_text(json.dumps({"results": res}))
        ev = ActivityNetLocalization(str(Path(d) / "gt.json"), str(Path(d) / "pred.json"), tiou_thresholds=thresholds)
        m_ap, avg = ev.evaluate()
    return np.asarray(m_ap), float(avg)


# ------------------------------------------------------------------------------------------------ real fixtures


@pytest.mark.parametrize("variant", ["activitynet", "mmaction2"])
def test_fixture_average_map(shared_data: Path, variant: str) -> None:
    d = shared_data / FIXTURE
    gt = import_annotations("activitynet", d / "gt.json")
    pred = import_annotations("activitynet", d / "result.json")
    out = evaluate_detection(gt, pred, variant=variant)
    assert out["average_mAP"] == pytest.approx(0.6177579365, abs=1e-9)
    assert list(out["mAP"]) == ["0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9", "0.95"]
    assert list(out["mAP"].values()) == pytest.approx(EXPECTED, abs=1e-8)


def test_fixture_through_cli(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = shared_data / FIXTURE
    assert main(["eval", "tad", "--gt", str(d / "gt.json"), "--pred", str(d / "result.json"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["average_mAP"] == pytest.approx(0.6177579365, abs=1e-9) and out["variant"] == "activitynet"


def test_thumos14_real_ground_truth_scored_against_itself(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "localization" / "thumos14" / "annotations_val"
    gt = import_annotations("thumos14", folder)
    seg = gt.segments
    pred_seg = seg[seg["flag"].isna()].assign(score=1.0, source="predictions:self")
    pred = Tables(segments=pred_seg.reset_index(drop=True))
    counts_amb = int((seg["flag"] == "ambiguous").sum())
    for variant in ("activitynet", "thumos14_evalkit"):
        out = evaluate_detection(gt, pred, variant=variant, tiou_thresholds="thumos14", duplicates="drop")
        assert out["average_mAP"] == pytest.approx(1.0), variant
        assert len(out["per_class_AP"]) == 20 and out["counts"]["gt_ambiguous_segments"] == counts_amb > 0
    # a shifted copy loses matches at the strict thresholds
    shifted = pred_seg.assign(t_start_s=pred_seg["t_start_s"] + 1.0, t_end_s=pred_seg["t_end_s"] + 1.0)
    out = evaluate_detection(gt, Tables(segments=shifted.reset_index(drop=True)), tiou_thresholds="thumos14",
                             duplicates="drop")
    assert out["mAP"]["0.7"] < out["mAP"]["0.3"] < 1.0


# ------------------------------------------------------------------------------------------------ properties


@st.composite
def _scene(draw: st.DrawFn) -> tuple[list[tuple], list[tuple]]:
    """Random ground truth and predictions on a 0.25 s grid, 3 classes, 3 videos, distinct scores."""
    labels = ["a", "b", "c"]
    gt: list[tuple] = []
    for _ in range(draw(st.integers(1, 6))):
        s = draw(st.integers(0, 40))
        length = draw(st.integers(1, 20))
        gt.append((f"v{draw(st.integers(0, 2))}", s / 4, (s + length) / 4, draw(st.sampled_from(labels))))
    gt = list(dict.fromkeys(gt))
    gt_labels = sorted({r[3] for r in gt})
    preds: list[tuple] = []
    for _ in range(draw(st.integers(1, 10))):
        if draw(st.booleans()):
            v, s, e, lab = draw(st.sampled_from(gt))
            s, e = s + draw(st.integers(-4, 4)) / 4, e + draw(st.integers(-4, 4)) / 4
            s = max(s, 0.0)
            if e <= s:
                e = s + 0.25
        else:
            s0 = draw(st.integers(0, 40))
            v, s, e = f"v{draw(st.integers(0, 3))}", s0 / 4, (s0 + draw(st.integers(1, 20))) / 4
            lab = draw(st.sampled_from(gt_labels))
        preds.append((v, s, e, lab))
    preds = list(dict.fromkeys(preds))
    perm = draw(st.permutations(range(len(preds))))
    return gt, [(*p, (k + 1) / 64) for p, k in zip(preds, perm, strict=True)]


def _near_threshold(gt: list[tuple], preds: list[tuple], thresholds: np.ndarray) -> bool:
    for v, s, e, lab, _ in preds:
        for gv, gs, ge, glab in gt:
            if gv == v and glab == lab:
                inter = max(0.0, min(e, ge) - max(s, gs))
                iou = inter / ((e - s) + (ge - gs) - inter)
                if np.any(np.abs(iou - thresholds) < 1e-6):
                    return True
    return False


_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_scene(), st.sampled_from(["activitynet", "thumos14"]))
def test_mmaction2_variant_equals_activitynet_localization(scene: tuple, preset: str) -> None:
    gt_rows, pred_rows = scene
    thresholds = THRESHOLD_PRESETS[preset]
    ours = evaluate_detection(*_tables(gt_rows, pred_rows), variant="mmaction2", tiou_thresholds=preset)
    m_ap, avg = _mmaction2(gt_rows, pred_rows, thresholds)
    assert list(ours["mAP"].values()) == pytest.approx(list(m_ap), abs=1e-6)
    assert ours["average_mAP"] == pytest.approx(avg, abs=1e-6)


@_SETTINGS
@given(_scene(), st.sampled_from(["activitynet", "thumos14"]))
def test_official_equals_mmaction2_away_from_thresholds(scene: tuple, preset: str) -> None:
    # Coincide: distinct scores (no tie order) and no tIoU within 1e-6 of a threshold (no float32 flip).
    gt_rows, pred_rows = scene
    thresholds = THRESHOLD_PRESETS[preset]
    assume(not _near_threshold(gt_rows, pred_rows, thresholds))
    ours = evaluate_detection(*_tables(gt_rows, pred_rows), tiou_thresholds=preset)
    m_ap, avg = _mmaction2(gt_rows, pred_rows, thresholds)
    assert list(ours["mAP"].values()) == pytest.approx(list(m_ap), abs=1e-6)
    assert ours["average_mAP"] == pytest.approx(avg, abs=1e-6)


def test_float32_tiou_flips_at_a_threshold() -> None:
    # tIoU = 0.55 - 1e-9: below 0.55 in float64 (official: FP), rounds up to 0.55 in float32 (mmaction2: TP)
    gt_rows = [("v", 0.0, 1.0, "a")]
    pred_rows = [("v", 0.0, 0.55 - 1e-9, "a", 0.9)]
    gt, pred = _tables(gt_rows, pred_rows)
    official = evaluate_detection(gt, pred)["mAP"]["0.55"]
    mm = evaluate_detection(gt, pred, variant="mmaction2")["mAP"]["0.55"]
    assert (official, mm) == (0.0, 1.0)
    assert _mmaction2(gt_rows, pred_rows, THRESHOLD_PRESETS["activitynet"])[0][1] == 1.0


def test_tied_scores_rank_reversed_officially_and_in_file_order_in_mmaction2() -> None:
    gt_rows = [("v", 0.0, 10.0, "a")]
    pred_rows = [("v", 0.0, 10.0, "a", 0.5), ("v", 50.0, 60.0, "a", 0.5)]  # TP then FP, same score
    gt, pred = _tables(gt_rows, pred_rows)
    assert evaluate_detection(gt, pred)["average_mAP"] == pytest.approx(0.5)  # argsort()[::-1]: FP first
    assert evaluate_detection(gt, pred, variant="mmaction2")["average_mAP"] == 1.0
    assert _mmaction2(gt_rows, pred_rows, THRESHOLD_PRESETS["activitynet"])[1] == 1.0


def test_taken_ground_truth_falls_back_to_the_next_best() -> None:
    gt_rows = [("v", 0.0, 10.0, "a"), ("v", 8.0, 18.0, "a")]
    pred_rows = [("v", 0.0, 10.0, "a", 0.9), ("v", 1.0, 11.0, "a", 0.8)]  # second: best GT taken, 2nd-best 0.5
    out = evaluate_detection(*_tables(gt_rows, pred_rows), tiou_thresholds=[0.15])
    assert out["mAP"]["0.15"] == 1.0


def test_thumos14_evalkit_ambiguous_strict_overlap_and_eleven_point_ap() -> None:
    gt_rows = [("v", 0.0, 10.0, "A"), ("v", 60.0, 70.0, "A"), ("v", 18.0, 25.0, "Ambiguous", "ambiguous")]
    pred_rows = [("v", 0.0, 10.0, "A", 0.9), ("v", 20.0, 30.0, "A", 0.8), ("v", 40.0, 50.0, "A", 0.7),
                 ("v", 60.0, 66.0, "A", 0.6)]
    gt, pred = _tables(gt_rows, pred_rows)
    kit = evaluate_detection(gt, pred, variant="thumos14_evalkit", tiou_thresholds=[0.5, 0.6])
    # 0.5: TP, (ambiguous one removed), FP, TP -> prec [1, .5, 2/3], rec [.5, .5, 1] -> (6 * 1 + 5 * 2/3) / 11
    assert kit["mAP"]["0.5"] == pytest.approx((6 + 5 * 2 / 3) / 11)
    # 0.6: overlap 6/10 is not > 0.6 -> the last one is an FP too -> 6 / 11
    assert kit["mAP"]["0.6"] == pytest.approx(6 / 11)
    assert kit["counts"]["pred_removed_ambiguous_at_first_threshold"] == 1
    anet = evaluate_detection(gt, pred, tiou_thresholds=[0.6])
    # ActivityNet: the ambiguous overlap is an FP, tIoU 0.6 >= 0.6 matches: prec [1, .5, 1/3, .5], VOC AP .75
    assert anet["mAP"]["0.6"] == pytest.approx(0.75)
    assert kit["variant"] == "thumos14_evalkit" and evaluate_detection(gt, pred, variant="thumos14_evalkit")[
        "tiou_thresholds"] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_zero_length_segments_never_match_and_are_counted() -> None:
    gt, pred = _tables([("v", 5.0, 5.0, "a"), ("v", 0.0, 4.0, "a")], [("v", 5.0, 5.0, "a", 0.9)])
    out = evaluate_detection(gt, pred)
    assert out["average_mAP"] == 0.0
    assert out["counts"]["gt_zero_length"] == 1 and out["counts"]["pred_zero_length"] == 1


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_input() -> None:
    gt_rows = [("v", 0.0, 10.0, "a")]
    good = [("v", 0.0, 10.0, "a", 0.9)]
    with pytest.raises(AnnotationError, match="reversed segment"):
        evaluate_detection(*_tables(gt_rows, [("v", 10.0, 0.0, "a", 0.9)]))
    with pytest.raises(EvalError, match="not in the ground truth"):
        evaluate_detection(*_tables(gt_rows, [*good, ("v", 0.0, 10.0, "zzz", 0.5)]))
    out = evaluate_detection(*_tables(gt_rows, [*good, ("v", 0.0, 10.0, "zzz", 0.5)]), unknown_labels="drop")
    assert out["average_mAP"] == 1.0 and out["counts"]["pred_rows_unknown_class"] == 1
    with pytest.raises(EvalError, match="duplicate predicted segment"):
        evaluate_detection(*_tables(gt_rows, good + good))
    assert evaluate_detection(*_tables(gt_rows, good + good), duplicates="drop")["counts"]["pred_duplicate_rows"] == 1
    with pytest.raises(EvalError, match="duplicate ground-truth segment"):
        evaluate_detection(*_tables(gt_rows + gt_rows, good))
    with pytest.raises(EvalError, match="predictions: no temporal detection"):
        evaluate_detection(*_tables(gt_rows, []))
    with pytest.raises(EvalError, match="unknown tad variant"):
        evaluate_detection(*_tables(gt_rows, good), variant="actionformer")
    with pytest.raises(EvalError, match="threshold preset"):
        evaluate_detection(*_tables(gt_rows, good), tiou_thresholds="coco")
    no_names = Tables(segments=_segments(good, gt=False).assign(label=None, label_id=3))
    with pytest.raises(EvalError, match="cannot match classes"):
        evaluate_detection(_tables(gt_rows, good)[0], no_names)


def test_subset_filter_uses_videos_split() -> None:
    gt, pred = _tables([("v", 0.0, 10.0, "a"), ("w", 0.0, 10.0, "a")], [("v", 0.0, 10.0, "a", 0.9)])
    gt.videos = pd.DataFrame({"video_id": ["v", "w"], "split": ["validation", "training"], "source": "gt"})
    assert evaluate_detection(gt, pred)["average_mAP"] == pytest.approx(0.5)
    out = evaluate_detection(gt, pred, subset="validation")
    assert out["average_mAP"] == 1.0 and out["counts"]["gt_rows_outside_subset"] == 1
