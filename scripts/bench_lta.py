"""EPIC-55 long-term anticipation benchmark: baselines, the built-in action LM and language-model backends.

One run, one split (participants held out, seed 0), N=8 observed, Z=20, K=5; edit distance exactly as Ego4D
(``videoact.eval.lta.edit_distance``), verb / noun / action (pair-exact). Prints markdown tables for
docs/benchmarks.md ("Anticipation"):

1. every held-out sample: most frequent, n-grams, the action LM (trained in the run), and the text LM
   (``configs/anticipation/text_lm_epic55.yaml``, trained in the run) through the transformers backend;
2. ``--llm-samples`` evenly spaced held-out samples: the same text LM weights through llama.cpp (its GGUF export,
   GBNF grammar) beside the transformers runtime and the action LM on the same samples, plus any model given
   with ``--llm-gguf`` / ``--llm-hf`` (prompted with MMR-chosen in-context examples).

    python scripts/bench_lta.py                                   # everything (trains both models, ~20 min)
    python scripts/bench_lta.py --no-text-lm                      # baselines + action LM only
    python scripts/bench_lta.py --llm-gguf model.gguf             # + a local GGUF model via llama.cpp
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from videoact.eval.lta import edit_distance
from videoact.heads.anticipation.action_lm import ActionLMBackend, load_action_lm
from videoact.heads.anticipation.backends import build_backend
from videoact.heads.anticipation.baselines import MostFrequent, NGram
from videoact.heads.anticipation.data import LTASamples
from videoact.heads.anticipation.prompting import ExampleBank, build_prompts, samples_to_prompts
from videoact.llm.base import LLMBackend
from videoact.llm.constraint import ActionConstraint
from videoact.train import load_train_config
from videoact.train.anticipation import epic55_split_samples, train_action_lm

REPO = Path(__file__).resolve().parents[1]


def score(backend: LLMBackend, samples: LTASamples, constraint: ActionConstraint, k: int, prompts=None) -> dict:
    prompts = prompts if prompts is not None else samples_to_prompts(samples)
    t0 = time.perf_counter()
    out = backend.generate(prompts, k, constraint)
    gen_s = time.perf_counter() - t0
    acts = np.asarray([[c.actions for c in cands] for cands in out], dtype=np.int64)  # (S, K, Z, 2)
    pv, pn = acts[..., 0], acts[..., 1]
    nn = constraint.vocab.n_nouns
    return {"verb": edit_distance(pv, samples.fut_verb, layout="NKZ"),
            "noun": edit_distance(pn, samples.fut_noun, layout="NKZ"),
            "action": edit_distance(pv * nn + pn, samples.fut_verb * nn + samples.fut_noun, layout="NKZ"),
            "n": len(samples), "seconds": gen_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "configs/anticipation/action_lm_epic55.yaml"))
    ap.add_argument("--checkpoint", help="use this action LM checkpoint instead of training one")
    ap.add_argument("--out", default=str(REPO / "runs/bench_lta/action_lm.pt"))
    ap.add_argument("--val-every", type=int, default=1, help="evaluate every n-th held-out sample")
    ap.add_argument("--ngram-orders", default="2,3")
    ap.add_argument("--temperature", type=float, default=0.5, help="action LM sampling temperature (candidates 2..K)")
    ap.add_argument("--text-lm-config", default=str(REPO / "configs/anticipation/text_lm_epic55.yaml"))
    ap.add_argument("--text-lm", help="use this text LM directory (train_text_lm output) instead of training one")
    ap.add_argument("--text-lm-out", default=str(REPO / "runs/bench_lta/text_lm"))
    ap.add_argument("--no-text-lm", action="store_true", help="leave the text LM rows out")
    ap.add_argument("--llm-gguf", help="a local GGUF model for the llama.cpp backend")
    ap.add_argument("--llm-hf", help="a local transformers model directory")
    ap.add_argument("--llm-samples", type=int, default=200, help="held-out samples for the llama.cpp rows (slow)")
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

    sub = val_s[np.linspace(0, len(val_s) - 1, min(args.llm_samples, len(val_s))).astype(int)]
    sub_rows: list[tuple[str, dict]] = []
    text_note = ""
    if not args.no_text_lm:
        from videoact.train.anticipation import train_text_lm

        t0 = time.perf_counter()
        if args.text_lm:
            tlm = Path(args.text_lm)
        else:
            _, tcfg = load_train_config(args.text_lm_config, [f"data.root={d.root}"])
            tlm = train_text_lm(replace(tcfg, output=Path(args.text_lm_out)))
        text_train_s = time.perf_counter() - t0
        meta = json.loads((tlm / "videoact_text_lm.json").read_text())
        zero_shot = build_prompts(val_s, constraint, bank=None, n_examples=0)
        hf = build_backend("transformers", model=tlm, seed=0, temperature=args.temperature, batch_size=64)
        label = f"text LM ({meta['n_params'] / 1e6:.2f} M params, {meta['base']}), transformers + trie"
        rows.append((f"{label}, greedy + 4 sampled, T={args.temperature}",
                     score(hf, val_s, constraint, k, prompts=zero_shot)))
        sub_prompts = build_prompts(sub, constraint, bank=None, n_examples=0)
        sub_rows.append(("action LM", score(ActionLMBackend(model, vocab, temperature=args.temperature), sub,
                                            constraint, k)))
        sub_rows.append((label, score(hf, sub, constraint, k, prompts=sub_prompts)))
        if (tlm / "model.gguf").is_file():
            cpp = build_backend("llamacpp", model=tlm / "model.gguf", seed=0, temperature=args.temperature,
                                n_threads=torch.get_num_threads())
            sub_rows.append(("text LM, same weights as `model.gguf`, llama.cpp + GBNF",
                             score(cpp, sub, constraint, k, prompts=sub_prompts)))
        text_note = (f" Text LM trained in {text_train_s:.0f} s ({meta['n_train']} samples, held-out completion "
                     f"loss {meta['val_loss']:.3f}).")
    if args.llm_gguf or args.llm_hf:
        bank = ExampleBank.from_samples(train_s[:: max(1, len(train_s) // 2000)], constraint)
        prompts = build_prompts(sub, constraint, bank=bank, n_examples=args.llm_examples)
        if args.llm_gguf:
            backend = build_backend("llamacpp", model=args.llm_gguf, seed=0)
            name = f"LLM llama.cpp `{Path(args.llm_gguf).name}` ({args.llm_examples} MMR examples, GBNF)"
        else:
            backend = build_backend("transformers", model=args.llm_hf, seed=0)
            name = f"LLM transformers `{Path(args.llm_hf).name}` ({args.llm_examples} MMR examples, trie)"
        sub_rows.append((name, score(backend, sub, constraint, k, prompts=prompts)))

    print(f"\nEPIC-55, participants held out (seed {d.split_seed}): {', '.join(sorted(set(val_s.groups)))}; "
          f"{len(train_s)} train / {len(val_s)} held-out samples (every {args.val_every}), N={d.n_observed}, "
          f"Z={d.z}, K={k}. Action LM trained in {train_s_time:.0f} s on "
          f"{torch.get_num_threads()} CPU threads ({platform.processor() or platform.machine()}).{text_note}\n")
    table(rows)
    if sub_rows:
        print(f"\nThe same {len(sub)} evenly spaced held-out samples for every row:\n")
        table(sub_rows)
    return 0


def table(rows: list[tuple[str, dict]]) -> None:
    print("| method | verb ED@20 | noun ED@20 | action ED@20 | samples | generate s |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['verb']:.4f} | {r['noun']:.4f} | {r['action']:.4f} | {r['n']} | {r['seconds']:.1f} |")


if __name__ == "__main__":
    raise SystemExit(main())
