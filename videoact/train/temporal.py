"""``videoact train configs/temporal/*.yaml``: temporal action segmentation and detection on untrimmed skeletons.

Two trainers share the data and the feature sequences:

* ``segmentation`` (``train_segmentation``): ``mstcn`` over cached feature sequences, ``lac`` (a skeleton
  encoder fine-tuned end to end on chunks of joints, with a frame-wise classifier), or ``asrf`` (``lac`` plus an
  action-boundary branch; segments cut at the predicted boundaries take one label each, ``ASRFConfig``);
* ``localization`` (``train_localization``): the ActionFormer-style detector over the same features (``csa``
  option for class-semantics attention).

Data: a protocol of ``datasets.skeleton.untrimmed`` by name (``utkinect_untrimmed``, ``nw_ucla_concat``).
Features: every video's ``(S, D)`` sequence from a skeleton checkpoint (``features.backbone``; default the
shipped NW-UCLA ST-GCN++, which never saw UTKinect nor NW-UCLA view 3): windows of ``features.window`` grid
steps every ``features.stride`` grid steps, cached under ``features.cache`` (default ``<output>/features``) and
reused by every later run with the same key. Inputs are standardised with the training videos' mean and std.

Like the skeleton trainer: a checkpoint after every epoch (``last.pt``: model, optimiser, scheduler, RNG), resumed
with ``resume: true``; a different recipe refuses to continue a run. At the end the test videos are predicted,
written as annotation tables (``<output>/eval/{gt,pred}``) and scored with ``videoact.eval`` (``tas``: MoF, Edit,
F1@{10,25,50}; ``tad``: mAP at ``model.tiou_thresholds``), so ``videoact eval tas|tad --gt .../gt --pred .../pred``
gives the same numbers; the inference checkpoint ``model.pt`` holds plain data and tensors only
(``load_temporal_model``; ``predict_video`` turns one video's joints into ``segments`` rows with it).

``window_baseline`` is the sliding-window classifier the heads are compared with: a linear softmax classifier
on the same window features (window label = the label at its centre), each frame labelled by the mean
probability of the windows covering it, detections = runs of one non-background label scored by their mean
probability.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from videoact.annotations.store import load_torch_file
from videoact.annotations.tables import Tables
from videoact.config import doc, fingerprint, to_dict
from videoact.datasets.skeleton.untrimmed import UntrimmedBenchmark, UntrimmedSequence, load_untrimmed
from videoact.devices import host_io
from videoact.heads.temporal import (
    ASRFConfig,
    LACInputConfig,
    SequenceFeatureConfig,
    Standardizer,
    detect_instances,
    lac_inputs,
    save_temporal_model,
    segmentation_frame_probs,
    steps_to_frames,
    video_features,
)
from videoact.train.common import RUN_CONTROL, OptimConfig, TrainLoop, lr_lambda

log = logging.getLogger("videoact.train.temporal")


# ------------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class TemporalDataConfig:
    protocol: str = doc("untrimmed protocol: utkinect_untrimmed or nw_ucla_concat (datasets.skeleton.untrimmed)",
                        default="utkinect_untrimmed")
    root: Path = field(default=Path("../shared/data/skeleton/utkinect_action3d"),
                       metadata={"doc": "the dataset's folder"})
    validation: bool = doc("test on the last two training subjects instead of the test side (to choose settings)",
                           default=False)
    options: dict[str, Any] = field(default_factory=dict, metadata={
        "doc": "keyword options of the protocol (utkinect_untrimmed: step_frames; nw_ucla_concat: "
               "clips_per_sequence, seed)"})
    max_videos: int = doc("use only the first n videos of each side (smoke tests); 0: all", default=0)


@dataclass(frozen=True)
class TemporalOptimConfig(OptimConfig):
    epochs: int = doc("passes over the training videos", default=50)
    batch_size: int = doc("videos per step (lac: chunks per step)", default=1)
    lr: float = doc("peak learning rate", default=5e-4)
    warmup_epochs: int = doc("warm-up epochs of the cosine schedule", default=0)
    optimizer: Literal["adam", "adamw"] = doc("adam (MS-TCN) or adamw (transformers)", default="adam")
    schedule: Literal["constant", "cosine"] = doc("constant, or linear warm-up then cosine decay", default="constant")
    grad_clip: float = doc("clip the gradient norm to this (0: no clipping)", default=0.0)
    eval_every: int = doc("score the test side every this many epochs (0: only at the end)", default=0)


@dataclass(frozen=True)
class SegmentationModelConfig:
    name: Literal["mstcn", "lac", "asrf"] = doc(
        "mstcn (over feature sequences), lac (end-to-end skeleton encoder) or asrf (lac + boundary branch)",
        default="mstcn")
    options: dict[str, Any] = field(default_factory=dict, metadata={
        "doc": "builder keywords (mstcn: stages, layers, channels, dropout, input_dropout; lac: dropout; asrf: "
               "dropout, channels, layers, boundary_dropout)"})
    smooth_weight: float = doc("weight of the truncated-MSE smoothing loss (MS-TCN: 0.15)", default=0.15)
    tau: float = doc("truncation of the smoothing loss (MS-TCN: 4)", default=4.0)
    upsample: Literal["repeat", "linear"] = doc(
        "per-step probabilities to frames: repeat each step (ms-tcn) or interpolate between step centres",
        default="repeat")


@dataclass(frozen=True)
class SegmentationTrainConfig:
    """What ``train_segmentation`` (``videoact train``, ``trainer: segmentation``) reads."""

    data: TemporalDataConfig = field(default_factory=TemporalDataConfig)
    features: SequenceFeatureConfig = field(default_factory=SequenceFeatureConfig)
    model: SegmentationModelConfig = field(default_factory=SegmentationModelConfig)
    lac: LACInputConfig = field(default_factory=LACInputConfig)
    asrf: ASRFConfig = field(default_factory=ASRFConfig)
    optim: TemporalOptimConfig = field(default_factory=TemporalOptimConfig)
    output: Path = field(default=Path("runs/temporal/segmentation"),
                         metadata={"doc": "folder for checkpoints and results"})
    resume: bool = doc("continue from <output>/last.pt when it exists", default=True)


@dataclass(frozen=True)
class LocalizationModelConfig:
    name: Literal["actionformer"] = doc("detector: actionformer", default="actionformer")
    options: dict[str, Any] = field(default_factory=dict, metadata={
        "doc": "builder keywords: dim, heads, window, levels, stem_blocks, dropout, path_drop, input_dropout, csa"})
    center_radius: float = doc("centre sampling radius, in strides of the level", default=1.5)
    reg_weight: float = doc("weight of the DIoU regression loss", default=1.0)
    label_smoothing: float = doc("label smoothing of the focal loss targets", default=0.0)
    loss_normalizer: float = doc("start of the moving average of positives per batch that divides the losses "
                                 "(ActionFormer: 100)", default=100.0)
    nms_sigma: float = doc("Gaussian soft-NMS sigma", default=0.5)
    max_segments: int = doc("detections kept per video", default=200)
    pre_nms_thresh: float = doc("scores below this are not decoded", default=1e-3)
    tiou_thresholds: tuple[float, ...] = doc("tIoU thresholds of the reported mAP", default=(0.3, 0.5, 0.7))


@dataclass(frozen=True)
class LocalizationTrainConfig:
    """What ``train_localization`` (``videoact train``, ``trainer: localization``) reads."""

    data: TemporalDataConfig = field(default_factory=TemporalDataConfig)
    features: SequenceFeatureConfig = field(default_factory=SequenceFeatureConfig)
    model: LocalizationModelConfig = field(default_factory=LocalizationModelConfig)
    optim: TemporalOptimConfig = field(default_factory=lambda: TemporalOptimConfig(
        optimizer="adamw", epochs=40, batch_size=2, lr=1e-4, weight_decay=0.05, grad_clip=1.0))
    output: Path = field(default=Path("runs/temporal/localization"),
                         metadata={"doc": "folder for checkpoints and results"})
    resume: bool = doc("continue from <output>/last.pt when it exists", default=True)


# --------------------------------------------------------------------------------------------------- data


def load_protocol(cfg: TemporalDataConfig) -> UntrimmedBenchmark:
    bench = load_untrimmed(cfg.protocol, cfg.root, validation=cfg.validation, **cfg.options)
    if cfg.max_videos:
        bench = dataclasses.replace(bench, train=bench.train[: cfg.max_videos], test=bench.test[: cfg.max_videos])
    log.info("%s: %d train / %d test videos, %d classes; %s", bench.name, len(bench.train), len(bench.test),
             len(bench.classes), bench.protocol)
    return bench


def feature_cache_dir(features: SequenceFeatureConfig, output: Path) -> Path:
    return Path(features.cache) if features.cache is not None else Path(output) / "features"


def compute_features(seqs: Sequence[UntrimmedSequence], cfg: SequenceFeatureConfig,
                     cache: Path) -> dict[str, np.ndarray]:
    """``{video: (S, D)}`` window features of every sequence, read from / written to ``cache``."""
    from videoact.features.sequence import skeleton_backbone
    from videoact.heads.recognition.skeleton import load_recognizer

    backbone = skeleton_backbone(load_recognizer(cfg.backbone))
    t0 = time.perf_counter()
    out = {s.name: video_features(s.keypoints, cfg, video_id=s.name, cache=cache, backbone=backbone) for s in seqs}
    log.info("features of %d videos ready in %.1f s (cache %s)", len(seqs), time.perf_counter() - t0, cache)
    return out


# ------------------------------------------------------------------------------------------ eval tables


def _labels_table(bench: UntrimmedBenchmark) -> pd.DataFrame:
    return pd.DataFrame({"label_space": bench.name, "id": range(len(bench.classes)), "name": list(bench.classes)})


def _videos_table(bench: UntrimmedBenchmark, seqs: Sequence[UntrimmedSequence], source: str) -> pd.DataFrame:
    return pd.DataFrame([{"video_id": s.name, "fps": s.fps, "n_frames": s.n_frames, "duration_s": s.n_frames / s.fps,
                          "dataset": bench.name, "split": "test", "source": source} for s in seqs])


def segmentation_ground_truth(bench: UntrimmedBenchmark, seqs: Sequence[UntrimmedSequence]) -> Tables:
    """Frame-wise ground truth of ``seqs`` as ``segmentation`` rows (background runs included)."""
    from videoact.heads.segmentation.rows import ground_truth_rows

    rows = [ground_truth_rows(s.frame_labels, video_id=s.name, fps=s.fps, classes=bench.classes,
                              label_space=bench.name) for s in seqs]
    return Tables(videos=_videos_table(bench, seqs, f"ground_truth:{bench.name}"),
                  segments=pd.concat(rows, ignore_index=True), labels=_labels_table(bench)).validated()


def localization_ground_truth(bench: UntrimmedBenchmark, seqs: Sequence[UntrimmedSequence]) -> Tables:
    """Action instances of ``seqs`` as ``localization`` rows (seconds and frames)."""
    rows = [{"video_id": s.name, "task": "localization", "t_start_s": a / s.fps, "t_end_s": b / s.fps, "fps": s.fps,
             "frame_start": a, "frame_end": b, "label": bench.classes[c], "label_id": c, "label_space": bench.name,
             "score": 1.0, "source": f"ground_truth:{bench.name}"} for s in seqs for c, a, b in s.segments]
    return Tables(videos=_videos_table(bench, seqs, f"ground_truth:{bench.name}"), segments=pd.DataFrame(rows),
                  labels=_labels_table(bench)).validated()


def segmentation_predictions(bench: UntrimmedBenchmark, seqs: Sequence[UntrimmedSequence],
                             frame_probs: dict[str, np.ndarray], source: str) -> Tables:
    """Per-frame probabilities -> ``segmentation`` rows of every video."""
    from videoact.heads.segmentation.rows import segmentation_rows

    rows = [segmentation_rows(frame_probs[s.name], video_id=s.name, fps=s.fps, classes=bench.classes,
                              label_space=bench.name, source=source) for s in seqs]
    return Tables(videos=_videos_table(bench, seqs, source), segments=pd.concat(rows, ignore_index=True),
                  labels=_labels_table(bench)).validated()


def localization_predictions(bench: UntrimmedBenchmark, seqs: Sequence[UntrimmedSequence],
                             detections: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                             source: str) -> Tables:
    """Detections ``{video: (segments in frames (N, 2), scores, class ids)}`` -> ``localization`` rows."""
    from videoact.heads.localization.rows import localization_rows

    rows = [localization_rows(detections[s.name][0] / s.fps, detections[s.name][1], detections[s.name][2],
                              video_id=s.name, fps=s.fps, duration_s=s.n_frames / s.fps, classes=bench.classes,
                              label_space=bench.name, source=source) for s in seqs]
    rows = [r for r in rows if len(r)]
    segs = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return Tables(videos=_videos_table(bench, seqs, source), segments=segs, labels=_labels_table(bench)).validated()


def score_segmentation(gt: Tables, pred: Tables, bench: UntrimmedBenchmark) -> dict[str, Any]:
    from videoact.eval.segmentation import evaluate_segmentation

    return evaluate_segmentation(gt, pred, background=[bench.background] if bench.background else [])


def score_localization(gt: Tables, pred: Tables, thresholds: Sequence[float]) -> dict[str, Any]:
    from videoact.eval.detection import evaluate_detection

    return evaluate_detection(gt, pred, tiou_thresholds=list(thresholds))


def write_eval(folder: Path, gt: Tables, pred: Tables) -> None:
    from videoact.annotations import store

    store.write_tables(folder / "gt", gt)
    store.write_tables(folder / "pred", pred)


def summary(task: str, result: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of an evaluator result (percent for ``tas``, fractions for ``tad``)."""
    if task == "tas":
        return {k: result[k] for k in ("accuracy", "edit", "F1@10", "F1@25", "F1@50")}
    return {f"mAP@{k}": v for k, v in result["mAP"].items()} | {"average_mAP": result["average_mAP"]}


# ------------------------------------------------------------------------------------------ checkpoints


# settings that may change between the parts of one resumed training without changing its result
_RUN_CONTROL = (*RUN_CONTROL, ("features", "cache"), ("features", "batch_size"))


def _loop(model: nn.Module, cfg: SegmentationTrainConfig | LocalizationTrainConfig, steps_per_epoch: int) -> TrainLoop:
    """The shared loop with the temporal options: adam / adamw, constant or cosine schedule, gradient clipping; the
    last epoch is scored after the loop, not in it."""
    o = cfg.optim
    if o.schedule == "cosine":
        warm, total = max(1, o.warmup_epochs * steps_per_epoch), o.epochs * steps_per_epoch
        fn: Callable[[int], float] = lambda s: lr_lambda(s, warmup=warm, total=total)  # noqa: E731
    elif o.schedule == "constant":
        fn = lambda s: 1.0  # noqa: E731
    else:
        raise ValueError(f"optim.schedule must be constant or cosine, got {o.schedule!r}")
    loop = TrainLoop(model, cfg, steps_per_epoch=steps_per_epoch, optimizer=o.optimizer, lr_factor=fn,
                     grad_clip=o.grad_clip, eval_every=o.eval_every, eval_last=False, control=_RUN_CONTROL)
    host_io(model, loop.device)  # optim.device: batches in and outputs out on the CPU, losses there
    return loop


# ---------------------------------------------------------------------------------------- segmentation


def _setup(cfg: SegmentationTrainConfig | LocalizationTrainConfig) -> tuple[Path, UntrimmedBenchmark]:
    """Threads, output folder, data and the seed: the start of both trainers."""
    if cfg.optim.threads:
        torch.set_num_threads(cfg.optim.threads)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    bench = load_protocol(cfg.data)
    torch.manual_seed(cfg.optim.seed)
    return out, bench


def train_segmentation(cfg: SegmentationTrainConfig) -> Path:
    """Train a segmentation head, evaluate it on the test side and save ``<output>/model.pt``."""
    from videoact.heads.segmentation import build_segmentation_head
    from videoact.heads.segmentation.asrf import asrf_loss, boundary_targets
    from videoact.heads.segmentation.lac import prepare_chunk
    from videoact.heads.segmentation.mstcn import mstcn_loss

    out, bench = _setup(cfg)
    k = len(bench.classes)
    mcfg, lcfg, o = cfg.model, cfg.lac, cfg.optim
    spec: dict[str, Any] = {"upsample": mcfg.upsample}
    if mcfg.name == "mstcn":
        feats = compute_features(bench.train + bench.test, cfg.features, feature_cache_dir(cfg.features, out))
        norm = Standardizer.fit([feats[s.name] for s in bench.train])
        inputs = {name: norm(f) for name, f in feats.items()}
        head_kwargs: dict[str, Any] = {"in_dim": int(next(iter(inputs.values())).shape[1]), "num_classes": k,
                                       **mcfg.options}
        spec.update(features=to_dict(cfg.features), mean=torch.from_numpy(norm.mean), std=torch.from_numpy(norm.std),
                    steps_per_feature=cfg.features.stride)
        per_step = cfg.features.stride
        steps_per_epoch = math.ceil(len(bench.train) / o.batch_size)
    elif mcfg.name in ("lac", "asrf"):
        head_kwargs = {"num_classes": k, "layout": bench.layout, "pretrained": lcfg.pretrained, **mcfg.options}
        if mcfg.name == "asrf":
            head_kwargs.setdefault("center_joint", lcfg.center_joint or "spine")
            spec.update(asrf=to_dict(cfg.asrf))
        spec.update(lac=to_dict(lcfg))
        per_step = lcfg.step
        inputs = {s.name: lac_inputs(s.keypoints, lcfg.step) for s in bench.train + bench.test}
        n_chunks = sum(math.ceil(inputs[s.name].shape[1] / lcfg.chunk) for s in bench.train)
        steps_per_epoch = math.ceil(n_chunks / o.batch_size)
    else:
        raise ValueError(f"model.name must be mstcn, lac or asrf, got {mcfg.name!r}")
    model = build_segmentation_head(mcfg.name, **head_kwargs)
    if "pretrained" in head_kwargs:
        head_kwargs = {**head_kwargs, "encoder_kwargs": _encoder_kwargs(head_kwargs["pretrained"])}
    loop = _loop(model, cfg, steps_per_epoch)
    loop.resume()

    def frame_probs(s: UntrimmedSequence) -> np.ndarray:
        return segmentation_frame_probs(model, mcfg.name, inputs[s.name], frames_per_step=s.step_frames * per_step,
                                        n_frames=s.n_frames, upsample=mcfg.upsample, layout=bench.layout, lac=lcfg,
                                        asrf=cfg.asrf, classes=bench.classes)

    bounds = {s.name: boundary_targets(s.step_labels(per_step), [round(a / (s.step_frames * per_step))
                                                                 for _, a, _ in s.segments])
              for s in bench.train} if mcfg.name == "asrf" else None

    gt = segmentation_ground_truth(bench, bench.test)
    source = f"{mcfg.name}@{fingerprint(cfg)}"

    def evaluate() -> dict[str, Any]:
        pred = segmentation_predictions(bench, bench.test, {s.name: frame_probs(s) for s in bench.test}, source)
        return score_segmentation(gt, pred, bench)

    for epoch in loop.epochs():
        model.train()
        rng = np.random.default_rng((o.seed, epoch))
        losses: list[float] = []
        if mcfg.name == "mstcn":
            order = rng.permutation(len(bench.train))
            for lo in range(0, len(order), o.batch_size):
                batch = [bench.train[i] for i in order[lo:lo + o.batch_size]]
                x, y, mask = _pad_steps([inputs[s.name] for s in batch], [s.step_labels(per_step) for s in batch])
                with loop.autocast():
                    fwd = model(x, mask)
                loss = mstcn_loss(fwd, y, mask, tau=mcfg.tau, smooth_weight=mcfg.smooth_weight)
                loop.step(loss)
                losses.append(loss.item())
        else:
            samples = _lac_samples(bench.train, inputs, lcfg, per_step, rng, bounds)
            for lo in range(0, len(samples), o.batch_size):
                part = samples[lo:lo + o.batch_size]
                x = torch.from_numpy(np.stack([prepare_chunk(c[0], layout=bench.layout, center_joint=lcfg.center_joint,
                                                             rng=rng, rotate_degrees=lcfg.rotate_degrees,
                                                             scale=lcfg.scale) for c in part]))
                y = torch.from_numpy(np.stack([c[1] for c in part]))
                if mcfg.name == "asrf":
                    with loop.autocast():
                        logits, blogits = model(x)
                    loss = asrf_loss(logits, blogits, y, torch.from_numpy(np.stack([c[2] for c in part])),
                                     tau=mcfg.tau, smooth_weight=mcfg.smooth_weight,
                                     boundary_weight=cfg.asrf.boundary_weight)
                else:
                    mask = torch.ones_like(y, dtype=torch.bool)
                    with loop.autocast():
                        fwd = model(x)
                    loss = mstcn_loss(fwd[None], y, mask, tau=mcfg.tau, smooth_weight=mcfg.smooth_weight)
                loop.step(loss)
                losses.append(loss.item())
        if loop.end_epoch(losses, evaluate=lambda: summary("tas", evaluate())):
            return loop.last
    pred = segmentation_predictions(bench, bench.test, {s.name: frame_probs(s) for s in bench.test}, source)
    result = score_segmentation(gt, pred, bench)
    write_eval(out / "eval", gt, pred)
    metrics = {"protocol": bench.protocol, "task": "tas", "head": mcfg.name, **summary("tas", result),
               "train_seconds": round(loop.train_s, 1)}
    (out / "metrics.json").write_text(json.dumps({**metrics, "history": loop.history}, indent=2) + "\n")
    log.info("%s %s: MoF %.1f  Edit %.1f  F1@{10,25,50} %.1f %.1f %.1f", bench.name, mcfg.name, result["accuracy"],
             result["edit"], result["F1@10"], result["F1@25"], result["F1@50"])
    model.cpu()  # saved on the CPU, whatever optim.device
    return save_temporal_model(out / "model.pt", model, task="segmentation", head=mcfg.name, head_kwargs=head_kwargs,
                               bench=bench, spec=spec, metrics=metrics)


def _encoder_kwargs(ref: str | None) -> dict[str, Any]:
    """The builder kwargs of a LAC encoder's starting checkpoint (so ``model.pt`` rebuilds it without the file)."""
    if ref is None:
        return {}
    from videoact.heads.recognition.skeleton import resolve_model

    state = load_torch_file(resolve_model(ref), what="skeleton model")
    return {k: v for k, v in state["model_kwargs"].items() if k not in ("layout", "num_classes")}


def _pad_steps(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S_i, D) inputs and (S_i,) labels -> (B, D, S) padded inputs, (B, S) labels and mask."""
    from videoact.heads.localization.actionformer import pad_batch

    x, mask = pad_batch(xs)
    y = torch.zeros(mask.shape, dtype=torch.long)
    for i, lab in enumerate(ys):
        y[i, : len(lab)] = torch.from_numpy(np.asarray(lab, dtype=np.int64))
    return x, y, mask


def _lac_samples(seqs: Sequence[UntrimmedSequence], inputs: dict[str, np.ndarray], lcfg: LACInputConfig,
                 per_step: int, rng: np.random.Generator,
                 boundaries: dict[str, np.ndarray] | None = None) -> list[tuple[np.ndarray, ...]]:
    """One epoch of (chunk joints, chunk labels[, chunk boundary targets]), shuffled: each video tiled by chunks
    from a random offset, the first and last chunk clamped inside the video, so every step is seen about equally
    often (uniformly random starts would under-sample the first and last ``chunk`` steps)."""
    out: list[tuple[np.ndarray, ...]] = []
    c = lcfg.chunk
    for s in seqs:
        x, lab = inputs[s.name], s.step_labels(per_step)
        bnd = None if boundaries is None else boundaries[s.name]
        n = x.shape[1]
        if n < c:
            x = np.concatenate([x, np.repeat(x[:, -1:], c - n, axis=1)], axis=1)
            lab = np.concatenate([lab, np.repeat(lab[-1:], c - n)])
            bnd = None if bnd is None else np.concatenate([bnd, np.zeros(c - n, bnd.dtype)])
            n = c
        for a in range(-int(rng.integers(0, c)), n, c):
            a = min(max(a, 0), n - c)
            out.append((x[:, a:a + c], lab[a:a + c]) + (() if bnd is None else (bnd[a:a + c],)))
    return [out[i] for i in rng.permutation(len(out))]


# ---------------------------------------------------------------------------------------- localization


def action_classes(bench: UntrimmedBenchmark) -> list[int]:
    """Class ids the detector scores (every class but the background), in detector order."""
    return [i for i, c in enumerate(bench.classes) if c != bench.background]


def _instances_in_steps(s: UntrimmedSequence, frames_per_step: int, remap: dict[int, int]
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth instances in feature-step coordinates (step ``i`` is centred on ``i``)."""
    segs = [[a / frames_per_step - 0.5, b / frames_per_step - 0.5] for _, a, b in s.segments]
    return (torch.tensor(segs, dtype=torch.float32).reshape(-1, 2),
            torch.tensor([remap[c] for c, _, _ in s.segments], dtype=torch.long))


def train_localization(cfg: LocalizationTrainConfig) -> Path:
    """Train the detector, evaluate it on the test side and save ``<output>/model.pt``."""
    from videoact.heads.localization import build_localization_head
    from videoact.heads.localization.actionformer import DetectionLoss, pad_batch

    out, bench = _setup(cfg)
    actions = action_classes(bench)
    remap = {c: i for i, c in enumerate(actions)}
    mcfg, o = cfg.model, cfg.optim
    feats = compute_features(bench.train + bench.test, cfg.features, feature_cache_dir(cfg.features, out))
    norm = Standardizer.fit([feats[s.name] for s in bench.train])
    inputs = {name: norm(f) for name, f in feats.items()}
    head_kwargs = {"in_dim": int(next(iter(inputs.values())).shape[1]), "num_classes": len(actions), **mcfg.options}
    model = build_localization_head(mcfg.name, **head_kwargs)
    crit = DetectionLoss(num_classes=len(actions), center_radius=mcfg.center_radius, reg_weight=mcfg.reg_weight,
                         label_smoothing=mcfg.label_smoothing, init_normalizer=mcfg.loss_normalizer)
    loop = _loop(model, cfg, math.ceil(len(bench.train) / o.batch_size))
    loop.resume()
    crit.normalizer = float(loop.extra.get("loss_normalizer", crit.normalizer))
    fps_of = {s.name: s.step_frames * cfg.features.stride for s in bench.train + bench.test}
    targets = {s.name: _instances_in_steps(s, fps_of[s.name], remap) for s in bench.train}

    def detect(s: UntrimmedSequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return detect_instances(model, inputs[s.name], frames_per_step=fps_of[s.name], actions=actions,
                                pre_nms_thresh=mcfg.pre_nms_thresh, nms_sigma=mcfg.nms_sigma,
                                max_segments=mcfg.max_segments)

    gt = localization_ground_truth(bench, bench.test)
    source = f"{mcfg.name}@{fingerprint(cfg)}"

    def evaluate() -> dict[str, Any]:
        pred = localization_predictions(bench, bench.test, {s.name: detect(s) for s in bench.test}, source)
        return score_localization(gt, pred, mcfg.tiou_thresholds)

    for epoch in loop.epochs():
        model.train()
        order = np.random.default_rng((o.seed, epoch)).permutation(len(bench.train))
        losses: list[float] = []
        for lo in range(0, len(order), o.batch_size):
            batch = [bench.train[i] for i in order[lo:lo + o.batch_size]]
            x, mask = pad_batch([inputs[s.name] for s in batch], model.divisor)
            segs, labels = zip(*(targets[s.name] for s in batch), strict=True)
            with loop.autocast():
                fwd = model(x, mask)
            loss = crit(model, fwd, segs, labels)["loss"]
            loop.step(loss)
            losses.append(loss.item())
        if loop.end_epoch(losses, evaluate=lambda: summary("tad", evaluate()),
                          extra={"loss_normalizer": crit.normalizer}):
            return loop.last
    pred = localization_predictions(bench, bench.test, {s.name: detect(s) for s in bench.test}, source)
    result = score_localization(gt, pred, mcfg.tiou_thresholds)
    write_eval(out / "eval", gt, pred)
    metrics = {"protocol": bench.protocol, "task": "tad", "head": mcfg.name,
               "csa": bool(mcfg.options.get("csa", False)), **summary("tad", result),
               "train_seconds": round(loop.train_s, 1)}
    (out / "metrics.json").write_text(json.dumps({**metrics, "history": loop.history}, indent=2) + "\n")
    log.info("%s %s: mAP %s", bench.name, mcfg.name, {k: round(v, 4) for k, v in result["mAP"].items()})
    spec = {"features": to_dict(cfg.features), "mean": torch.from_numpy(norm.mean), "std": torch.from_numpy(norm.std),
            "actions": actions, "nms_sigma": mcfg.nms_sigma, "max_segments": mcfg.max_segments,
            "pre_nms_thresh": mcfg.pre_nms_thresh}
    model.cpu()  # saved on the CPU, whatever optim.device
    return save_temporal_model(out / "model.pt", model, task="localization", head=mcfg.name, head_kwargs=head_kwargs,
                               bench=bench, spec=spec, metrics=metrics)


# -------------------------------------------------------------------------------------------- baseline


def window_baseline(bench: UntrimmedBenchmark, feats: dict[str, np.ndarray], *, window: int, stride: int,
                    epochs: int = 300, lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0,
                    source: str = "window_baseline") -> tuple[Tables, Tables]:
    """The sliding-window classifier (module docstring): ``(segmentation, localization)`` Tables of the test side.

    ``feats`` are the window features of every video (``compute_features``); ``window`` and ``stride`` in grid
    steps, as they were computed. The classifier is full-batch softmax regression (Adam) on the training windows.
    """
    from videoact.heads.localization.rows import detections_from_labels
    from videoact.heads.segmentation.rows import window_votes

    norm = Standardizer.fit([feats[s.name] for s in bench.train])
    x = torch.from_numpy(np.concatenate([norm(feats[s.name]) for s in bench.train]))
    y = torch.from_numpy(np.concatenate([s.step_labels(stride) for s in bench.train]))
    torch.manual_seed(seed)
    clf = nn.Linear(x.shape[1], len(bench.classes))
    opt = torch.optim.Adam(clf.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        loss = F.cross_entropy(clf(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    frame_probs, dets = {}, {}
    for s in bench.test:
        with torch.no_grad():
            p = F.softmax(clf(torch.from_numpy(norm(feats[s.name]))), dim=1).numpy()
        votes = window_votes(p, span=max(1, window // stride))
        frame_probs[s.name] = steps_to_frames(votes, frames_per_step=s.step_frames * stride, n_frames=s.n_frames)
        dets[s.name] = detections_from_labels(frame_probs[s.name], background=bench.background_id)
    return (segmentation_predictions(bench, bench.test, frame_probs, source),
            localization_predictions(bench, bench.test, dets, source))
