"""Prompts for language-model backends: LALM-style in-context examples picked by Maximal Marginal Relevance.

Action histories are embedded as text (``"take pan, put pan, ..."``) with the offline MiniLM sentence encoder
(``videoact.features.text.minilm_encoder``), indexed with faiss (inner product of normalised vectors = cosine).
For a query, the ``pool`` nearest training histories are re-ranked by MMR (Carbonell & Goldstein 1998)::

    next = argmax_{d in pool \\ S}  lam * sim(q, d) - (1 - lam) * max_{s in S} sim(d, s)

so the examples are relevant but not five copies of the same routine. Two modes:

* ``bottom_up``: examples ``Observed: ... / Future: ...``, then the query's ``Observed:`` and ``Future:``;
* ``top_down`` (AntGPT): first ask for the goal (``Goal:``, free text, examples carry their video's description),
  then plan the future actions given the observed actions and that goal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videoact.features.text import Encoder, minilm_encoder
from videoact.heads.anticipation.data import ActionVocab, LTASamples
from videoact.llm.base import Candidate, LLMBackend, Prompt
from videoact.llm.constraint import ActionConstraint


def samples_to_prompts(samples: LTASamples) -> list[Prompt]:
    """Id-only prompts (no text): what the action LM and the n-gram baselines read."""
    return [Prompt(observed=tuple(zip(v.tolist(), n.tolist(), strict=True)), goal=g)
            for v, n, g in zip(samples.obs_verb, samples.obs_noun, samples.goals, strict=True)]


def mmr(query: np.ndarray, cands: np.ndarray, k: int, lam: float) -> list[int]:
    """Indices of ``k`` rows of ``cands`` (m, d) by Maximal Marginal Relevance to ``query`` (d,)."""
    rel = cands @ query  # (m,)
    sim = cands @ cands.T  # (m, m)
    chosen: list[int] = []
    left = list(range(len(cands)))
    while left and len(chosen) < k:
        red = sim[np.ix_(left, chosen)].max(1) if chosen else np.zeros(len(left))
        best = left[int(np.argmax(lam * rel[left] - (1 - lam) * red))]
        chosen.append(best)
        left.remove(best)
    return chosen


@dataclass
class Example:
    observed: str
    future: str
    goal: str | None


class ExampleBank:
    """Training examples with a faiss index over their observed-history embeddings."""

    def __init__(self, examples: list[Example], *, encoder: Encoder | None = None) -> None:
        import faiss

        self.examples = examples
        self.encoder = encoder or minilm_encoder()
        emb = self.encoder([e.observed for e in examples])  # (M, D)
        self.emb = emb
        self.index = faiss.IndexFlatIP(emb.shape[1])
        self.index.add(emb)

    @classmethod
    def from_samples(cls, samples: LTASamples, constraint: ActionConstraint, *,
                     encoder: Encoder | None = None) -> ExampleBank:
        ex = [Example(observed=constraint.format(list(zip(ov.tolist(), on.tolist(), strict=True))),
                      future=constraint.format(list(zip(fv.tolist(), fn.tolist(), strict=True))[:constraint.z]),
                      goal=g)
              for ov, on, fv, fn, g in zip(samples.obs_verb, samples.obs_noun, samples.fut_verb, samples.fut_noun,
                                           samples.goals, strict=True)]
        return cls(ex, encoder=encoder)

    def select(self, queries: list[str], k: int, *, lam: float = 0.7, pool: int = 32) -> list[list[Example]]:
        """``k`` examples per query text, by MMR over its ``pool`` nearest neighbours."""
        if k <= 0 or not self.examples:
            return [[] for _ in queries]
        q = self.encoder(queries)  # (Q, D)
        _, nn_idx = self.index.search(q, min(pool, len(self.examples)))  # (Q, pool)
        out = []
        for qi, row in zip(q, nn_idx, strict=True):
            row = row[row >= 0]
            picked = mmr(qi, self.emb[row], k, lam)
            out.append([self.examples[int(row[i])] for i in picked])
        return out


def example_bank_from_file(path: str | Path, vocab: ActionVocab, *, n_observed: int = 8, z: int = 20,
                           max_examples: int = 2000, taxonomy: str | Path | None = None) -> ExampleBank:
    """An example bank over the action histories of annotation files: an EPIC-55 folder, or an Ego4D LTA json
    (with its ``taxonomy``); at most ``max_examples`` samples, evenly spaced."""
    from videoact.heads.anticipation.data import action_sequences, make_samples, read_ego4d_lta, read_epic55

    path = Path(path)
    if path.suffix == ".json":
        if taxonomy is None:
            raise ValueError(f"{path}: an Ego4D LTA json needs its fho_lta_taxonomy.json (anticipation.vocab_file)")
        tables = read_ego4d_lta(path, taxonomy)
    else:
        tables = read_epic55(path)
    samples = make_samples(action_sequences(tables), n_observed=n_observed, z=z)
    if not len(samples):
        raise ValueError(f"{path}: no history of {n_observed} + {z} actions for in-context examples")
    keep = np.unique(np.linspace(0, len(samples) - 1, min(max_examples, len(samples))).astype(int))
    return ExampleBank.from_samples(samples[keep], ActionConstraint(vocab, z=z))


HEADER = "Predict the next {z} actions (verb noun) of the person in this egocentric video.\n\n"


def _block(observed: str, goal: str | None, future: str | None, *, with_goal: bool) -> str:
    text = f"Observed: {observed}\n"
    if with_goal:
        text += f"Goal: {goal or 'unknown'}\n"
    return text + ("Future:" + (f" {future}\n\n" if future is not None else ""))


def build_prompts(samples: LTASamples, constraint: ActionConstraint, *, bank: ExampleBank | None = None,
                  n_examples: int = 4, lam: float = 0.7, pool: int = 32, mode: str = "bottom_up",
                  backend: LLMBackend | None = None) -> list[Prompt]:
    """Text prompts for ``samples``; ``top_down`` first asks ``backend`` for each query's goal."""
    base = samples_to_prompts(samples)
    observed = [constraint.format(list(p.observed)) for p in base]
    examples = bank.select(observed, n_examples, lam=lam, pool=pool) if bank is not None else [[] for _ in base]
    head = HEADER.format(z=constraint.z)
    if mode == "bottom_up":
        return [Prompt(observed=p.observed, goal=p.goal,
                       text=head + "".join(_block(e.observed, None, e.future, with_goal=False) for e in ex)
                       + _block(o, None, None, with_goal=False))
                for p, o, ex in zip(base, observed, examples, strict=True)]
    if mode != "top_down":
        raise ValueError(f"prompt mode must be bottom_up or top_down, got {mode!r}")
    if backend is None:
        raise ValueError("top_down prompting needs a text backend to infer the goal")
    goal_prompts = [Prompt(observed=p.observed,
                           text="Infer the goal of the person from the actions they did.\n\n"
                           + "".join(f"Observed: {e.observed}\nGoal: {e.goal or 'unknown'}\n\n" for e in ex)
                           + f"Observed: {o}\nGoal:")
                    for p, o, ex in zip(base, observed, examples, strict=True)]
    goals: list[list[Candidate]] = backend.generate(goal_prompts, 1, None)
    inferred = [g[0].text.strip().split("\n")[0][:200] or "unknown" for g in goals]
    return [Prompt(observed=p.observed, goal=goal,
                   text=head + "".join(_block(e.observed, e.goal, e.future, with_goal=True) for e in ex)
                   + _block(o, goal, None, with_goal=True))
            for p, o, ex, goal in zip(base, observed, examples, inferred, strict=True)]


def prompt_texts(prompts: Sequence[Prompt]) -> list[str]:
    return [p.text for p in prompts]
