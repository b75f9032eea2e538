"""Tiny language models built inside the tests (nothing is downloaded): a byte-level BPE tokenizer trained on
the action vocabulary, a random Llama for transformers, and the same model exported as a GGUF file."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                 "<s>assistant\n")


def train_tokenizer(words: list[str], *, vocab_size: int = 420):
    """A byte-level BPE ``PreTrainedTokenizerFast`` (all 256 bytes + merges over ``words``)."""
    from videoact.heads.anticipation.text_lm import train_bpe_tokenizer

    corpus = [" ".join(words), "Observed: Future: Goal: Predict the next actions of the person", *words]
    return train_bpe_tokenizer(corpus * 3, vocab_size=vocab_size)


def tiny_llama(tokenizer, *, seed: int = 0):
    """A random 2-layer Llama with grouped-query attention (4 query heads, 2 key/value heads)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(cfg).eval()


def write_tiny_gguf(path: Path, tokenizer, *, seed: int = 0) -> Path:
    """``tiny_llama`` as a GGUF file (f32, a few hundred KB) with a chat template for the server's chat endpoint."""
    from videoact.llm.gguf_export import write_llama_gguf

    return write_llama_gguf(tiny_llama(tokenizer, seed=seed), tokenizer, path, name="videoact-test-tiny",
                            chat_template=CHAT_TEMPLATE)
