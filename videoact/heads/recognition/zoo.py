"""Pretrained recognizers by name: a model-zoo card (``videoact.models``) -> a ready ``ClipRecognizer``.

::

    from videoact.heads.recognition.zoo import load_zoo_recognizer

    rec = load_zoo_recognizer("videomae_b16_k400")       # downloads once, verifies, loads strictly, eval mode
    recognize_windows(rec, VideoSource("clip.mp4"), video_id="clip")

What a card says is used as it says it:

* the network: ``NETWORKS`` maps the card's ``layout`` to a loader ``(card, files) -> ZooNetwork``:
  ``mmaction2`` / ``videomae`` (``build_backbone(card.arch, **card.arch_kwargs)`` + ``load_pretrained``),
  ``hf_videomae`` (built from the ``config`` file, weights from ``weights``), ``pytorchvideo``
  (``videoact.features.cnn.load_pytorchvideo_classifier``, imported when first used). Every key of the file
  must find its place and every parameter of the network must come from the file (head included): anything
  else is a ``ValueError`` naming the file;
* the classes: ``models.label_map(card.labels)``; for ``hf_videomae`` the config's ``id2label``, checked against
  the card's label map when the card names one (equal up to case, spaces and underscores: the label map's
  spelling is kept, so rows of one ``label_space`` spell a class one way);
* the input: ``card.input``'s ``ClipInputConfig`` fields (frames, frame_step, short_side, crop, resize, mean,
  std); other keys (``num_clips``, notes for people) are kept in ``meta["input_extra"]``;
* ``label_space`` = ``card.labels``, ``meta["source"]`` = the card's name (what segment rows name).

Skeleton cards go to ``videoact.heads.recognition.zoo_skeleton.load_zoo_skeleton(card, files)``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from videoact import models
from videoact.heads.recognition.clip import ClipInputConfig, ClipRecognizer
from videoact.models import ModelCard
from videoact.registry import Registry


@dataclass
class ZooNetwork:
    """What a layout's loader returns: the network (``(B, 3, T, H, W) -> logits``, eval mode) and, when the
    checkpoint names its classes itself (a transformers config's ``id2label``), those names."""

    module: nn.Module
    classes: tuple[str, ...] | None = None


NetworkLoader = Callable[[ModelCard, Mapping[str, Path]], ZooNetwork]
NETWORKS: Registry[NetworkLoader] = Registry("zoo checkpoint layout")


class ZooClassifier(nn.Module):
    """A zoo network as ``ClipRecognizer`` runs it: ``forward(x (B, 3, T, H, W)) -> logits (B, K)``,
    ``predict`` -> softmax probabilities (single-label: the zoo's recognizers are Kinetics-style)."""

    multi_label = False

    def __init__(self, net: nn.Module, *, name: str = "") -> None:
        super().__init__()
        self.net, self.name = net, name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).softmax(dim=-1)


class _ViTLogits(nn.Module):
    """``VideoViT`` -> clip logits: mean-pooled tokens, ``fc_norm``, ``head`` (``forward_head``)."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit.forward_head(self.vit(x))


# --------------------------------------------------------------------------------------------- loaders


def _file(card: ModelCard, files: Mapping[str, Path], role: str) -> Path:
    if role not in files:
        raise ValueError(f"model {card.name}: layout {card.layout} needs a {role!r} file; the card lists "
                         f"{', '.join(files) or 'none'}")
    return Path(files[role])


def _keys(keys: list[str], n: int = 5) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def _load_vit(card: ModelCard, files: Mapping[str, Path]) -> ZooNetwork:
    """``mmaction2`` / ``videomae`` layouts: ``card.arch`` built with ``card.arch_kwargs``, all of it loaded."""
    from videoact.features.backbones import build_backbone
    from videoact.features.vit.checkpoints import load_pretrained

    path = _file(card, files, "weights")
    vit = build_backbone(card.arch, **dict(card.arch_kwargs))
    if not getattr(vit, "num_classes", 0):
        raise ValueError(f"model {card.name}: arch {card.arch} was built without a classifier; the card's "
                         f"arch_kwargs must give num_classes")
    try:  # strict=False: every key is checked here, the classifier included (load_pretrained lets it go)
        report = load_pretrained(vit, path, layout=card.layout, strict=False)
    except ValueError as exc:
        raise ValueError(f"model {card.name}: {exc}") from None
    head_skipped = [k for k in report.skipped if k.startswith(("head.", "fc_norm."))]
    if report.missing or report.unexpected or head_skipped:
        why = "; ".join(n for n in report.notes if n.startswith(("head.", "fc_norm.")))
        raise ValueError(f"model {card.name}: {path} does not fill {card.arch} (layout {card.layout}): missing "
                         f"{_keys(report.missing)}; unexpected {_keys(report.unexpected)}; classifier not loaded "
                         f"{_keys(head_skipped)}" + (f" ({why})" if why else ""))
    return ZooNetwork(_ViTLogits(vit).eval())


def _load_hf_videomae(card: ModelCard, files: Mapping[str, Path]) -> ZooNetwork:
    from videoact.features.vit.checkpoints import load_hf_videomae

    config, weights = _file(card, files, "config"), _file(card, files, "weights")
    try:
        vit, classes = load_hf_videomae(config, weights)
    except ValueError as exc:
        raise ValueError(f"model {card.name}: {exc}") from None
    expected = card.arch_kwargs.get("num_classes", card.num_classes)
    if expected is not None and vit.num_classes != int(expected):
        raise ValueError(f"model {card.name}: {config} has {vit.num_classes} classes, the card says {expected}")
    return ZooNetwork(_ViTLogits(vit).eval(), classes=classes or None)


def _load_pytorchvideo(card: ModelCard, files: Mapping[str, Path]) -> ZooNetwork:
    from videoact.features.cnn import load_pytorchvideo_classifier  # the video extra: imported when first used

    return ZooNetwork(load_pytorchvideo_classifier(card, files).eval())


NETWORKS.register("mmaction2", _load_vit)
NETWORKS.register("videomae", _load_vit)
NETWORKS.register("hf_videomae", _load_hf_videomae)
NETWORKS.register("pytorchvideo", _load_pytorchvideo)


# ---------------------------------------------------------------------------------------------- classes


_GENERIC = re.compile(r"^LABEL_\d+$")  # transformers' placeholder id2label


def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").casefold().split())


def zoo_classes(card: ModelCard, from_checkpoint: tuple[str, ...] | None) -> tuple[str, ...]:
    """The class names of ``card``: its label map, or the checkpoint's own names checked against it."""
    label_map = models.label_map(card.labels) if card.labels else None
    names = from_checkpoint if from_checkpoint and not all(_GENERIC.match(n) for n in from_checkpoint) else None
    if names is None:
        if label_map is None:
            raise ValueError(f"model {card.name}: the card names no label map (labels:) and the checkpoint no "
                             f"classes")
        return label_map
    if label_map is None:
        return names
    if len(names) != len(label_map):
        raise ValueError(f"model {card.name}: the checkpoint names {len(names)} classes, label map "
                         f"{card.labels!r} {len(label_map)}")
    differ = [i for i, (a, b) in enumerate(zip(names, label_map, strict=True)) if _norm(a) != _norm(b)]
    if differ:
        i = differ[0]
        raise ValueError(f"model {card.name}: the checkpoint's class {i} is {names[i]!r}, label map "
                         f"{card.labels!r} says {label_map[i]!r} ({len(differ)} classes differ)")
    return label_map


def _num_outputs(model: nn.Module) -> int | None:
    """The class count the network says it has (``num_classes`` of it or of the network it wraps), if any."""
    net = getattr(model, "net", None)
    for m in (model, net, getattr(net, "vit", None)):
        n = getattr(m, "num_classes", None)
        if isinstance(n, int) and n > 0:
            return n
    return None


# --------------------------------------------------------------------------------------------- the loader


def input_config(card: ModelCard) -> tuple[ClipInputConfig, dict[str, Any]]:
    """``card.input`` as a ``ClipInputConfig`` (its fields) and the rest of the keys."""
    known = {f.name for f in dataclasses.fields(ClipInputConfig)}
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in card.input.items() if k in known}
    try:
        cfg = ClipInputConfig(**given)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model {card.name}: input: {exc}") from None
    return cfg, {k: v for k, v in card.input.items() if k not in known}


def is_zoo_name(ref: object) -> bool:
    """``ref`` names a zoo card of a recognition model (RGB or skeleton)."""
    return models.is_model(ref) and models.get_model(str(ref)).task in ("recognition", "skeleton")


def load_zoo_recognizer(name_or_card: str | ModelCard, *, offline: bool | None = None,
                        progress: bool = True) -> Any:
    """The recognizer of a zoo card (a name, or a ``ModelCard`` read with ``models.read_card``): its files
    downloaded and verified (``videoact.models.hub``; ``offline`` as there), the network loaded strictly, eval
    mode. RGB cards give a ``ClipRecognizer``; skeleton cards what ``zoo_skeleton.load_zoo_skeleton`` gives."""
    from videoact.models.hub import download

    card = name_or_card if isinstance(name_or_card, ModelCard) else models.get_model(name_or_card)
    if card.task not in ("recognition", "skeleton"):
        raise ValueError(f"model {card.name} is a {card.task} card, not a recognition model")
    files = download(card, offline=offline, progress=progress)
    if card.task == "skeleton":
        from videoact.heads.recognition.zoo_skeleton import load_zoo_skeleton

        return load_zoo_skeleton(card, files)
    loader = NETWORKS.get(card.layout)
    net = loader(card, files)
    module = net.module
    model = module if hasattr(module, "predict") and hasattr(module, "multi_label") else ZooClassifier(
        module, name=card.name)
    model.eval()
    classes = zoo_classes(card, net.classes)
    cfg, extra = input_config(card)
    outputs = _num_outputs(model)
    if outputs is not None and outputs != len(classes):
        raise ValueError(f"model {card.name}: the network has {outputs} outputs, its classes are {len(classes)}")
    spec = {"backbone": card.arch, "backbone_kwargs": dict(card.arch_kwargs), "head": "zoo",
            "head_kwargs": {}, "layout": card.layout, "card": card.name}
    meta: dict[str, Any] = {"source": card.name, "card": card.name, "files": {k: str(v) for k, v in files.items()}}
    if extra:
        meta["input_extra"] = extra
    return ClipRecognizer(model=model, classes=classes, label_space=card.labels or card.name, input=cfg, spec=spec,
                          meta=meta)


__all__ = ["NETWORKS", "ZooClassifier", "ZooNetwork", "input_config", "is_zoo_name", "load_zoo_recognizer",
           "zoo_classes"]
