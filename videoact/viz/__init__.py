"""Exploring runs: segment timelines, keyframe grids, overlay videos, confusion matrices, per-class AP.

Functions take tables (``videoact.load(run_dir)``) or ``videoact.eval`` results and return a matplotlib
``Figure`` (drawn on an Agg canvas: no display needed); ``save=path`` also writes a PNG of exactly
``figsize * dpi`` pixels. ``write_overlay_video`` writes an H.264 mp4 that browsers play.
"""

from videoact.viz.frames import draw_frame, frames_of, keyframe_grid, write_overlay_video
from videoact.viz.plots import confusion_matrix, per_class_ap, timeline, top1

__all__ = [
    "confusion_matrix",
    "draw_frame",
    "frames_of",
    "keyframe_grid",
    "per_class_ap",
    "timeline",
    "top1",
    "write_overlay_video",
]
