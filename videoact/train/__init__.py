"""``videoact train CONFIG.yaml``: the config's ``trainer:`` key picks a registered trainer.

A trainer is a typed config dataclass and a function ``train(cfg) -> Path`` (the checkpoint written). ``TRAINERS``
holds one ``Trainer`` record per name; the record names its config class and train function as ``module:attribute``
and imports them only when a config is loaded, so ``videoact --help`` (which lists the names) imports no torch.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoact.config import ConfigError, build_config, read_yaml
from videoact.registry import Registry, UnknownNameError


@dataclass(frozen=True)
class Trainer:
    """A trainer's config class and train function, imported on first use."""

    config: str  # "module:ConfigClass"
    train: str  # "module:train_function"

    def config_class(self) -> type:
        return _resolve(self.config)

    def train_fn(self) -> Any:
        return _resolve(self.train)


TRAINERS: Registry[Trainer] = Registry("trainer")
TRAINERS.register("action_lm", Trainer("videoact.heads.anticipation.config:ActionLMTrainConfig",
                                       "videoact.train.anticipation:train_action_lm"))
TRAINERS.register("text_lm", Trainer("videoact.heads.anticipation.config:TextLMTrainConfig",
                                     "videoact.train.anticipation:train_text_lm"))
TRAINERS.register("ava_detection", Trainer("videoact.train.detection:DetectionTrainConfig",
                                           "videoact.train.detection:train_detection"))
TRAINERS.register("skeleton", Trainer("videoact.train.skeleton:SkeletonTrainConfig",
                                      "videoact.train.skeleton:train_skeleton"))
TRAINERS.register("rgb_recognition", Trainer("videoact.train.rgb:RGBRecognitionTrainConfig",
                                             "videoact.train.rgb:train_rgb_recognition"))
TRAINERS.register("segmentation", Trainer("videoact.train.temporal:SegmentationTrainConfig",
                                          "videoact.train.temporal:train_segmentation"))
TRAINERS.register("localization", Trainer("videoact.train.temporal:LocalizationTrainConfig",
                                          "videoact.train.temporal:train_localization"))


def _resolve(ref: str) -> Any:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> tuple[str, Any]:
    """``(trainer name, typed config)`` of a training config file."""
    data = read_yaml(path)
    name = data.pop("trainer", None)
    try:
        trainer = TRAINERS.get(name)
    except UnknownNameError as exc:
        close = difflib.get_close_matches(str(name), exc.known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{path}: set `trainer:` to one of {', '.join(exc.known)} (got {name!r}{hint})") from None
    return name, build_config(trainer.config_class(), data, overrides, where=path)


def train_from_file(path: str | Path, overrides: Sequence[str] = ()) -> Path:
    """Train what ``path`` describes; returns the checkpoint path."""
    name, cfg = load_train_config(path, overrides)
    optim = getattr(cfg, "optim", None)
    if hasattr(optim, "device"):  # a device this machine lacks: rc 2 before any data is read
        from videoact.devices import resolve

        resolve(optim.device, getattr(optim, "precision", "fp32"), prefix="optim")
    return Path(TRAINERS.get(name).train_fn()(cfg))
