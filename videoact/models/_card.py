"""The model card's types (a module of their own so that ``hub`` and the package both import them, no cycle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Task = Literal["recognition", "skeleton", "detection", "person_detection", "labels"]
TASKS: tuple[str, ...] = ("recognition", "skeleton", "detection", "person_detection", "labels")

_HERE = Path(__file__).resolve().parent
CARD_DIR = _HERE / "cards"
LABEL_DIR = _HERE / "labels"


@dataclass(frozen=True)
class FileSpec:
    """One file of a model: where to get it and how to know it is the right one."""

    role: str  # weights, config, ... (the key of ``hub.download``'s result)
    filename: str  # the name in the cache folder
    urls: tuple[str, ...] = ()  # primary first, then mirrors
    sha256: str | None = None  # the full hash, when the source publishes it (or we measured the published file)
    sha256_prefix: str | None = None  # e.g. OpenMMLab's 8 hex digits in the file name
    size: int | None = None  # bytes, when known
    hash_note: str = ""  # where the hash comes from, or why it could not be confirmed
    bundled: bool = False  # shipped inside the package (``videoact/models/labels/``): never downloaded

    @property
    def verifiable(self) -> bool:
        return bool(self.sha256 or self.sha256_prefix)


@dataclass(frozen=True)
class Accuracy:
    dataset: str
    metric: str
    value: float
    protocol: str = ""  # views, crops, split
    source: str = ""  # URL of the page or metafile that reports it


@dataclass(frozen=True)
class ModelCard:
    """One zoo entry, as read from its YAML file (field docs: docs/model_zoo.md)."""

    name: str
    task: str
    summary: str
    licence: str
    arch: str = ""  # the builder the task's zoo code knows (e.g. vit_b16, x3d_s, stgcnpp_mmaction2)
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    layout: str = ""  # the checkpoint's key layout (mmaction2, hf_videomae, pytorchvideo, ...)
    files: tuple[FileSpec, ...] = ()
    labels: str = ""  # a label-map card's name (recognition / skeleton), or this card's own file (labels)
    num_classes: int | None = None
    input: dict[str, Any] = field(default_factory=dict)
    accuracy: tuple[Accuracy, ...] = ()
    params_m: float | None = None  # millions of parameters
    gflops: float | None = None  # per view, as the source reports it
    source: str = ""  # the page / metafile the card was written from
    notes: str = ""
    path: Path | None = None  # the YAML file

    def file(self, role: str = "weights") -> FileSpec:
        for f in self.files:
            if f.role == role:
                return f
        raise KeyError(f"model {self.name!r} has no {role!r} file (it has: {', '.join(f.role for f in self.files)})")

    @property
    def verifiable(self) -> bool:
        """Every file has a published hash (prefix) to check."""
        return all(f.verifiable for f in self.files)


class CardError(ValueError):
    """A model card that does not parse: the file and the key are named."""


def home() -> Path:
    """``$VIDEOACT_HOME`` (default ``~/.cache/videoact``): where downloads are kept."""
    import os

    return Path(os.environ.get("VIDEOACT_HOME") or Path.home() / ".cache" / "videoact").expanduser()
