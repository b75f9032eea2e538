"""``videoact train configs/skeleton/*.yaml``: skeleton action recognition on a CPU.

One epoch = one pass over the training samples with augmentation (random rotation and scale, random
temporal crop, optional mirror); SGD with Nesterov momentum, linear warm-up then cosine decay, label
smoothing. A checkpoint is written after every epoch (``last.pt``: model, optimiser, scheduler and RNG
state), so an interrupted run resumes where it stopped with ``resume: true`` (the default). At the end
the model is evaluated on the test split, the test predictions and ground truth are written as annotation
tables (``<output>/eval/{gt,pred}``, so ``videoact eval recognition`` recomputes the numbers), and the
inference checkpoint ``model.pt`` (weights + everything needed to prepare an input) is saved.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from videoact.config import doc, fingerprint
from videoact.datasets.skeleton._sample import SkeletonSample
from videoact.devices import module_device
from videoact.features.skeleton.factory import build_model
from videoact.features.skeleton.input import SkeletonAugmentConfig, SkeletonInputConfig, prepare
from videoact.heads.recognition.skeleton import save_model
from videoact.train.common import OptimConfig, TrainLoop

log = logging.getLogger("videoact.train.skeleton")


# ------------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SkeletonDataConfig:
    benchmark: str = doc("dataset and protocol (its train/test split)", names="skeleton benchmark",
                         default="nw_ucla_xview")
    root: Path = field(default=Path("../shared/data/skeleton/nw_ucla"), metadata={"doc": "the dataset's folder"})


@dataclass(frozen=True)
class SkeletonModelConfig:
    name: str = doc("the network", names="skeleton model", default="stgcnpp")
    options: dict[str, Any] = field(default_factory=lambda: {"width": 0.25, "modalities": ["joint", "bone"]},
                                    metadata={"doc": "keyword arguments of the network's builder"})


@dataclass(frozen=True)
class SkeletonOptimConfig(OptimConfig):
    epochs: int = doc("training epochs", default=60)
    batch_size: int = doc("samples per step", default=16)
    lr: float = doc("peak learning rate", default=0.1)
    weight_decay: float = doc("weight decay", default=4e-4)
    warmup_epochs: int = doc("linear warm-up epochs before the cosine decay", default=5)
    optimizer: Literal["sgd", "adamw"] = doc("sgd (Nesterov momentum: GCNs, CNNs) or adamw (transformers)",
                                             default="sgd")
    momentum: float = doc("SGD Nesterov momentum", default=0.9)
    label_smoothing: float = doc("cross-entropy label smoothing", default=0.1)
    eval_every: int = doc("evaluate on the test split every this many epochs (0: only at the end)", default=10)


@dataclass(frozen=True)
class SkeletonTrainConfig:
    """What ``train_skeleton`` (``videoact train``) reads."""

    data: SkeletonDataConfig = field(default_factory=SkeletonDataConfig)
    input: SkeletonInputConfig = field(default_factory=SkeletonInputConfig)
    augment: SkeletonAugmentConfig = field(default_factory=SkeletonAugmentConfig)
    model: SkeletonModelConfig = field(default_factory=SkeletonModelConfig)
    optim: SkeletonOptimConfig = field(default_factory=SkeletonOptimConfig)
    output: Path = field(default=Path("runs/skeleton"), metadata={"doc": "folder for checkpoints and results"})
    resume: bool = doc("continue from <output>/last.pt when it exists", default=True)


# --------------------------------------------------------------------------------------------------- data


class SkeletonDataset(torch.utils.data.Dataset):
    """Samples -> ``((C, T, V, M) float tensor, label)``; augmentation draws from a per-epoch seeded RNG."""

    def __init__(self, samples: Sequence[SkeletonSample], *, layout: str, cfg: SkeletonInputConfig,
                 num_persons: int, augment: SkeletonAugmentConfig | None = None, seed: int = 0) -> None:
        self.samples, self.layout, self.cfg, self.num_persons = list(samples), layout, cfg, num_persons
        self.augment, self.seed, self.epoch = augment, seed, 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        s = self.samples[i]
        rng = None if self.augment is None else np.random.default_rng((self.seed, self.epoch, i))
        x = prepare(s.keypoints, layout=self.layout, cfg=self.cfg, num_persons=self.num_persons, rng=rng,
                    augment=self.augment)
        return torch.from_numpy(x), int(s.label if s.label is not None else -1)


# -------------------------------------------------------------------------------------------------- train


def stream_logits(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The logits every loss is taken on: one per stream for multi-stream networks, else the output."""
    if hasattr(model, "stream_logits"):
        return list(model.stream_logits(x))
    return [model(x)]


@torch.no_grad()
def predict(model: nn.Module, dataset: SkeletonDataset, *, batch_size: int = 64) -> np.ndarray:
    """``(N, K)`` class probabilities of every sample (no augmentation)."""
    model.eval()
    out = []
    # its own generator: evaluating must not move the global RNG (dropout) of a training run it interrupts
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, generator=torch.Generator())
    device = module_device(model)  # optim.device: where TrainLoop put it
    for x, _ in loader:
        out.append(F.softmax(model(x.to(device)).float(), dim=-1).cpu())
    return torch.cat(out).numpy()


def accuracy(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    order = np.argsort(-probs, axis=1, kind="stable")
    top1 = order[:, 0] == labels
    top5 = (order[:, :5] == labels[:, None]).any(1)
    per_class = [top1[labels == c].mean() for c in np.unique(labels)]
    return {"top1_acc": float(top1.mean()), "top5_acc": float(top5.mean()),
            "mean_class_accuracy": float(np.mean(per_class))}


def train_skeleton(cfg: SkeletonTrainConfig) -> Path:
    """Train, evaluate and save ``<output>/model.pt``; returns its path (``last.pt`` when ``stop_after`` stops it)."""
    from videoact.datasets.skeleton.benchmarks import load_benchmark

    if cfg.optim.threads:
        torch.set_num_threads(cfg.optim.threads)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    t_load = time.perf_counter()
    bench = load_benchmark(cfg.data.benchmark, cfg.data.root)
    log.info("%s: %d train / %d test samples, %d classes (%.1f s to load)", bench.name, len(bench.train),
             len(bench.test), len(bench.classes), time.perf_counter() - t_load)
    torch.manual_seed(cfg.optim.seed)
    model_kwargs = dict(layout=bench.layout, num_classes=len(bench.classes), in_channels=bench.in_channels,
                        num_persons=bench.num_persons, **cfg.model.options)
    model = build_model(cfg.model.name, **model_kwargs)
    train_set = SkeletonDataset(bench.train, layout=bench.layout, cfg=cfg.input, num_persons=bench.num_persons,
                                augment=cfg.augment, seed=cfg.optim.seed)
    test_set = SkeletonDataset(bench.test, layout=bench.layout, cfg=cfg.input, num_persons=bench.num_persons)
    o = cfg.optim
    loop = TrainLoop(model, cfg, steps_per_epoch=math.ceil(len(train_set) / o.batch_size), optimizer=o.optimizer,
                     momentum=o.momentum, eval_every=o.eval_every)
    loop.resume()
    labels = np.array([s.label for s in bench.test])
    for epoch in loop.epochs():
        model.train()
        train_set.epoch = epoch
        gen = torch.Generator().manual_seed(o.seed * 100_003 + epoch)
        loader = torch.utils.data.DataLoader(train_set, batch_size=o.batch_size, shuffle=True, generator=gen,
                                             drop_last=len(train_set) > o.batch_size)
        losses = []
        for x, y in loader:
            x, y = loop.to_device(x, y)
            with loop.autocast():
                loss = sum(F.cross_entropy(lg, y, label_smoothing=o.label_smoothing)
                           for lg in stream_logits(model, x))
            loop.step(loss)
            losses.append(loss.item())
        if loop.end_epoch(losses, evaluate=lambda: accuracy(predict(model, test_set), labels)):
            return loop.last
    probs = predict(model, test_set)  # evaluation runs in fp32, whatever optim.precision
    model.cpu()  # saved and returned on the CPU, whatever optim.device
    metrics = accuracy(probs, labels)
    train_s = loop.train_s
    write_eval_tables(out / "eval", bench.name, bench.test, probs, bench.classes,
                      model_source=f"{cfg.model.name}@{fingerprint(cfg)}")
    path = save_model(out / "model.pt", model, model_name=cfg.model.name, model_kwargs=model_kwargs,
                      classes=bench.classes, input_cfg=cfg.input, extra={
                          "benchmark": bench.name, "protocol": bench.protocol, "metrics": metrics,
                          "train_seconds": round(train_s, 1), "epochs": o.epochs, "fps": bench.fps})
    (out / "metrics.json").write_text(json.dumps({"benchmark": bench.name, **metrics, "train_seconds": train_s,
                                                  "history": loop.history}, indent=2) + "\n")
    log.info("%s: top-1 %.4f  top-5 %.4f  mean class %.4f  (%.0f s training)", bench.name, metrics["top1_acc"],
             metrics["top5_acc"], metrics["mean_class_accuracy"], train_s)
    return path


# ------------------------------------------------------------------------------------------- eval tables


def write_eval_tables(folder: Path, label_space: str, samples: Sequence[SkeletonSample], probs: np.ndarray,
                      classes: Sequence[str], *, model_source: str = "videoact-skeleton") -> None:
    """Ground truth and scored predictions of the test split as annotation tables (``videoact eval recognition``)."""
    from videoact.annotations import store
    from videoact.annotations.tables import Tables

    labels = pd.DataFrame({"label_space": label_space, "id": range(len(classes)), "name": list(classes)})
    gt_rows, pred_rows = [], []
    for s, p in zip(samples, probs, strict=True):
        n = s.keypoints.shape[1]
        fps = s.fps or 30.0
        base = {"video_id": s.name, "task": "recognition", "t_start_s": 0.0, "t_end_s": n / fps, "fps": fps,
                "frame_start": 0, "frame_end": n, "label_space": label_space}
        gt_rows.append({**base, "label": classes[s.label], "label_id": int(s.label), "score": 1.0,
                        "source": f"ground_truth:{label_space}"})
        for c, score in enumerate(p):
            pred_rows.append({**base, "label": classes[c], "label_id": c, "score": float(score),
                              "source": model_source})
    for name, rows in (("gt", gt_rows), ("pred", pred_rows)):
        tables = Tables(segments=pd.DataFrame(rows), labels=labels).validated(where=str(folder / name))
        store.write_tables(folder / name, tables)

