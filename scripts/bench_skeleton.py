"""The four skeleton networks side by side on NW-UCLA cross-view, measured in one run.

For each network (its recipe: ``configs/skeleton/nw_ucla_<net>.yaml``): parameters, multiply-accumulates per
sample (torch's FLOP counter / 2), CPU inference throughput (batch 16, eval mode, ``--threads`` threads,
median of ``--repeats``, the networks interleaved), then training from scratch with the trainer
(``videoact train``) and top-1 / mean-class accuracy on view 3. ``--epochs`` shortens every recipe to the same budget.

    python scripts/bench_skeleton.py                     # full recipes (about 2-3 hours on 2 cores)
    python scripts/bench_skeleton.py --epochs 20         # same budget for all
    python scripts/bench_skeleton.py --epochs 20 --train-threads 1   # training on one thread (a shared machine)
    python scripts/bench_skeleton.py --no-train          # size and speed only (a minute)
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import torch

from videoact.features.flops import mac_counter
from videoact.features.skeleton.factory import build_model
from videoact.train import load_train_config
from videoact.train.skeleton import train_skeleton

REPO = Path(__file__).resolve().parents[1]
NETS = ("stgcnpp", "psumnet", "ista", "cnn1d_ensemble")


def measure(models: dict[str, tuple[torch.nn.Module, int]], threads: int, repeats: int) -> dict[str, dict]:
    """Size, MACs and eval-mode speed of each network; the timed forwards run interleaved (one of each per round),
    so a load that comes and goes on a shared machine slows every network alike."""
    torch.set_num_threads(threads)
    out: dict[str, dict] = {}
    inputs = {}
    for net, (model, frames) in models.items():
        with torch.no_grad(), mac_counter() as counter:
            model(torch.randn(1, 3, frames, 20, 1))
        out[net] = {"params": sum(p.numel() for p in model.parameters()), "gmacs": counter.get_total_flops() / 2e9}
        inputs[net] = torch.randn(16, 3, frames, 20, 1)  # (N, C, T, V, M)
    times: dict[str, list[float]] = {net: [] for net in models}
    with torch.no_grad():
        for round_ in range(3 + repeats):
            for net, (model, _) in models.items():
                t0 = time.perf_counter()
                model(inputs[net])
                if round_ >= 3:  # the first rounds warm up
                    times[net].append(time.perf_counter() - t0)
    for net in models:
        out[net]["samples_per_s"] = 16 / statistics.median(times[net])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default=",".join(NETS))
    ap.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the speed measurement")
    ap.add_argument("--train-threads", type=int, default=None,
                    help="torch threads for training (default: --threads; 1 is faster on a busy machine)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--no-train", action="store_true", help="size and speed only")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench_skeleton")
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data" / "skeleton" / "nw_ucla")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # sizes and speeds first, all on an idle machine, then the trainings (which take the time)
    nets = args.nets.split(",")
    cfgs, rows, models = {}, [], {}
    for net in nets:
        train_threads = args.train_threads or args.threads
        overrides = [f"output={args.out / net}", f"data.root={args.data_root}", f"optim.threads={train_threads}",
                     "resume=false"]
        if args.epochs:
            overrides.append(f"optim.epochs={args.epochs}")
            overrides.append(f"optim.warmup_epochs={min(5, max(1, args.epochs // 10))}")
        _, cfgs[net] = load_train_config(REPO / "configs" / "skeleton" / f"nw_ucla_{net}.yaml", overrides)
        cfg = cfgs[net]
        models[net] = (build_model(cfg.model.name, layout="kinect20", num_classes=10, in_channels=3, num_persons=1,
                                   **dict(cfg.model.options)).eval(), cfg.input.frames)
    for net, row in measure(models, args.threads, args.repeats).items():
        rows.append({"net": net, **row})
        print(json.dumps(rows[-1]), flush=True)
    if not args.no_train:
        for net, row in zip(nets, rows, strict=True):
            train_skeleton(cfgs[net])
            m = json.loads((args.out / net / "metrics.json").read_text())
            row.update(top1=m["top1_acc"], mean_class=m["mean_class_accuracy"], epochs=cfgs[net].optim.epochs,
                       train_min=m["train_seconds"] / 60)
            print(json.dumps(row), flush=True)
    print(f"\nNW-UCLA cross-view, input (16, 3, T, 20, 1), speed on {args.threads} CPU threads, training on "
          f"{args.train_threads or args.threads}\n")
    head = "| network | params | GMACs / sample | CPU samples/s (batch 16) |"
    sep = "|---|---:|---:|---:|"
    if not args.no_train:
        head += " epochs | train min | top-1 | mean class |"
        sep += "---:|---:|---:|---:|"
    print(head)
    print(sep)
    for r in rows:
        line = f"| {r['net']} | {r['params'] / 1e6:.2f} M | {r['gmacs']:.3f} | {r['samples_per_s']:.0f} |"
        if not args.no_train:
            line += f" {r['epochs']} | {r['train_min']:.1f} | {100 * r['top1']:.1f} % | {100 * r['mean_class']:.1f} % |"
        print(line)


if __name__ == "__main__":
    main()
