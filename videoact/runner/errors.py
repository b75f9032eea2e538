"""Errors of the runner, in a module with no heavy imports (the CLI catches them)."""

from __future__ import annotations


class InputError(ValueError):
    """The INPUT of a run cannot be turned into videos; the message says why and what to pass."""


class StageError(RuntimeError):
    """A video failed in a named stage (recorded in the manifest, the run goes on)."""

    def __init__(self, stage: str, message: str) -> None:
        self.stage, self.message = stage, message
        super().__init__(f"{stage}: {message}")


class EngineError(RuntimeError):
    """An engine cannot start (Ray missing or unreachable); the message says what to install or pass."""
