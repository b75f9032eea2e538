"""AVA spatio-temporal action detection: person boxes per keyframe -> EVAD head -> ``boxes`` rows (task ``detection``).

* ``evad``: ``EVADHead`` (RoIAlign over the restored token map, pooled over time, then EVAD's context refinement
  decoder and a sigmoid classifier), ``roi_pool_actors``, ``pad_boxes``; plain modules, no I/O;
* ``boxes``: person boxes per keyframe from the pose stage, a proposals file, or a ``PersonDetector``;
* ``model``: ``ActionDetector`` (backbone + head), ``ClipInput``, ``model.pt`` save / load;
* ``detect``: ``detect_video`` (keyframes at ``hz`` -> clips -> scores -> rows).

Training: ``videoact train configs/detection/*.yaml`` (``videoact.train.detection``). Names are imported lazily,
so importing the package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EVADHead": "evad", "roi_pool_actors": "evad", "extend_boxes": "evad", "pad_boxes": "evad",
    "build_detection_head": "evad", "DETECTION_HEADS": "evad",
    "KeyframeBoxes": "boxes", "PersonDetector": "boxes", "read_proposals": "boxes", "keyframe_boxes": "boxes",
    "detect_people": "boxes",
    "ActionDetector": "model", "ClipInput": "model", "DetectionModel": "model", "build_action_detector": "model",
    "load_detection_model": "model", "save_detection_model": "model", "prepare_clip": "model",
    "detect_video": "detect",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
