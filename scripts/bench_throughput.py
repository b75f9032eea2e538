"""Throughput of the networks `videoact run` and `videoact train` drive, side by side in one run, on one device.

(a) ViT-B/16 (`vit_b16`, random weights) on 16x224x224 clips: clips/s of dense vs the EVAD token-dropout presets
    (`keep_rates="evad"`, `"evad_0.6"`) at batch 1 / 8 / 32, fp32 vs bf16 autocast (`videoact.devices.autocast`,
    what `runner.precision` selects), with the achieved TFLOP/s: FLOPs per clip = 2 x the MACs of torch's FLOP
    counter (`videoact.features.flops.mac_counter`; dense: 361 GFLOPs) x clips/s. On a GPU with a known peak
    (H100 / H200: 989 dense bf16 TFLOP/s) the fraction of the peak is printed too.
(b) The four skeleton networks (`features.skeleton.factory.build_model`, their NW-UCLA recipes): samples/s, fp32 and
    bf16.
(c) `recognize_windows` over the sliding windows of the real clip demo.mp4 (decode + model, a random ViT-B/16 +
    linear head saved and loaded like a trained one) at `recognition.batch_size` 1 vs 8: seconds, the ratio, and
    the largest score difference between the two tables (rows must agree to 1e-5).

The configurations of one table run interleaved (one timed call of each per round), so a load that comes and goes
slows them alike: read the ratios. Everything printed is also written to `<out>/throughput.md` (and the raw numbers
to `<out>/throughput.json`).

    python scripts/bench_throughput.py --device cpu --quick    # batch 1 / 8, one repeat (about 6 minutes on 2 cores)
    python scripts/bench_throughput.py --device cuda           # batch 1 / 8 / 32, 10 repeats (< 8 minutes on an H100)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from videoact.devices import autocast, resolve_device  # noqa: E402
from videoact.features.backbones import build_backbone  # noqa: E402
from videoact.features.flops import mac_counter  # noqa: E402

VIT = {"dense": {}, "evad": {"keep_rates": "evad"}, "evad_0.6": {"keep_rates": "evad_0.6"}}
SKELETON_NETS = ("stgcnpp", "psumnet", "ista", "cnn1d_ensemble")
DENSE_GFLOPS = 361.0  # ViT-B/16 16x224: 180.3 GMACs measured (docs/benchmarks.md#token-dropout-evad)
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0}  # dense tensor cores
DEMO = REPO.parent / "shared" / "data" / "videos" / "demo.mp4"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(calls: dict[str, Callable[[], Any]], *, device: torch.device, warmup: int, repeats: int
                ) -> dict[str, float]:
    """Median seconds of each call, one call of each per round (the first ``warmup`` rounds not timed)."""
    times: dict[str, list[float]] = {k: [] for k in calls}
    for r in range(warmup + repeats):
        for name, fn in calls.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_of(device: torch.device) -> tuple[str, float | None]:
    if device.type != "cuda":
        return platform.processor() or platform.machine(), None
    name = torch.cuda.get_device_name(device)
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    return name, peak


# ------------------------------------------------------------------------------------------------ (a) ViT-B


def bench_vit(device: torch.device, batches: tuple[int, ...], precisions: tuple[str, ...], warmup: int,
              repeats: int) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    models = {}
    for name, options in VIT.items():
        models[name] = build_backbone("vit_b16", **options).eval().to(device)
        if name != "dense":
            models[name].load_state_dict(models["dense"].state_dict())
    gflops = {}
    with torch.inference_mode():
        x1 = torch.randn(1, 3, 16, 224, 224, device=device)
        for name, model in models.items():
            with mac_counter() as counter:
                model(x1)
            gflops[name] = 2 * counter.get_total_flops() / 2e9
    rows = []
    for batch in batches:
        x = torch.randn(batch, 3, 16, 224, 224, device=device)
        calls = {}
        for name, model in models.items():
            for prec in precisions:
                def call(model: torch.nn.Module = model, prec: str = prec, x: torch.Tensor = x) -> None:
                    with torch.inference_mode(), autocast(device, prec):
                        model(x)
                calls[f"{name}|{prec}"] = call
        secs = interleaved(calls, device=device, warmup=warmup, repeats=repeats)
        for key, s in secs.items():
            name, prec = key.split("|")
            rows.append({"config": name, "precision": prec, "batch": batch, "seconds": s, "clips_per_s": batch / s,
                         "gflops_per_clip": gflops[name], "tflops": gflops[name] * batch / s / 1e3})
        print(f"  (a) batch {batch} done", flush=True)
        del x
    return rows


def vit_table(rows: list[dict[str, Any]], peak: float | None) -> list[str]:
    out = ["| backbone | precision | batch | GFLOPs / clip | clips/s | vs dense (same batch, precision) | "
           "vs batch 1 | TFLOP/s" + (" | % of bf16 peak |" if peak else " |"),
           "|---|---|---|---|---|---|---|---" + ("|---|" if peak else "|")]
    by = {(r["config"], r["precision"], r["batch"]): r for r in rows}
    for r in rows:
        dense = by[("dense", r["precision"], r["batch"])]
        b1 = by.get((r["config"], r["precision"], 1))
        line = (f"| {r['config']} | {r['precision']} | {r['batch']} | {r['gflops_per_clip']:.0f} | "
                f"{r['clips_per_s']:.2f} | {r['clips_per_s'] / dense['clips_per_s']:.2f}x | "
                f"{r['clips_per_s'] / b1['clips_per_s']:.2f}x | {r['tflops']:.2f}")
        out.append(line + (f" | {100 * r['tflops'] / peak:.1f} % |" if peak else " |"))
    return out


# --------------------------------------------------------------------------------------------- (b) skeleton


def bench_skeleton(device: torch.device, batch: int, precisions: tuple[str, ...], warmup: int,
                   repeats: int) -> list[dict[str, Any]]:
    from videoact.features.skeleton.factory import build_model
    from videoact.train import load_train_config

    calls, meta = {}, {}
    for net in SKELETON_NETS:
        _, cfg = load_train_config(REPO / "configs" / "skeleton" / f"nw_ucla_{net}.yaml", [])
        torch.manual_seed(0)
        model = build_model(cfg.model.name, layout="kinect20", num_classes=10, in_channels=3, num_persons=1,
                            **dict(cfg.model.options)).eval().to(device)
        x = torch.randn(batch, 3, cfg.input.frames, 20, 1, device=device)  # (N, C, T, V, M)
        meta[net] = cfg.input.frames
        for prec in precisions:
            def call(model: torch.nn.Module = model, x: torch.Tensor = x, prec: str = prec) -> None:
                with torch.inference_mode(), autocast(device, prec):
                    model(x)
            calls[f"{net}|{prec}"] = call
    secs = interleaved(calls, device=device, warmup=warmup, repeats=repeats)
    return [{"net": k.split("|")[0], "precision": k.split("|")[1], "batch": batch, "frames": meta[k.split("|")[0]],
             "samples_per_s": batch / s} for k, s in secs.items()]


def skeleton_table(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| network | frames | batch | precision | samples/s | bf16 vs fp32 |", "|---|---|---|---|---|---|"]
    fp32 = {r["net"]: r["samples_per_s"] for r in rows if r["precision"] == "fp32"}
    for r in rows:
        out.append(f"| {r['net']} | {r['frames']} | {r['batch']} | {r['precision']} | {r['samples_per_s']:.0f} | "
                   f"{r['samples_per_s'] / fp32[r['net']]:.2f}x |")
    return out


# ------------------------------------------------------------------------------------ (c) windows of a clip


def bench_windows(device: torch.device, video: Path, precisions: tuple[str, ...], warmup: int,
                  repeats: int) -> list[dict[str, Any]]:
    from videoact.decode.probe import open_video
    from videoact.heads.recognition.clip import (
        ClipInputConfig,
        build_clip_model,
        load_clip_recognizer,
        recognize_windows,
        save_clip_recognizer,
    )

    torch.manual_seed(0)
    spec = {"backbone": "vit_b16", "backbone_kwargs": {}, "head": "linear", "head_kwargs": {"pooling": "mean"}}
    model = build_clip_model(backbone="vit_b16", backbone_kwargs={}, head="linear", num_classes=400,
                             head_kwargs=spec["head_kwargs"])
    with tempfile.TemporaryDirectory() as tmp:
        path = save_clip_recognizer(Path(tmp) / "model.pt", model, spec=spec, classes=[f"c{i}" for i in range(400)],
                                    label_space="random", input_cfg=ClipInputConfig(frames=16, frame_step=4,
                                                                                     short_side=256, crop=224))
        rec = load_clip_recognizer(path)
    rec.model.to(device)  # what the recognition stage does with runner.device
    tables: dict[str, Any] = {}
    calls = {}
    for prec in precisions:
        for bs in (1, 8):
            def call(bs: int = bs, prec: str = prec) -> None:
                with open_video(video) as src, autocast(device, prec):
                    tables[f"{prec}|{bs}"] = recognize_windows(rec, src, video_id="demo", stride_s=1.0, k=5,
                                                               batch_size=bs)
            calls[f"{prec}|{bs}"] = call
    secs = interleaved(calls, device=device, warmup=warmup, repeats=repeats)
    rows = []
    for key, s in secs.items():
        prec, bs = key.split("|")
        df, ref = tables[key], tables[f"{prec}|1"]
        diff = float(np.abs(df.sort_values(["t_start_s", "attrs"])["score"].to_numpy()
                            - ref.sort_values(["t_start_s", "attrs"])["score"].to_numpy()).max())
        rows.append({"precision": prec, "batch_size": int(bs), "windows": int(df["frame_start"].nunique()),
                     "seconds": s, "vs_batch_1": secs[f"{prec}|1"] / s, "max_score_diff_vs_batch_1": diff})
    return rows


def windows_table(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| precision | recognition.batch_size | windows | seconds (decode + model) | speed vs batch 1 | "
           "max score difference vs batch 1 |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['precision']} | {r['batch_size']} | {r['windows']} | {r['seconds']:.2f} | "
                   f"{r['vs_batch_1']:.2f}x | {r['max_score_diff_vs_batch_1']:.1e} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (videoact.devices.resolve_device)")
    ap.add_argument("--out", default=os.environ.get("OUT") or "bench_throughput",
                    help="folder of throughput.md / throughput.json (default: $OUT if set)")
    ap.add_argument("--quick", action="store_true", help="batch 1 / 8 only and one timed repeat (CPU)")
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds (default: 10 on CUDA, 1 on CPU)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed rounds (default: 3 on CUDA, 1 on CPU)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--parts", default="a,b,c", help="which tables: a (ViT-B), b (skeleton), c (windows)")
    ap.add_argument("--video", type=Path, default=DEMO)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device, key="--device")
    cuda = device.type == "cuda"
    repeats = args.repeats or (10 if cuda else 1)
    warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    batches = (1, 8) if args.quick else (1, 8, 32)
    precisions = ("fp32", "bf16")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name, peak = peak_of(device)
    parts = set(args.parts.split(","))
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    res: dict[str, Any] = {}
    if "a" in parts:
        res["vit"] = bench_vit(device, batches, precisions, warmup, repeats)
    if "b" in parts:
        res["skeleton"] = bench_skeleton(device, 256 if cuda else 16, precisions, warmup, max(repeats, 3))
        print("  (b) done", flush=True)
    if "c" in parts:
        res["windows"] = bench_windows(device, args.video, precisions if cuda else ("fp32",), warmup if cuda else 0,
                                       repeats)
        print("  (c) done", flush=True)
    wall = time.perf_counter() - t0
    head = (f"torch {torch.__version__}, device {device} ({name}), {torch.get_num_threads()} CPU threads, "
            f"{os.cpu_count()} cores; load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after; "
            f"median of {repeats} timed round(s) after {warmup} warm-up; {wall:.0f} s in all"
            + (f"; bf16 peak used: {peak} TFLOP/s (dense)" if peak else ""))
    lines = [f"**Machine.** {head}", ""]
    if "vit" in res:
        lines += ["(a) ViT-B/16, 16x224x224 clips, random weights, inference mode", "", *vit_table(res["vit"], peak),
                  ""]
    if "skeleton" in res:
        lines += ["(b) skeleton networks (NW-UCLA recipes, kinect20, one person), inference mode", "",
                  *skeleton_table(res["skeleton"]), ""]
    if "windows" in res:
        lines += [f"(c) `recognize_windows` over {args.video.name} (stride 1 s; ViT-B/16 16x4 + linear head, random "
                  "weights)", "", *windows_table(res["windows"]), ""]
    text = "\n".join(lines)
    print(text)
    (out / "throughput.md").write_text(text + "\n")
    (out / "throughput.json").write_text(json.dumps({"machine": head, **res}, indent=2) + "\n")
    print(f"written: {out / 'throughput.md'}, {out / 'throughput.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
