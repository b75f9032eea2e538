"""Ego4D LTA edit distance: Levenshtein against ``editdistance``, ED/AUED against the lta_metrics formula, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videoact.annotations.tables import Tables
from videoact.cli import main
from videoact.eval import EvalError, aued, edit_distance, evaluate_lta, levenshtein

_seq = st.lists(st.integers(0, 4), max_size=12)


@settings(max_examples=300, deadline=None)
@given(_seq, _seq)
def test_levenshtein_equals_editdistance(a: list[int], b: list[int]) -> None:
    editdistance = pytest.importorskip("editdistance")
    assert levenshtein(a, b) == editdistance.eval(a, b)
    assert levenshtein(a, b) == levenshtein(b, a)


def test_levenshtein_is_not_damerau() -> None:
    # EGO4D/forecasting issue #35: a transposition costs 2 (Levenshtein), not 1 (Damerau)
    assert levenshtein(["spam", "egg", "hamburger"], ["spam", "hamburger", "egg"]) == 2
    assert levenshtein([], [1, 2]) == 2 and levenshtein("kitten", "sitting") == 3


def _plain_levenshtein(a: list[int], b: list[int]) -> int:
    """Textbook unit-cost Levenshtein (used where the ``editdistance`` package is not installed)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


try:
    from editdistance import eval as _lev
except ImportError:  # pragma: no cover - the reference package is optional
    _lev = _plain_levenshtein


def _reference_ed(preds: np.ndarray, labels: np.ndarray) -> float:
    """lta_metrics.edit_distance: preds (N, Z, K) as the reference lays them out, ``editdistance.eval``."""
    n, z, k = preds.shape
    return float(np.mean([min(_lev(preds[i, :, j].tolist(), labels[i].tolist()) / z for j in range(k))
                          for i in range(n)]))


def _reference_aued(preds: np.ndarray, labels: np.ndarray) -> float:
    z = labels.shape[1]
    curve = [_reference_ed(preds[:, :i, :], labels[:, :i]) for i in range(1, z + 1)]
    return float(np.trapz(curve) / (z - 1))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(2, 8), st.integers(0, 10_000))
def test_ed_and_aued_equal_the_reference_formula(n: int, k: int, z: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    preds = rng.integers(0, 4, size=(n, k, z))
    labels = rng.integers(0, 4, size=(n, z))
    ref_layout = preds.transpose(0, 2, 1)  # (N, Z, K), Ego4D's layout and our default
    assert edit_distance(ref_layout, labels) == pytest.approx(_reference_ed(ref_layout, labels), abs=1e-12)
    assert aued(ref_layout, labels) == pytest.approx(_reference_aued(ref_layout, labels), abs=1e-12)
    assert edit_distance(preds, labels, layout="NKZ") == pytest.approx(_reference_ed(ref_layout, labels), abs=1e-12)
    assert aued(preds, labels, layout="NKZ") == pytest.approx(_reference_aued(ref_layout, labels), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(2, 6), st.integers(0, 10_000))
def test_k_equal_z_reads_the_ego4d_layout_by_default(n: int, kz: int, seed: int) -> None:
    """With K == Z both layouts fit: the default must be Ego4D's (N, Z, K), never a guess."""
    rng = np.random.default_rng(seed)
    ego4d = rng.integers(0, 3, size=(n, kz, kz))  # (N, Z, K)
    labels = rng.integers(0, 3, size=(n, kz))
    assert edit_distance(ego4d, labels) == pytest.approx(_reference_ed(ego4d, labels), abs=1e-12)
    assert aued(ego4d, labels) == pytest.approx(_reference_aued(ego4d, labels), abs=1e-12)
    # Ego4D's AUED squeezes labels (N, Z, 1)
    assert aued(ego4d, labels[:, :, None]) == pytest.approx(_reference_aued(ego4d, labels), abs=1e-12)
    nkz = ego4d.transpose(0, 2, 1)
    assert edit_distance(nkz, labels, layout="NKZ") == pytest.approx(_reference_ed(ego4d, labels), abs=1e-12)


def test_k_equal_z_issue_case_and_layout_errors() -> None:
    """The issue's random case: an Ego4D-layout array read as (N, K, Z) gives another number."""
    rng = np.random.default_rng(0)
    ego4d = rng.integers(0, 3, size=(4, 5, 5))
    labels = rng.integers(0, 3, size=(4, 5))
    ref = _reference_ed(ego4d, labels)
    assert edit_distance(ego4d, labels) == pytest.approx(ref, abs=1e-12)
    misread = edit_distance(ego4d, labels, layout="NKZ")
    assert misread == pytest.approx(_reference_ed(ego4d.transpose(0, 2, 1), labels), abs=1e-12)
    # a shape that fits only the other layout names both layouts and the keyword
    with pytest.raises(EvalError, match=r"\(N, Z, K\).*\(N, K, Z\).*layout='NKZ'"):
        edit_distance(np.zeros((2, 3, 4), dtype=int), np.zeros((2, 4), dtype=int))
    with pytest.raises(EvalError, match="layout must be"):
        edit_distance(ego4d, labels, layout="KZ")


def _gt(clip: str, verbs: list[int], nouns: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"video_id": clip, "task": "recognition", "t_start_s": np.arange(len(verbs), dtype=float),
                         "t_end_s": np.arange(len(verbs), dtype=float) + 1, "score": 1.0, "seq": range(len(verbs)),
                         "verb_id": verbs, "noun_id": nouns, "source": "ground_truth:ego4d_lta"})


def _fc(clip: str, anchor: int, verbs: list[list[int]], nouns: list[list[int]]) -> pd.DataFrame:
    rows = [{"video_id": clip, "anchor_idx": anchor, "candidate": k + 1, "step": s + 1, "verb_id": v, "noun_id": n,
             "source": "predictions:test"}
            for k, (vs, ns) in enumerate(zip(verbs, nouns, strict=True))
            for s, (v, n) in enumerate(zip(vs, ns, strict=True))]
    return pd.DataFrame(rows)


def test_action_is_pair_exact() -> None:
    gt = Tables(segments=_gt("c", [0, 1, 2], [0, 2, 1]))  # targets after action 0: (1, 2), (2, 1)
    # predicted (2, 1), (1, 2): verb + noun = 3 at both steps as in the targets (AntGPT's element-wise sum
    # would call this a perfect action sequence), but no (verb, noun) pair is right
    pred = Tables(forecasts=_fc("c", 0, [[2, 1]], [[1, 2]]))
    out = evaluate_lta(gt, pred)
    assert out["Z"] == 2 and out["K"] == 1 and out["n_samples"] == 1
    assert out["ED@2"] == {"verb": 1.0, "noun": 1.0, "action": 1.0}
    pred = Tables(forecasts=_fc("c", 0, [[1, 2]], [[0, 1]]))  # verbs right, noun wrong at step 1
    assert evaluate_lta(gt, pred)["ED@2"] == {"verb": 0.0, "noun": 0.5, "action": 0.5}


def test_min_over_candidates_and_prefix_z() -> None:
    gt = Tables(segments=_gt("c", [0, 1, 2, 3, 4], [5, 5, 5, 5, 5]))
    pred = Tables(forecasts=_fc("c", 1, [[9, 9, 9], [2, 3, 9]], [[5, 5, 5], [5, 5, 5]]))
    out = evaluate_lta(gt, pred)
    assert out["ED@3"]["verb"] == pytest.approx(1 / 3) and out["ED@3"]["noun"] == 0.0
    assert evaluate_lta(gt, pred, z=2)["ED@2"]["verb"] == 0.0
    # AUED over z = 1, 2, 3 with ED 0, 0, 1/3 -> trapz / 2
    assert out["AUED"]["verb"] == pytest.approx((0 + 0 + (0 + 1 / 3) / 2) / 2)


def test_bad_input() -> None:
    gt = Tables(segments=_gt("c", [0, 1, 2], [0, 0, 0]))
    with pytest.raises(EvalError, match="only 1 annotated actions follow"):
        evaluate_lta(gt, Tables(forecasts=_fc("c", 1, [[0, 0]], [[0, 0]])))
    with pytest.raises(EvalError, match="no action_idx 7"):
        evaluate_lta(gt, Tables(forecasts=_fc("c", 7, [[0]], [[0]])))
    with pytest.raises(EvalError, match="not in the ground truth"):
        evaluate_lta(gt, Tables(forecasts=_fc("zz", 0, [[0]], [[0]])))
    ragged = _fc("c", 0, [[1, 2], [1, 2]], [[0, 0], [0, 0]]).iloc[:-1]
    with pytest.raises(EvalError, match="candidate 2 step 2"):
        evaluate_lta(gt, Tables(forecasts=ragged))
    with pytest.raises(EvalError, match="predictions: no forecast"):
        evaluate_lta(gt, Tables())
    with pytest.raises(EvalError, match="z=5 is outside"):
        evaluate_lta(gt, Tables(forecasts=_fc("c", 0, [[1, 2]], [[0, 0]])), z=5)
    with pytest.raises(EvalError, match="n_nouns=1"):
        evaluate_lta(gt, Tables(forecasts=_fc("c", 0, [[1, 2]], [[0, 3]])), n_nouns=1)


def test_cli_on_ego4d_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clips = [{"clip_uid": "clipA", "video_uid": "vid", "action_idx": i, "action_clip_start_sec": float(i),
              "action_clip_end_sec": i + 1.0, "action_clip_start_frame": 30 * i, "action_clip_end_frame": 30 * i + 30,
              "verb": f"v{i % 3}", "noun": f"n{i % 4}", "verb_label": i % 3, "noun_label": i % 4} for i in range(8)]
    (tmp_path / "gt.json").write_text(json.dumps({"version": "v1", "split": "val", "clips": clips}))
    z = 4
    target_v = [(i % 3) for i in range(4, 8)]
    target_n = [(i % 4) for i in range(4, 8)]
    wrong = [9] * z  # verb 9 occurs nowhere in the targets: 4 substitutions
    sub = {"clipA_3": {"verb": [wrong, target_v], "noun": [target_n, target_n]}}
    (tmp_path / "sub.json").write_text(json.dumps(sub))
    assert main(["eval", "lta", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "sub.json"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[f"ED@{z}"] == {"verb": 0.0, "noun": 0.0, "action": 0.0} and out["K"] == 2
    sub = {"clipA_3": {"verb": [wrong], "noun": [target_n]}}
    (tmp_path / "sub.json").write_text(json.dumps(sub))
    assert main(["eval", "lta", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "sub.json"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[f"ED@{z}"] == {"verb": 1.0, "noun": 0.0, "action": 1.0}
