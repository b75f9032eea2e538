"""The backend protocol for long-term anticipation: ``generate(prompts, n, constraint) -> candidates``.

Every backend - the built-in action LM, the n-gram baselines, HF transformers, an OpenAI-compatible server,
llama.cpp - answers the same call. A :class:`Prompt` carries both the observed action ids (for models over
action tokens) and the prompt text (for language models); with a constraint the answer is ``n`` candidates of
exactly ``Z`` ``(verb_id, noun_id)`` pairs each, always valid vocabulary ids; with ``constraint=None`` a text
backend returns free text (AntGPT's top-down "infer the goal" step).

Backends register under their own name (``register_backend``), like the format registry.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from videoact.llm.constraint import ActionConstraint


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


_BACKENDS: dict[str, Callable[..., LLMBackend]] = {}


def register_backend(name: str) -> Callable[[Callable[..., LLMBackend]], Callable[..., LLMBackend]]:
    def decorator(fn: Callable[..., LLMBackend]) -> Callable[..., LLMBackend]:
        _BACKENDS[name] = fn
        return fn
    return decorator


def list_backends(pattern: str = "*") -> list[str]:
    _import_builtin()
    return sorted(n for n in _BACKENDS if fnmatch.fnmatch(n, pattern))


def build_backend(name: str, **kwargs: Any) -> LLMBackend:
    """A backend by registered name with its keyword options (``build_backend("http", url=...)``)."""
    _import_builtin()
    if name not in _BACKENDS:
        raise ValueError(f"unknown anticipation backend {name!r}; available: {', '.join(sorted(_BACKENDS))}")
    return _BACKENDS[name](**kwargs)


def _import_builtin() -> None:
    # Registration happens on import; the heavy libraries are imported lazily inside each backend.
    from videoact.heads.anticipation import action_lm, baselines  # noqa: F401
    from videoact.llm import hf, http, llamacpp  # noqa: F401


def require_constraint(constraint: ActionConstraint | None, backend: str) -> ActionConstraint:
    if constraint is None:
        raise ValueError(f"backend {backend!r} predicts action ids only; it needs a constraint (the vocabulary)")
    return constraint
