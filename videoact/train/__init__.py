"""``videoact train CONFIG.yaml``: the config's ``trainer:`` key picks a registered trainer.

A trainer is a typed config dataclass and a function ``train(cfg) -> Path`` (the checkpoint written).
Registering is one line in ``TRAINERS``; imports are lazy so ``videoact --help`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from videoact.config import ConfigError, build_config, read_yaml

# trainer name -> (config class, train function), as "module:attribute" so nothing heavy is imported early
TRAINERS: dict[str, tuple[str, str]] = {
    "action_lm": ("videoact.heads.anticipation.config:ActionLMTrainConfig",
                  "videoact.train.anticipation:train_action_lm"),
    "text_lm": ("videoact.heads.anticipation.config:TextLMTrainConfig",
                "videoact.train.anticipation:train_text_lm"),
    "ava_detection": ("videoact.train.detection:DetectionTrainConfig", "videoact.train.detection:train_detection"),
    "skeleton": ("videoact.train.skeleton:SkeletonTrainConfig", "videoact.train.skeleton:train_skeleton"),
    "rgb_recognition": ("videoact.train.rgb:RGBRecognitionTrainConfig", "videoact.train.rgb:train_rgb_recognition"),
    "segmentation": ("videoact.train.temporal:SegmentationTrainConfig", "videoact.train.temporal:train_segmentation"),
    "localization": ("videoact.train.temporal:LocalizationTrainConfig", "videoact.train.temporal:train_localization"),
}


def _resolve(ref: str) -> Any:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> tuple[str, Any]:
    """``(trainer name, typed config)`` of a training config file."""
    data = read_yaml(path)
    name = data.pop("trainer", None)
    if name not in TRAINERS:
        raise ConfigError(f"{path}: set `trainer:` to one of {', '.join(sorted(TRAINERS))} (got {name!r})")
    return name, build_config(_resolve(TRAINERS[name][0]), data, overrides, where=path)


def train_from_file(path: str | Path, overrides: Sequence[str] = ()) -> Path:
    """Train what ``path`` describes; returns the checkpoint path."""
    name, cfg = load_train_config(path, overrides)
    return Path(_resolve(TRAINERS[name][1])(cfg))
