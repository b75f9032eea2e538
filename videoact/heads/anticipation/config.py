"""Typed configs of long-term anticipation: training the built-in action LM, and the forecasting head.

Frozen dataclasses in the style of ``videoact/config.py`` (every key documented, loaded with ``load_config``)::

    _, cfg = load_train_config("configs/anticipation/action_lm_epic55.yaml", ["optim.steps=100"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from videoact.config import doc


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
class ActionLMOptimConfig:
    steps: int = doc("optimiser steps", default=3000)
    batch_size: int = doc("samples per step", default=128)
    lr: float = doc("peak AdamW learning rate (linear warm-up, cosine decay)", default=1e-3)
    weight_decay: float = doc("AdamW weight decay", default=0.05)
    warmup: int = doc("warm-up steps", default=200)
    label_smoothing: float = doc("cross-entropy label smoothing", default=0.1)
    history_dropout: float = doc("chance to hide each observed action while training (robust to short or "
                                 "noisy histories)", default=0.1)
    seed: int = doc("torch and sampling seed", default=0)
    threads: int = doc("torch CPU threads (0: torch's default)", default=0)
    log_every: int = doc("log the training loss every this many steps", default=100)


@dataclass(frozen=True)
class ActionLMTrainConfig:
    """What ``train_action_lm`` (``videoact train``) reads."""

    data: LTADataConfig = field(default_factory=LTADataConfig)
    model: ActionLMModelConfig = field(default_factory=ActionLMModelConfig)
    optim: ActionLMOptimConfig = field(default_factory=ActionLMOptimConfig)
    output: Path = field(default=Path("runs/action_lm_epic55/action_lm.pt"),
                         metadata={"doc": "checkpoint file to write"})


@dataclass(frozen=True)
class PromptConfig:
    mode: Literal["bottom_up", "top_down"] = doc(
        "bottom_up: observed actions -> future actions; top_down (AntGPT): infer the goal first, then plan",
        default="bottom_up")
    n_examples: int = doc("in-context examples per prompt (0: zero-shot)", default=4)
    mmr_lambda: float = doc("Maximal Marginal Relevance trade-off: 1 = most similar, 0 = most diverse",
                            default=0.7)
    mmr_pool: int = doc("nearest neighbours the MMR selection picks from", default=32)


@dataclass(frozen=True)
class AnticipationConfig:
    """The anticipation head: recognised actions of a video -> ``forecasts`` rows."""

    backend: Literal["action_lm", "transformers", "http", "llamacpp"] = doc(
        "who generates the candidates (the n-gram / most-frequent baselines are fitted in scripts/bench_lta.py)",
        default="action_lm")
    checkpoint: Path | None = field(default=None, metadata={"doc": "action_lm: checkpoint from train_action_lm"})
    model: str = doc("transformers: local path or id; llamacpp: .gguf path; http: the server's model name",
                     default="")
    url: str = doc("http: base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1", default="")
    http_constraint: Literal["json_schema", "json_object", "grammar", "regex", "none"] = doc(
        "http: how the vocabulary constraint is sent (json_object: llama-cpp-python; grammar: llama.cpp GBNF; "
        "regex: vLLM)", default="json_schema")
    vocab: str = doc("label space prefix of the verb/noun ids in segments (epic55, ego4d_lta_v1, ...)",
                     default="epic55")
    n_observed: int = doc("observed actions per forecast (fewer are padded for the action LM)", default=8)
    z: int = doc("future actions per candidate", default=20)
    k: int = doc("candidates per forecast", default=5)
    anchors: Literal["last", "all"] = doc("forecast after the last recognised action, or after every one",
                                          default="last")
    temperature: float = doc("sampling temperature of candidates 2..K (candidate 1 is greedy for the action LM; "
                             "0.5 is best on EPIC-55 held-out, see docs/benchmarks.md)", default=0.5)
    seed: int = doc("sampling seed", default=0)
    prompt: PromptConfig = field(default_factory=PromptConfig)
