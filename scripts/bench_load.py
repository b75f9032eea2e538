"""Loading a run at archive scale: ``videoact.load`` (one ``pyarrow.dataset`` scan per table) against the loader
before issue 20 (``store._load_per_row``: files one by one, list columns through ``to_pylist``, rows validated).

Builds a synthetic run of ``--videos`` videos with the store's own writers (``write_video_tables``,
``write_labels``, ``write_manifest``; the tables are random but valid: this measures I/O and conversion), then
loads it in a fresh subprocess per case so that each peak RSS is that loader's alone, and prints one table.
The full loads are compared for equality at the end.

    python scripts/bench_load.py                    # 2,000 videos into a temp folder
    python scripts/bench_load.py --videos 400 --keep runs/bench_load
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUBSET_COLUMNS = ["video_id", "frame", "coord_space", "keypoints", "label", "score", "t_start_s", "t_end_s"]


def build_run(root: Path, n_videos: int, frames: int, seed: int = 0) -> dict[str, int]:
    """``n_videos`` videos: ``frames`` frames of 33-joint poses (image and world), a person box per frame,
    top-5 recognition over 2 s windows; written as ``videoact run`` writes them."""
    import numpy as np
    import pandas as pd

    from videoact.annotations import schema, store
    from videoact.annotations.tables import Tables

    rng = np.random.default_rng(seed)
    fps, src = 25.0, "videoact-bench@000000000000"
    names = [f"action {i}" for i in range(10)]
    rows = {"skeletons": 0, "boxes": 0, "segments": 0}
    for k in range(n_videos):
        vid = f"cam{k % 7}/clip_{k:05d}"
        f = np.arange(frames)
        kp_img = [rng.random(66, dtype=np.float32) * 176 for _ in f]
        kp_world = [rng.standard_normal(99).astype(np.float32) for _ in f]
        vis = [rng.random(33, dtype=np.float32) for _ in f]
        skel = pd.DataFrame({
            "video_id": vid, "frame": np.concatenate([f, f]), "t_s": np.concatenate([f, f]) / fps, "fps": fps,
            "person_id": 0, "layout": "mediapipe33", "dims": [2] * frames + [3] * frames,
            "coord_space": ["image_px"] * frames + ["world_m"] * frames,
            "keypoints": kp_img + kp_world, "scores": vis + vis, "source": src})
        x1 = rng.random(frames) * 0.5
        y1 = rng.random(frames) * 0.5
        boxes = pd.DataFrame({"video_id": vid, "task": "proposal", "t_s": f / fps, "fps": fps, "actor_id": 0,
                              "x1": x1, "y1": y1, "x2": x1 + 0.4, "y2": y1 + 0.4, "score": rng.random(frames),
                              "source": src})
        n_win = max(1, int(frames / fps) - 1)
        seg = pd.DataFrame([{"video_id": vid, "task": "recognition", "t_start_s": float(w), "t_end_s": w + 2.0,
                             "fps": fps, "label": names[c], "label_id": c, "label_space": "nw_ucla",
                             "score": float(rng.random()), "source": src,
                             "attrs": schema.dumps_attrs({"rank": r + 1, "window": w})}
                            for w in range(n_win) for r, c in enumerate(rng.permutation(10)[:5])])
        videos = pd.DataFrame([{"video_id": vid, "uri": f"/data/{vid}.mp4", "fps": fps, "n_frames": frames,
                                "duration_s": frames / fps, "width": 176, "height": 144, "codec": "h264",
                                "source": src, "attrs": schema.dumps_attrs({"decode_backend": "pyav"})}])
        store.write_video_tables(root, vid, Tables(videos=videos, segments=seg, boxes=boxes, skeletons=skel))
        rows["skeletons"] += len(skel)
        rows["boxes"] += len(boxes)
        rows["segments"] += len(seg)
    store.write_labels(root, pd.DataFrame({"label_space": "nw_ucla", "id": range(10), "name": names}))
    store.write_manifest(root, {"kind": "run", "schema_version": schema.SCHEMA_VERSION, "videos": n_videos})
    return rows


def child(case: str, root: Path) -> None:
    """One load in this (fresh) process: prints seconds, peak RSS and rows as JSON."""
    import videoact
    from videoact.annotations import store

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ids = store.stored_video_ids(root)[:100]
    t0 = time.perf_counter()
    if case == "old":
        t = store._load_per_row(root)
    elif case == "new":
        t = videoact.load(root)
    elif case == "new: 100 videos":
        t = videoact.load(root, videos=ids)
    elif case == "new: 8 columns":
        t = videoact.load(root, columns=SUBSET_COLUMNS)
    elif case == "new: 100 videos, segments, 3 columns":
        t = videoact.load(root, videos=ids, tables="segments", columns=["video_id", "label", "score"])
    else:
        raise SystemExit(f"unknown case {case!r}")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "import_mb": base / 1024, "rows": len(t)}))


CASES = ["old", "new", "new: 100 videos", "new: 8 columns", "new: 100 videos, segments, 3 columns"]


def run_case(case: str, root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run([sys.executable, __file__, "--child", case, str(root)], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{case}: exited {proc.returncode}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def same(root: Path) -> bool:
    import numpy as np
    import pandas as pd

    import videoact
    from videoact.annotations import store

    a, b = store._load_per_row(root), videoact.load(root)
    for name, df in a.items():
        other = getattr(b, name)
        lists = [c for c in ("keypoints", "scores") if c in df.columns]
        pd.testing.assert_frame_equal(df.drop(columns=lists), other.drop(columns=lists))
        for c in lists:
            assert all(np.array_equal(x, y) for x, y in zip(df[c], other[c], strict=True))
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=75, help="frames of poses per video (2 rows each)")
    ap.add_argument("--keep", type=Path, help="build the run here (reused when it is already there)")
    ap.add_argument("--child", nargs=2, metavar=("CASE", "RUN"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    tmp = None
    if args.keep is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
        root = tmp / "run"
    else:
        root = args.keep
    try:
        if not (root / "manifest.json").exists():
            t0 = time.perf_counter()
            rows = build_run(root, args.videos, args.frames)
            print(f"built {root}: {args.videos} videos, {rows} rows, {time.perf_counter() - t0:.0f}s",
                  file=sys.stderr)
        results = {case: run_case(case, root) for case in CASES}
        old = results["old"]["seconds"]
        print(f"{'case':<40} {'rows':>9} {'load s':>8} {'vs old':>7} {'peak RSS MB':>12} {'(after import)':>15}")
        for case, r in results.items():
            print(f"{case:<40} {r['rows']:>9} {r['seconds']:>8.2f} {old / r['seconds']:>6.1f}x "
                  f"{r['peak_mb']:>12.0f} {r['peak_mb'] - r['import_mb']:>15.0f}")
        print(f"old and new full loads equal: {same(root)}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
