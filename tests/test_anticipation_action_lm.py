"""The built-in action LM: trains on real EPIC-55 sequences (loss falls), checkpoints load with weights_only,
sampling gives valid ids; the head writes forecasts that ``evaluate_lta`` scores."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from videoact.eval.lta import evaluate_lta
from videoact.heads.anticipation.action_lm import (
    ActionLM,
    ActionLMBackend,
    load_action_lm,
    pad_history,
)
from videoact.heads.anticipation.config import AnticipationConfig
from videoact.heads.anticipation.data import read_epic55
from videoact.heads.anticipation.head import forecast_video
from videoact.llm.base import Prompt
from videoact.llm.constraint import ActionConstraint

REPO = Path(__file__).resolve().parents[1]


def test_forward_shapes_and_padding() -> None:
    m = ActionLM(n_verbs=5, n_nouns=7, n_observed=4, z=3, d_model=16, n_layers=1, n_heads=2).eval()
    v, n = torch.tensor([[0, 1, 2, 3], [5, 5, 1, 2], [5, 5, 5, 5]]), torch.tensor([[0, 1, 2, 3], [7, 7, 1, 2], [7] * 4])
    lv, ln = m(v, n)
    assert lv.shape == (3, 3, 5) and ln.shape == (3, 3, 7) and torch.isfinite(lv).all() and torch.isfinite(ln).all()
    # left padding is masked: the padded ids do not change what a history of two predicts
    v2, n2 = torch.tensor([[5, 5, 1, 2]]), torch.tensor([[7, 7, 1, 2]])
    m.pos.data[:2] += 3.0  # even with different embeddings at the padded positions
    assert torch.allclose(m(v2, n2)[0], lv[1:2], atol=1e-5)


@pytest.fixture(scope="module")
def trained(action_lm_checkpoint: Path) -> Path:
    return action_lm_checkpoint


def test_training_loss_falls_and_checkpoint_loads_weights_only(trained: Path) -> None:
    blob = torch.load(trained, map_location="cpu", weights_only=True)
    losses = blob["extra"]["train_losses"]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5, losses
    assert blob["extra"]["split"]["val_participants"] == ["P02", "P08", "P10", "P15", "P19", "P23"]
    assert trained.stat().st_size < 2_000_000
    model, vocab = load_action_lm(trained)
    assert (vocab.n_verbs, vocab.n_nouns, model.z, model.n_observed) == (125, 352, 20, 8)


def test_action_lm_backend_samples_valid_candidates(trained: Path) -> None:
    model, vocab = load_action_lm(trained)
    backend = ActionLMBackend(model, vocab, seed=0)
    c = ActionConstraint(vocab, z=20)
    out = backend.generate([Prompt(observed=((0, 3), (1, 3))), Prompt(observed=())], 5, c)
    for cands in out:
        assert len(cands) == 5 and all(len(x.actions) == 20 for x in cands)
        assert all(0 <= v < 125 and 0 <= o < 352 for x in cands for v, o in x.actions)
        assert all(x.score is not None and x.score < 0 for x in cands)
    assert pad_history([(1, 2)], 3, vocab) == ([125, 125, 1], [352, 352, 2])
    prompts = [Prompt(observed=((0, 3), (1, 3))), Prompt(observed=())]
    again = ActionLMBackend(model, vocab, seed=0).generate(prompts, 5, c)
    assert again == out  # seeded


def _reference_ed(gt, forecasts, *, z: int) -> dict[str, float]:
    """Ego4D ED@Z with ``editdistance`` (what lta_metrics.py calls): mean over anchors of min over K of Lev / Z
    against the Z annotated actions after the anchor; actions compared as (verb, noun) pairs."""
    editdistance = pytest.importorskip("editdistance")
    seg = gt.segments.dropna(subset=["seq"]).sort_values("seq")
    after = {int(a): i for i, a in enumerate(seg["seq"])}
    eds: dict[str, list[float]] = {"verb": [], "noun": [], "action": []}
    for (_, anchor), fc in forecasts.groupby(["video_id", "anchor_idx"]):
        future = seg.iloc[after[int(anchor)] + 1: after[int(anchor)] + 1 + z]
        truth = {"verb": list(future["verb_id"]), "noun": list(future["noun_id"]),
                 "action": list(zip(future["verb_id"], future["noun_id"], strict=True))}
        cands = [c.sort_values("step").head(z) for _, c in fc.groupby("candidate")]
        for h, y in truth.items():
            seqs = [list(c["verb_id"]) if h == "verb" else list(c["noun_id"]) if h == "noun" else
                    list(zip(c["verb_id"], c["noun_id"], strict=True)) for c in cands]
            eds[h].append(min(editdistance.eval(p, y) for p in seqs) / z)
    return {h: float(np.mean(v)) for h, v in eds.items()}


def test_head_writes_forecasts_that_eval_lta_scores(trained: Path, shared_data: Path) -> None:
    gt = read_epic55(shared_data / "anticipation/epic_kitchens_55").for_video("P02_01")
    cfg = AnticipationConfig(backend="action_lm", checkpoint=trained, anchors="all", k=5, z=20)
    # the head reads the observed actions from the video's segments (here: ground truth standing in for recognition)
    observed = gt.for_video("P02_01")
    n_actions = len(observed.segments)
    out = forecast_video(observed, cfg)
    fc = out.forecasts
    anchors = sorted(set(fc["anchor_idx"]))
    assert anchors == list(range(7, n_actions))
    assert len(fc) == len(anchors) * 5 * 20
    assert fc["source"].str.startswith("action_lm@").all() and fc["prompt_hash"].notna().all()
    assert fc["score"].between(0, 1).all()
    assert set(fc["verb"]) <= set(gt.labels["name"])
    # score the anchors that have 20 actions after them against the ground truth
    scored = out.forecasts[out.forecasts["anchor_idx"] < n_actions - 20]
    res = evaluate_lta(gt, type(out)(forecasts=scored))
    assert res["n_samples"] == n_actions - 20 - 7 and res["K"] == 5 and res["Z"] == 20
    ref = _reference_ed(gt, scored, z=20)
    assert res["ED@20"] == pytest.approx(ref, abs=1e-12), (res["ED@20"], ref)
    # the trained model beats repeating the anchor's action Z times (a copy baseline) on verbs (0.69 vs 0.83 here)
    last = gt.segments.set_index("seq")
    copy = scored.assign(verb_id=scored["anchor_idx"].map(last["verb_id"]),
                         noun_id=scored["anchor_idx"].map(last["noun_id"]))
    assert res["ED@20"]["verb"] < _reference_ed(gt, copy, z=20)["verb"] - 0.05
    last = forecast_video(observed, replace(cfg, anchors="last"))
    assert set(last.forecasts["anchor_idx"]) == {n_actions - 1}
    assert np.isfinite(last.forecasts["anchor_t_s"]).all()
