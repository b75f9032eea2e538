"""Batch running: a pure per-video function and the drivers that run it over archives."""

from videoact.runner.inputs import SAMPLES, InputError, VideoRef, resolve_inputs, sample_path
from videoact.runner.run import RunSummary, StageError, process_video, run_videos

__all__ = ["SAMPLES", "InputError", "RunSummary", "StageError", "VideoRef", "process_video", "resolve_inputs",
           "run_videos", "sample_path"]
