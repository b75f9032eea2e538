"""Running a trained temporal head over one whole video: checkpoint I/O, window features, and ``predict_video``.

What ``videoact run`` (the ``temporal`` stage) and the temporal trainers share. A ``model.pt`` written by
``videoact train configs/temporal/...`` holds plain data and tensors only (``load_temporal_model``);
``predict_video`` turns one video's joints on the model's grid into ``segmentation`` or ``localization`` rows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from videoact.annotations.store import atomic_torch_save, load_torch_checkpoint
from videoact.config import doc
from videoact.devices import module_device

CHECKPOINT_FORMAT = "videoact.temporal/1"


@dataclass(frozen=True)
class SequenceFeatureConfig:
    backbone: str = doc("skeleton checkpoint that encodes the windows: builtin:NAME or a model.pt",
                        default="builtin:nw_ucla_stgcnpp")
    window: int = doc("grid steps per window", default=48)
    extra_windows: tuple[int, ...] = doc("more window lengths, encoded at the same steps and concatenated to the "
                                         "features (multi-scale)", default=())
    stride: int = doc("grid steps per feature step", default=4)
    cache: Path | None = field(default=None, metadata={
        "doc": "folder of cached feature sequences (null: <output>/features)"})
    batch_size: int = doc("windows per backbone call", default=64)


@dataclass(frozen=True)
class LACInputConfig:
    """The ``lac`` head's input: chunks of joints, read straight from the grid (no feature cache)."""

    pretrained: str | None = doc("skeleton checkpoint the encoder starts from (null: random stgcnpp)",
                                 default="builtin:nw_ucla_stgcnpp")
    step: int = doc("grid steps per LAC step (joints are sampled at the step centres)", default=2)
    chunk: int = doc("LAC steps per chunk (training sample; inference uses half-overlapping chunks)", default=128)
    center_joint: str | None = doc("joint subtracted (first step of the chunk)", default="spine")
    rotate_degrees: tuple[float, float, float] = doc("training: max random rotation about x, y, z",
                                                     default=(10.0, 10.0, 10.0))
    scale: tuple[float, float] = doc("training: random per-axis scale range", default=(0.9, 1.1))


@dataclass(frozen=True)
class ASRFConfig:
    """The ``asrf`` head's boundary loss and decoding (``heads.segmentation.asrf``); inputs as ``lac``."""

    boundary_weight: float = doc("weight of the boundary BCE next to the class loss", default=1.0)
    threshold: float = doc("a boundary is a local maximum of the boundary probability at least this high",
                           default=0.5)
    min_distance: int = doc("boundaries at least this many LAC steps apart (and from the start)", default=5)
    segment_classifier: str | None = doc(
        "skeleton recognizer (builtin:NAME or a model.pt, same classes) that classifies every decoded segment "
        "whole; null: the segment's mean frame-wise probability only", default=None)
    segment_weight: float = doc("weight of the whole-segment classifier in the blend with the mean frame-wise "
                                "probability (0: mean only, 1: classifier only)", default=0.5)


def video_features(keypoints: np.ndarray, cfg: SequenceFeatureConfig, *, video_id: str, cache: Path | None,
                   backbone: Any = None) -> np.ndarray:
    """``(S, D)`` window features of one video: one block per window length (``window``, ``extra_windows``),
    concatenated; each length is cached in its own folder (``cache``, ``cache/window<w>``)."""
    from videoact.features.sequence import sequence_features, skeleton_backbone
    from videoact.heads.recognition.skeleton import load_recognizer

    backbone = backbone or skeleton_backbone(load_recognizer(cfg.backbone))
    blocks = []
    for w in (cfg.window, *cfg.extra_windows):
        where = None if cache is None else (Path(cache) if w == cfg.window else Path(cache) / f"window{w}")
        blocks.append(sequence_features(keypoints, backbone, window=w, stride=cfg.stride, video_id=video_id,
                                        cache_dir=where, batch_size=cfg.batch_size))
    return np.concatenate(blocks, axis=1)


@dataclass
class Standardizer:
    """Per-dimension mean / std of the training features, applied to every sequence."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, seqs: Sequence[np.ndarray]) -> Standardizer:
        allf = np.concatenate(seqs)
        std = allf.std(0)
        # a dimension constant over training (a dead unit) is only centred: dividing by ~0 would blow up at test
        return cls(allf.mean(0).astype(np.float32), np.where(std < 1e-4, 1.0, std).astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


def steps_to_frames(probs: np.ndarray, *, frames_per_step: int, n_frames: int,
                    mode: Literal["repeat", "linear"] = "repeat") -> np.ndarray:
    """(S, K) per-step probabilities -> (n_frames, K): each step repeated, or interpolated between step centres."""
    if mode == "repeat":
        out = np.repeat(probs, frames_per_step, axis=0)
        if len(out) < n_frames:
            raise ValueError(f"{len(probs)} steps of {frames_per_step} frames do not cover {n_frames} frames")
        return out[:n_frames]
    centres = (np.arange(len(probs)) + 0.5) * frames_per_step - 0.5
    frames = np.arange(n_frames)
    return np.stack([np.interp(frames, centres, probs[:, k]) for k in range(probs.shape[1])], 1)


_GRID_S = {"utkinect_untrimmed": 2 / 30, "nw_ucla_concat": 1 / 30}  # the protocols' grids (untrimmed.py)


def save_temporal_model(path: Path, model: nn.Module, *, task: str, head: str, head_kwargs: dict[str, Any],
                        bench: Any, spec: dict[str, Any], metrics: dict[str, Any]) -> Path:
    """The inference checkpoint: weights + plain data (``torch.load(weights_only=True)``); ``bench`` is the
    ``datasets.skeleton.untrimmed.UntrimmedBenchmark`` it was trained on (classes, layout, grid)."""
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "task": task, "head": head, "head_kwargs": head_kwargs,
                  "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
                  "classes": list(bench.classes), "background": bench.background, "layout": bench.layout,
                  "label_space": bench.name, "protocol": bench.protocol, "spec": spec, "metrics": metrics,
                  # seconds per input step: a video run samples its poses on this grid
                  "grid_s": bench.train[0].step_frames / bench.fps}, Path(path))
    return Path(path)


def load_temporal_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(model in eval mode, checkpoint metadata)`` of a ``model.pt`` written by these trainers."""
    from videoact.heads.localization import build_localization_head
    from videoact.heads.segmentation import build_segmentation_head

    state = load_torch_checkpoint(path, fmt=CHECKPOINT_FORMAT, what="temporal",
                                  make="videoact train configs/temporal/...")
    kwargs = dict(state["head_kwargs"])
    if state["head"] in ("lac", "asrf"):
        kwargs["pretrained"] = None  # the weights below replace the starting checkpoint
    build = build_segmentation_head if state["task"] == "segmentation" else build_localization_head
    model = build(state["head"], **kwargs)
    model.load_state_dict(state["state_dict"])
    model.eval()
    meta = {k: v for k, v in state.items() if k != "state_dict"}
    meta.setdefault("grid_s", _GRID_S.get(str(meta.get("label_space")), 1 / 30))  # checkpoints before grid_s
    return model, meta


def lac_inputs(keypoints: np.ndarray, step: int) -> np.ndarray:
    """Grid joints (M, S, V, C) -> the joints at the centre grid step of every LAC step: (M, ceil(S / step), V, C)."""
    n = keypoints.shape[1]
    idx = np.minimum(np.arange(-(-n // step)) * step + step // 2, n - 1)
    return keypoints[:, idx]


def segmentation_frame_probs(model: nn.Module, head: str, x: np.ndarray, *, frames_per_step: int, n_frames: int,
                             upsample: Literal["repeat", "linear"] = "repeat", layout: str = "kinect20",
                             lac: LACInputConfig | None = None, asrf: ASRFConfig | None = None,
                             classes: Sequence[str] = ()) -> np.ndarray:
    """(n_frames, K) class probabilities of one video: ``x`` is its standardised features (mstcn) or its
    ``lac_inputs`` joints (lac, asrf); ``frames_per_step`` video frames per output step. ``asrf``: every frame
    holds the probabilities of its decoded segment (``asrf_step_probs``)."""
    model.eval()
    if head == "asrf":
        p = asrf_step_probs(model, x, layout=layout, lac=lac or LACInputConfig(), asrf=asrf or ASRFConfig(),
                            classes=classes)
    elif head == "mstcn":
        with torch.no_grad():
            xt = torch.from_numpy(x).T[None].to(module_device(model))  # probabilities() bypasses host_io's hooks
            p = model.probabilities(xt)[0].T.float().cpu().numpy()  # (S, K)
    elif head == "lac":
        from videoact.heads.segmentation.lac import predict_chunks

        lac = lac or LACInputConfig()
        p = predict_chunks(model, x, chunk=lac.chunk, layout=layout, center_joint=lac.center_joint)  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown segmentation head {head!r}")
    return steps_to_frames(p, frames_per_step=frames_per_step, n_frames=n_frames, mode=upsample)


@functools.lru_cache(maxsize=4)
def _segment_recognizer(ref: str, classes: tuple[str, ...]) -> Any:
    from videoact.heads.recognition.skeleton import load_recognizer

    clf = load_recognizer(ref)
    if tuple(clf.classes) != classes:
        raise ValueError(f"asrf.segment_classifier {ref}: its classes {list(clf.classes)} are not the head's "
                         f"{list(classes)}; use a recognizer of the same label space or set it to null")
    return clf


def asrf_step_probs(model: nn.Module, x: np.ndarray, *, layout: str, lac: LACInputConfig, asrf: ASRFConfig,
                    classes: Sequence[str], raw: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(S, K) refined probabilities of one video's ``lac_inputs`` joints ``x``: boundary peaks cut the video into
    segments, each segment holds its mean class probability, blended with the whole-segment recognizer's.
    ``raw``: the (class, boundary) step probabilities when already computed (``predict_asrf_chunks``)."""
    from videoact.heads.segmentation.asrf import decode_segments, predict_asrf_chunks, refine

    probs, bnd = raw if raw is not None else predict_asrf_chunks(
        model, x, chunk=lac.chunk, layout=layout, center_joint=lac.center_joint)  # type: ignore[arg-type]
    starts = decode_segments(bnd, threshold=asrf.threshold, min_distance=asrf.min_distance)
    seg_fn = None
    if asrf.segment_classifier and asrf.segment_weight > 0:
        clf = _segment_recognizer(asrf.segment_classifier, tuple(classes))

        def seg_fn(spans: list[tuple[int, int]]) -> np.ndarray:
            return clf.predict_proba([x[:, a:b] for a, b in spans])

    return refine(probs, starts, segment_probs=seg_fn, segment_weight=asrf.segment_weight)


def detect_instances(model: nn.Module, x: np.ndarray, *, frames_per_step: int, actions: Sequence[int],
                     pre_nms_thresh: float = 1e-3, nms_sigma: float = 0.5,
                     max_segments: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections of one video from its standardised features: segments in video frames (N, 2), scores, and
    class ids (``actions[detector class]``)."""
    from videoact.heads.localization.actionformer import decode, pad_batch

    model.eval()
    xb, mask = pad_batch([x], model.divisor)
    with torch.no_grad():
        segs, scores, labels = decode(model, model(xb, mask), pre_nms_thresh=pre_nms_thresh, nms_sigma=nms_sigma,
                                      max_segments=max_segments)
    return (segs + 0.5) * frames_per_step, scores, np.asarray(actions, dtype=np.int64)[labels.astype(np.int64)]


def predict_video(model: nn.Module, meta: dict[str, Any], keypoints: np.ndarray, *, video_id: str, fps: float,
                  step_frames: int = 1, n_frames: int | None = None, cache_dir: str | Path | None = None,
                  source: str = "videoact-temporal") -> pd.DataFrame:
    """``segments`` rows of one whole video from a ``load_temporal_model`` pair.

    ``keypoints`` (M, S, V, C) are joints on a uniform grid of ``step_frames`` video frames (the layout and
    coordinates the model was trained on); the window features are cached in ``cache_dir`` when given.
    """
    from videoact.heads.localization.rows import localization_rows
    from videoact.heads.segmentation.rows import segmentation_rows

    spec, classes, head = meta["spec"], meta["classes"], meta["head"]
    n_frames = n_frames or keypoints.shape[1] * step_frames
    label_space = str(meta.get("label_space", "temporal"))
    if head in ("lac", "asrf"):
        lac = LACInputConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["lac"].items()})
        asrf = ASRFConfig(**spec["asrf"]) if head == "asrf" else None
        probs = segmentation_frame_probs(model, head, lac_inputs(keypoints, lac.step), n_frames=n_frames,
                                         frames_per_step=step_frames * lac.step, upsample=spec["upsample"],
                                         layout=meta["layout"], lac=lac, asrf=asrf, classes=classes)
        return segmentation_rows(probs, video_id=video_id, fps=fps, classes=classes, label_space=label_space,
                                 source=source)
    f = SequenceFeatureConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["features"].items()})
    feats = video_features(keypoints, f, video_id=video_id, cache=None if cache_dir is None else Path(cache_dir))
    x = ((feats - spec["mean"].numpy()) / spec["std"].numpy()).astype(np.float32)
    per_step = step_frames * f.stride
    if meta["task"] == "segmentation":
        probs = segmentation_frame_probs(model, head, x, frames_per_step=per_step, n_frames=n_frames,
                                         upsample=spec["upsample"])
        return segmentation_rows(probs, video_id=video_id, fps=fps, classes=classes, label_space=label_space,
                                 source=source)
    segs, scores, labels = detect_instances(model, x, frames_per_step=per_step, actions=spec["actions"],
                                            pre_nms_thresh=spec["pre_nms_thresh"], nms_sigma=spec["nms_sigma"],
                                            max_segments=spec["max_segments"])
    return localization_rows(segs / fps, scores, labels, video_id=video_id, fps=fps, duration_s=n_frames / fps,
                             classes=classes, label_space=label_space, source=source)
