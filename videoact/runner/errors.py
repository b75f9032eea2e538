"""Errors of the runner (the CLI catches them); ``StageError`` is the stage protocol's (``videoact.pipeline``)."""

from __future__ import annotations

from videoact.pipeline import StageError

__all__ = ["EngineError", "InputError", "StageError"]


class InputError(ValueError):
    """The INPUT of a run cannot be turned into videos; the message says why and what to pass."""


class EngineError(RuntimeError):
    """An engine cannot start (Ray missing or unreachable); the message says what to install or pass."""
