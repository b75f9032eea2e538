"""Write a transformers Llama (``LlamaForCausalLM``) with a byte-level BPE tokenizer as a GGUF file for llama.cpp.

What ``convert_hf_to_gguf.py`` does for this one architecture, without its checkout: tensor names mapped to
llama.cpp's, Q and K rows permuted back from the transformers rotary layout (``rotate_half`` pairs dimension ``i``
with ``i + d/2``; llama.cpp's llama graph pairs ``2i`` with ``2i + 1``), the BPE vocabulary and merges written as a
``gpt2`` tokenizer. f32 only: the models this writes are small (videoact's text LMs, test models).

    write_llama_gguf(model, tokenizer, "text_lm.gguf")   # then build_backend("llamacpp", model="text_lm.gguf")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def _permute_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """(n_head * d, ...) rows from the transformers half-split rotary order to llama.cpp's interleaved order."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_llama_gguf(model: Any, tokenizer: Any, path: str | Path, *, name: str = "videoact-text-lm",
                     chat_template: str | None = None) -> Path:
    """``model`` (a ``LlamaForCausalLM``) and its byte-level BPE ``PreTrainedTokenizerFast`` -> ``path``
    (``chat_template``: a Jinja template for servers' chat endpoints)."""
    import gguf

    cfg = model.config
    if getattr(cfg, "model_type", None) != "llama":
        raise ValueError(f"write_llama_gguf writes Llama models, got model_type {getattr(cfg, 'model_type', None)!r}")
    spec = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    if spec.get("type") != "BPE":
        raise ValueError("write_llama_gguf needs a byte-level BPE tokenizer (tokenizers' BPE model)")
    vocab = sorted(spec["vocab"].items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab]
    if [i for _, i in vocab] != list(range(len(tokens))) or len(tokens) != cfg.vocab_size:
        raise ValueError(f"tokenizer ids must be 0..{cfg.vocab_size - 1} (the model's vocab_size)")
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["merges"]]
    special = set(tokenizer.all_special_tokens)
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = cfg.hidden_size // n_head

    path = Path(path)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(float(getattr(cfg, "rope_theta", None) or 10000.0))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")  # the GPT-2 split regex, as the byte-level pre-tokenizer
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    w.add_token_merges(merges)
    for key, tid in (("bos", tokenizer.bos_token_id), ("eos", tokenizer.eos_token_id), ("pad", tokenizer.pad_token_id)):
        if tid is not None:
            getattr(w, f"add_{key}_token_id")(tid)
    w.add_add_bos_token(False)
    if chat_template:
        w.add_chat_template(chat_template)

    sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.add_tensor("output.weight", sd.get("lm_head.weight", sd["model.embed_tokens.weight"]))
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(f"blk.{i}.attn_q.weight", _permute_rope(sd[p + "self_attn.q_proj.weight"], n_head))
        w.add_tensor(f"blk.{i}.attn_k.weight", _permute_rope(sd[p + "self_attn.k_proj.weight"], n_kv))
        w.add_tensor(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        w.add_tensor(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        w.add_tensor(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
