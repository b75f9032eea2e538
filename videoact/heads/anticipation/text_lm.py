"""A causal language model fine-tuned on action text (AntGPT's fine-tuned LLM), for the text backends.

The training text is exactly the zero-shot prompt the head sends (``prompting.build_prompts``: header, ``Observed:
take pan, ...``, ``Future:``) followed by the Z future actions and EOS; the loss is on the completion only. The
result is a plain transformers directory (model + tokenizer), read by ``build_backend("transformers", model=DIR)``,
and optionally the same weights as a GGUF file for ``build_backend("llamacpp", model=...)``.

``base``: a local transformers causal LM directory to fine-tune (AntGPT fine-tunes Llama 2), or ``scratch``:
a small Llama initialised here with a byte-level BPE tokenizer trained on the training text. No pretrained
model can be downloaded on an offline machine, so ``scratch`` is what the benchmark measures there.

    videoact train configs/anticipation/text_lm_epic55.yaml     # -> runs/text_lm_epic55/{config.json,...}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videoact.heads.anticipation.config import TextLMModelConfig, TextLMOptimConfig, TextLMTrainConfig
from videoact.heads.anticipation.data import LTASamples, make_samples
from videoact.heads.anticipation.prompting import HEADER, build_prompts
from videoact.llm.constraint import ActionConstraint

log = logging.getLogger("videoact.anticipation")

SPECIAL = ("<s>", "</s>", "<pad>")


def sample_texts(samples: LTASamples, constraint: ActionConstraint) -> tuple[list[str], list[str]]:
    """(prompt, completion) texts of ``samples``: the head's zero-shot prompt, and `` a b, c d, ...`` + nothing."""
    prompts = [p.text for p in build_prompts(samples, constraint, bank=None, n_examples=0)]
    futures = [" " + constraint.format(list(zip(v.tolist(), n.tolist(), strict=True))[:constraint.z])
               for v, n in zip(samples.fut_verb, samples.fut_noun, strict=True)]
    return prompts, futures


def train_bpe_tokenizer(texts: Sequence[str], *, vocab_size: int = 1024) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` (every byte, then merges learned on ``texts``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIAL[0], eos_token=SPECIAL[1],
                                   pad_token=SPECIAL[2])


def scratch_llama(tokenizer: Any, cfg: TextLMModelConfig, *, max_positions: int = 1024) -> Any:
    """A small Llama sized by ``cfg`` for ``tokenizer``'s vocabulary, randomly initialised."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_heads,
        max_position_embeddings=max_positions, rms_norm_eps=1e-5, attention_dropout=cfg.dropout,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False))


def encode_pairs(tokenizer: Any, prompts: Sequence[str], completions: Sequence[str]) -> list[tuple[list[int], int]]:
    """Token ids of ``prompt + completion + EOS`` and where the completion starts (the prompt's length)."""
    out = []
    for p, c in zip(prompts, completions, strict=True):
        pi = tokenizer.encode(p, add_special_tokens=False)
        ci = tokenizer.encode(c, add_special_tokens=False)
        out.append((pi + ci + [tokenizer.eos_token_id], len(pi)))
    return out


def _batch(encoded: Sequence[tuple[list[int], int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (B, L) ids, attention mask, and labels with -100 on prompt and padding."""
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (seq, start) in enumerate(encoded):
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
        labels[i, start:len(seq)] = ids[i, start:len(seq)]
    return ids, mask, labels


@torch.no_grad()
def completion_loss(model: Any, encoded: Sequence[tuple[list[int], int]], pad_id: int, *,
                    batch_size: int = 64) -> float:
    """Mean cross-entropy per completion token."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(encoded), batch_size):
        ids, mask, labels = _batch(encoded[i:i + batch_size], pad_id)
        n = int((labels[:, 1:] != -100).sum())
        total += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * n
        count += n
    return total / max(count, 1)


def fit_text_lm(model: Any, encoded: Sequence[tuple[list[int], int]], o: TextLMOptimConfig, pad_id: int, *,
                on_log: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``model`` in place on ``encode_pairs`` output (AdamW, warm-up + cosine); returns the running losses
    logged every ``o.log_every`` steps, where ``on_log(step, running_loss)`` is called too."""
    from videoact.heads.anticipation.action_lm import shuffled_batches
    from videoact.train.common import warmup_cosine

    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    sched = warmup_cosine(opt, warmup=o.warmup, steps=o.steps)
    batches = shuffled_batches(len(encoded), o.batch_size, np.random.default_rng(o.seed))
    losses: list[float] = []
    running, t0 = None, time.perf_counter()
    for step in range(o.steps):
        model.train()
        ids, mask, labels = _batch([encoded[i] for i in next(batches)], pad_id)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if (step + 1) % o.log_every == 0 or step == o.steps - 1:
            losses.append(running)
            log.info("step %d/%d loss %.4f (%.0fs)", step + 1, o.steps, running, time.perf_counter() - t0)
            if on_log is not None:
                on_log(step + 1, running)
    model.eval()
    return losses


def train_text_lm(cfg: TextLMTrainConfig) -> Path:
    """Fine-tune (or train from scratch) a causal LM on action text; writes ``cfg.output`` (a transformers
    directory, plus ``model.gguf`` with ``cfg.gguf``) and returns that directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from videoact.heads.anticipation.action_lm import load_lta_data

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
    (out / "videoact_text_lm.json").write_text(_json({
        "base": cfg.base, "split": split, "train_losses": losses, "val_loss": val_loss, "n_train": len(enc),
        "n_val": len(val), "n_params": n_params, "seconds": time.perf_counter() - t0, "model": asdict(cfg.model),
        "vocab": vocab.name, "n_observed": d.n_observed, "z": d.z}))
    if cfg.gguf:
        from videoact.llm.gguf_export import write_llama_gguf

        write_llama_gguf(model, tokenizer, out / "model.gguf")
    return out


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2, default=str) + "\n"
