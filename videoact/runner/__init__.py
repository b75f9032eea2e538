"""Batch running: a pure per-video function and the drivers that run it over archives."""

from importlib import import_module
from typing import Any

from videoact.runner.errors import EngineError, InputError, StageError
from videoact.runner.inputs import SAMPLES, VideoRef, resolve_inputs, sample_path

_LAZY = {"RunSummary": "batch", "process_video": "run", "run_videos": "batch"}  # imports the decoders and torch


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"videoact.runner.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'videoact.runner' has no attribute {name!r}")


__all__ = ["SAMPLES", "EngineError", "InputError", "RunSummary", "StageError", "VideoRef", "process_video",
           "resolve_inputs", "run_videos", "sample_path"]
