"""What every trainer shares: the warm-up + cosine learning-rate schedule, and the resume key (a config minus the
settings that may change between the parts of one resumed training). Checkpoints are written with
``annotations.store.atomic_torch_save``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


def lr_lambda(step: int, *, warmup: int, total: int) -> float:
    """Learning-rate factor at ``step``: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def warmup_cosine(opt: torch.optim.Optimizer, *, warmup: int, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """``lr_lambda`` as a scheduler stepped once per optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, warmup=warmup, total=steps))


def resume_key(cfg: dict[str, Any], control: Iterable[tuple[str, ...]]) -> dict[str, Any]:
    """``cfg`` (a ``to_dict`` config) without the ``control`` key paths (threads, where to stop, ...): two parts of
    one training must have equal keys."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    for path in control:
        node = out
        for part in path[:-1]:
            node = node.get(part, {})
        node.pop(path[-1], None)
    return out
