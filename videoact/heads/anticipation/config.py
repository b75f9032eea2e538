"""Typed configs of long-term anticipation: training the built-in action LM, and the forecasting head.

Frozen dataclasses in the style of ``videoact/config.py`` (every key documented, loaded with ``load_config``)::

    _, cfg = load_train_config("configs/anticipation/action_lm_epic55.yaml", ["optim.steps=100"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# The forecasting head's config is a stage of `videoact run`, so it lives with the other stage configs.
from videoact.config import AnticipationConfig, PromptConfig, doc


@dataclass(frozen=True)
class LTADataConfig:
    dataset: Literal["epic55", "ego4d"] = doc("epic55: EPIC-55 csv folder; ego4d: Ego4D LTA json files",
                                              default="epic55")
    root: Path = field(default=Path("../shared/data/anticipation/epic_kitchens_55"),
                       metadata={"doc": "EPIC-55: folder with EPIC_train_action_labels.csv and the class csvs"})
    train_json: Path | None = field(default=None, metadata={"doc": "Ego4D: fho_lta_train.json"})
    val_json: Path | None = field(default=None, metadata={
        "doc": "Ego4D: fho_lta_val.json (EPIC-55: participants are held out instead)"})
    taxonomy: Path | None = field(default=None, metadata={"doc": "Ego4D: fho_lta_taxonomy.json"})
    n_observed: int = doc("observed actions per sample (AntGPT: 8)", default=8)
    z: int = doc("future actions per sample (Ego4D: 20)", default=20)
    stride: int = doc("training windows start every `stride` actions", default=1)
    val_fraction: float = doc("EPIC-55: fraction of participants held out", default=0.2)
    split_seed: int = doc("EPIC-55: seed that draws the held-out participants", default=0)


@dataclass(frozen=True)
class ActionLMModelConfig:
    d_model: int = doc("token width", default=128)
    n_layers: int = doc("transformer encoder layers (plus one decoder layer for the Z queries)", default=2)
    n_heads: int = doc("attention heads", default=4)
    dropout: float = doc("dropout in the encoder and on embeddings", default=0.1)


@dataclass(frozen=True)
class LMOptimConfig:
    """The ``optim:`` keys both step-based LM trainers read (AdamW, linear warm-up, cosine decay, gradient norm
    clipped at 1); each trainer's config redefines the defaults it differs in and adds its own keys."""

    steps: int = doc("optimiser steps", default=1000)
    batch_size: int = doc("samples per step", default=32)
    lr: float = doc("peak AdamW learning rate (linear warm-up, cosine decay)", default=1e-3)
    weight_decay: float = doc("AdamW weight decay", default=0.01)
    warmup: int = doc("warm-up steps", default=100)
    seed: int = doc("torch seed and sample order", default=0)
    threads: int = doc("torch CPU threads (0: torch's default)", default=0)
    log_every: int = doc("log the training loss every this many steps", default=100)


@dataclass(frozen=True)
class ActionLMOptimConfig(LMOptimConfig):
    steps: int = doc("optimiser steps", default=3000)
    batch_size: int = doc("samples per step", default=128)
    weight_decay: float = doc("AdamW weight decay", default=0.05)
    warmup: int = doc("warm-up steps", default=200)
    seed: int = doc("torch and sampling seed", default=0)
    label_smoothing: float = doc("cross-entropy label smoothing", default=0.1)
    history_dropout: float = doc("chance to hide each observed action while training (robust to short or "
                                 "noisy histories)", default=0.1)


@dataclass(frozen=True)
class ActionLMTrainConfig:
    """What ``train_action_lm`` (``videoact train``) reads."""

    data: LTADataConfig = field(default_factory=LTADataConfig)
    model: ActionLMModelConfig = field(default_factory=ActionLMModelConfig)
    optim: ActionLMOptimConfig = field(default_factory=ActionLMOptimConfig)
    output: Path = field(default=Path("runs/action_lm_epic55/action_lm.pt"),
                         metadata={"doc": "checkpoint file to write"})


@dataclass(frozen=True)
class TextLMModelConfig:
    """Size of a ``base: scratch`` Llama (ignored when fine-tuning a local model)."""

    vocab_size: int = doc("byte-level BPE vocabulary trained on the training text", default=1024)
    hidden_size: int = doc("model width", default=128)
    intermediate_size: int = doc("MLP width", default=384)
    n_layers: int = doc("decoder layers", default=2)
    n_heads: int = doc("attention heads", default=4)
    dropout: float = doc("attention dropout", default=0.0)


@dataclass(frozen=True)
class TextLMOptimConfig(LMOptimConfig):
    lr: float = doc("peak AdamW learning rate (linear warm-up, cosine decay)", default=2e-3)
    val_samples: int = doc("held-out samples for the completion loss after training", default=500)


@dataclass(frozen=True)
class TextLMTrainConfig:
    """What ``train_text_lm`` (``videoact train``, trainer ``text_lm``) reads."""

    data: LTADataConfig = field(default_factory=LTADataConfig)
    base: str = doc("a local transformers causal LM directory to fine-tune, or scratch: a small Llama with a BPE "
                    "tokenizer trained here", default="scratch")
    model: TextLMModelConfig = field(default_factory=TextLMModelConfig)
    optim: TextLMOptimConfig = field(default_factory=TextLMOptimConfig)
    gguf: bool = doc("also write model.gguf for the llama.cpp backend (Llama models)", default=True)
    output: Path = field(default=Path("runs/text_lm_epic55"), metadata={
        "doc": "directory to write (transformers model + tokenizer, videoact_text_lm.json, model.gguf)"})


__all__ = ["ActionLMModelConfig", "ActionLMOptimConfig", "ActionLMTrainConfig", "AnticipationConfig",
           "LMOptimConfig", "LTADataConfig", "PromptConfig", "TextLMModelConfig", "TextLMOptimConfig",
           "TextLMTrainConfig"]
