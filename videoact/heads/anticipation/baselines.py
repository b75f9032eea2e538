"""Baselines for long-term anticipation: most-frequent, and an n-gram (Markov) model over (verb, noun) actions.

Both answer the backend protocol (``videoact.llm.base``), so the benchmark, the head and the evaluator treat them
exactly like the language models.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from videoact.heads.anticipation.data import ActionSequence
from videoact.llm.base import Candidate, Prompt, register_backend, require_constraint
from videoact.llm.constraint import ActionConstraint

Action = tuple[int, int]


@dataclass
class MostFrequent:
    """The most frequent training verb and noun at every step, ``n`` identical candidates."""

    verb: int
    noun: int
    name: str = "most_frequent"

    @classmethod
    def fit(cls, seqs: Iterable[ActionSequence]) -> MostFrequent:
        seqs = list(seqs)
        verbs = np.bincount(np.concatenate([s.verb for s in seqs]))
        nouns = np.bincount(np.concatenate([s.noun for s in seqs]))
        return cls(verb=int(verbs.argmax()), noun=int(nouns.argmax()))

    def generate(self, prompts: Sequence[Prompt], n: int, constraint: ActionConstraint | None) -> list[list[Candidate]]:
        z = require_constraint(constraint, self.name).z
        cand = Candidate(actions=((self.verb, self.noun),) * z)
        return [[cand] * n for _ in prompts]


@dataclass
class _Dist:
    actions: list[Action]
    probs: np.ndarray  # (A,) sums to 1


class NGram:
    """Interpolated n-gram over actions: ``P = lam * P_ML(a | last n-1) + (1 - lam) * P(a | last n-2)``, down
    to the unigram. Candidate 1 is the greedy (most probable) continuation, the others are sampled, since the
    minimum edit distance over K rewards diverse candidates.
    """

    def __init__(self, *, order: int = 2, lam: float = 0.8, greedy_first: bool = True, seed: int = 0,
                 name: str = "ngram") -> None:
        if order < 1:
            raise ValueError("order must be >= 1")
        self.order, self.lam, self.greedy_first, self.seed, self.name = order, lam, greedy_first, seed, name
        self.tables: list[dict[tuple[Action, ...], _Dist]] = []
        self._uni: dict[Action, float] = {}

    def fit(self, seqs: Iterable[ActionSequence]) -> NGram:
        counts: list[dict[tuple[Action, ...], Counter[Action]]] = [defaultdict(Counter) for _ in range(self.order)]
        for s in seqs:
            acts = list(zip(s.verb.tolist(), s.noun.tolist(), strict=True))
            for i, a in enumerate(acts):
                for k in range(self.order):  # k = context length
                    if i - k >= 0:
                        counts[k][tuple(acts[i - k:i])][a] += 1
        self.tables = []
        for table in counts:
            out = {}
            for ctx, c in table.items():
                acts_k = list(c)
                p = np.asarray([c[a] for a in acts_k], dtype=float)
                out[ctx] = _Dist(acts_k, p / p.sum())
            self.tables.append(out)
        uni = self.tables[0][()]
        self._uni = dict(zip(uni.actions, uni.probs.tolist(), strict=True))
        self._uni_best = uni.actions[int(uni.probs.argmax())]
        return self

    def _components(self, history: Sequence[Action]) -> list[tuple[float, _Dist]]:
        """(weight, distribution) from the longest matching context down to the unigram; weights sum to 1."""
        comps: list[tuple[float, _Dist]] = []
        rest = 1.0
        for k in range(self.order - 1, 0, -1):
            if len(history) < k:
                continue
            d = self.tables[k].get(tuple(history[-k:]))
            if d is not None:
                comps.append((rest * self.lam, d))
                rest *= 1 - self.lam
        comps.append((rest, self.tables[0][()]))
        return comps

    def _greedy(self, history: Sequence[Action]) -> Action:
        comps = self._components(history)
        score: dict[Action, float] = defaultdict(float)
        for w, d in comps[:-1]:
            for a, p in zip(d.actions, d.probs, strict=True):
                score[a] += w * p
        w_uni = comps[-1][0]
        for a in {*score, self._uni_best}:
            score[a] += w_uni * self._uni.get(a, 0.0)
        return max(score, key=score.__getitem__)

    def _sample(self, history: Sequence[Action], rng: np.random.Generator) -> Action:
        comps = self._components(history)
        j = rng.choice(len(comps), p=[w for w, _ in comps])
        d = comps[j][1]
        return d.actions[rng.choice(len(d.actions), p=d.probs)]

    def generate(self, prompts: Sequence[Prompt], n: int, constraint: ActionConstraint | None) -> list[list[Candidate]]:
        z = require_constraint(constraint, self.name).z
        rng = np.random.default_rng(self.seed)
        out = []
        for prompt in prompts:
            cands = []
            for k in range(n):
                hist = list(prompt.observed)
                for _ in range(z):
                    hist.append(self._greedy(hist) if k == 0 and self.greedy_first else self._sample(hist, rng))
                cands.append(Candidate(actions=tuple(hist[len(prompt.observed):])))
            out.append(cands)
        return out


@register_backend("most_frequent")
def build_most_frequent(*, seqs: Iterable[ActionSequence]) -> MostFrequent:
    return MostFrequent.fit(seqs)


@register_backend("ngram")
def build_ngram(*, seqs: Iterable[ActionSequence], order: int = 2, lam: float = 0.8, seed: int = 0) -> NGram:
    return NGram(order=order, lam=lam, seed=seed).fit(seqs)
