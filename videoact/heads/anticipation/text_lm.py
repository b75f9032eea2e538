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
from collections.abc import Sequence
from typing import Any

import torch

from videoact.heads.anticipation.config import TextLMModelConfig
from videoact.heads.anticipation.data import LTASamples
from videoact.heads.anticipation.prompting import build_prompts
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


def pad_pairs(encoded: Sequence[tuple[list[int], int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
        ids, mask, labels = pad_pairs(encoded[i:i + batch_size], pad_id)
        n = int((labels[:, 1:] != -100).sum())
        total += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * n
        count += n
    return total / max(count, 1)


def dump_json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2, default=str) + "\n"
