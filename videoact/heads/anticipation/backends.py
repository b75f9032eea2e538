"""Anticipation backends by name: ``build_backend("http", url=...)``.

The registry (``llm.base.BACKENDS``) sits below every backend; this module sits above the language-model
adapters (``llm.hf``, ``llm.http``, ``llm.llamacpp``) and this package's own models (the action LM, the n-gram
baselines) and imports them, so that they register. The heavy libraries are imported lazily inside each backend.
"""

from __future__ import annotations

from typing import Any

from videoact.heads.anticipation import action_lm, baselines  # noqa: F401  (they register)
from videoact.llm import hf, http, llamacpp  # noqa: F401  (they register)
from videoact.llm.base import BACKENDS, LLMBackend


def list_backends(pattern: str = "*") -> list[str]:
    return BACKENDS.names(pattern)


def build_backend(name: str, **kwargs: Any) -> LLMBackend:
    """A backend by registered name with its keyword options; ``UnknownNameError`` lists the registered ones."""
    return BACKENDS.get(name)(**kwargs)
