"""Feature sequences of whole untrimmed videos: one ``(D,)`` vector per step, from any registered backbone.

Temporal heads (segmentation, detection) read ``(S, D)`` sequences, not pixels or joints: a backbone encodes a
window of ``window`` input frames centred on every step of ``stride`` frames, so step ``i`` stands for input
frames ``[i * stride, (i + 1) * stride)`` and a video of ``T`` frames has ``S = ceil(T / stride)`` steps.
Windows that reach past either end repeat the first / last frame (``window_index``).

Backbones:

* ``skeleton_backbone("builtin:nw_ucla_stgcnpp" | "model.pt" | name=..., **kwargs)``: a skeleton network of
  ``features.skeleton.factory`` (a trained checkpoint, or a freshly built one), its pooled features
  (``model.features``) of each window prepared exactly as its training samples (``features.skeleton.input.prepare``);
  input ``(M, T, V, C)`` joints.
* ``video_backbone("vit_b16", checkpoint=..., **kwargs)``: any ``features.backbones`` video backbone, the mean of
  its kept tokens; input ``(T, H, W, 3)`` uint8 frames or a ``decode.VideoSource`` (windows decoded on demand).

Computing features is the slow part of training a temporal head, so ``sequence_features`` keeps them in a cache
directory: ``<cache>/<video>.npy`` plus ``<video>.json`` holding the key (backbone name, builder kwargs, a hash
of the weights, window, stride, the input's identity). Both files are written atomically, the json last, and a
call whose key matches the json reads the array instead of running the backbone; any other key recomputes.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from videoact.annotations.store import atomic_write_bytes, atomic_write_text, file_key

CACHE_FORMAT = "videoact.feature_sequence/1"


class SequenceBackbone(Protocol):
    """What ``sequence_features`` needs from a backbone."""

    name: str
    dim: int

    def key(self) -> dict[str, Any]:
        """JSON-able identity: name, builder kwargs, weights hash (and input preparation)."""
        ...

    def encode(self, x: Any, index: np.ndarray) -> np.ndarray:
        """Features ``(B, D)`` of the windows ``x[..., index[b], ...]`` (``index``: ``(B, window)`` frame indices)."""
        ...

    def num_frames(self, x: Any) -> int:
        """Frames of an input."""
        ...


def weights_hash(module: nn.Module) -> str:
    """16 hex characters over every tensor of the state dict (names, shapes, dtypes, values)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def array_identity(x: np.ndarray) -> str:
    """``sha256`` of an in-memory input (shape, dtype and bytes): the default video identity of the cache."""
    x = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{x.shape}:{x.dtype}".encode())
    h.update(x.tobytes())
    return h.hexdigest()[:16]


def file_identity(path: str | Path) -> str:
    """Identity of a video file for the cache: resolved path, size and modification time (as ``videoact run``)."""
    p = Path(path).resolve()
    st = p.stat()
    return f"{p}:{st.st_size}:{st.st_mtime_ns}"


def num_steps(n_frames: int, stride: int) -> int:
    return -(-int(n_frames) // int(stride))


def window_index(n_frames: int, *, window: int, stride: int) -> np.ndarray:
    """``(S, window)`` frame indices: the window of step ``i`` is centred on frame ``i*stride + stride//2``.

    Indices outside ``[0, n_frames)`` are clamped, i.e. the first / last frame repeats at the ends.
    """
    if n_frames < 1 or window < 1 or stride < 1:
        raise ValueError(f"need n_frames, window and stride >= 1, got {n_frames}, {window}, {stride}")
    centres = np.arange(num_steps(n_frames, stride)) * stride + stride // 2
    idx = centres[:, None] - window // 2 + np.arange(window)[None, :]
    return np.clip(idx, 0, n_frames - 1)


# ------------------------------------------------------------------------------------------------ backbones


@dataclass
class SkeletonSequenceBackbone:
    """Pooled features of a skeleton network over joint windows ``(M, T, V, C)``; ``C`` and ``V`` as trained."""

    model: nn.Module
    layout: str
    num_persons: int
    input: Any  # features.skeleton.input.SkeletonInputConfig: how a window becomes the network's input
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        if hasattr(self.model, "feature_dim"):
            return int(self.model.feature_dim)
        return sum(fc.in_features for fc in _classifiers(self.model))

    def key(self) -> dict[str, Any]:
        from videoact.config import to_dict

        return {"kind": "skeleton", "name": self.name, "kwargs": _plain(self.kwargs),
                "weights": weights_hash(self.model), "input": to_dict(self.input)}

    def num_frames(self, x: np.ndarray) -> int:
        return int(x.shape[1])

    @torch.no_grad()
    def encode(self, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        from videoact.features.skeleton.input import prepare

        batch = np.stack([prepare(x[:, idx], layout=self.layout, cfg=self.input, num_persons=self.num_persons)
                          for idx in index])  # (B, C, T, V, M)
        self.model.eval()
        return pooled_features(self.model, torch.from_numpy(batch)).numpy()  # (B, D)


def _classifiers(model: nn.Module) -> list[nn.Linear]:
    """The final ``fc`` Linear of a network, or one per stream (``streams.*.fc``, ``subnets.*.fc``)."""
    fcs = [m for name, m in model.named_modules() if isinstance(m, nn.Linear) and name.split(".")[-1] == "fc"]
    if not fcs:
        raise TypeError(f"{type(model).__name__} has neither `features(x)` nor `fc` Linear classifiers; add a "
                        "`features(x) -> (N, D)` method to use it as a sequence backbone")
    return fcs


def pooled_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V, M) -> (N, D): ``model.features`` when the network has it, else what its ``fc`` classifiers
    read (multi-stream networks: every stream's, concatenated)."""
    if hasattr(model, "features"):
        return model.features(x)
    got: list[torch.Tensor] = []
    hooks = [fc.register_forward_pre_hook(lambda _m, args: got.append(args[0])) for fc in _classifiers(model)]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return torch.cat(got, dim=1)


def skeleton_backbone(classifier: Any = None, *, name: str | None = None, input: Any = None,
                      **kwargs: Any) -> SkeletonSequenceBackbone:
    """A skeleton network as a sequence backbone.

    ``classifier``: a trained ``heads.recognition.skeleton.SkeletonClassifier`` (``load_recognizer(ref)``):
    weights and input preparation from its checkpoint. Without it: ``name`` and ``kwargs`` build a registered
    network (``features.skeleton.factory``) with its initial weights, prepared by ``input`` (default
    ``SkeletonInputConfig()``): useful for tests and as the start of end-to-end training.
    """
    from videoact.features.skeleton.factory import build_model
    from videoact.features.skeleton.input import SkeletonInputConfig

    if classifier is not None:
        return SkeletonSequenceBackbone(model=classifier.model, layout=classifier.layout,
                                        num_persons=classifier.num_persons, input=classifier.input,
                                        name=str(classifier.model_name), kwargs=dict(classifier.model_kwargs))
    if name is None:
        raise ValueError("skeleton_backbone needs a trained classifier (load_recognizer(ref)) or a network name")
    kwargs.setdefault("num_classes", 1)
    model = build_model(name, **kwargs)
    return SkeletonSequenceBackbone(model=model, layout=str(kwargs["layout"]),
                                    num_persons=int(kwargs.get("num_persons", 1)),
                                    input=input or SkeletonInputConfig(), name=name, kwargs=dict(kwargs))


@dataclass
class VideoSequenceBackbone:
    """Mean of the kept tokens of a ``features.backbones`` video backbone over RGB windows ``(T, H, W, 3)``."""

    model: nn.Module
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    short_side: int = 224
    crop: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    frame_step: int = 1  # the backbone sees every n-th frame of a window (window = its frames x frame_step)

    @property
    def dim(self) -> int:
        from videoact.features.backbones import backbone_dim

        return backbone_dim(self.model)

    def key(self) -> dict[str, Any]:
        return {"kind": "video", "name": self.name, "kwargs": _plain(self.kwargs),
                "weights": weights_hash(self.model),
                "input": {"short_side": self.short_side, "crop": self.crop, "mean": list(self.mean),
                          "std": list(self.std), "frame_step": self.frame_step}}

    def num_frames(self, x: Any) -> int:
        return len(x)

    @torch.no_grad()
    def encode(self, x: Any, index: np.ndarray) -> np.ndarray:
        """``x``: ``(T, H, W, 3)`` uint8 frames, or a ``decode.VideoSource`` (only the needed frames are decoded)."""
        from videoact.decode.transforms import clip_to_tensor

        index = index[:, :: self.frame_step]
        needed = np.unique(index)
        if hasattr(x, "get_frames"):
            frames = x.get_frames(needed)  # (U, H, W, 3)
        else:
            frames = torch.from_numpy(np.ascontiguousarray(np.asarray(x)[needed]))
        pos = np.searchsorted(needed, index)
        clips = torch.stack([clip_to_tensor(frames[torch.from_numpy(p)], short_side=self.short_side, crop=self.crop,
                                            mean=self.mean, std=self.std) for p in pos])  # (B, 3, T, h, w)
        self.model.eval()
        return self.model(clips).tokens.mean(dim=1).numpy()  # (B, D)


def video_backbone(name: str, *, checkpoint: str | Path | None = None, short_side: int = 224, crop: int = 224,
                   mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
                   std: tuple[float, float, float] = (0.229, 0.224, 0.225), frame_step: int = 1,
                   **kwargs: Any) -> VideoSequenceBackbone:
    """A registered video backbone (``build_backbone(name, **kwargs)``), with ``checkpoint`` loaded when given
    (ViTs: ``vit.checkpoints.load_pretrained``; PyTorchVideo CNNs: ``cnn.load_pytorchvideo_checkpoint``)."""
    from videoact.features.backbones import build_backbone

    model = build_backbone(name, **kwargs)
    if checkpoint is not None:
        if name.startswith("vit"):
            from videoact.features.vit.checkpoints import load_pretrained

            load_pretrained(model, checkpoint)  # type: ignore[arg-type]
        else:
            from videoact.features.cnn import load_pytorchvideo_checkpoint

            load_pytorchvideo_checkpoint(model, checkpoint)  # type: ignore[arg-type]
    return VideoSequenceBackbone(model=model, name=name, kwargs=dict(kwargs), short_side=short_side, crop=crop,
                                 mean=mean, std=std, frame_step=frame_step)


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


# ------------------------------------------------------------------------------------------------ sequences


def cache_key(backbone: SequenceBackbone, *, window: int, stride: int, video_id: str, identity: str) -> dict[str, Any]:
    """What a cached sequence must match to be reused."""
    return {"format": CACHE_FORMAT, "backbone": backbone.key(), "window": int(window), "stride": int(stride),
            "video_id": str(video_id), "identity": str(identity)}


def cache_paths(cache_dir: str | Path, video_id: str) -> tuple[Path, Path]:
    base = Path(cache_dir) / file_key(video_id)
    return base.with_name(base.name + ".npy"), base.with_name(base.name + ".json")


def read_cached(cache_dir: str | Path, video_id: str, key: Mapping[str, Any]) -> np.ndarray | None:
    """The cached ``(S, D)`` array when its json key equals ``key``, else None (missing, stale or unreadable)."""
    npy, meta = cache_paths(cache_dir, video_id)
    if not (npy.is_file() and meta.is_file()):
        return None
    try:
        stored = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if stored.get("key") != json.loads(json.dumps(key)):
        return None
    try:
        arr = np.load(npy, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return arr if list(arr.shape) == stored.get("shape") else None


def write_cached(cache_dir: str | Path, video_id: str, key: Mapping[str, Any], features: np.ndarray) -> None:
    """Write the array, then the json key (the json is the commit: a crash in between leaves a miss, not junk)."""
    npy, meta = cache_paths(cache_dir, video_id)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(features), allow_pickle=False)
    atomic_write_bytes(npy, buf.getvalue())
    atomic_write_text(meta, json.dumps({"key": key, "shape": list(features.shape),
                                        "dtype": str(features.dtype)}, indent=1) + "\n")


def sequence_features(
    x: Any,
    backbone: SequenceBackbone,
    *,
    window: int,
    stride: int,
    video_id: str,
    cache_dir: str | Path | None = None,
    identity: str | None = None,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``(S, D)`` float32 features of one whole video (``S = ceil(frames / stride)``), cached when asked.

    Args:
        x: the video's input for ``backbone``: joints ``(M, T, V, C)``, frames ``(T, H, W, 3)`` or a
            ``decode.VideoSource`` (whose file identity keys the cache).
        backbone: a ``SequenceBackbone`` (``skeleton_backbone``, ``video_backbone``).
        window: input frames per window.
        stride: input frames per step.
        video_id: names the cache files.
        cache_dir: where to keep ``<video>.npy`` / ``.json``; None computes every time.
        identity: the input's identity in the key (default: a hash of ``x``; pass ``file_identity(path)``
            when ``x`` is decoded from a file, to skip hashing pixels).
        batch_size: windows per backbone call.
        progress: called with (windows done, windows total).
    """
    key = None
    if cache_dir is not None:
        if identity is None:
            identity = file_identity(x.path) if hasattr(x, "path") else array_identity(np.asarray(x))
        key = cache_key(backbone, window=window, stride=stride, video_id=video_id, identity=identity)
        hit = read_cached(cache_dir, video_id, key)
        if hit is not None:
            return hit
    index = window_index(backbone.num_frames(x), window=window, stride=stride)
    parts = []
    for lo in range(0, len(index), batch_size):
        parts.append(np.asarray(backbone.encode(x, index[lo:lo + batch_size]), dtype=np.float32))
        if progress is not None:
            progress(min(lo + batch_size, len(index)), len(index))
    feats = np.concatenate(parts) if parts else np.zeros((0, backbone.dim), np.float32)
    if cache_dir is not None and key is not None:
        write_cached(cache_dir, video_id, key, feats)
    return feats
