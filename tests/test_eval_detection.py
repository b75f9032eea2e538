"""Temporal detection mAP: real fixtures, mmaction2's ``ActivityNetLocalization`` as reference, THUMOS14 evalkit."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

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


# ------------------------------------------------------------------------------------------------ THUMOS14 evalkit


def test_matlab_colon_matches_matlabs_documented_values() -> None:
    """MATLAB's ``a:d:b`` (colonop: first half ``a + k*d``, second half ``b - k*d``, middle ``(a+b)/2``): 0:0.1:1
    holds exactly 0.6 and 0.7, which ``np.arange`` misses; the lower half equals ``k*0.1`` (0.30000000000000004)."""
    from videoact.eval._common import eleven_point_ap, matlab_colon

    grid = matlab_colon(0.0, 0.1, 1.0)
    assert len(grid) == 11 and grid[0] == 0.0 and grid[-1] == 1.0
    assert grid[6] == 0.6 and grid[7] == 0.7 and grid[5] == 0.5 and grid[3] == 3 * 0.1 != 0.3
    assert grid.tolist() == [0.0, 0.1, 0.2, 3 * 0.1, 4 * 0.1, 0.5, 1 - 4 * 0.1, 1 - 3 * 0.1, 1 - 2 * 0.1, 1 - 0.1, 1.0]
    old = np.arange(0.0, 1.1, 0.1)
    assert [i for i in range(11) if old[i] != grid[i]] == [6, 7]  # arange: 0.6000000000000001, 0.7000000000000001
    assert matlab_colon(0.1, 0.1, 0.5).tolist() == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert THRESHOLD_PRESETS["thumos14_evalkit"].tolist() == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert matlab_colon(1.0, 1.0, 5.0).tolist() == [1, 2, 3, 4, 5] and len(matlab_colon(1.0, 0.5, 0.0)) == 0
    # a recall of exactly 3/5 reaches the 0.6 grid point: precision 1 there counts (arange would skip it)
    assert eleven_point_ap(np.array([1.0, 1.0, 1.0]), np.array([0.2, 0.4, 0.6])) == pytest.approx(7 / 11)


_TH14_GRID = [0.0, 0.1, 0.2, 3 * 0.1, 4 * 0.1, 0.5, 1 - 4 * 0.1, 1 - 3 * 0.1, 1 - 2 * 0.1, 1 - 0.1, 1.0]  # 0:0.1:1
_TH14_THRESHOLDS = [0.1, 0.2, (0.1 + 0.5) / 2, 0.5 - 0.1, 0.5]  # .1:.1:.5


def _evalkit_reference(gt_dir: Path, det_file: Path, class_list: Path, subset: str = "val") -> dict[str, Any]:
    """TH14evaldet.m / TH14eventdetpr.m / intervaloverlapvalseconds.m, line by line in plain Python."""
    classes = [(int(i), n) for i, n in (ln.split() for ln in class_list.read_text().splitlines() if ln.strip())]
    id2name = dict(classes)
    gtevents = []
    for name in [n for _, n in classes] + ["Ambiguous"]:
        for ln in (gt_dir / f"{name}_{subset}.txt").read_text().splitlines():
            if ln.strip():
                v, a, b = ln.split()
                gtevents.append((v, (float(a), float(b)), name))
    detevents = []
    for ln in det_file.read_text().splitlines():
        v, a, b, c, conf = ln.split()
        if int(c) in id2name:  # else: "WARNING: Reported class ID ... is not among THUMOS14 detection classes"
            detevents.append((v.replace(".mpeg", ""), (float(a), float(b)), id2name[int(c)], float(conf)))

    def overlap(i1: tuple, i2: tuple) -> float:
        a0, a1, b0, b1 = min(i1), max(i1), min(i2), max(i2)
        ua = max(a1, b1) - min(a0, b0)
        iw = min(a1, b1) - max(a0, b0)
        return iw / ua if iw > 0 else 0.0

    videonames = sorted({g[0] for g in gtevents} | {d[0] for d in detevents})
    ap_all: dict[str, list[float]] = {}
    for _, cls in classes:
        npos = sum(g[2] == cls for g in gtevents)
        assert npos > 0
        ap_all[cls] = []
        for thr in _TH14_THRESHOLDS:
            tpconf: list[float] = []
            fpconf: list[float] = []
            for vid in videonames:
                gt = [g for g in gtevents if g[0] == vid and g[2] == cls]
                amb = [g for g in gtevents if g[0] == vid and g[2] == "Ambiguous"]
                det = [d for d in detevents if d[0] == vid and d[2] == cls]
                if not det:
                    continue
                det = sorted(det, key=lambda d: -d[3])  # MATLAB sort is stable
                free = [True] * len(det)
                for g in gt:
                    ind = [j for j in range(len(det)) if free[j]]
                    if not ind:
                        continue
                    vals = [overlap(g[1], det[j][1]) for j in ind]
                    vm = max(vals)
                    if vm > thr:
                        free[ind[vals.index(vm)]] = False
                in_amb = [sum(overlap(a[1], d[1]) for a in amb) != 0 for d in det]
                tpconf += [d[3] for j, d in enumerate(det) if not free[j]]
                fpconf += [d[3] for j, d in enumerate(det) if free[j] and not in_amb[j]]
            if not tpconf:
                ap_all[cls].append(0.0)
                continue
            conf = tpconf + fpconf
            kind = [1] * len(tpconf) + [2] * len(fpconf)
            order = sorted(range(len(conf)), key=lambda i: -conf[i])
            tp = fp = 0
            rec, prec = [], []
            for i in order:
                tp += kind[i] == 1
                fp += kind[i] == 2
                rec.append(tp / npos)
                prec.append(tp / (fp + tp))
            ap = 0.0
            for t in _TH14_GRID:
                p = [pr for pr, r in zip(prec, rec, strict=True) if r >= t]
                ap += (max(p) if p else 0.0) / len(_TH14_GRID)
            ap_all[cls].append(ap)
    n = len(classes)
    return {"mAP": [sum(ap_all[c][j] for c in ap_all) / n for j in range(len(_TH14_THRESHOLDS))], "per_class": ap_all}


def _evalkit_style_run(gt_dir: Path, class_list: Path, out: Path, seed: int) -> dict[str, int]:
    """A run file like the evalkit's Run-2-det.txt from the real validation ground truth: jittered hits, about a
    fifth reversed (``18.8 4.9``), some with negative times (``-6.1 18.3``, ``-9.8 -3.3``), false alarms, tied
    confidences, a few ``.mpeg`` names and an id outside the class list."""
    rng = np.random.default_rng(seed)
    classes = [(int(i), n) for i, n in (ln.split() for ln in class_list.read_text().splitlines() if ln.strip())]
    lines, stats = [], {"reversed": 0, "negative": 0}
    for cid, name in classes[:: 2 if seed % 2 else 1]:
        rows = [ln.split() for ln in (gt_dir / f"{name}_val.txt").read_text().splitlines() if ln.strip()]
        for v, a, b in rows[: 12 + seed]:
            for _ in range(int(rng.integers(0, 3))):
                s = round(float(a) + rng.normal(0, 1.5), 1)
                e = round(float(b) + rng.normal(0, 1.5), 1)
                if rng.random() < 0.15:
                    s = round(-abs(rng.normal(3, 3)) - 0.1, 1)
                if rng.random() < 0.2:
                    s, e = e, s
                if rng.random() < 0.05:
                    s, e = round(-abs(s) - 0.5, 1), round(-0.1 - rng.random() * 0.3, 1)
                conf = round(float(rng.choice([0.5, 0.25, rng.random()])), 6)
                name_ = f"{v}.mpeg" if rng.random() < 0.1 else v
                lines.append(f"{name_} {s:.1f} {e:.1f} {cid} {conf:f}")
                stats["reversed"] += s > e
                stats["negative"] += s < 0 or e < 0
        for _ in range(10):
            v = rows[int(rng.integers(0, len(rows)))][0]
            s = round(rng.uniform(-5, 200), 1)
            lines.append(f"{v} {s:.1f} {s + round(rng.uniform(-4, 10), 1):.1f} {cid} {rng.random():f}")
            f = lines[-1].split()
            stats["reversed"] += float(f[1]) > float(f[2])
            stats["negative"] += float(f[1]) < 0 or float(f[2]) < 0
    lines.append(f"{rows[0][0]} 1.0 2.0 8 0.999")  # class id 8: the evalkit warns and skips it
    out.write_text("\n".join(lines) + "\n")
    return stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evalkit_style_run_with_reversed_and_negative_rows_equals_the_evalkit_rules(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, seed: int
) -> None:
    th = shared_data / "localization/thumos14"
    gt_dir, class_list = th / "annotations_val", th / "detclasslist_ucf101_ids.txt"
    run = tmp_path / f"Run-{seed}-det.txt"
    stats = _evalkit_style_run(gt_dir, class_list, run, seed)
    assert stats["reversed"] > 5 and stats["negative"] > 5
    ref = _evalkit_reference(gt_dir, run, class_list)
    caplog.set_level("WARNING")
    args = ["eval", "tad", "--gt", str(gt_dir), "--pred", str(run), "--label-map", str(class_list),
            "--variant", "thumos14_evalkit"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tiou_thresholds"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    for j, thr in enumerate(["0.1", "0.2", "0.3", "0.4", "0.5"]):
        assert abs(out["mAP"][thr] - ref["mAP"][j]) <= 1e-12, (thr, out["mAP"], ref["mAP"])
        for cls, aps in ref["per_class"].items():
            assert abs(out["per_class_AP"][cls][thr] - aps[j]) <= 1e-12, (cls, thr)
    assert out["counts"]["pred_rows_unknown_class_id"] == 1
    msgs = [r.getMessage() for r in caplog.records if run.name in r.getMessage()]
    assert len(msgs) == 1, msgs
    assert f"{stats['reversed']} reversed segment(s)" in msgs[0] and f"{stats['negative']} row(s) with a negative" \
        in msgs[0] and "1 row(s) with a class id outside the class list" in msgs[0], msgs
    # --strict refuses the file at its first such line
    assert main([*args, "--strict"]) == 2
    assert f"{run}:" in capsys.readouterr().err


def test_evalkit_ranks_tps_before_fps_of_equal_confidence() -> None:
    """``conf=[tpconf fpconf]`` then a stable sort: a TP of a later video ranks before an FP of an earlier one."""
    gt, pred = _tables([("a", 0.0, 10.0, "A"), ("b", 0.0, 10.0, "A")],
                       [("a", 50.0, 60.0, "A", 0.5), ("b", 0.0, 10.0, "A", 0.5)])
    out = evaluate_detection(gt, pred, variant="thumos14_evalkit", tiou_thresholds=[0.5])
    # TP first: prec [1, .5], rec [.5, .5] -> grid points 0..0.5 get 1 -> 6/11 (FP first would give 6 * .5 / 11)
    assert out["mAP"]["0.5"] == pytest.approx(6 / 11)


def test_reversed_segments_in_tables_score_as_the_official_tools(tmp_path: Path) -> None:
    """Lenient rows keep raw ends: the evalkit orders them (a reversed hit is a TP); ActivityNet's formula
    gives a reversed prediction no intersection (an FP)."""
    gt_rows = [("v", 0.0, 10.0, "A")]
    gt, pred = _tables(gt_rows, [("v", 9.0, 1.0, "A", 0.9)])
    pred.segments["flag"] = "lenient"
    pred.segments["attrs"] = '{"lenient": ["reversed"]}'
    kit = evaluate_detection(gt, pred, variant="thumos14_evalkit")  # overlap 8/10 after ordering the ends
    assert kit["average_mAP"] == pytest.approx(1.0) and kit["counts"]["pred_lenient_rows"] == 1
    assert evaluate_detection(gt, pred)["average_mAP"] == 0.0  # inter clipped to 0, union 2: tIoU 0
    # without the lenient mark the table rules still refuse a reversed segment
    pred.segments["flag"] = None
    pred.segments["attrs"] = None
    with pytest.raises(AnnotationError, match="reversed segment"):
        evaluate_detection(gt, pred)
