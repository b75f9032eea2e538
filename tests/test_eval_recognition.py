"""Recognition accuracy against mmaction2's ``top_k_accuracy`` / ``mean_class_accuracy`` / ``confusion_matrix``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videoact.annotations.tables import Tables
from videoact.eval import EvalError, evaluate, evaluate_recognition, ntu_subset


def _gt(names: list[str], labels: list[int]) -> Tables:
    return Tables(segments=pd.DataFrame({"video_id": names, "task": "recognition", "t_start_s": 0.0, "t_end_s": 1.0,
                                         "label_id": labels, "score": 1.0, "source": "ground_truth:test"}))


def _pred(names: list[str], scores: np.ndarray) -> Tables:
    n, c = scores.shape
    return Tables(segments=pd.DataFrame({
        "video_id": np.repeat(names, c), "task": "recognition", "t_start_s": 0.0, "t_end_s": 1.0,
        "label_id": np.tile(np.arange(c), n), "score": scores.reshape(-1), "source": "predictions:test"}))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.integers(5, 8), st.integers(0, 10_000))
def test_top_k_equals_mmaction2(n: int, c: int, seed: int) -> None:
    from mmaction.evaluation.functional import confusion_matrix, mean_class_accuracy, top_k_accuracy

    rng = np.random.default_rng(seed)
    scores = rng.permutation(n * c).reshape(n, c) / (n * c)  # distinct: no tie order to differ on
    labels = rng.integers(0, c, size=n)
    names = [f"s{i}" for i in range(n)]
    out = evaluate_recognition(_gt(names, labels.tolist()), _pred(names, scores))
    top1, top5 = top_k_accuracy(list(scores), labels.tolist(), (1, 5))
    assert out["top1_acc"] == pytest.approx(top1) and out["top5_acc"] == pytest.approx(top5)
    pred1 = scores.argmax(axis=1)
    ref_cm = confusion_matrix(pred1.astype(np.int64), labels.astype(np.int64))
    assert np.array_equal(np.asarray(out["confusion_matrix"]["matrix"]), ref_cm)
    ref_mca = mean_class_accuracy(list(scores), labels.tolist())
    if set(pred1) <= set(labels):
        assert out["mean_class_accuracy"] == pytest.approx(ref_mca)
    else:
        # mmaction2 also averages predicted-only classes (as 0): ours = theirs * |union| / |true classes|
        union = set(pred1) | set(labels)
        assert out["mean_class_accuracy"] == pytest.approx(ref_mca * len(union) / len(set(labels)))


def test_hand_example_and_label_names() -> None:
    gt = _gt(["a", "b", "c", "d"], [0, 0, 1, 2])
    gt.labels = pd.DataFrame({"label_space": "toy", "id": [0, 1, 2], "name": ["run", "jump", "sit"]})
    gt.segments["label_space"] = "toy"
    scores = np.array([[.9, .05, .05], [.2, .7, .1], [.1, .6, .3], [.5, .1, .4]])
    out = evaluate("recognition", gt, _pred(["a", "b", "c", "d"], scores), topk=(1, 2))
    assert out["top1_acc"] == 0.5 and out["top2_acc"] == 1.0
    assert out["per_class_accuracy"] == {"run": 0.5, "jump": 1.0, "sit": 0.0}
    assert out["mean_class_accuracy"] == pytest.approx(0.5)
    assert out["confusion_matrix"] == {"labels": ["run", "jump", "sit"], "matrix": [[1, 1, 0], [0, 1, 0], [1, 0, 0]]}


def test_ntu_benchmark_keeps_the_test_samples() -> None:
    names = ["S001C001P001R001A001", "S001C001P003R001A001", "S001C002P003R001A002", "S001C003P007R001A002"]
    gt = _gt(names, [0, 0, 1, 1])
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    # X-Sub: P001 trains; P003/P007 test. X-View: C002/C003 train; C001 test.
    assert set(ntu_subset(gt, "xsub60").segments["video_id"]) == set(names[1:])
    xsub = evaluate_recognition(gt, _pred(names, scores), ntu_benchmark="xsub60")
    assert xsub["counts"]["gt_samples"] == 3 and xsub["top1_acc"] == pytest.approx(1 / 3)
    xview = evaluate_recognition(gt, _pred(names, scores), ntu_benchmark="xview60")
    assert xview["counts"]["gt_samples"] == 2 and xview["top1_acc"] == 0.5
    with pytest.raises(EvalError, match="unknown NTU benchmark"):
        evaluate_recognition(gt, _pred(names, scores), ntu_benchmark="xsub")


def test_bad_input() -> None:
    gt = _gt(["a", "b"], [0, 1])
    scores = np.array([[0.9, 0.1]])
    with pytest.raises(EvalError, match="no recognition rows for ground-truth sample"):
        evaluate_recognition(gt, _pred(["a"], scores))
    out = evaluate_recognition(gt, _pred(["a"], scores), missing="wrong")
    assert out["top1_acc"] == 0.5 and out["counts"]["gt_samples_without_predictions"] == 1
    dup = _pred(["a", "a"], np.array([[0.9, 0.1], [0.8, 0.2]]))
    with pytest.raises(EvalError, match="duplicate"):
        evaluate_recognition(_gt(["a"], [0]), dup)
    with pytest.raises(EvalError, match="predictions: no recognition"):
        evaluate_recognition(gt, Tables())
    out = evaluate_recognition(_gt(["a"], [0]), _pred(["a", "zzz"], np.array([[0.9, 0.1], [0.1, 0.9]])))
    assert out["counts"]["pred_rows_of_unknown_samples"] == 2 and out["top1_acc"] == 1.0


def test_cli_recognition_needs_a_directory_for_predictions(tmp_path: Path) -> None:
    from videoact.cli import main

    f = tmp_path / "p.csv"
    f.write_text("a,b\n")
    assert main(["eval", "recognition", "--gt", str(f), "--pred", str(f)]) == 2
