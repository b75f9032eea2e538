"""``videoact train configs/detection/*.yaml``: AVA spatio-temporal action detection (video ViT + EVAD head).

Data, in the AVA layout::

    data/ava/
      videos/<video_id>.<ext>                 one file per AVA video id (mp4, mkv, webm, ...); timestamps of the
                                              csv are seconds of the file (the full movies), or, for the 15-minute
                                              cuts that start at 900 s (mmaction2's layout), set
                                              data.timestamp_offset_s: 900
      annotations/ava_train_v2.2.csv          video_id,timestamp,x1,y1,x2,y2,action_id,person_id (no header)
      annotations/ava_val_v2.2.csv
      annotations/ava_action_list_v2.2.pbtxt  the 80-class map (outputs); the 60-class
                                              ava_action_list_v2.2_for_activitynet_2019.pbtxt is data.eval_label_map
      annotations/<person boxes>.pkl          optional: mmaction2 proposals for validation (data.val_boxes)

One sample is one annotated keyframe: a clip of ``input.clip_len`` frames ``input.frame_step`` apart centred on
it, its ground-truth person boxes (one per person; its action ids, restricted to the label map, as a multi-hot
target). The loss is a sigmoid binary cross-entropy per class, summed over the decoder blocks (EVAD's deep
supervision); AdamW with linear warm-up then cosine decay. Augmentation: horizontal flips (boxes mirrored).

After every epoch ``last.pt`` is written atomically (model, optimiser, scheduler, RNG, history), so a killed
job resumes with ``resume: true`` (the default). With a validation csv, every ``optim.eval_every`` epochs the
keyframes of that csv are scored with its ground-truth boxes (or ``data.val_boxes``) and frame-mAP@0.5 is
computed by ``videoact.eval`` (the official ActivityNet algorithm). At the end: ``model.pt`` (what
``videoact run detection.model=...`` loads), ``metrics.json`` and ``eval/{gt,pred}`` tables (``videoact eval
ava --gt <output>/eval/gt --pred <output>/eval/pred`` recomputes the number).
"""

from __future__ import annotations

import json
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from videoact.annotations.tables import Tables
from videoact.config import doc, fingerprint
from videoact.decode import VIDEO_EXTENSIONS
from videoact.heads.detection.boxes import KeyframeBoxes, keyframe_boxes, read_proposals
from videoact.heads.detection.evad import pad_boxes
from videoact.heads.detection.model import (
    ActionDetector,
    ClipInput,
    DetectionModel,
    build_action_detector,
    flip_boxes,
    prepare_clip,
    save_detection_model,
)
from videoact.train.common import OptimConfig, TrainLoop

log = logging.getLogger("videoact.train.detection")


# ------------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class AVADataConfig:
    videos: Path = field(default=Path("data/ava/videos"), metadata={
        "doc": "folder of videos named <video_id>.<ext> (AVA layout: see the trainer's module doc)"})
    train_csv: Path = field(default=Path("data/ava/annotations/ava_train_v2.2.csv"), metadata={
        "doc": "AVA ground-truth csv to train on"})
    val_csv: Path | None = field(default=Path("data/ava/annotations/ava_val_v2.2.csv"), metadata={
        "doc": "AVA ground-truth csv scored after epochs (null: no validation)"})
    label_map: Path = field(default=Path("data/ava/annotations/ava_action_list_v2.2.pbtxt"), metadata={
        "doc": "label map of the outputs (pbtxt or mmaction2 'N: name' text); other action ids are ignored"})
    eval_label_map: Path | None = field(default=None, metadata={
        "doc": "classes frame-mAP averages over (AVA: the official 60-class pbtxt); null: label_map"})
    label_space: str = doc("label space of the labels table and of the written rows", default="ava")
    val_boxes: Path | None = field(default=None, metadata={
        "doc": "validation person boxes: an mmaction2 proposals .pkl or an AVA csv (null: the ground-truth boxes)"})
    min_box_score: float = doc("validation person boxes scored lower are dropped (EVAD: 0.7, SlowFast: 0.8)",
                               default=0.0)
    timestamp_offset_s: float = doc("video time = timestamp - offset (0: full movies; 900: 15-minute cuts)",
                                    default=0.0)


@dataclass(frozen=True)
class DetectionNetConfig:
    backbone: str = doc("the detector's backbone", names="video backbone", default="vit_b16")
    backbone_options: dict[str, Any] = field(default_factory=lambda: {"keep_rates": "evad", "drop_path": 0.1},
                                             metadata={"doc": "keyword arguments of the backbone's builder "
                                                              "(img_size and num_frames come from input)"})
    pretrained: str | None = doc("backbone weights: a VideoMAE / mmaction2 / videoact checkpoint path, URL, "
                                 "hf-hub: id or model-zoo name (null: random init)", default=None)
    head: str = doc("the head over the backbone's tokens", names="detection head", default="evad")
    head_options: dict[str, Any] = field(default_factory=dict, metadata={
        "doc": "keyword arguments of the head (EVADHead: dim, depth, num_heads, act_dim, roi_extension, ...)"})


@dataclass(frozen=True)
class DetectionAugmentConfig:
    flip: float = doc("chance of a horizontally mirrored clip (boxes mirrored with it)", default=0.5)


@dataclass(frozen=True)
class DetectionOptimConfig(OptimConfig):
    epochs: int = doc("training epochs", default=12)
    batch_size: int = doc("keyframes per step", default=8)
    lr: float = doc("peak AdamW learning rate", default=1e-4)
    weight_decay: float = doc("AdamW weight decay (not on norms, biases and the mask token)", default=0.05)
    warmup_epochs: int = doc("linear warm-up epochs before the cosine decay", default=2)
    seed: int = doc("seed of weights, sample order and augmentation", default=0)
    deep_supervision: bool = doc("a loss on every decoder block's classifier (EVAD), else on the last only",
                                 default=True)
    eval_every: int = doc("frame-mAP on the validation csv every this many epochs (0: only at the end)", default=1)


@dataclass(frozen=True)
class DetectionTrainConfig:
    """What ``train_detection`` (``videoact train``, trainer ``ava_detection``) reads."""

    data: AVADataConfig = field(default_factory=AVADataConfig)
    input: ClipInput = field(default_factory=ClipInput)
    model: DetectionNetConfig = field(default_factory=DetectionNetConfig)
    augment: DetectionAugmentConfig = field(default_factory=DetectionAugmentConfig)
    optim: DetectionOptimConfig = field(default_factory=DetectionOptimConfig)
    output: Path = field(default=Path("runs/detection"), metadata={"doc": "folder for checkpoints and results"})
    resume: bool = doc("continue from <output>/last.pt when it exists", default=True)


# --------------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class KeyframeSample:
    """One annotated keyframe: its boxes (``t_s`` = the annotation's timestamp) and multi-hot targets ``(n, K)``."""

    video_id: str
    boxes: KeyframeBoxes
    labels: np.ndarray


def class_list(label_map: Path) -> tuple[list[int], list[str]]:
    """Ids and names of a label map, by id: output ``k`` of the network is ``ids[k]``."""
    from videoact.annotations.formats.ava import parse_label_map

    items = sorted(parse_label_map(label_map))
    return [i for i, _ in items], [n for _, n in items]


def gt_samples(boxes: pd.DataFrame, class_ids: Sequence[int]) -> list[KeyframeSample]:
    """Ground-truth ``boxes`` rows -> one sample per keyframe with boxes; a person's rows become one target row.

    A box is a person (``actor_id``) or, without ids, a distinct box; action ids outside ``class_ids`` are
    ignored (a box with none of them is a negative for every class).
    """
    column = {c: k for k, c in enumerate(class_ids)}
    df = boxes[(boxes["task"] == "detection") & boxes["x1"].notna() & (boxes["flag"].isna())]
    samples = []
    for (vid, t), g in df.groupby(["video_id", "t_s"], sort=True):
        people: dict[tuple[Any, ...], int] = {}
        coords, targets, actors = [], [], []
        for row in g.itertuples(index=False):
            key = (None if pd.isna(row.actor_id) else int(row.actor_id), row.x1, row.y1, row.x2, row.y2)
            if key not in people:
                people[key] = len(coords)
                coords.append(key[1:])
                targets.append(np.zeros(len(class_ids), np.float32))
                actors.append(len(actors) if key[0] is None else key[0])
            label = None if pd.isna(row.label_id) else column.get(int(row.label_id))
            if label is not None:
                targets[people[key]][label] = 1.0
        kb = KeyframeBoxes(t_s=float(t), boxes=np.asarray(coords, np.float32), scores=np.ones(len(coords), np.float32),
                           actor_ids=np.asarray(actors, np.int64))
        samples.append(KeyframeSample(str(vid), kb, np.stack(targets)))
    return samples


def find_videos(folder: Path, video_ids: Sequence[str]) -> dict[str, Path]:
    """``{video_id: file}`` for every id; the error names the folder, how many are missing and the naming rule."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: videos folder not found (set data.videos to the folder of "
                                "<video_id>.<ext> files)")
    by_id = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS}
    missing = sorted(set(video_ids) - set(by_id))
    if missing:
        exts = ", ".join(sorted(VIDEO_EXTENSIONS))
        raise FileNotFoundError(f"{folder}: no video file for {len(missing)} annotated video id(s), e.g. "
                                f"{missing[0]!r}; name each video <video_id>.<ext> ({exts})")
    return {v: by_id[v] for v in video_ids}


class KeyframeClips(torch.utils.data.Dataset):
    """Samples -> ``(clip (3, T, H, W), boxes (n, 4), targets (n, K))``; flips draw from a per-epoch seeded RNG."""

    def __init__(self, samples: Sequence[KeyframeSample], videos: dict[str, Path], clip: ClipInput, *,
                 offset_s: float = 0.0, flip: float = 0.0, seed: int = 0, max_open: int = 4) -> None:
        self.samples, self.videos, self.clip = list(samples), videos, clip
        self.offset_s, self.flip, self.seed, self.epoch, self.max_open = offset_s, flip, seed, 0, max_open
        self._open: OrderedDict[str, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from videoact.decode.samplers import keyframe_clips
        from videoact.heads.detection.detect import frame_times

        s = self.samples[i]
        src = self._source(s.video_id)
        times = frame_times(src)
        t = s.boxes.t_s - self.offset_s
        if not -0.5 <= t <= src.info.duration_s + 0.5:
            raise ValueError(f"{src.path}: keyframe {s.boxes.t_s} s lies outside the video's {src.info.duration_s:.1f} "
                             "s; set data.timestamp_offset_s (900 for AVA's 15-minute cuts)")
        (idx,) = keyframe_clips(times, [t], clip_len=self.clip.clip_len, frame_step=self.clip.frame_step)
        x = prepare_clip(src.get_frames(idx), self.clip)
        boxes = torch.from_numpy(s.boxes.boxes)
        if self.flip and np.random.default_rng((self.seed, self.epoch, i)).random() < self.flip:
            x, boxes = x.flip(-1), flip_boxes(boxes)
        return x, boxes, torch.from_numpy(s.labels)

    def _source(self, video_id: str) -> Any:
        from videoact.decode.source import VideoSource

        if video_id in self._open:
            self._open.move_to_end(video_id)
            return self._open[video_id]
        if len(self._open) >= self.max_open:
            self._open.popitem(last=False)[1].close()
        self._open[video_id] = VideoSource(self.videos[video_id])
        return self._open[video_id]

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


def collate(batch: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> ``clips (B, 3, T, H, W)``, ``boxes (B, A, 4)``, ``valid (B, A)``, ``targets (B, A, K)`` (padded)."""
    clips = torch.stack([x for x, _, _ in batch])
    boxes, valid = pad_boxes([b for _, b, _ in batch])
    targets = torch.zeros(*valid.shape, batch[0][2].shape[-1])
    for i, (_, _, y) in enumerate(batch):
        targets[i, :len(y)] = y
    return clips, boxes, valid, targets


# ---------------------------------------------------------------------------------------------- evaluation


def predict_rows(model: DetectionModel, dataset: KeyframeClips, *, source: str, batch_size: int = 8) -> pd.DataFrame:
    """Every class score of every box of ``dataset`` as ``boxes`` rows (timestamps as annotated)."""
    from videoact.annotations import schema
    from videoact.heads.detection.detect import score_rows

    rows: list[dict[str, Any]] = []
    k = len(model.class_ids)
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        samples = dataset.samples[start:start + len(items)]
        probs = model.predict(torch.stack([x for x, _, _ in items]), [s.boxes.boxes for s in samples])
        for s, p in zip(samples, probs, strict=True):
            base = {"video_id": s.video_id, "task": "detection", "t_s": s.boxes.t_s, "source": source}
            rows += score_rows(p, s.boxes, model, base=base, top_k=k, score_threshold=0.0)
    return schema.validate("boxes", pd.DataFrame(rows) if rows else schema.empty("boxes"), where="predictions")


def val_keyframes(gt: Tables, data: AVADataConfig, class_ids: Sequence[int]) -> list[KeyframeSample]:
    """The keyframes validation scores: ground-truth boxes, or ``data.val_boxes`` at every ground-truth keyframe."""
    if data.val_boxes is None:
        return gt_samples(gt.boxes, class_ids)
    proposals = read_proposals(data.val_boxes)
    keys = gt.boxes[gt.boxes["flag"].isna() | (gt.boxes["flag"] == "empty")][["video_id", "t_s"]].drop_duplicates()
    samples = []
    for vid, g in keys.groupby("video_id", sort=True):
        mine = proposals[proposals["video_id"] == vid]
        for kb in keyframe_boxes(mine, sorted(g["t_s"]), max_gap_s=0.0, min_score=data.min_box_score):
            if len(kb):
                samples.append(KeyframeSample(str(vid), kb, np.zeros((len(kb), len(class_ids)), np.float32)))
    if not samples:
        raise ValueError(f"{data.val_boxes}: no person box at any keyframe of {data.val_csv} (keys are "
                         "'video_id,timestamp' as in the csv; lower data.min_box_score?)")
    return samples


def frame_map(gt: Tables, pred: pd.DataFrame) -> dict[str, Any]:
    from videoact.eval import evaluate_ava

    return evaluate_ava(gt, Tables(boxes=pred))


# -------------------------------------------------------------------------------------------------- train


def build_network(cfg: DetectionTrainConfig, num_classes: int) -> tuple[ActionDetector, dict[str, Any]]:
    """The network of ``cfg`` and the backbone keyword arguments it was built with."""
    kwargs = {**cfg.model.backbone_options, "img_size": list(cfg.input.size), "num_frames": cfg.input.clip_len}
    net = build_action_detector(backbone=cfg.model.backbone, backbone_kwargs=kwargs, head=cfg.model.head,
                                head_kwargs=dict(cfg.model.head_options), num_classes=num_classes)
    return net, kwargs


def _param_groups(net: ActionDetector, o: DetectionOptimConfig) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on norms, biases, the mask token and the position embedding."""
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith(("mask_token", "pos_embed")) else decay).append(p)
    return [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_detection(cfg: DetectionTrainConfig) -> Path:
    """Train, validate and save ``<output>/model.pt``; returns its path (``last.pt`` when ``stop_after`` stops it)."""
    threads = torch.get_num_threads()
    if cfg.optim.threads:
        torch.set_num_threads(cfg.optim.threads)
    try:
        return _train(cfg)
    finally:
        torch.set_num_threads(threads)  # the caller's setting again (tests train in-process)


def _train(cfg: DetectionTrainConfig) -> Path:
    from videoact.annotations.formats import import_annotations

    o, d = cfg.optim, cfg.data
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    class_ids, class_names = class_list(d.label_map)
    train = gt_samples(import_annotations("ava", d.train_csv, kind="gt", label_space=d.label_space).boxes, class_ids)
    if not train:
        raise ValueError(f"{d.train_csv}: no ground-truth box to train on")
    val_gt = val = None
    if d.val_csv is not None:
        val_gt = Tables.concat([
            import_annotations("ava", d.val_csv, kind="gt", label_space=d.label_space),
            import_annotations("ava-labelmap", d.eval_label_map or d.label_map, label_space=d.label_space)])
        val = val_keyframes(val_gt, d, class_ids)
    videos = find_videos(d.videos, sorted({s.video_id for s in train + (val or [])}))
    log.info("%d training keyframes (%d boxes), %d validation keyframes, %d classes", len(train),
             sum(len(s.boxes) for s in train), len(val or []), len(class_ids))

    torch.manual_seed(o.seed)
    net, backbone_kwargs = build_network(cfg, len(class_ids))
    train_set = KeyframeClips(train, videos, cfg.input, offset_s=d.timestamp_offset_s, flip=cfg.augment.flip,
                              seed=o.seed)
    val_set = KeyframeClips(val, videos, cfg.input, offset_s=d.timestamp_offset_s) if val else None
    loop = TrainLoop(net, cfg, steps_per_epoch=math.ceil(len(train_set) / o.batch_size),
                     params=_param_groups(net, o), eval_every=o.eval_every)
    if not loop.resume() and cfg.model.pretrained:
        from videoact.features.vit.checkpoints import load_pretrained

        log.info("%s", load_pretrained(net.backbone, cfg.model.pretrained))
    model = DetectionModel(net=net, class_ids=tuple(class_ids), class_names=tuple(class_names),
                           label_space=d.label_space, input=cfg.input)
    source = f"{cfg.model.head}@{fingerprint(cfg)}"
    keyframe = cfg.input.clip_len // 2
    pred = None  # validation predictions of the last epoch

    def evaluate() -> dict[str, Any]:
        nonlocal pred
        pred = predict_rows(model, val_set, source=source)
        return {"frame_mAP@0.5": frame_map(val_gt, pred)["frame_mAP@0.5"]}

    try:
        for epoch in loop.epochs():
            net.train()
            train_set.epoch = epoch
            gen = torch.Generator().manual_seed(o.seed * 100_003 + epoch)
            loader = torch.utils.data.DataLoader(train_set, batch_size=o.batch_size, shuffle=True, generator=gen,
                                                 collate_fn=collate)
            losses = []
            for batch in loader:
                x, boxes, valid, targets = loop.to_device(*batch)
                with loop.autocast():
                    logits = net(x, boxes, valid, keyframe=keyframe, all_layers=True)  # (L, B, A, K)
                    if not o.deep_supervision:
                        logits = logits[-1:]
                    loss = sum(F.binary_cross_entropy_with_logits(lg[valid].float(), targets[valid]) for lg in logits)
                loop.step(loss)
                losses.append(loss.item() / len(logits))
            if loop.end_epoch(losses, evaluate=None if val_set is None else evaluate):
                return loop.last
        metrics: dict[str, Any] = {"epochs": o.epochs, "train_seconds": round(loop.train_s, 1),
                                   "history": loop.history}
        if val_set is not None and val_gt is not None:
            pred = predict_rows(model, val_set, source=source) if pred is None else pred
            result = frame_map(val_gt, pred)
            metrics.update({"frame_mAP@0.5": result["frame_mAP@0.5"], "val_csv": str(d.val_csv)})
            write_eval_tables(out / "eval", val_gt, pred)
    finally:
        train_set.close()
        if val_set is not None:
            val_set.close()
    net.cpu()  # saved on the CPU, whatever optim.device
    path = save_detection_model(out / "model.pt", net, backbone=cfg.model.backbone, backbone_kwargs=backbone_kwargs,
                                head=cfg.model.head, head_kwargs=dict(cfg.model.head_options), class_ids=class_ids,
                                class_names=class_names, label_space=d.label_space, clip=cfg.input,
                                extra={"metrics": {k: v for k, v in metrics.items() if k != "history"},
                                       "train_csv": str(d.train_csv), "config_fingerprint": fingerprint(cfg)})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return path


def write_eval_tables(folder: Path, gt: Tables, pred: pd.DataFrame) -> None:
    """Validation ground truth and predictions as table directories (``videoact eval ava`` reads both)."""
    from videoact.annotations import store

    store.write_tables(folder / "gt", gt)
    store.write_tables(folder / "pred", Tables(boxes=pred, labels=gt.labels))
