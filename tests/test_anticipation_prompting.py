"""LALM-style prompting: MMR over MiniLM embeddings in a faiss index; AntGPT-style top-down (goal, then plan)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from videoact.heads.anticipation.config import LTADataConfig
from videoact.heads.anticipation.prompting import ExampleBank, build_prompts, minilm_encoder, mmr
from videoact.llm.constraint import ActionConstraint
from videoact.train.anticipation import epic55_split_samples


def test_mmr_trades_relevance_for_diversity() -> None:
    q = np.array([1.0, 0.0])
    a = np.array([1.0, 0.0])  # most relevant
    a2 = np.array([0.99, 0.141])  # almost a copy of a
    b = np.array([0.6, 0.8])  # less relevant, different
    cands = np.stack([a, a2, b]) / np.linalg.norm(np.stack([a, a2, b]), axis=1, keepdims=True)
    assert mmr(q, cands, 2, lam=1.0) == [0, 1]  # pure relevance
    assert mmr(q, cands, 2, lam=0.3) == [0, 2]  # the near-duplicate is penalised


@pytest.fixture(scope="module")
def epic(shared_data: Path):
    vocab, _, train, val = epic55_split_samples(LTADataConfig(root=shared_data / "anticipation/epic_kitchens_55"))
    return vocab, train[:: 60], val[:: 400]


def test_minilm_faiss_bank_selects_similar_histories(epic) -> None:
    pytest.importorskip("faiss")
    vocab, train, val = epic
    c = ActionConstraint(vocab, z=20)
    enc = minilm_encoder()
    e = enc(["take pan, put pan", "take pan, put pan, wash pan", "open fridge, take milk"])
    assert e.shape == (3, 384) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2]
    bank = ExampleBank.from_samples(train, c)
    query = bank.examples[5].observed
    picked = bank.select([query], 3, lam=1.0)[0]
    assert picked[0].observed == query  # with lam = 1 the nearest neighbour (itself) comes first
    diverse = bank.select([query], 3, lam=0.3)[0]
    assert len({p.observed for p in diverse}) == 3
    prompts = build_prompts(val, c, bank=bank, n_examples=2)
    text = prompts[0].text
    assert text.count("Observed:") == 3 and text.count("Future:") == 3 and text.endswith("Future:")
    ex_future = text.split("Future: ")[1].split("\n")[0]
    assert len(c.parse(ex_future)) == 20  # in-context examples are in the constrained language too
    assert len({p.hash for p in prompts}) == len(prompts)


def test_top_down_infers_the_goal_then_plans(epic) -> None:
    pytest.importorskip("faiss")
    pytest.importorskip("transformers")
    from _tiny_lm import tiny_llama, train_tokenizer

    from videoact.heads.anticipation.backends import build_backend

    vocab, train, val = epic
    c = ActionConstraint(vocab, z=3)
    tok = train_tokenizer(list(vocab.verbs + vocab.nouns))
    backend = build_backend("transformers", model=tiny_llama(tok), tokenizer=tok, seed=0)
    bank = ExampleBank.from_samples(train, c)
    prompts = build_prompts(val[:2], c, bank=bank, n_examples=1, mode="top_down", backend=backend)
    for p in prompts:
        assert p.goal and p.text.count("Goal:") == 2 and p.text.rstrip().endswith("Future:")
        assert f"Goal: {p.goal}\nFuture:" in p.text
    out = backend.generate(prompts, 2, c)
    assert all(len(x.actions) == 3 for cands in out for x in cands)
