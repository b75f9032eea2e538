"""Verb/noun action vocabularies (Ego4D LTA, EPIC-KITCHENS): the label spaces of ``forecasts`` and of the
anticipation backends' constraints. Plain data, so both ``llm`` and ``heads`` can build on it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from videoact.annotations import schema


def _display_names(names: Sequence[str]) -> tuple[str, ...]:
    """Short, unique, space- and comma-free names for prompts: Ego4D's ``nut_(food)`` stays, ``apply_(spread)``
    becomes ``apply``; the id is the position either way."""
    short = [re.sub(r"_\(.*\)$", "", n) for n in names]
    counts = pd.Series(short).value_counts()
    out = [s if counts[s] == 1 else n for s, n in zip(short, names, strict=True)]
    out = [re.sub(r"[\s,]+", "_", s) for s in out]
    if len(set(out)) != len(out):
        dup = pd.Series(out)[pd.Series(out).duplicated()].iloc[0]
        raise ValueError(f"class names collide after shortening: {dup!r}")
    return tuple(out)


@dataclass(frozen=True)
class ActionVocab:
    """Verb and noun classes of one dataset; ids are positions. ``verbs``/``nouns`` are prompt-safe names.

    Example:
        >>> v = ActionVocab(name="toy", verbs=("take", "put"), nouns=("pan", "lid"))
        >>> v.action_id(1, 0), v.verb_space
        (2, 'toy_verb')
    """

    name: str
    verbs: tuple[str, ...]
    nouns: tuple[str, ...]

    @classmethod
    def from_names(cls, name: str, verbs: Sequence[str], nouns: Sequence[str]) -> ActionVocab:
        return cls(name=name, verbs=_display_names(verbs), nouns=_display_names(nouns))

    @property
    def verb_space(self) -> str:
        return f"{self.name}_verb"

    @property
    def noun_space(self) -> str:
        return f"{self.name}_noun"

    @property
    def n_verbs(self) -> int:
        return len(self.verbs)

    @property
    def n_nouns(self) -> int:
        return len(self.nouns)

    def action_id(self, verb_id: int | np.ndarray, noun_id: int | np.ndarray) -> int | np.ndarray:
        """Pair-exact action id ``verb * n_nouns + noun`` (PanasonicConnect ``eval_val.py``)."""
        return verb_id * self.n_nouns + noun_id

    def labels(self) -> pd.DataFrame:
        rows = [{"label_space": self.verb_space, "id": i, "name": n} for i, n in enumerate(self.verbs)]
        rows += [{"label_space": self.noun_space, "id": i, "name": n} for i, n in enumerate(self.nouns)]
        return pd.DataFrame(rows)

    @classmethod
    def from_labels(cls, labels: pd.DataFrame, name: str) -> ActionVocab:
        """The vocabulary stored in a ``labels`` table under ``<name>_verb`` / ``<name>_noun``."""
        out = []
        for head in ("verb", "noun"):
            sub = labels[labels["label_space"] == f"{name}_{head}"].sort_values("id")
            ids = [int(i) for i in sub["id"]]
            if not ids or ids != list(range(len(ids))):
                have = sorted(set(labels["label_space"]))
                raise schema.AnnotationError(
                    f"labels: label space {name}_{head} must hold ids 0..n-1 (have spaces {have})")
            out.append([str(n) for n in sub["name"]])
        return cls.from_names(name, out[0], out[1])
