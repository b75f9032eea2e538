"""``videoact train configs/anticipation/*.yaml``: the anticipation models, trained on CPU.

* ``action_lm`` (``train_action_lm``): the built-in action LM (``heads.anticipation.action_lm``) on Ego4D LTA or
  EPIC-55 action sequences; one checkpoint with weights, model config and vocabulary.
* ``text_lm`` (``train_text_lm``): AntGPT's fine-tuned-LLM recipe at toy scale: a causal LM trained on exactly the
  prompt the head sends, the loss on the future actions; a transformers directory (+ optional GGUF file).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from videoact.annotations.vocab import ActionVocab
from videoact.heads.anticipation.action_lm import ActionLM, build_action_lm, save_action_lm
from videoact.heads.anticipation.config import (
    ActionLMTrainConfig,
    LTADataConfig,
    TextLMOptimConfig,
    TextLMTrainConfig,
)
from videoact.heads.anticipation.data import (
    ActionSequence,
    LTASamples,
    action_sequences,
    ego4d_vocab,
    epic55_vocab,
    make_samples,
    participant_split,
    read_ego4d_lta,
    read_epic55,
    split_samples,
)
from videoact.heads.anticipation.prompting import HEADER
from videoact.heads.anticipation.text_lm import (
    completion_loss,
    dump_json,
    encode_pairs,
    pad_pairs,
    sample_texts,
    scratch_llama,
    train_bpe_tokenizer,
)
from videoact.llm.constraint import ActionConstraint
from videoact.train.common import StepLog, build_optimizer, optimizer_step, warmup_cosine

log = logging.getLogger("videoact.anticipation")


def load_lta_data(cfg: LTADataConfig) -> tuple[ActionVocab, list[ActionSequence], list[ActionSequence], dict]:
    """Vocabulary, train and validation sequences, and a description of the split."""
    if cfg.dataset == "epic55":
        vocab = epic55_vocab(cfg.root)
        seqs = action_sequences(read_epic55(cfg.root))
        train_g, val_g = participant_split([s.group for s in seqs], val_fraction=cfg.val_fraction,
                                           seed=cfg.split_seed)
        split = {"kind": "participant_held_out", "seed": cfg.split_seed, "val_participants": val_g}
        return vocab, [s for s in seqs if s.group in train_g], [s for s in seqs if s.group in val_g], split
    if cfg.train_json is None or cfg.taxonomy is None:
        raise ValueError("data.dataset=ego4d needs data.train_json and data.taxonomy")
    vocab = ego4d_vocab(cfg.taxonomy)
    train = action_sequences(read_ego4d_lta(cfg.train_json, cfg.taxonomy))
    val = action_sequences(read_ego4d_lta(cfg.val_json, cfg.taxonomy)) if cfg.val_json else []
    return vocab, train, val, {"kind": "ego4d_official", "val": str(cfg.val_json)}


def epic55_split_samples(cfg: LTADataConfig) -> tuple[ActionVocab, list[ActionSequence], LTASamples, LTASamples]:
    """EPIC-55 train sequences, and train / held-out samples (N, Z from ``cfg``), for baselines and benchmarks."""
    vocab = epic55_vocab(cfg.root)
    seqs = action_sequences(read_epic55(cfg.root))
    samples = make_samples(seqs, n_observed=cfg.n_observed, z=cfg.z)
    train_g, val_g = participant_split([s.group for s in seqs], val_fraction=cfg.val_fraction, seed=cfg.split_seed)
    train_s, val_s = split_samples(samples, val_g)
    return vocab, [s for s in seqs if s.group in train_g], train_s, val_s


def _batch_loss(model: ActionLM, s: LTASamples, idx: np.ndarray, *, smoothing: float, hide: float,
                gen: torch.Generator | None) -> torch.Tensor:
    ov, on = torch.from_numpy(s.obs_verb[idx]), torch.from_numpy(s.obs_noun[idx])  # (B, N)
    if hide > 0 and gen is not None:
        drop = torch.rand(ov.shape, generator=gen) < hide
        ov, on = ov.masked_fill(drop, model.n_verbs), on.masked_fill(drop, model.n_nouns)
    lv, ln = model(ov, on)  # (B, Z, V), (B, Z, Nn)
    tv, tn = torch.from_numpy(s.fut_verb[idx]), torch.from_numpy(s.fut_noun[idx])  # (B, Z)
    return (F.cross_entropy(lv.flatten(0, 1), tv.flatten(), label_smoothing=smoothing)
            + F.cross_entropy(ln.flatten(0, 1), tn.flatten(), label_smoothing=smoothing))


@torch.no_grad()
def evaluate_loss(model: ActionLM, s: LTASamples, *, batch_size: int = 512) -> float:
    model.eval()
    total = 0.0
    for i in range(0, len(s), batch_size):
        idx = np.arange(i, min(i + batch_size, len(s)))
        total += float(_batch_loss(model, s, idx, smoothing=0.0, hide=0.0, gen=None)) * len(idx)
    return total / max(1, len(s))


def shuffled_batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index batches over ``n`` samples forever, reshuffled each epoch (a short last batch is skipped)."""
    bs = min(batch_size, n)
    while True:
        order = rng.permutation(n)
        for pos in range(0, n - bs + 1, bs):
            yield order[pos:pos + bs]


def fit_action_lm(model: ActionLM, train: LTASamples, optim_cfg: Any, *, val: LTASamples | None = None) -> list[float]:
    """Train ``model`` in place; returns the logged (smoothed) training losses."""
    o = optim_cfg
    torch.manual_seed(o.seed)
    gen = torch.Generator().manual_seed(o.seed)
    rng = np.random.default_rng(o.seed)
    opt = build_optimizer(model.parameters(), "adamw", lr=o.lr, weight_decay=o.weight_decay)
    sched = warmup_cosine(opt, warmup=o.warmup, steps=o.steps)
    progress = StepLog(o.steps, o.log_every)
    batches = shuffled_batches(len(train), o.batch_size, rng)
    model.train()
    for step in range(o.steps):
        idx = next(batches)
        loss = _batch_loss(model, train, idx, smoothing=o.label_smoothing, hide=o.history_dropout, gen=gen)
        optimizer_step(opt, sched, loss, clip=(model.parameters(), 1.0))
        progress.update(step, loss.item())
    if val is not None and len(val):
        log.info("held-out loss %.4f", evaluate_loss(model, val))
    model.eval()
    return progress.logged


def train_action_lm(cfg: ActionLMTrainConfig) -> Path:
    """Train the built-in action LM from ``cfg`` and write its checkpoint to ``cfg.output``; returns that path."""
    if cfg.optim.threads:
        torch.set_num_threads(cfg.optim.threads)
    vocab, train_seqs, val_seqs, split = load_lta_data(cfg.data)
    d = cfg.data
    train = make_samples(train_seqs, n_observed=d.n_observed, z=d.z, stride=d.stride)
    val = make_samples(val_seqs, n_observed=d.n_observed, z=d.z)
    if not len(train):
        raise ValueError(f"no training samples: every sequence is shorter than n_observed + z = {d.n_observed + d.z}")
    log.info("action LM: %d train / %d held-out samples, %d verbs, %d nouns", len(train), len(val), vocab.n_verbs,
             vocab.n_nouns)
    torch.manual_seed(cfg.optim.seed)
    model = build_action_lm(vocab=vocab, n_observed=d.n_observed, z=d.z, cfg=cfg.model)
    losses = fit_action_lm(model, train, cfg.optim, val=val)
    extra = {"split": split, "train_losses": losses, "n_train": len(train), "n_val": len(val),
             "val_loss": evaluate_loss(model, val) if len(val) else None}
    return save_action_lm(cfg.output, model, vocab, cfg.model, extra)


def fit_text_lm(model: Any, encoded: Sequence[tuple[list[int], int]], o: TextLMOptimConfig, pad_id: int, *,
                on_log: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``model`` in place on ``encode_pairs`` output (AdamW, warm-up + cosine); returns the running losses
    logged every ``o.log_every`` steps, where ``on_log(step, running_loss)`` is called too."""
    opt = build_optimizer(model.parameters(), "adamw", lr=o.lr, weight_decay=o.weight_decay)
    sched = warmup_cosine(opt, warmup=o.warmup, steps=o.steps)
    batches = shuffled_batches(len(encoded), o.batch_size, np.random.default_rng(o.seed))
    progress = StepLog(o.steps, o.log_every)
    for step in range(o.steps):
        model.train()
        ids, mask, labels = pad_pairs([encoded[i] for i in next(batches)], pad_id)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer_step(opt, sched, loss, clip=(model.parameters(), 1.0))
        if progress.update(step, loss.item()) and on_log is not None:
            on_log(step + 1, progress.logged[-1])
    model.eval()
    return progress.logged


def train_text_lm(cfg: TextLMTrainConfig) -> Path:
    """Fine-tune (or train from scratch) a causal LM on action text; writes ``cfg.output`` (a transformers
    directory, plus ``model.gguf`` with ``cfg.gguf``) and returns that directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    o = cfg.optim
    if o.threads:
        torch.set_num_threads(o.threads)
    vocab, train_seqs, val_seqs, split = load_lta_data(cfg.data)
    d = cfg.data
    constraint = ActionConstraint(vocab, z=d.z)
    train = make_samples(train_seqs, n_observed=d.n_observed, z=d.z, stride=d.stride)
    val = make_samples(val_seqs, n_observed=d.n_observed, z=d.z)
    if not len(train):
        raise ValueError(f"no training samples: every sequence is shorter than n_observed + z = {d.n_observed + d.z}")
    tp, tc = sample_texts(train, constraint)
    torch.manual_seed(o.seed)
    if cfg.base == "scratch":
        tokenizer = train_bpe_tokenizer([HEADER.format(z=d.z), *(p + c for p, c in zip(tp, tc, strict=True))],
                                        vocab_size=cfg.model.vocab_size)
        model = scratch_llama(tokenizer, cfg.model)
    else:
        base = Path(cfg.base)
        if not base.is_dir():
            raise FileNotFoundError(f"{base}: base model directory not found (a local transformers causal LM, or "
                                    "base=scratch)")
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    enc = encode_pairs(tokenizer, tp, tc)
    val_idx = np.random.default_rng(o.seed).permutation(len(val))[:o.val_samples]
    vp, vc = sample_texts(val[np.sort(val_idx)], constraint) if len(val) else ([], [])
    val_enc = encode_pairs(tokenizer, vp, vc)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("text LM (%s, %.2f M params): %d train / %d held-out samples, ~%d tokens each", cfg.base,
             n_params / 1e6, len(enc), len(val), int(np.mean([len(e[0]) for e in enc])))

    t0 = time.perf_counter()
    losses = fit_text_lm(model, enc, o, tokenizer.pad_token_id)
    val_loss = completion_loss(model, val_enc, tokenizer.pad_token_id) if val_enc else None
    if val_loss is not None:
        log.info("held-out completion loss %.4f (%d samples)", val_loss, len(val_enc))

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "videoact_text_lm.json").write_text(dump_json({
        "base": cfg.base, "split": split, "train_losses": losses, "val_loss": val_loss, "n_train": len(enc),
        "n_val": len(val), "n_params": n_params, "seconds": time.perf_counter() - t0, "model": asdict(cfg.model),
        "vocab": vocab.name, "n_observed": d.n_observed, "z": d.z}))
    if cfg.gguf:
        from videoact.llm.gguf_export import write_llama_gguf

        write_llama_gguf(model, tokenizer, out / "model.gguf")
    return out
