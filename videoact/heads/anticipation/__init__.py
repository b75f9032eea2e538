"""Long-term action anticipation: recognised actions -> ``forecasts`` (K candidates of Z future verb/noun pairs).

* ``data``: EPIC-55 csv readers, Ego4D LTA samples (N observed, Z targets), the participant-held-out split;
* ``baselines``: most-frequent and n-gram; ``action_lm``: the built-in transformer (``train_action_lm``);
* ``prompting``: MMR in-context examples (MiniLM + faiss), bottom-up and top-down prompts for LLM backends
  (``videoact.llm``: transformers, OpenAI-compatible HTTP, llama.cpp, one vocabulary constraint);
* ``head``: ``forecast_video(tables, cfg) -> Tables``.

Names are imported lazily (``videoact.llm`` and this package import each other's modules).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "forecast_video": "head", "backend_from_config": "head",
    "train_action_lm": "action_lm", "load_action_lm": "action_lm", "ActionLM": "action_lm",
    "AnticipationConfig": "config", "ActionLMTrainConfig": "config",
    "ActionVocab": "data", "read_epic55": "data", "make_samples": "data", "participant_split": "data",
    "MostFrequent": "baselines", "NGram": "baselines",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
