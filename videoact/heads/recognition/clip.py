"""Action recognition from RGB clips: a video backbone's tokens -> pooled clip features -> classes.

Two heads over any registered backbone (``features.backbones``: ViTs with token dropout, SlowFast, X3D):

* ``ClipClassifier``: closed set. The kept tokens are pooled (their mean, or attention weights from one learned
  query), layer-normed, dropped out and classified by a linear layer; softmax for single-label classes,
  sigmoid (and binary cross-entropy) for multi-label ones.
* ``ZeroShotHead``: open set, ActionHub-style. Classes are text: a name, or several descriptions each embedded
  with MiniLM and averaged (``features.text.class_embeddings``). The pooled video feature is projected into
  the 384-d text space and compared by cosine similarity, scaled by a learned temperature (CLIP's
  ``logit_scale``). Trained with the seen classes' embeddings as the classifier, it scores any class list given
  at inference, unseen classes included, without retraining (``ClipRecognizer.with_classes``).

Over a video: ``recognize_video`` averages (or max-pools) the probabilities of K uniformly spread clips into
one video-level prediction (multi-view testing); ``recognize_windows`` classifies sliding windows and writes one
``recognition`` segment row per window and top class, like the skeleton head.

The modules are plain ``nn.Module`` s (shape comments at their boundaries, no I/O); ``save_clip_recognizer`` /
``load_clip_recognizer`` keep the backbone's registry name and keyword arguments, the head, the class names
(and texts) and the input preparation beside the weights, so ``model.pt`` rebuilds without the training config.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from videoact.config import doc, to_dict
from videoact.decode.samplers import sliding_window_clips, uniform_clips
from videoact.decode.transforms import IMAGENET_MEAN, IMAGENET_STD, RESIZE_MODES, check_resize_mode, clip_pipeline
from videoact.devices import module_device
from videoact.features.backbones import BackboneOutput, backbone_dim, build_backbone
from videoact.features.text import TEXT_DIM, TEXT_ENCODER, ClassTexts, Encoder, class_embeddings, class_texts
from videoact.registry import Registry

if TYPE_CHECKING:
    from videoact.decode.source import VideoSource

Pooling = Literal["mean", "attention"]
CHECKPOINT_FORMAT = "videoact.rgb_recognition/1"


# ------------------------------------------------------------------------------------------------ input


@dataclass(frozen=True)
class ClipInputConfig:
    """How decoded frames become a model input; saved in the checkpoint and reused at inference."""

    frames: int = doc("frames per clip", default=8)
    frame_step: int = doc("take every n-th decoded frame", default=4)
    short_side: int = doc("resize the shorter side to this many pixels first", default=72)
    crop: int = doc("square crop side: random when training, central at inference", default=64)
    mean: tuple[float, float, float] = doc("per-channel mean of [0, 1] pixels (ImageNet's)", default=IMAGENET_MEAN)
    std: tuple[float, float, float] = doc("per-channel std of [0, 1] pixels (ImageNet's)", default=IMAGENET_STD)
    resize: str = doc("whose test pipeline resizes, crops and normalises: " + ", ".join(RESIZE_MODES)
                      + " (decode.transforms; torch: ours)", default="torch")

    def __post_init__(self) -> None:
        check_resize_mode(self.resize)

    @property
    def span(self) -> int:
        """Frames a clip covers in the video."""
        return (self.frames - 1) * self.frame_step + 1


def prepare_clip(frames: torch.Tensor, cfg: ClipInputConfig, *, rng: np.random.Generator | None = None,
                 flip: float = 0.0) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (3, T, crop, crop): short-side resize, crop, normalise, as ``cfg.resize``'s
    source does it (``decode.transforms.clip_pipeline``: ``torch`` is ours, ``pytorchvideo`` / ``cv2`` /
    ``pil`` reproduce PyTorchVideo's, mmaction2's and Hugging Face's test pipelines exactly).

    Without ``rng`` the crop is central (inference); with it the crop is placed at random and the clip is
    mirrored left-right with probability ``flip`` (training).
    """
    return clip_pipeline(frames, short_side=cfg.short_side, crop=cfg.crop, mean=cfg.mean, std=cfg.std,
                         resize=cfg.resize, rng=rng, flip=flip)


# ------------------------------------------------------------------------------------------------ modules


class TokenPool(nn.Module):
    """(B, N, D) kept tokens -> (B, D): their mean, or their attention-weighted sum for one learned query.

    The query starts at zero, so attention pooling starts as mean pooling and learns where to look.
    """

    def __init__(self, dim: int, kind: Pooling = "mean") -> None:
        super().__init__()
        if kind not in ("mean", "attention"):
            raise ValueError(f"pooling must be 'mean' or 'attention', got {kind!r}")
        self.kind = kind
        if kind == "attention":
            self.norm = nn.LayerNorm(dim)
            self.key = nn.Linear(dim, dim)
            self.query = nn.Parameter(torch.zeros(dim))

    def weights(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N) pooling weights (each row sums to 1)."""
        if self.kind == "mean":
            return tokens.new_full(tokens.shape[:2], 1.0 / tokens.shape[1])
        logits = self.key(self.norm(tokens)) @ self.query / math.sqrt(tokens.shape[-1])  # (B, N)
        return logits.softmax(dim=-1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.kind == "mean":
            return tokens.mean(dim=1)
        return (self.weights(tokens).unsqueeze(-1) * tokens).sum(dim=1)


class _PooledClip(nn.Module):
    """Backbone + token pooling + LayerNorm + dropout: (B, 3, T, H, W) -> (B, D) clip features."""

    def __init__(self, backbone: nn.Module, *, pooling: Pooling, dropout: float) -> None:
        super().__init__()
        dim = backbone_dim(backbone)
        self.backbone = backbone
        self.pool = TokenPool(dim, pooling)
        self.fc_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def features(self, x: torch.Tensor, *, keyframe: int | None = None) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, D) pooled, normalised clip features (before dropout)."""
        out: BackboneOutput = self.backbone(x) if keyframe is None else self.backbone(x, keyframe=keyframe)
        return self.fc_norm(self.pool(out.tokens))


class ClipClassifier(_PooledClip):
    """Closed-set clip classifier: ``forward(x (B, 3, T, H, W)) -> logits (B, K)``."""

    def __init__(self, backbone: nn.Module, num_classes: int, *, pooling: Pooling = "mean",
                 multi_label: bool = False, dropout: float = 0.5) -> None:
        super().__init__(backbone, pooling=pooling, dropout=dropout)
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes, self.multi_label = num_classes, multi_label
        self.fc = nn.Linear(self.fc_norm.normalized_shape[0], num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.02)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor, *, keyframe: int | None = None) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x, keyframe=keyframe)))  # (B, K)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax over classes, or an independent sigmoid per class when multi-label."""
        return logits.sigmoid() if self.multi_label else logits.softmax(dim=-1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, *, keyframe: int | None = None) -> torch.Tensor:
        """(B, K) probabilities (the caller picks train or eval mode)."""
        return self.probabilities(self(x, keyframe=keyframe))

    def loss(self, logits: torch.Tensor, target: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
        """Cross-entropy on class ids (B,), or binary cross-entropy on multi-hot targets (B, K) when multi-label."""
        if self.multi_label:
            return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


class ZeroShotHead(_PooledClip):
    """Open-set recognition in text space: ``forward(x (B, 3, T, H, W), classes (K, E)) -> logits (B, K)``.

    ``logits = exp(logit_scale) * cos(proj(features(x)), class embedding)``; the class embeddings are an input,
    not a parameter, so the class list can change after training.
    """

    multi_label = False

    def __init__(self, backbone: nn.Module, *, text_dim: int = TEXT_DIM, pooling: Pooling = "mean",
                 dropout: float = 0.0, temperature: float = 0.07, max_logit_scale: float = 100.0) -> None:
        super().__init__(backbone, pooling=pooling, dropout=dropout)
        self.text_dim, self.max_log_scale = text_dim, math.log(max_logit_scale)
        self.proj = nn.Linear(self.fc_norm.normalized_shape[0], text_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def embed(self, x: torch.Tensor, *, keyframe: int | None = None) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, E) unit-length video embeddings in the text space."""
        return F.normalize(self.proj(self.dropout(self.features(x, keyframe=keyframe))), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=self.max_log_scale).exp()

    def forward(self, x: torch.Tensor, class_embeddings: torch.Tensor, *, keyframe: int | None = None) -> torch.Tensor:
        if class_embeddings.ndim != 2 or class_embeddings.shape[1] != self.text_dim:
            raise ValueError(f"class embeddings must be (K, {self.text_dim}), got {tuple(class_embeddings.shape)}")
        text = F.normalize(class_embeddings.to(self.proj.weight.dtype), dim=-1)  # (K, E)
        return self.scale() * self.embed(x, keyframe=keyframe) @ text.T  # (B, K)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, class_embeddings: torch.Tensor, *, keyframe: int | None = None) -> torch.Tensor:
        return self(x, class_embeddings, keyframe=keyframe).softmax(dim=-1)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


def _build_linear(backbone: nn.Module, *, num_classes: int, pooling: Pooling = "mean", multi_label: bool = False,
                  dropout: float = 0.5) -> ClipClassifier:
    return ClipClassifier(backbone, num_classes, pooling=pooling, multi_label=multi_label, dropout=dropout)


def _build_zeroshot(backbone: nn.Module, *, num_classes: int, pooling: Pooling = "mean", multi_label: bool = False,
                    dropout: float = 0.0, text_dim: int = TEXT_DIM) -> ZeroShotHead:
    if multi_label:
        raise ValueError("the zero-shot head is single-label (softmax over the class texts): set multi_label: false")
    return ZeroShotHead(backbone, text_dim=text_dim, pooling=pooling, dropout=dropout)


# head kind -> builder(backbone, num_classes=..., **head_kwargs)
HEADS: Registry[Callable[..., _PooledClip]] = Registry("recognition head")
HEADS.register("linear", _build_linear)
HEADS.register("zeroshot", _build_zeroshot)


def build_clip_model(*, backbone: str, backbone_kwargs: Mapping[str, Any], head: str, num_classes: int,
                     head_kwargs: Mapping[str, Any]) -> ClipClassifier | ZeroShotHead:
    """A registered backbone by name + a head by kind: what the trainer trains and the loader rebuilds."""
    return HEADS.get(head)(build_backbone(backbone, **dict(backbone_kwargs)), num_classes=num_classes,
                           **dict(head_kwargs))


# ---------------------------------------------------------------------------------------- the recognizer


@dataclass
class ClipRecognizer:
    """A trained clip model with its classes and input preparation: what runs over videos."""

    model: ClipClassifier | ZeroShotHead
    classes: tuple[str, ...]
    label_space: str
    input: ClipInputConfig
    spec: dict[str, Any]  # backbone, backbone_kwargs, head, head_kwargs: how to rebuild the model
    class_embeddings: torch.Tensor | None = None  # (K, E): zero-shot only
    texts: dict[str, list[str]] | None = None  # zero-shot: class -> the sentences embedded for it
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def multi_label(self) -> bool:
        return bool(self.model.multi_label)

    @property
    def source(self) -> str:
        """What segment rows name as their ``source``."""
        return str(self.meta.get("source", f"{self.spec['backbone']}-{self.spec['head']}"))

    def with_classes(self, classes: ClassTexts, *, label_space: str | None = None,
                     encoder: Encoder | None = None) -> ClipRecognizer:
        """The same zero-shot model scoring another class list (names, or name -> descriptions); no retraining."""
        if not isinstance(self.model, ZeroShotHead):
            raise ValueError("only a zero-shot recognizer (head: zeroshot) takes a new class list; a linear head "
                             "knows only the classes it was trained on")
        texts = class_texts(classes)
        emb = torch.from_numpy(class_embeddings(texts, encoder=encoder))
        return dataclasses.replace(self, classes=tuple(texts), class_embeddings=emb, texts=texts,
                                   label_space=label_space or f"{self.label_space}+zeroshot")

    @torch.no_grad()
    def predict_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared clips (B, 3, T, H, W) -> (B, K) float32 probabilities on the CPU (eval mode); the clips
        follow the network to its device (``runner.device``), under the caller's autocast."""
        self.model.eval()
        x = x.to(module_device(self.model), non_blocking=True)
        if isinstance(self.model, ZeroShotHead):
            if self.class_embeddings is None:
                raise ValueError("zero-shot recognizer without class embeddings: call with_classes(...) first")
            p = self.model.predict(x, self.class_embeddings.to(x.device))
        else:
            p = self.model.predict(x)
        return p.float().cpu()

    def predict_proba(self, clips: Iterable[torch.Tensor], *, batch_size: int = 8) -> np.ndarray:
        """Decoded uint8 clips, each (T, H, W, 3) -> (N, K) probabilities. ``clips`` is consumed lazily,
        ``batch_size`` at a time (``VideoSource.clips`` decodes as it goes), so memory holds one batch."""
        out, batch = [], []
        for clip in clips:
            batch.append(prepare_clip(clip, self.input))
            if len(batch) == batch_size:
                out.append(self.predict_inputs(torch.stack(batch)))
                batch = []
        if batch:
            out.append(self.predict_inputs(torch.stack(batch)))
        if not out:
            return np.zeros((0, len(self.classes)), np.float32)
        return torch.cat(out).numpy()


def aggregate(clip_probs: np.ndarray, how: Literal["mean", "max"] = "mean") -> np.ndarray:
    """(K clips, C) probabilities -> (C,) for the video: their mean (multi-view testing) or per-class max."""
    if clip_probs.ndim != 2 or len(clip_probs) == 0:
        raise ValueError(f"expected (clips, classes) probabilities, got shape {clip_probs.shape}")
    if how == "mean":
        return clip_probs.mean(axis=0)
    if how == "max":
        return clip_probs.max(axis=0)
    raise ValueError(f"aggregate how must be 'mean' or 'max', got {how!r}")


def top_k(probs: np.ndarray, k: int) -> list[int]:
    """Class ids of the ``k`` highest scores, best first (ties: lower id first)."""
    return [int(c) for c in np.argsort(-probs, kind="stable")[:k]]


@dataclass
class VideoPrediction:
    clip_indices: list[np.ndarray]  # frame indices of each clip
    clip_probs: np.ndarray  # (K clips, C)
    probs: np.ndarray  # (C,) aggregated
    top: list[tuple[str, float]]  # (class, score), best first


def recognize_video(rec: ClipRecognizer, src: VideoSource, *, num_clips: int = 5,
                    how: Literal["mean", "max"] = "mean", k: int = 5, batch_size: int = 8) -> VideoPrediction:
    """Video-level prediction from ``num_clips`` clips spread uniformly over the video."""
    idx = uniform_clips(len(src), num_clips=num_clips, clip_len=rec.input.frames, frame_step=rec.input.frame_step)
    clip_probs = rec.predict_proba(src.clips(idx), batch_size=batch_size)
    probs = aggregate(clip_probs, how)
    return VideoPrediction(clip_indices=idx, clip_probs=clip_probs, probs=probs,
                           top=[(rec.classes[c], float(probs[c])) for c in top_k(probs, k)])


def recognize_windows(rec: ClipRecognizer, src: VideoSource, *, video_id: str, stride_s: float = 1.0, k: int = 5,
                      source: str | None = None, batch_size: int = 8) -> pd.DataFrame:
    """``recognition`` segments: one row per sliding window and top-``k`` class, scored by its probability.

    A window is one clip (``input.frames`` frames every ``input.frame_step``); windows start every
    ``stride_s`` seconds and the last one ends on the last frame. ``frame_end`` is exclusive; ``attrs.rank``
    is the class's rank in its window (1 = best).
    """
    info = src.info
    fps = float(info.fps) if info.fps else None
    if stride_s <= 0:
        raise ValueError(f"stride_s must be positive, got {stride_s}")
    stride = max(1, round(stride_s * (fps or 1.0)))
    idx = sliding_window_clips(len(src), window=rec.input.frames, stride=stride, frame_step=rec.input.frame_step)
    probs = rec.predict_proba(src.clips(idx), batch_size=batch_size)
    ts = np.asarray(info.timestamps_s, np.float64)
    if len(ts) != len(src):
        ts = np.arange(len(src)) / (fps or 1.0)

    def time_of(frame: int) -> float:
        return float(ts[frame]) if frame < len(ts) else float(max(info.duration_s, ts[-1] + 1.0 / (fps or 1.0)))

    rows = []
    for clip, p in zip(idx, probs, strict=True):
        start, end = int(clip.min()), int(clip.max()) + 1
        for rank, c in enumerate(top_k(p, k)):
            rows.append({"video_id": video_id, "task": "recognition", "t_start_s": time_of(start),
                         "t_end_s": time_of(end), "fps": fps, "frame_start": start, "frame_end": end,
                         "label": rec.classes[c], "label_id": c, "label_space": rec.label_space,
                         "score": float(p[c]), "source": source or rec.source,
                         "attrs": json.dumps({"rank": rank + 1})})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------- checkpoints


def save_clip_recognizer(path: str | Path, model: ClipClassifier | ZeroShotHead, *, spec: Mapping[str, Any],
                         classes: Sequence[str], label_space: str, input_cfg: ClipInputConfig,
                         texts: Mapping[str, Sequence[str]] | None = None,
                         class_embeddings: torch.Tensor | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """``model.pt``: float32 weights plus plain data only (loads with ``weights_only=True``), written atomically."""
    from videoact.annotations.store import atomic_torch_save

    blob: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "spec": {"backbone": str(spec["backbone"]), "backbone_kwargs": to_dict(dict(spec["backbone_kwargs"])),
                 "head": str(spec["head"]), "head_kwargs": to_dict(dict(spec["head_kwargs"]))},
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "classes": list(classes), "label_space": label_space, "input": to_dict(input_cfg),
        "extra": to_dict(dict(extra or {})),
    }
    if isinstance(model, ZeroShotHead):
        if class_embeddings is None or texts is None:
            raise ValueError("a zero-shot checkpoint needs the class texts and their embeddings")
        blob["texts"] = {str(k): list(v) for k, v in texts.items()}
        blob["class_embeddings"] = class_embeddings.detach().cpu().float().clone()
        blob["text_encoder"] = TEXT_ENCODER
    return atomic_torch_save(blob, path)


def load_clip_recognizer(path: str | Path) -> ClipRecognizer:
    """Rebuild the recognizer ``save_clip_recognizer`` wrote (``torch.load(weights_only=True)``), in eval mode."""
    from videoact.annotations.store import load_torch_checkpoint

    state = load_torch_checkpoint(path, fmt=CHECKPOINT_FORMAT)
    spec = state["spec"]
    model = build_clip_model(backbone=spec["backbone"], backbone_kwargs=spec["backbone_kwargs"], head=spec["head"],
                             num_classes=len(state["classes"]), head_kwargs=spec["head_kwargs"])
    model.load_state_dict(state["state_dict"])
    model.eval()
    inp = {k: tuple(v) if isinstance(v, list) else v for k, v in state["input"].items()}
    return ClipRecognizer(model=model, classes=tuple(state["classes"]), label_space=str(state["label_space"]),
                          input=ClipInputConfig(**inp), spec=dict(spec), class_embeddings=state.get("class_embeddings"),
                          texts=state.get("texts"), meta=dict(state["extra"]))

