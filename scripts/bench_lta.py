"""EPIC-55 long-term anticipation benchmark: baselines, the built-in action LM and (optionally) an LLM backend.

One run, one split (participants held out, seed 0), N=8 observed, Z=20, K=5; edit distance exactly as Ego4D
(``videoact.eval.lta.edit_distance``), verb / noun / action (pair-exact). Prints a markdown table for
docs/benchmarks.md ("Anticipation").

    python scripts/bench_lta.py                                   # baselines + action LM (trains it, minutes)
    python scripts/bench_lta.py --llm-gguf tiny.gguf --llm-samples 200   # + a local GGUF model via llama.cpp
    python scripts/bench_lta.py --llm-hf path/to/model --llm-samples 200 # + a local transformers model
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from videoact.eval.lta import edit_distance
from videoact.heads.anticipation.action_lm import (
    ActionLMBackend,
    epic55_split_samples,
    load_action_lm,
    train_action_lm,
)
from videoact.heads.anticipation.baselines import MostFrequent, NGram
from videoact.heads.anticipation.data import LTASamples
from videoact.heads.anticipation.prompting import samples_to_prompts
from videoact.llm.base import LLMBackend
from videoact.llm.constraint import ActionConstraint
from videoact.train import load_train_config

REPO = Path(__file__).resolve().parents[1]


def score(backend: LLMBackend, samples: LTASamples, constraint: ActionConstraint, k: int, prompts=None) -> dict:
    prompts = prompts if prompts is not None else samples_to_prompts(samples)
    t0 = time.perf_counter()
    out = backend.generate(prompts, k, constraint)
    gen_s = time.perf_counter() - t0
    acts = np.asarray([[c.actions for c in cands] for cands in out], dtype=np.int64)  # (S, K, Z, 2)
    pv, pn = acts[..., 0], acts[..., 1]
    nn = constraint.vocab.n_nouns
    return {"verb": edit_distance(pv, samples.fut_verb), "noun": edit_distance(pn, samples.fut_noun),
            "action": edit_distance(pv * nn + pn, samples.fut_verb * nn + samples.fut_noun),
            "n": len(samples), "seconds": gen_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "configs/anticipation/action_lm_epic55.yaml"))
    ap.add_argument("--checkpoint", help="use this action LM checkpoint instead of training one")
    ap.add_argument("--out", default=str(REPO / "runs/bench_lta/action_lm.pt"))
    ap.add_argument("--val-every", type=int, default=1, help="evaluate every n-th held-out sample")
    ap.add_argument("--ngram-orders", default="2,3")
    ap.add_argument("--temperature", type=float, default=0.5, help="action LM sampling temperature (candidates 2..K)")
    ap.add_argument("--llm-gguf", help="a local GGUF model for the llama.cpp backend")
    ap.add_argument("--llm-hf", help="a local transformers model directory")
    ap.add_argument("--llm-samples", type=int, default=100, help="held-out samples for the LLM row (slow)")
    ap.add_argument("--llm-examples", type=int, default=2, help="MMR in-context examples per LLM prompt")
    ap.add_argument("-o", "--overrides", nargs="*", default=[])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    _, cfg = load_train_config(args.config, args.overrides)
    d = cfg.data
    vocab, train_seqs, train_s, val_s = epic55_split_samples(d)
    val_s = val_s[np.arange(len(val_s)) % args.val_every == 0]
    constraint = ActionConstraint(vocab, z=d.z)
    k = 5
    rows: list[tuple[str, dict]] = []

    rows.append(("most frequent", score(MostFrequent.fit(train_seqs), val_s, constraint, k)))
    for order in (int(x) for x in args.ngram_orders.split(",")):
        rows.append((f"{order}-gram (interpolated, greedy + 4 sampled)",
                     score(NGram(order=order).fit(train_seqs), val_s, constraint, k)))

    t0 = time.perf_counter()
    ckpt = Path(args.checkpoint) if args.checkpoint else train_action_lm(replace(cfg, output=Path(args.out)))
    train_s_time = time.perf_counter() - t0
    model, _ = load_action_lm(ckpt)
    n_params = sum(p.numel() for p in model.parameters())
    for temp in (args.temperature,):
        rows.append((f"action LM ({n_params / 1e6:.2f} M params, greedy + 4 sampled, T={temp})",
                     score(ActionLMBackend(model, vocab, temperature=temp), val_s, constraint, k)))

    llm_note = ""
    if args.llm_gguf or args.llm_hf:
        from videoact.heads.anticipation.prompting import ExampleBank, build_prompts
        from videoact.llm.base import build_backend

        sub = val_s[np.linspace(0, len(val_s) - 1, min(args.llm_samples, len(val_s))).astype(int)]
        bank = ExampleBank.from_samples(train_s[:: max(1, len(train_s) // 2000)], constraint)
        prompts = build_prompts(sub, constraint, bank=bank, n_examples=args.llm_examples)
        if args.llm_gguf:
            backend = build_backend("llamacpp", model=args.llm_gguf, seed=0)
            name = f"LLM llama.cpp `{Path(args.llm_gguf).name}` ({args.llm_examples} MMR examples, GBNF)"
        else:
            backend = build_backend("transformers", model=args.llm_hf, seed=0)
            name = f"LLM transformers `{Path(args.llm_hf).name}` ({args.llm_examples} MMR examples, trie)"
        rows.append((name, score(backend, sub, constraint, k, prompts=prompts)))
        llm_note = f" The LLM row uses {len(sub)} evenly spaced held-out samples."

    print(f"\nEPIC-55, participants held out (seed {d.split_seed}): {', '.join(sorted(set(val_s.groups)))}; "
          f"{len(train_s)} train / {len(val_s)} held-out samples (every {args.val_every}), N={d.n_observed}, "
          f"Z={d.z}, K={k}. Action LM trained in {train_s_time:.0f} s on "
          f"{torch.get_num_threads()} CPU threads ({platform.processor() or platform.machine()}).{llm_note}\n")
    print("| method | verb ED@20 | noun ED@20 | action ED@20 | samples | generate s |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['verb']:.4f} | {r['noun']:.4f} | {r['action']:.4f} | {r['n']} | {r['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
