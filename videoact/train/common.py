"""What every trainer shares: the optimiser keys of the epoch trainers (``OptimConfig``), the resumable loop
(``TrainLoop``: optimiser, warm-up + cosine schedule, ``<output>/last.pt``, history, one progress line per epoch),
the stale-checkpoint rule (``check_resume``), and the resume key (a config minus the settings that may change between
the parts of one resumed training). Checkpoints are written with ``annotations.store.atomic_torch_save``."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from videoact.annotations.store import CheckpointError, atomic_torch_save, load_torch_file
from videoact.config import ConfigError, doc, to_dict
from videoact.devices import autocast, grad_scaler, resolve

log = logging.getLogger("videoact.train")

# settings that may change between the parts of one resumed training without changing its result
RUN_CONTROL: tuple[tuple[str, ...], ...] = (("optim", "threads"), ("optim", "eval_every"), ("optim", "stop_after"),
                                            ("optim", "device"), ("resume",))
# keys added after checkpoints were written: at their default they match a last.pt that lacks them
_LATER_DEFAULTS: tuple[tuple[tuple[str, ...], Any], ...] = ((("optim", "precision"), "fp32"),)


@dataclass(frozen=True)
class OptimConfig:
    """The ``optim:`` keys every epoch trainer reads. A trainer's optim config subclasses it, adds its own keys and
    redefines the fields whose default (or doc) is its own, so each recipe's YAML keys and defaults stay the same."""

    epochs: int = doc("training epochs", default=10)
    batch_size: int = doc("samples per step", default=8)
    lr: float = doc("peak learning rate", default=1e-3)
    weight_decay: float = doc("weight decay", default=0.0)
    warmup_epochs: int = doc("linear warm-up epochs before the cosine decay", default=0)
    seed: int = doc("seed of weights, sampling and augmentation", default=0)
    threads: int = doc("torch CPU threads (0: torch's default)", default=0)
    stop_after: int = doc("stop after this epoch (time-limited jobs: run again to resume); 0: train to the end",
                          default=0)
    device: str = doc("where the model trains: auto (cuda when available, else cpu), cpu, cuda or cuda:N (may "
                      "change between the parts of a resumed training)", default="auto", fingerprint=False)
    precision: Literal["fp32", "bf16", "fp16"] = doc(
        "autocast precision of forward passes: fp32, bf16, or fp16 (CUDA only, with loss scaling)", default="fp32",
        fingerprint="non_default")


def lr_lambda(step: int, *, warmup: int, total: int) -> float:
    """Learning-rate factor at ``step``: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def warmup_cosine(opt: torch.optim.Optimizer, *, warmup: int, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """``lr_lambda`` as a scheduler stepped once per optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, warmup=warmup, total=steps))


def build_optimizer(params: Any, name: str, *, lr: float, weight_decay: float,
                    momentum: float = 0.9) -> torch.optim.Optimizer:
    """``sgd`` (Nesterov momentum: GCNs, CNNs), ``adam`` (MS-TCN) or ``adamw`` (transformers); ``params`` may be
    parameter groups with their own weight decay."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"optim.optimizer: unknown optimizer {name!r}; use sgd, adam or adamw")


def optimizer_step(opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler, loss: torch.Tensor, *,
                   clip: tuple[Iterable[torch.Tensor], float] | None = None) -> None:
    """One step as every trainer takes it: zero the gradients, backward, clip (``(parameters, max_norm)``), step the
    optimiser and then the schedule."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None and clip[1]:
        nn.utils.clip_grad_norm_(clip[0], clip[1])
    opt.step()
    sched.step()


def resume_key(cfg: dict[str, Any], control: Iterable[tuple[str, ...]]) -> dict[str, Any]:
    """``cfg`` (a ``to_dict`` config) without the ``control`` key paths (threads, where to stop, ...): two parts of
    one training must have equal keys."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    for path, default in _LATER_DEFAULTS:
        if out.get(path[0], {}).get(path[1], default) == default:
            out.get(path[0], {}).pop(path[1], None)
    for path in control:
        node = out
        for part in path[:-1]:
            node = node.get(part, {})
        node.pop(path[-1], None)
    return out


_MISSING = "<absent>"


def changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``"optim.lr: 0.1 -> 0.2"`` for every dotted key whose value differs between two ``to_dict`` configs."""
    out = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


_LAST_KEYS = {"model", "optimizer", "scheduler", "torch_rng", "epoch", "history", "train_seconds"}


def load_last(path: Path) -> dict[str, Any]:
    """A ``last.pt`` read with ``weights_only=True``; a corrupt or foreign file is a ``ConfigError`` naming it (the
    CLI prints it without a traceback)."""
    fix = "delete it or set resume: false to start again"
    try:
        state = load_torch_file(path, what="training checkpoint written by `videoact train`", fix=f"; {fix}")
    except CheckpointError as exc:  # the CLI prints a ConfigError without a traceback (rc 2)
        raise ConfigError(str(exc)) from None
    if not isinstance(state, dict) or not _LAST_KEYS <= state.keys() or not {"config", "resume_key"} & state.keys():
        raise ConfigError(f"{path}: not a last.pt written by `videoact train` (no model, optimizer, config, ...); "
                          f"{fix}")
    return state


def check_resume(state: dict[str, Any], path: Path, cfg: dict[str, Any], control: Iterable[tuple[str, ...]]) -> None:
    """The stale-checkpoint rule: ``last.pt`` continues only the config that wrote it (up to ``control`` keys)."""
    control = tuple(control)
    # rgb_recognition checkpoints before the shared loop stored the key itself
    old = resume_key(state["config"], control) if "config" in state else state["resume_key"]
    new = resume_key(cfg, control)
    if old != new:
        changes = "; ".join(changed_keys(old, new)) or "different keys"
        raise ConfigError(f"{path}: written by a different config ({changes}); delete it or set resume: false to "
                          "start again")


class TrainLoop:
    """Optimiser, schedule, resumable ``<output>/last.pt``, history and per-epoch progress: the shell every epoch
    trainer runs in. Creating it draws no random numbers, so a trainer creates it where it made its optimiser.

    ``optimizer``: sgd | adam | adamw; ``lr_factor``: the schedule (default linear warm-up over
    ``optim.warmup_epochs`` then cosine decay); ``grad_clip``: max gradient norm (0: none); ``eval_every``: evaluate
    every this many epochs (0: only at the last, and there only with ``eval_last``); ``control``: config keys that
    may change between the parts of one training.
    """

    def __init__(self, model: nn.Module, cfg: Any, *, steps_per_epoch: int, optimizer: str = "adamw",
                 params: Any = None, momentum: float = 0.9, lr_factor: Callable[[int], float] | None = None,
                 grad_clip: float = 0.0, eval_every: int = 1, eval_last: bool = True,
                 control: Iterable[tuple[str, ...]] = RUN_CONTROL) -> None:
        o = cfg.optim
        self.cfg, self.o, self.model, self.control = cfg, o, model, tuple(control)
        # optim.device / optim.precision (an optim config without them: cpu, fp32); the model moves once, here
        self.device, self.precision = resolve(getattr(o, "device", "cpu"), getattr(o, "precision", "fp32"),
                                              prefix="optim")
        if self.device.type != "cpu":
            model.to(self.device)
        self.scaler = grad_scaler(self.device, self.precision)
        self.grad_clip, self.eval_every, self.eval_last = grad_clip, eval_every, eval_last
        self.opt = build_optimizer(model.parameters() if params is None else params, optimizer, lr=o.lr,
                                   weight_decay=o.weight_decay, momentum=momentum)
        if lr_factor is None:
            warm, total = o.warmup_epochs * steps_per_epoch, o.epochs * steps_per_epoch
            lr_factor = lambda s: lr_lambda(s, warmup=warm, total=total)  # noqa: E731
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_factor)
        self.last = Path(cfg.output) / "last.pt"
        self.epoch, self.train_s = 0, 0.0  # epochs done, seconds spent training (evaluation not counted)
        self.history: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}  # trainer state beside the optimiser's (a loss normaliser)
        self._t0 = time.perf_counter()

    def resume(self) -> bool:
        """Continue from ``last.pt`` when ``resume: true`` and it exists; True when it did."""
        if not (self.cfg.resume and self.last.exists()):
            return False
        state = load_last(self.last)
        check_resume(state, self.last, to_dict(self.cfg), self.control)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.history, self.train_s = state["epoch"], state["history"], state["train_seconds"]
        self.extra = dict(state.get("extra", {}))
        log.info("resumed from %s at epoch %d", self.last, self.epoch)
        return True

    def epochs(self) -> Iterator[int]:
        """The 0-based epochs still to train; each starts the epoch's clock."""
        while self.epoch < self.o.epochs:
            self._t0 = time.perf_counter()
            yield self.epoch

    def to_device(self, *tensors: Any) -> Any:
        """Batch tensors on ``optim.device`` (others as they are); one argument gives one value, several a tuple."""
        out = tuple(t.to(self.device, non_blocking=True) if isinstance(t, torch.Tensor) else t for t in tensors)
        return out[0] if len(out) == 1 else out

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """``optim.precision``'s autocast around a forward pass and its loss (fp32: nothing)."""
        return autocast(self.device, self.precision)

    def step(self, loss: torch.Tensor) -> None:
        if self.scaler is None:
            optimizer_step(self.opt, self.sched, loss, clip=(self.model.parameters(), self.grad_clip))
            return
        # fp16 on CUDA: scaled loss, gradients unscaled before clipping, steps with inf/nan gradients skipped
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.opt)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()

    def should_eval(self) -> bool:
        """Whether the epoch being trained is scored: every ``eval_every`` epochs, and the last with ``eval_last``."""
        done = self.epoch + 1
        if done == self.o.epochs:
            return self.eval_last
        return bool(self.eval_every and done % self.eval_every == 0)

    def end_epoch(self, losses: Sequence[float], *, evaluate: Callable[[], dict[str, Any]] | None = None,
                  row: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> bool:
        """Record the epoch (``row``: more history fields), score it when ``should_eval`` says so, log one progress
        line, write ``last.pt`` atomically; True when ``optim.stop_after`` stops here (the caller returns
        ``self.last``)."""
        seconds = time.perf_counter() - self._t0
        self.train_s += seconds
        entry: dict[str, Any] = {"epoch": self.epoch + 1, "loss": float(np.mean(losses)), **(row or {}),
                                 "lr": self.sched.get_last_lr()[0], "train_seconds": round(self.train_s, 1)}
        metrics = evaluate() if evaluate is not None and self.should_eval() else {}
        entry.update(metrics)
        self.epoch += 1
        self.history.append(entry)
        self.extra = dict(extra or {})
        shown = "".join(f"  {k} {v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float)))
        log.info("epoch %d/%d  loss %.4f%s  (%.1f s; %.0f s in all)", self.epoch, self.o.epochs, entry["loss"], shown,
                 seconds, self.train_s)
        atomic_torch_save({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                           "scheduler": self.sched.state_dict(), "torch_rng": torch.get_rng_state(),
                           "epoch": self.epoch, "history": self.history, "train_seconds": self.train_s,
                           "config": to_dict(self.cfg), "extra": self.extra}, self.last)
        o = self.o
        stop = bool(o.stop_after and self.epoch >= o.stop_after and self.epoch < o.epochs)
        if stop:
            log.info("stopping after epoch %d (optim.stop_after); run the same command again to resume", self.epoch)
        return stop


class StepLog:
    """The smoothed training loss of a step-based trainer (the LM trainers), kept and logged every ``every`` steps
    and at the last step."""

    def __init__(self, steps: int, every: int) -> None:
        self.steps, self.every = steps, every
        self.running: float | None = None
        self.logged: list[float] = []
        self.t0 = time.perf_counter()

    def update(self, step: int, value: float) -> bool:
        """Add the loss of 0-based ``step``; True when it was logged."""
        self.running = value if self.running is None else 0.9 * self.running + 0.1 * value
        if (step + 1) % self.every != 0 and step != self.steps - 1:
            return False
        self.logged.append(self.running)
        log.info("step %d/%d  loss %.4f  (%.0f s)", step + 1, self.steps, self.running, time.perf_counter() - self.t0)
        return True
