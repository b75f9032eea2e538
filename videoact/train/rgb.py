"""``videoact train configs/rgb/*.yaml`` (``trainer: rgb_recognition``): action recognition from RGB clips.

Data is a csv manifest, one row per labelled clip source: ``path, label`` and optionally ``t_start_s, t_end_s``
(the part of the video the label holds for; default the whole video). Paths are relative to the manifest's
folder. A multi-label row lists its labels in one cell, separated by ``data.label_separator``.

Each epoch draws ``data.clips_per_row`` clips per row: ``input.frames`` frames every ``input.frame_step``,
placed at random inside the row's time range (``augment.temporal_jitter``; otherwise its centre clip), decoded
with ``VideoSource``, short-side resized, randomly cropped (centre crop for validation), optionally mirrored and
normalised (``heads.recognition.clip.prepare_clip``). The backbone comes from the registry by name
(``img_size`` / ``num_frames`` default to the input's crop and frames when its builder takes them), optionally
initialised from a checkpoint (``model.pretrained``: VideoMAE / mmaction2 / videoact ViT weights or a
PyTorchVideo hub file) and optionally frozen; the head is ``linear`` or ``zeroshot`` (class texts embedded with
MiniLM, names or ``data.descriptions``). AdamW, linear warm-up then cosine decay.

After every epoch ``last.pt`` (model, optimiser, scheduler, RNG state, history) is written atomically, so a
stopped run resumes with ``resume: true``; metrics per epoch (loss, train accuracy, top-1 on ``data.val``) go to
``metrics.json``. At the end ``model.pt`` is written for ``load_clip_recognizer``.
"""

from __future__ import annotations

import csv
import inspect
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml
from torch import nn

from videoact.config import ConfigError, doc, fingerprint
from videoact.decode import VideoDecodeError
from videoact.decode.samplers import frame_at_time
from videoact.decode.source import Backend, VideoSource
from videoact.devices import module_device
from videoact.features.backbones import BACKBONES
from videoact.features.text import class_embeddings, class_texts
from videoact.heads.recognition.clip import (
    ClipClassifier,
    ClipInputConfig,
    ZeroShotHead,
    build_clip_model,
    prepare_clip,
    save_clip_recognizer,
)
from videoact.registry import UnknownNameError
from videoact.train.common import OptimConfig, TrainLoop

log = logging.getLogger("videoact.train.rgb")


# ------------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class RGBDataConfig:
    train: Path = field(default=Path("data/train.csv"), metadata={
        "doc": "csv manifest: path, label (optional t_start_s, t_end_s); paths relative to the csv's folder"})
    val: Path | None = field(default=None, metadata={"doc": "csv manifest scored (top-1) every epoch; null: none"})
    label_space: str = doc("name of the class list in tables written with the model", default="custom")
    classes: list[str] | None = field(default=None, metadata={
        "doc": "class order; null: the train manifest's labels, sorted"})
    descriptions: Path | None = field(default=None, metadata={
        "doc": "zeroshot head: YAML/JSON mapping class -> descriptions (null: each class is its name)"})
    label_separator: str = doc("multi-label rows: labels in one cell separated by this", default=";")
    clips_per_row: int = doc("clips drawn from each training row per epoch", default=1)
    backend: Literal["auto", "decord", "pyav"] = doc("video reader (decode.backend)", default="auto")


@dataclass(frozen=True)
class RGBAugmentConfig:
    temporal_jitter: bool = doc("random clip position inside the row's time range (false: its centre clip)",
                                default=True)
    flip: float = doc("chance of a left-right mirrored clip", default=0.5)


@dataclass(frozen=True)
class RGBModelConfig:
    backbone: str = doc("the clip model's backbone", names="video backbone", default="vit_tiny")
    backbone_kwargs: dict[str, Any] = field(default_factory=dict, metadata={
        "doc": "keyword arguments of the backbone builder (img_size / num_frames default to the input's)"})
    pretrained: Path | None = field(default=None, metadata={
        "doc": "backbone checkpoint: VideoMAE / mmaction2 / videoact ViT, or PyTorchVideo hub weights"})
    freeze_backbone: bool = doc("train the head only (backbone in eval mode, no gradients)", default=False)
    head: Literal["linear", "zeroshot"] = doc("linear: closed set; zeroshot: cosine to class text embeddings",
                                              default="linear")
    pooling: Literal["mean", "attention"] = doc("how kept tokens become one clip feature", default="mean")
    multi_label: bool = doc("sigmoid + binary cross-entropy instead of softmax (linear head)", default=False)
    dropout: float = doc("dropout before the classifier / projection", default=0.5)


@dataclass(frozen=True)
class RGBOptimConfig(OptimConfig):
    epochs: int = doc("training epochs", default=20)
    batch_size: int = doc("clips per step", default=8)
    lr: float = doc("peak AdamW learning rate", default=1e-3)
    weight_decay: float = doc("AdamW weight decay", default=0.05)
    warmup_epochs: int = doc("linear warm-up epochs before the cosine decay", default=1)
    seed: int = doc("seed of weights, clip sampling and augmentation", default=0)
    label_smoothing: float = doc("cross-entropy label smoothing (single-label)", default=0.0)


@dataclass(frozen=True)
class RGBRecognitionTrainConfig:
    """What ``train_rgb_recognition`` (``videoact train``, ``trainer: rgb_recognition``) reads."""

    data: RGBDataConfig = field(default_factory=RGBDataConfig)
    input: ClipInputConfig = field(default_factory=ClipInputConfig)
    augment: RGBAugmentConfig = field(default_factory=RGBAugmentConfig)
    model: RGBModelConfig = field(default_factory=RGBModelConfig)
    optim: RGBOptimConfig = field(default_factory=RGBOptimConfig)
    output: Path = field(default=Path("runs/rgb/recognition"), metadata={"doc": "folder for checkpoints and results"})
    resume: bool = doc("continue from <output>/last.pt when it exists", default=True)


# ----------------------------------------------------------------------------------------------- manifest


class ManifestError(ConfigError):
    """A manifest row is wrong; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class ClipRow:
    path: Path
    labels: tuple[str, ...]
    t_start_s: float | None
    t_end_s: float | None
    where: str  # "manifest.csv:LINE", for error messages


def read_manifest(path: str | Path, *, label_separator: str | None = None) -> list[ClipRow]:
    """Rows of a recognition manifest, checked: the columns, every label, the times, every video file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found (set data.train / data.val to a csv with columns "
                                "path, label and optionally t_start_s, t_end_s)")
    rows: list[ClipRow] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "path" not in columns or "label" not in columns:
            raise ManifestError(f"{path}: a recognition manifest needs the columns path, label (optional t_start_s, "
                                f"t_end_s); found {', '.join(columns) or 'no header'}")
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str) or v is None}
            where = f"{path}:{line}"
            if not row.get("path"):
                raise ManifestError(f"{where}: empty path; give the video file (relative to {path.parent}) or delete "
                                    "the row")
            labels = tuple(x.strip() for x in (row["label"].split(label_separator) if label_separator
                                               else [row["label"]]) if x.strip())
            if not labels:
                raise ManifestError(f"{where}: empty label; every row needs one (multi-label: separated by "
                                    f"{label_separator or 'data.label_separator'})")
            t0, t1 = _time(row, "t_start_s", where), _time(row, "t_end_s", where)
            if t0 is not None and t1 is not None and t1 <= t0:
                raise ManifestError(f"{where}: t_end_s {t1} is not after t_start_s {t0}; fix the times or leave both "
                                    "empty for the whole video")
            video = Path(row["path"])
            video = video if video.is_absolute() else path.parent / video
            if not video.is_file():
                raise FileNotFoundError(f"{where}: video {video} not found; fix the path (relative paths are read from "
                                        f"{path.parent}) or delete the row")
            rows.append(ClipRow(video, labels, t0, t1, where))
    if not rows:
        raise ManifestError(f"{path}: no rows; add one line per labelled clip under the header")
    return rows


def _time(row: dict[str, str], key: str, where: str) -> float | None:
    text = row.get(key) or ""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ManifestError(f"{where}: {key} {text!r} is not a number of seconds; fix it or leave it empty") from None
    if not math.isfinite(value) or value < 0:
        raise ManifestError(f"{where}: {key} {text!r} must be a non-negative number of seconds")
    return value


def clip_indices(row: ClipRow, timestamps_s: np.ndarray, cfg: ClipInputConfig,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """Frame indices of one clip inside the row's time range: at a random place with ``rng``, else centred.

    A range shorter than the clip repeats its border frames (as ``decode.samplers`` clamps).
    """
    n = len(timestamps_s)
    lo = 0 if row.t_start_s is None else frame_at_time(row.t_start_s, timestamps_s)
    hi = n if row.t_end_s is None else int(np.searchsorted(timestamps_s, row.t_end_s - 1e-6, side="left"))
    if row.t_start_s is not None and row.t_start_s >= float(timestamps_s[-1]) + 1.0:
        raise ManifestError(f"{row.where}: t_start_s {row.t_start_s} is after the end of {row.path} "
                            f"({float(timestamps_s[-1]):.2f} s); fix the times")
    hi = max(hi, lo + 1)
    room = max(hi - lo - cfg.span, 0)
    start = lo + (int(rng.integers(0, room + 1)) if rng is not None else room // 2)
    return np.clip(start + np.arange(cfg.frames, dtype=np.int64) * cfg.frame_step, lo, hi - 1)


class _Sources:
    """Open ``VideoSource`` s, the ``size`` most recently used, so each file is probed once and not once per clip."""

    def __init__(self, *, backend: Backend, size: int = 8) -> None:
        self.backend, self.size = backend, size
        self._open: OrderedDict[Path, VideoSource] = OrderedDict()

    def get(self, row: ClipRow) -> VideoSource:
        src = self._open.pop(row.path, None)
        if src is None:
            try:
                src = VideoSource(row.path, backend=self.backend)
            except VideoDecodeError as exc:
                raise VideoDecodeError(row.path, f"{exc.reason} (manifest row {row.where}: replace the file or "
                                                 "delete the row)") from None
        self._open[row.path] = src
        while len(self._open) > self.size:
            self._open.popitem(last=False)[1].close()
        return src

    def close(self) -> None:
        for src in self._open.values():
            src.close()
        self._open.clear()


class ClipDataset(torch.utils.data.Dataset):
    """Manifest rows -> ``((3, T, crop, crop) float clip, target)``; randomness from a per-(seed, epoch, item) RNG.

    The target is the class id, or a multi-hot (K,) float vector when ``multi_label``.
    """

    def __init__(self, rows: Sequence[ClipRow], *, classes: Sequence[str], cfg: ClipInputConfig, multi_label: bool,
                 augment: RGBAugmentConfig | None = None, clips_per_row: int = 1, seed: int = 0,
                 backend: Backend = "auto") -> None:
        self.rows, self.cfg, self.multi_label, self.augment = list(rows), cfg, multi_label, augment
        self.class_id = {c: i for i, c in enumerate(classes)}
        self.clips_per_row, self.seed, self.epoch = clips_per_row, seed, 0
        self.sources = _Sources(backend=backend)
        for row in self.rows:
            unknown = [x for x in row.labels if x not in self.class_id]
            if unknown:
                raise ManifestError(f"{row.where}: label {unknown[0]!r} is not a training class; add it to "
                                    f"data.classes or delete the row (classes: {', '.join(classes)})")
            if len(row.labels) > 1 and not multi_label:
                raise ManifestError(f"{row.where}: {len(row.labels)} labels in a single-label setup; set "
                                    "model.multi_label: true or keep one label per row")

    def __len__(self) -> int:
        return len(self.rows) * self.clips_per_row

    def target(self, row: ClipRow) -> torch.Tensor:
        if self.multi_label:
            y = torch.zeros(len(self.class_id))
            y[[self.class_id[x] for x in row.labels]] = 1.0
            return y
        return torch.tensor(self.class_id[row.labels[0]])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = self.rows[i % len(self.rows)]
        rng = None if self.augment is None else np.random.default_rng((self.seed, self.epoch, i))
        src = self.sources.get(row)
        ts = np.asarray(src.info.timestamps_s, np.float64)
        if len(ts) != len(src):
            ts = np.arange(len(src)) / (src.info.fps or 1.0)
        jitter = rng if self.augment is not None and self.augment.temporal_jitter else None
        frames = src.get_frames(clip_indices(row, ts, self.cfg, jitter))
        flip = self.augment.flip if self.augment is not None else 0.0
        return prepare_clip(frames, self.cfg, rng=rng, flip=flip), self.target(row)


# -------------------------------------------------------------------------------------------------- model


def resolve_backbone_kwargs(name: str, kwargs: dict[str, Any], cfg: ClipInputConfig) -> dict[str, Any]:
    """The builder's keyword arguments, with ``img_size`` / ``num_frames`` taken from the input when it takes them."""
    try:
        builder = BACKBONES.get(name)
    except UnknownNameError as exc:
        raise ConfigError(f"model.backbone: {exc}") from None
    params = inspect.signature(builder).parameters
    out = dict(kwargs)
    if "img_size" in params:
        out.setdefault("img_size", cfg.crop)
    if "num_frames" in params:
        out.setdefault("num_frames", cfg.frames)
    return out


def load_backbone_weights(backbone: nn.Module, source: str | Path) -> str:
    """Initialise a backbone from a checkpoint file with the loader of its family; returns the load report."""
    from videoact.features.vit.models import VideoViT

    if isinstance(backbone, VideoViT):
        from videoact.features.vit.checkpoints import load_pretrained

        return str(load_pretrained(backbone, source))
    if hasattr(backbone, "head_prefixes"):  # the PyTorchVideo backbones of features.cnn
        from videoact.features.cnn import load_pytorchvideo_checkpoint

        return str(load_pytorchvideo_checkpoint(backbone, source))
    raise ConfigError(f"model.pretrained: no checkpoint loader for {type(backbone).__name__}; leave it null")


def class_texts_for(classes: Sequence[str], descriptions: Path | None) -> dict[str, list[str]]:
    """Zero-shot class texts: the descriptions file's sentences per class, the class name where it has none."""
    found: dict[str, Any] = {}
    if descriptions is not None:
        if not Path(descriptions).is_file():
            raise FileNotFoundError(f"{descriptions}: class descriptions file not found (data.descriptions)")
        found = yaml.safe_load(Path(descriptions).read_text(encoding="utf-8")) or {}
        if not isinstance(found, dict):
            raise ConfigError(f"{descriptions}: must map each class name to a list of descriptions")
    return class_texts({c: found.get(c) or [] for c in classes})


# -------------------------------------------------------------------------------------------------- train


def _logits(model: ClipClassifier | ZeroShotHead, x: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
    return model(x, text.to(x.device)) if isinstance(model, ZeroShotHead) else model(x)


def hits_at_1(logits: torch.Tensor, y: torch.Tensor, *, multi_label: bool) -> torch.Tensor:
    """(B,) bool: the top class is the label (multi-label: one of the labels)."""
    top = logits.argmax(dim=-1)
    return y.gather(1, top[:, None])[:, 0] > 0 if multi_label else top == y


@torch.no_grad()
def evaluate(model: ClipClassifier | ZeroShotHead, dataset: ClipDataset, text: torch.Tensor | None, *,
             batch_size: int) -> dict[str, float]:
    """Top-1 of centre clips (no augmentation) and the mean loss."""
    model.eval()
    hits, losses = [], []
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, generator=torch.Generator())
    device = module_device(model)  # optim.device: where TrainLoop put it
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = _logits(model, x, text).float()
        losses.append(float(model.loss(logits, y)) * len(y))
        hits.append(hits_at_1(logits, y, multi_label=dataset.multi_label))
    return {"val_top1": float(torch.cat(hits).float().mean()), "val_loss": sum(losses) / len(dataset)}


def train_rgb_recognition(cfg: RGBRecognitionTrainConfig) -> Path:
    """Train; returns ``<output>/model.pt`` (``last.pt`` when ``optim.stop_after`` stops it early)."""
    if cfg.optim.threads:
        torch.set_num_threads(cfg.optim.threads)
    o, d, m = cfg.optim, cfg.data, cfg.model
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    # always split, so a multi-label row in a single-label setup is an error that says so, not a new class
    train_rows = read_manifest(d.train, label_separator=d.label_separator)
    val_rows = read_manifest(d.val, label_separator=d.label_separator) if d.val is not None else []
    classes = list(d.classes) if d.classes else sorted({x for r in train_rows for x in r.labels})
    train_set = ClipDataset(train_rows, classes=classes, cfg=cfg.input, multi_label=m.multi_label,
                            augment=cfg.augment, clips_per_row=d.clips_per_row, seed=o.seed, backend=d.backend)
    val_set = ClipDataset(val_rows, classes=classes, cfg=cfg.input, multi_label=m.multi_label,
                          backend=d.backend) if val_rows else None

    texts: dict[str, list[str]] | None = None
    text_emb: torch.Tensor | None = None
    if m.head == "zeroshot":
        texts = class_texts_for(classes, d.descriptions)
        text_emb = torch.from_numpy(class_embeddings(texts))  # (K, 384)

    torch.manual_seed(o.seed)
    backbone_kwargs = resolve_backbone_kwargs(m.backbone, m.backbone_kwargs, cfg.input)
    head_kwargs: dict[str, Any] = {"pooling": m.pooling, "multi_label": m.multi_label, "dropout": m.dropout}
    spec = {"backbone": m.backbone, "backbone_kwargs": backbone_kwargs, "head": m.head, "head_kwargs": head_kwargs}
    model = build_clip_model(backbone=m.backbone, backbone_kwargs=backbone_kwargs, head=m.head,
                             num_classes=len(classes), head_kwargs=head_kwargs)
    if m.pretrained is not None:
        log.info("backbone weights: %s", load_backbone_weights(model.backbone, m.pretrained))
    if m.freeze_backbone:
        model.backbone.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    log.info("%d train / %d val rows, %d classes; %s + %s head, %.2fM trainable parameters", len(train_rows),
             len(val_rows), len(classes), m.backbone, m.head, sum(p.numel() for p in params) / 1e6)

    # the loader drops a last partial batch; the validation manifest is scored after every epoch
    loop = TrainLoop(model, cfg, steps_per_epoch=max(1, len(train_set) // o.batch_size), params=params)
    loop.resume()

    try:
        for epoch in loop.epochs():
            model.train()
            if m.freeze_backbone:
                model.backbone.eval()  # frozen statistics (BatchNorm) and no stochastic depth
            train_set.epoch = epoch
            gen = torch.Generator().manual_seed(o.seed * 100_003 + epoch)
            loader = torch.utils.data.DataLoader(train_set, batch_size=o.batch_size, shuffle=True, generator=gen,
                                                 drop_last=len(train_set) > o.batch_size)
            losses, hits = [], []
            for x, y in loader:
                x, y = loop.to_device(x, y)
                with loop.autocast():
                    logits = _logits(model, x, text_emb)
                    loss = model.loss(logits, y, label_smoothing=o.label_smoothing)
                loop.step(loss)
                losses.append(loss.item())
                hits.append(hits_at_1(logits.detach(), y, multi_label=m.multi_label))
            row = {"train_acc": float(torch.cat(hits).float().mean()), "steps": len(losses)}
            score = None if val_set is None else lambda: evaluate(model, val_set, text_emb, batch_size=o.batch_size)
            if loop.end_epoch(losses, evaluate=score, row=row):
                return loop.last
    finally:
        train_set.sources.close()
        if val_set is not None:
            val_set.sources.close()

    model.cpu()  # saved on the CPU, whatever optim.device
    history, train_s = loop.history, loop.train_s
    metrics = {k: v for k, v in history[-1].items() if k.startswith("val_")} if history else {}
    source = f"{m.backbone}-{m.head}@{fingerprint(cfg)}"
    path = save_clip_recognizer(out / "model.pt", model, spec=spec, classes=classes, label_space=d.label_space,
                                input_cfg=cfg.input, texts=texts, class_embeddings=text_emb,
                                extra={"source": source, "metrics": metrics, "epochs": o.epochs,
                                       "train_seconds": round(train_s, 1), "pretrained": m.pretrained,
                                       "frozen_backbone": m.freeze_backbone})
    (out / "metrics.json").write_text(json.dumps({"label_space": d.label_space, "classes": classes, **metrics,
                                                  "train_seconds": train_s, "history": history}, indent=2) + "\n")
    return path
