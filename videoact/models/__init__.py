"""The model zoo: published checkpoints known by name, each described by a model card (data, not code).

A card is one YAML file in ``videoact/models/cards/``: what the model is (``task``, ``arch`` and its builder
options, the checkpoint's key ``layout``), where its weights are (``files``: URLs, primary first, with the
sha256 or the hash prefix the source publishes), what it expects (``input``: frames, stride, resize, crop,
normalisation, keypoint layout), what it says (``labels``: a label map shipped in ``videoact/models/labels/``)
and how good it is (``accuracy``, with its source). Label maps are cards too (``task: labels``)::

    from videoact import models

    models.list_models(task="recognition")       # cards, sorted by name
    card = models.get_model("videomae_b16_k400")  # UnknownNameError (a KeyError) names the closest card
    models.label_map(card.labels)                 # ('abseiling', 'air drumming', ...)
    models.download("videomae_b16_k400")          # {'weights': Path(...)} in the cache (videoact.models.hub)

This package sits at the bottom of the layers (it reads YAML and text files and downloads bytes); the code
that turns a card into a network lives with the stage that runs it (``heads.recognition.zoo``).
"""

from __future__ import annotations

import functools
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any

from videoact.models._card import (
    CARD_DIR,
    TASKS,
    Accuracy,
    CardError,
    FileSpec,
    ModelCard,
    home,
)
from videoact.registry import Registry


def _card_from_dict(raw: dict[str, Any], path: Path) -> ModelCard:
    known = {f.name for f in fields(ModelCard)} - {"path"}
    extra = set(raw) - known
    if extra:
        raise CardError(f"{path}: unknown key(s) {', '.join(sorted(extra))}")
    for key in ("name", "task", "summary", "licence"):
        if not raw.get(key):
            raise CardError(f"{path}: missing {key!r}")
    if raw["task"] not in TASKS:
        raise CardError(f"{path}: task {raw['task']!r} is not one of {', '.join(TASKS)}")
    data = dict(raw)
    try:
        data["files"] = tuple(FileSpec(**{**f, "urls": tuple(f.get("urls", ()))}) for f in raw.get("files", ()))
        data["accuracy"] = tuple(Accuracy(**a) for a in raw.get("accuracy", ()))
    except TypeError as exc:
        raise CardError(f"{path}: {exc}") from None
    data["arch_kwargs"] = dict(raw.get("arch_kwargs") or {})
    data["input"] = dict(raw.get("input") or {})
    return ModelCard(**data, path=path)


def read_card(path: str | Path) -> ModelCard:
    """One card file (the zoo's own, or a user's): ``CardError`` names the file and the bad key."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CardError(f"{path}: {exc}") from None
    if not isinstance(raw, dict):
        raise CardError(f"{path}: expected a mapping of card fields")
    card = _card_from_dict(raw, path)
    if card.name != path.stem:
        raise CardError(f"{path}: name {card.name!r} must equal the file name ({path.stem!r})")
    return card


def card_dirs() -> list[Path]:
    """Where cards are read from, later ones winning on a name: the shipped cards, ``$VIDEOACT_HOME/cards``, then
    each folder of ``$VIDEOACT_CARDS`` (``os.pathsep``-separated): a user's own or privately mirrored models."""
    import os

    extra = [Path(p).expanduser() for p in os.environ.get("VIDEOACT_CARDS", "").split(os.pathsep) if p.strip()]
    return [CARD_DIR, home() / "cards", *extra]


def _load_cards() -> None:
    cards: dict[str, ModelCard] = {}
    for folder in card_dirs():
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else ():
            card = read_card(path)
            cards[card.name] = card
    for name, card in cards.items():
        CARDS.register(name, card)


CARDS: Registry[ModelCard] = Registry("model", loader=_load_cards)


def reload_cards() -> None:
    """Read the card folders again (after ``$VIDEOACT_CARDS`` or ``$VIDEOACT_HOME`` changed)."""
    global CARDS
    CARDS = Registry("model", loader=_load_cards)
    label_map.cache_clear()


def list_models(task: str | None = None, pattern: str = "*") -> list[ModelCard]:
    """The zoo's cards, sorted by name; ``task`` keeps one kind (recognition, skeleton, labels, ...)."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {', '.join(TASKS)}")
    return [c for n, c in CARDS.items() if (task is None or c.task == task) and n in CARDS.names(pattern)]


def get_model(name: str) -> ModelCard:
    """The card called ``name``; ``UnknownNameError`` (a ``KeyError``) lists the names and the closest one."""
    return CARDS.get(name)


def is_model(name: object) -> bool:
    return isinstance(name, str) and name in CARDS


@functools.lru_cache(maxsize=16)
def label_map(name: str) -> tuple[str, ...]:
    """The class names of a label-map card (``kinetics400``, ``ntu60``, ...), in class-id order."""
    card = get_model(name)
    if card.task != "labels":
        if not card.labels:
            raise ValueError(f"model {name!r} ships no label map")
        return label_map(card.labels)
    text = resources.files("videoact.models").joinpath("labels", card.file("labels").filename).read_text("utf-8")
    classes = tuple(line.strip() for line in text.splitlines() if line.strip())
    if card.num_classes is not None and len(classes) != card.num_classes:
        raise CardError(f"label map {name!r}: {len(classes)} names in {card.file('labels').filename}, "
                        f"the card says {card.num_classes}")
    return classes


def download(name: str, **kwargs: Any) -> dict[str, Path]:
    """All files of model ``name`` in the cache (downloaded and verified when missing): ``hub.download``."""
    from videoact.models.hub import download as _download

    return _download(get_model(name), **kwargs)




__all__ = ["CARDS", "CARD_DIR", "TASKS", "Accuracy", "CardError", "FileSpec", "ModelCard", "card_dirs", "download",
           "get_model", "home", "is_model", "label_map", "list_models", "read_card", "reload_cards"]
