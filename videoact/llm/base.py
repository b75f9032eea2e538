"""The backend protocol for long-term anticipation: ``generate(prompts, n, constraint) -> candidates``.

Every backend - the built-in action LM, the n-gram baselines, HF transformers, an OpenAI-compatible server,
llama.cpp - answers the same call. A :class:`Prompt` carries both the observed action ids (for models over
action tokens) and the prompt text (for language models); with a constraint the answer is ``n`` candidates of
exactly ``Z`` ``(verb_id, noun_id)`` pairs each, always valid vocabulary ids; with ``constraint=None`` a text
backend returns free text (AntGPT's top-down "infer the goal" step).

Backends register under their own name (``register_backend``); build them by name with
``heads.anticipation.backends.build_backend``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from videoact.llm.constraint import ActionConstraint
from videoact.registry import Registry


@dataclass(frozen=True)
class Prompt:
    """One forecasting query: observed ``(verb_id, noun_id)`` pairs, oldest first, and its text form."""

    observed: tuple[tuple[int, int], ...]
    text: str = ""
    goal: str | None = None

    @property
    def hash(self) -> str:
        """12 hex characters of the text (or the ids), recorded in ``forecasts.prompt_hash``."""
        blob = self.text or repr(self.observed)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Candidate:
    """One generated sequence: ``Z`` action id pairs (constrained) or free ``text`` (unconstrained)."""

    actions: tuple[tuple[int, int], ...] = ()
    text: str = ""
    score: float | None = None  # log-probability or a model-specific confidence; None when unknown
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class LLMBackend(Protocol):
    """``generate(prompts, n, constraint)`` -> for each prompt, ``n`` candidates."""

    name: str

    def generate(self, prompts: Sequence[Prompt], n: int, constraint: ActionConstraint | None) -> list[list[Candidate]]:
        ...


# the adapters here (hf, http, llamacpp) and the heads' own models register themselves; the factory that imports
# the built-ins and builds by name is ``heads.anticipation.backends`` (it sits above both)
BACKENDS: Registry[Callable[..., LLMBackend]] = Registry("anticipation backend")


def register_backend(name: str) -> Callable[[Callable[..., LLMBackend]], Callable[..., LLMBackend]]:
    return BACKENDS.register(name)


def require_constraint(constraint: ActionConstraint | None, backend: str) -> ActionConstraint:
    if constraint is None:
        raise ValueError(f"backend {backend!r} predicts action ids only; it needs a constraint (the vocabulary)")
    return constraint
