"""The built-in action LM: a small transformer over (verb, noun) tokens (AntGPT's bottom-up model), offline.

N observed actions (verb + noun embedding + position) go through a transformer encoder; Z learned query tokens
cross-attend to it and each predicts the verb and the noun of its future step, all Z in parallel, as in AntGPT's
``transformer_models`` and the Ego4D baseline's heads. K candidates: candidate 1 is the per-step argmax, the
others are sampled from the per-step softmax (``lta_models.generate``).

Training (``train_action_lm(cfg)``, CPU, minutes) writes one checkpoint: weights, model config and vocabulary,
read back with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from videoact.annotations.store import atomic_torch_save, load_torch_checkpoint
from videoact.heads.anticipation.config import ActionLMModelConfig
from videoact.heads.anticipation.data import (
    ActionVocab,
)
from videoact.llm.base import Candidate, Prompt, register_backend, require_constraint
from videoact.llm.constraint import ActionConstraint

log = logging.getLogger("videoact.anticipation")
CHECKPOINT_FORMAT = "videoact.action_lm/1"


class ActionLM(nn.Module):
    """Encoder over N observed actions; Z future queries cross-attend to it -> per-step verb and noun logits.

    The queries never attend over each other in a deep stack: one decoder layer is enough for 20 steps and keeps
    a training step cheap on two CPU cores.
    """

    def __init__(self, *, n_verbs: int, n_nouns: int, n_observed: int, z: int, d_model: int = 128,
                 n_layers: int = 2, n_heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.n_verbs, self.n_nouns, self.n_observed, self.z = n_verbs, n_nouns, n_observed, z
        self.verb_emb = nn.Embedding(n_verbs + 1, d_model, padding_idx=n_verbs)  # last index = padding
        self.noun_emb = nn.Embedding(n_nouns + 1, d_model, padding_idx=n_nouns)
        self.pos = nn.Parameter(torch.zeros(n_observed, d_model))
        self.queries = nn.Parameter(torch.zeros(z, d_model))
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.queries, std=0.02)
        enc = nn.TransformerEncoderLayer(d_model, n_heads, 2 * d_model, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(enc, n_layers, enable_nested_tensor=False)
        dec = nn.TransformerDecoderLayer(d_model, n_heads, 2 * d_model, dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(dec, 1)
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.verb_head = nn.Linear(d_model, n_verbs)
        self.noun_head = nn.Linear(d_model, n_nouns)

    def forward(self, verbs: torch.Tensor, nouns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``verbs``/``nouns`` (B, N) ids, padding = ``n_verbs`` / ``n_nouns`` -> logits (B, Z, V), (B, Z, Nn)."""
        b, n = verbs.shape
        if n != self.n_observed:
            raise ValueError(f"expected {self.n_observed} observed actions, got {n} (pad on the left)")
        pad = verbs == self.n_verbs  # (B, N)
        pad = pad & ~pad.all(1, keepdim=True)  # an all-padding history attends to its padding, not to nothing
        obs = self.drop(self.verb_emb(verbs) + self.noun_emb(nouns) + self.pos)  # (B, N, D)
        mem = self.encoder(obs, src_key_padding_mask=pad)  # (B, N, D)
        q = self.queries.expand(b, -1, -1)  # (B, Z, D)
        h = self.norm(self.decoder(q, mem, memory_key_padding_mask=pad))  # (B, Z, D)
        return self.verb_head(h), self.noun_head(h)


def build_action_lm(*, vocab: ActionVocab, n_observed: int, z: int, cfg: ActionLMModelConfig) -> ActionLM:
    return ActionLM(n_verbs=vocab.n_verbs, n_nouns=vocab.n_nouns, n_observed=n_observed, z=z, d_model=cfg.d_model,
                    n_layers=cfg.n_layers, n_heads=cfg.n_heads, dropout=cfg.dropout)


def pad_history(observed: Sequence[tuple[int, int]], n: int, vocab: ActionVocab) -> tuple[list[int], list[int]]:
    """The last ``n`` actions, left-padded with the padding ids when there are fewer."""
    obs = list(observed)[-n:]
    pad = n - len(obs)
    return ([vocab.n_verbs] * pad + [v for v, _ in obs], [vocab.n_nouns] * pad + [o for _, o in obs])


# ---------------------------------------------------------------------------------------------- data


# ---------------------------------------------------------------------------------------------- training


def save_action_lm(path: str | Path, model: ActionLM, vocab: ActionVocab, model_cfg: ActionLMModelConfig,
                   extra: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": CHECKPOINT_FORMAT, "model": asdict(model_cfg), "n_observed": model.n_observed, "z": model.z,
            "vocab": {"name": vocab.name, "verbs": list(vocab.verbs), "nouns": list(vocab.nouns)},
            "state_dict": model.state_dict(), "extra": extra or {}}
    return atomic_torch_save(blob, path)


def load_action_lm(path: str | Path) -> tuple[ActionLM, ActionVocab]:
    """A checkpoint written by ``save_action_lm`` (``weights_only=True``: no code runs on load)."""
    blob = load_torch_checkpoint(path, fmt=CHECKPOINT_FORMAT)
    v = blob["vocab"]
    vocab = ActionVocab(name=v["name"], verbs=tuple(v["verbs"]), nouns=tuple(v["nouns"]))
    model = build_action_lm(vocab=vocab, n_observed=blob["n_observed"], z=blob["z"],
                            cfg=ActionLMModelConfig(**blob["model"]))
    model.load_state_dict(blob["state_dict"])
    return model.eval(), vocab


# ---------------------------------------------------------------------------------------------- backend


class ActionLMBackend:
    """The action LM behind the backend protocol: reads ``Prompt.observed``, ignores the prompt text."""

    name = "action_lm"

    def __init__(self, model: ActionLM, vocab: ActionVocab, *, temperature: float = 1.0, greedy_first: bool = True,
                 seed: int = 0, batch_size: int = 256) -> None:
        self.model, self.vocab = model.eval(), vocab
        self.temperature, self.greedy_first, self.seed, self.batch_size = temperature, greedy_first, seed, batch_size

    @torch.no_grad()
    def generate(self, prompts: Sequence[Prompt], n: int, constraint: ActionConstraint | None) -> list[list[Candidate]]:
        c = require_constraint(constraint, self.name)
        if (c.vocab.n_verbs, c.vocab.n_nouns) != (self.vocab.n_verbs, self.vocab.n_nouns):
            raise ValueError(f"the constraint's vocabulary {c.vocab.name} does not match the model's {self.vocab.name}")
        if c.z > self.model.z:
            raise ValueError(f"the model predicts {self.model.z} steps, the constraint asks for {c.z}")
        gen = torch.Generator().manual_seed(self.seed)
        out: list[list[Candidate]] = []
        for i in range(0, len(prompts), self.batch_size):
            chunk = prompts[i:i + self.batch_size]
            hist = [pad_history(p.observed, self.model.n_observed, self.vocab) for p in chunk]
            lv, ln = self.model(torch.tensor([h[0] for h in hist]), torch.tensor([h[1] for h in hist]))
            pv = F.softmax(lv[:, :c.z] / self.temperature, -1)  # (B, Z, V)
            pn = F.softmax(ln[:, :c.z] / self.temperature, -1)  # (B, Z, Nn)
            b = len(chunk)
            sv = torch.multinomial(pv.flatten(0, 1), n, replacement=True, generator=gen).view(b, c.z, n)  # (B, Z, K)
            sn = torch.multinomial(pn.flatten(0, 1), n, replacement=True, generator=gen).view(b, c.z, n)
            if self.greedy_first:
                sv[..., 0], sn[..., 0] = lv[:, :c.z].argmax(-1), ln[:, :c.z].argmax(-1)
            logp = (torch.log(pv.gather(-1, sv)) + torch.log(pn.gather(-1, sn))).sum(1)  # (B, K)
            for j in range(b):
                out.append([Candidate(actions=tuple(zip(sv[j, :, k].tolist(), sn[j, :, k].tolist(), strict=True)),
                                      score=float(logp[j, k])) for k in range(n)])
        return out


@register_backend("action_lm")
def build_action_lm_backend(*, checkpoint: str | Path | None = None, model: ActionLM | None = None,
                            vocab: ActionVocab | None = None, temperature: float = 0.5,
                            seed: int = 0) -> ActionLMBackend:
    if model is None:
        if checkpoint is None:
            raise ValueError("backend action_lm needs a checkpoint (anticipation.checkpoint)")
        model, vocab = load_action_lm(checkpoint)
    if vocab is None:
        raise ValueError("backend action_lm needs the vocabulary with an in-memory model")
    return ActionLMBackend(model, vocab, temperature=temperature, seed=seed)
