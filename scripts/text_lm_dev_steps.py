"""Choose the text LM's training length on a dev split of the *training* participants (never the held-out ones).

The EPIC-55 training participants are split again (20 % drawn with ``--dev-seed``, default 1); a scratch text LM
from ``configs/anticipation/text_lm_epic55.yaml`` trains on the rest with a ``--steps`` schedule and prints the
dev completion loss every 100 steps. docs/benchmarks.md ("Anticipation") quotes two runs:

    python scripts/text_lm_dev_steps.py --steps 400 --weight-decay 0.1     # the shipped setting
    python scripts/text_lm_dev_steps.py --steps 800 --weight-decay 0.01    # longer: the dev loss turns up after 300
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from videoact.heads.anticipation.data import make_samples, participant_split
from videoact.heads.anticipation.text_lm import (
    completion_loss,
    encode_pairs,
    sample_texts,
    scratch_llama,
    train_bpe_tokenizer,
)
from videoact.llm.constraint import ActionConstraint
from videoact.train import load_train_config
from videoact.train.anticipation import fit_text_lm, load_lta_data

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "configs/anticipation/text_lm_epic55.yaml"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--dev-seed", type=int, default=1)
    ap.add_argument("--dev-samples", type=int, default=300)
    ap.add_argument("-o", "--overrides", nargs="*", default=[])
    args = ap.parse_args()
    _, cfg = load_train_config(args.config, args.overrides)
    o = replace(cfg.optim, steps=args.steps, weight_decay=args.weight_decay)
    torch.set_num_threads(o.threads or torch.get_num_threads())
    vocab, train_seqs, _, _ = load_lta_data(cfg.data)
    fit_g, dev_g = participant_split([s.group for s in train_seqs], val_fraction=0.2, seed=args.dev_seed)
    d, c = cfg.data, ActionConstraint(vocab, z=cfg.data.z)
    fit = make_samples([s for s in train_seqs if s.group in fit_g], n_observed=d.n_observed, z=d.z, stride=d.stride)
    dev = make_samples([s for s in train_seqs if s.group in dev_g], n_observed=d.n_observed, z=d.z)
    prompts, futures = sample_texts(fit, c)
    tok = train_bpe_tokenizer([p + f for p, f in zip(prompts, futures, strict=True)], vocab_size=cfg.model.vocab_size)
    torch.manual_seed(o.seed)
    model = scratch_llama(tok, cfg.model)
    enc = encode_pairs(tok, prompts, futures)
    pick = np.sort(np.random.default_rng(0).permutation(len(dev))[:args.dev_samples])
    dev_enc = encode_pairs(tok, *sample_texts(dev[pick], c))
    print(f"dev participants {dev_g}; {len(fit)} fit / {len(dev)} dev samples ({len(dev_enc)} scored)")
    fit_text_lm(model, enc, replace(o, log_every=100), tok.pad_token_id, on_log=lambda step, loss: print(
        f"step {step}: train loss {loss:.3f} (running), dev completion loss "
        f"{completion_loss(model, dev_enc, tok.pad_token_id):.4f}", flush=True))

if __name__ == "__main__":
    main()
