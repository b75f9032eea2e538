"""EVAD keyframe-centric token dropout against the dense ViT-B/16, measured side by side in one run.

ViT-B/16 on one 16x224x224 clip (batch 1, 1568 tokens, keyframe = centre frame), inference mode. For each
configuration: tokens out, multiply-accumulates of one forward (torch's FLOP counter / 2: matmuls, convs and
fused attention; softmax, norms and gathers are not counted) and the median forward time over ``--repeats``
runs after ``--warmup`` runs. The configurations run interleaved (one forward of each per round), so a machine
whose load changes during the run slows them alike.

Rows: ``dense`` (no dropout), ``evad`` (EVAD's 0.7 preset; keyframe-query scores next to fused attention),
``evad, EVAD scoring`` (same preset, EVAD's released scoring: all queries, full attention matrix in the three
dropout blocks), ``evad, EVAD keep rule`` (the rate counts all tokens, ``ceil(rate·N) - H'W'``, as EVAD's code
does), the two together (EVAD's released code), and ``evad_0.6`` (EVAD's faster preset). Weights are random
(speed does not depend on them).

    python scripts/bench_token_dropout.py                 # 2 threads, 10 repeats (about 3 minutes on 2 cores)
    python scripts/bench_token_dropout.py --device cuda   # on a GPU (CUDA-synchronised timing)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from videoact.features.backbones import build_backbone
from videoact.features.flops import mac_counter

CONFIGS = {  # row name -> builder options on top of vit_b16
    "dense": {},
    "evad": {"keep_rates": "evad"},
    "evad, EVAD scoring": {"keep_rates": "evad", "keyframe_query_weight": 1.0},
    "evad, EVAD keep rule": {"keep_rates": "evad", "keep_rule": "evad"},
    "evad, EVAD keep rule + scoring (EVAD's code)": {"keep_rates": "evad", "keep_rule": "evad",
                                                      "keyframe_query_weight": 1.0},
    "evad_0.6": {"keep_rates": "evad_0.6"},
}
TARGET_SPEEDUP, TARGET_MAC_CUT = 1.6, 0.40
GRIDS = {"16x224x224": (8, 14, 14), "16x256x336 (AVA short side 256)": (8, 16, 21)}  # (T', H', W') tubelet grids


def block_macs(model: torch.nn.Module, grid: tuple[int, int, int]) -> int:
    """The transformer blocks' MACs from the token counts alone: per block, QKV and output projections (4 D²) and
    attention (2 N² D) at the N tokens that enter it, the MLP (2 · mlp_ratio · D²) at those it keeps."""
    d = model.dim
    n = grid[0] * grid[1] * grid[2]
    total = 0
    for block, keep in zip(model.blocks, model.keep_plan(grid), strict=True):
        kept = n if keep is None else grid[1] * grid[2] + keep
        total += 4 * d * d * n + 2 * n * n * d + 2 * block.mlp.fc1.out_features * d * kept
        n = kept
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    models = {}
    for name, options in CONFIGS.items():
        models[name] = build_backbone("vit_b16", **options).eval().to(device)
        if name != "dense":
            models[name].load_state_dict(models["dense"].state_dict())
    x = torch.randn(1, 3, 16, 224, 224, device=device)  # (B, C, T, H, W)

    rows = {}
    with torch.inference_mode():
        for name, model in models.items():
            with mac_counter() as counter:
                out = model(x)
            rows[name] = {"tokens": out.tokens.shape[1], "gmacs": counter.get_total_flops() / 2e9, "times": []}
        load_before = os.getloadavg()[0]
        for r in range(args.warmup + args.repeats):
            for name, model in models.items():
                _sync(device)
                t0 = time.perf_counter()
                model(x)
                _sync(device)
                if r >= args.warmup:
                    rows[name]["times"].append(time.perf_counter() - t0)
        load_after = os.getloadavg()[0]

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f", {args.threads} threads, {os.cpu_count()} cores; load average {load_before:.2f} before, "
          f"{load_after:.2f} after the timed runs; median of {args.repeats} after {args.warmup} warm-up")
    print()
    print("| configuration | tokens out | GMACs | MAC reduction | median ms | clips/s | throughput vs dense |")
    print("|---|---|---|---|---|---|---|")
    dense = rows["dense"]
    dense_ms = statistics.median(dense["times"]) * 1e3
    for name, row in rows.items():
        ms = statistics.median(row["times"]) * 1e3
        cut = 1 - row["gmacs"] / dense["gmacs"]
        print(f"| {name} | {row['tokens']} | {row['gmacs']:.1f} | {cut * 100:.1f} % | {ms:.0f} | {1e3 / ms:.2f} | "
              f"{dense_ms / ms:.2f}x |")
    print()
    print("Blocks' MACs counted from the token counts (attention at the tokens entering a block, MLP at those it "
          "keeps), reduction against dense:")
    for label, grid in GRIDS.items():
        dense_macs = block_macs(models["dense"], grid)
        cuts = ", ".join(f"{name} -{(1 - block_macs(models[name], grid) / dense_macs) * 100:.1f} %"
                         for name in ("evad", "evad, EVAD keep rule", "evad_0.6"))
        print(f"  {label}: {cuts}")
    print()
    for name in ("evad", "evad, EVAD keep rule", "evad_0.6"):
        speedup = dense_ms / (statistics.median(rows[name]["times"]) * 1e3)
        cut = 1 - rows[name]["gmacs"] / dense["gmacs"]
        print(f"{name}: throughput {speedup:.2f}x (target >= {TARGET_SPEEDUP}x: "
              f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'}), MACs -{cut * 100:.1f} % "
              f"(target >= {TARGET_MAC_CUT * 100:.0f} %: {'met' if cut >= TARGET_MAC_CUT else 'NOT met'})")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
