"""Baselines (most frequent, n-gram) and the Ego4D edit distance they are scored with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from videoact.eval.lta import aued, edit_distance
from videoact.heads.anticipation.backends import build_backend, list_backends
from videoact.heads.anticipation.baselines import MostFrequent, NGram
from videoact.heads.anticipation.config import LTADataConfig
from videoact.heads.anticipation.data import ActionSequence, ActionVocab
from videoact.llm.base import Prompt
from videoact.llm.constraint import ActionConstraint


def _seq(verbs: list[int], nouns: list[int], vid: str = "v") -> ActionSequence:
    n = len(verbs)
    return ActionSequence(video_id=vid, verb=np.asarray(verbs), noun=np.asarray(nouns), index=np.arange(n),
                          t_end_s=np.arange(n, dtype=float), group=vid)


TOY = ActionVocab(name="toy", verbs=("take", "put", "wash"), nouns=("pan", "lid", "cup"))


def test_edit_distance_hand_computed_and_official_edge_cases() -> None:
    # Hand-computed: Z = 4, K = 2. Candidate 1 has 1 substitution, candidate 2 has 3: min = 1 -> 1/4.
    labels = np.array([[0, 1, 2, 0]])
    preds = np.array([[[0, 1, 1, 0], [2, 2, 2, 2]]])
    assert edit_distance(preds, labels, layout="NKZ") == pytest.approx(0.25)
    # Levenshtein, not Damerau: a transposition costs 2 (EGO4D/forecasting issue #35, editdistance 0.6.0).
    assert edit_distance(np.array([[[5, 7, 6]]]), np.array([[5, 6, 7]]), layout="NKZ") == pytest.approx(2 / 3)
    # Divided by Z, the length of the labels, so sequences must be exactly Z long.
    with pytest.raises(ValueError):
        edit_distance(np.array([[[1, 2, 3]]]), np.array([[1, 2, 3, 4]]), layout="NKZ")
    # Mean over samples of the min over K.
    two = edit_distance(np.array([[[1, 1]], [[2, 3]]]), np.array([[1, 1], [3, 2]]), layout="NKZ")
    assert two == pytest.approx((0 + 1) / 2)
    # AUED: trapezoid over ED@z, z = 1..Z, / (Z - 1). Prefix EDs here are 0, 1/2, 2/3 -> (1/4 + 7/12) / 2.
    assert aued(np.array([[[1, 9, 9]]]), np.array([[1, 2, 3]]), layout="NKZ") == pytest.approx((0.25 + 7 / 12) / 2)


def test_action_ed_is_pair_exact() -> None:
    # the verb is right at step 1, the noun at step 2, never both at once -> action ED 1.
    v, n = np.array([[[0, 1, 3]]]), np.array([[[9, 1, 2]]])
    lv, ln = np.array([[0, 5, 2]]), np.array([[3, 1, 3]])
    assert edit_distance(v, lv, layout="NKZ") == pytest.approx(2 / 3)
    assert edit_distance(n, ln, layout="NKZ") == pytest.approx(2 / 3)
    assert edit_distance(v * 10 + n, lv * 10 + ln, layout="NKZ") == pytest.approx(1.0)
    # AntGPT's element-wise verb + noun calls step 3 (3 + 2 = 2 + 3) a match; pair ids do not.
    assert edit_distance(v + n, lv + ln, layout="NKZ") == pytest.approx(2 / 3)


def test_most_frequent_and_ngram_on_a_routine() -> None:
    routine = [(0, 0), (1, 1), (2, 2)] * 10  # take pan, put lid, wash cup, repeat
    seqs = [_seq([a for a, _ in routine], [b for _, b in routine])]
    c = ActionConstraint(TOY, z=6)
    prompt = Prompt(observed=((0, 0), (1, 1)))
    mf = MostFrequent.fit(seqs).generate([prompt], 3, c)[0]
    assert len(mf) == 3 and all(len(x.actions) == 6 for x in mf)
    ng = NGram(order=2).fit(seqs).generate([prompt], 5, c)[0]
    assert ng[0].actions == ((2, 2), (0, 0), (1, 1), (2, 2), (0, 0), (1, 1))  # greedy continues the routine
    assert all(0 <= v < 3 and 0 <= o < 3 for cand in ng for v, o in cand.actions)
    assert {"most_frequent", "ngram", "action_lm", "transformers", "http", "llamacpp"} <= set(list_backends())
    assert build_backend("ngram", seqs=seqs, order=3).order == 3


def test_ngram_beats_most_frequent_on_epic55(shared_data: Path) -> None:
    from videoact.heads.anticipation.prompting import samples_to_prompts
    from videoact.train.anticipation import epic55_split_samples

    vocab, train_seqs, _, val = epic55_split_samples(LTADataConfig(root=shared_data / "anticipation/epic_kitchens_55"))
    val = val[:: 40]
    c = ActionConstraint(vocab, z=20)
    prompts = samples_to_prompts(val)
    eds = {}
    for name, model in (("mf", MostFrequent.fit(train_seqs)), ("ngram", NGram(order=2).fit(train_seqs))):
        acts = np.asarray([[x.actions for x in cands] for cands in model.generate(prompts, 5, c)])  # (S, K, Z, 2)
        assert acts.shape == (len(val), 5, 20, 2)
        eds[name] = edit_distance(acts[..., 0], val.fut_verb, layout="NKZ")
    assert eds["ngram"] < eds["mf"] < 0.9
