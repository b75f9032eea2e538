"""Temporal heads against a sliding-window classifier, measured in one run (CPU, one torch thread per training).

1. UTKinect-Action3D untrimmed recordings, leave-subjects-out (train subjects 2, 5, 7, 8, 9; test 1, 3, 4, 6, 10;
   ``datasets.skeleton.untrimmed``): window features of the shipped NW-UCLA ST-GCN++ (it never saw UTKinect),
   cached once and shared by every method, then
   * the sliding-window baseline (``train.temporal.window_baseline``): a linear classifier on the windows, per-frame
     labels from the votes of the windows covering each frame, detections = runs of one action label;
   * segmentation: MS-TCN (``configs/temporal/utkinect_mstcn.yaml``) and the LAC-style end-to-end encoder
     (``utkinect_lac.yaml``): MoF / Edit / F1@{10,25,50} from ``videoact.eval`` (``tas``);
   * detection: ActionFormer (``utkinect_actionformer.yaml``) with and without CSA: mAP@tIoU {0.3, 0.5, 0.7}
     (``tad``).
2. NW-UCLA concatenations (``nw_ucla_concat``, split ``view3_xsub``: 10 real sequences per long sequence, view 3
   only, train subjects 1, 3, 5, 7, 9, test 2, 4, 6, 8, 10): the baseline, MS-TCN (``nw_ucla_concat_mstcn.yaml``),
   LAC (``nw_ucla_concat_lac.yaml``) and ASRF-style (``nw_ucla_concat_asrf.yaml``: LAC + a boundary branch, each
   decoded segment classified whole), segmentation metrics.

    python scripts/bench_temporal.py                  # everything, fresh (about 20-25 minutes on 2 cores)
    python scripts/bench_temporal.py --keep-features  # reuse <out>/features from an earlier run
    python scripts/bench_temporal.py --skip lac,csa   # leave methods out (lac, csa, asrf, nw_ucla)
    python scripts/bench_temporal.py --only nwucla    # only part 2 (about 8 minutes); --out keeps part 1's folder

Prints the markdown tables and writes ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from videoact.train import load_train_config
from videoact.train.temporal import (
    compute_features,
    load_protocol,
    localization_ground_truth,
    score_localization,
    score_segmentation,
    segmentation_ground_truth,
    summary,
    train_localization,
    train_segmentation,
    window_baseline,
)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "temporal"
SEG_KEYS = ("accuracy", "edit", "F1@10", "F1@25", "F1@50")
DET_KEYS = ("mAP@0.3", "mAP@0.5", "mAP@0.7")


def config(name: str, out: Path, data_root: Path, cache: Path) -> Any:
    return load_train_config(CONFIGS / f"{name}.yaml", [
        f"output={out / name}", f"data.root={data_root}", f"features.cache={cache}", "optim.threads=1",
        "resume=false"])[1]


def baseline(cfg: Any) -> tuple[dict[str, float], dict[str, float], float]:
    """Sliding-window baseline on the features ``cfg`` describes: (segmentation, detection, seconds)."""
    t0 = time.perf_counter()
    bench = load_protocol(cfg.data)
    feats = compute_features(bench.train + bench.test, cfg.features, cfg.features.cache)
    seg, det = window_baseline(bench, feats, window=cfg.features.window, stride=cfg.features.stride)
    s = summary("tas", score_segmentation(segmentation_ground_truth(bench, bench.test), seg, bench))
    d = {}
    if bench.background is not None:
        d = summary("tad", score_localization(localization_ground_truth(bench, bench.test), det, (0.3, 0.5, 0.7)))
    return s, d, time.perf_counter() - t0


def run(name: str, cfg: Any, train: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    train(cfg)
    metrics = json.loads((Path(cfg.output) / "metrics.json").read_text())
    metrics["wall_seconds"] = time.perf_counter() - t0
    logging.info("%s done in %.0f s", name, metrics["wall_seconds"])
    return metrics


def features_only(cfg: Any) -> float:
    t0 = time.perf_counter()
    bench = load_protocol(cfg.data)
    compute_features(bench.train + bench.test, cfg.features, cfg.features.cache)
    return time.perf_counter() - t0


def clean(out: Path, only: str | None, keep_features: bool) -> None:
    """Remove an earlier run's outputs: all of them, or only those of the part run alone (``--only``), so the
    other part's folders, features and ``results.json`` stay as they were."""
    if not out.exists():
        return
    prefix = {"utkinect": "utkinect", "nwucla": "nw_ucla"}.get(only or "", "")
    doomed = [c for c in out.iterdir() if c.name != "features" and c.name.startswith(prefix)
              and (only is None or c.name != "results.json")]
    if only is not None:
        doomed += list(out.glob(f"results_{only}.json"))
    if not keep_features and (out / "features").exists():
        doomed += [out / "features"] if only is None else list((out / "features").glob(f"{prefix}*"))
    for c in doomed:
        shutil.rmtree(c) if c.is_dir() else c.unlink()


def fmt(v: float, pct: bool) -> str:
    return f"{v * 100:.1f}" if pct else f"{v:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench_temporal")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "skeleton")
    ap.add_argument("--keep-features", action="store_true", help="reuse cached features of an earlier run")
    ap.add_argument("--skip", default="", help="comma-separated: lac, csa, asrf, nw_ucla")
    ap.add_argument("--only", choices=("utkinect", "nwucla"), default=None, help="run one of the two parts")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    skip = {s for s in args.skip.split(",") if s}
    if args.only == "utkinect":
        skip.add("nw_ucla")
    clean(args.out, args.only, args.keep_features)
    t_start = time.perf_counter()
    utk_root, nw_root = args.data / "utkinect_action3d", args.data / "nw_ucla"
    utk_cache, nw_cache = args.out / "features" / "utkinect", args.out / "features" / "nw_ucla"
    res: dict[str, Any] = {"utkinect": {}, "nw_ucla_concat": {}}

    if args.only != "nwucla":
        mstcn_cfg = config("utkinect_mstcn", args.out, utk_root, utk_cache)
        res["utkinect"]["features_seconds"] = features_only(mstcn_cfg)
        seg, det, secs = baseline(mstcn_cfg)
        res["utkinect"]["baseline"] = {**seg, **det, "wall_seconds": secs}
        res["utkinect"]["mstcn"] = run("mstcn", mstcn_cfg, train_segmentation)
        if "lac" not in skip:
            res["utkinect"]["lac"] = run("lac", config("utkinect_lac", args.out, utk_root, utk_cache),
                                         train_segmentation)
        res["utkinect"]["actionformer"] = run("actionformer", config("utkinect_actionformer", args.out, utk_root,
                                                                      utk_cache), train_localization)
        if "csa" not in skip:
            res["utkinect"]["actionformer_csa"] = run("actionformer_csa", config(
                "utkinect_actionformer_csa", args.out, utk_root, utk_cache), train_localization)
    if "nw_ucla" not in skip:
        nw_cfg = config("nw_ucla_concat_mstcn", args.out, nw_root, nw_cache)
        res["nw_ucla_concat"]["features_seconds"] = features_only(nw_cfg)
        seg, _, secs = baseline(nw_cfg)
        res["nw_ucla_concat"]["baseline"] = {**seg, "wall_seconds": secs}
        res["nw_ucla_concat"]["mstcn"] = run("nw_ucla mstcn", nw_cfg, train_segmentation)
        if "lac" not in skip:
            res["nw_ucla_concat"]["lac"] = run("nw_ucla lac", config("nw_ucla_concat_lac", args.out, nw_root, nw_cache),
                                               train_segmentation)
        if "asrf" not in skip:
            res["nw_ucla_concat"]["asrf"] = run("nw_ucla asrf", config("nw_ucla_concat_asrf", args.out, nw_root,
                                                                       nw_cache), train_segmentation)
    res["total_seconds"] = time.perf_counter() - t_start
    args.out.mkdir(parents=True, exist_ok=True)
    name = "results.json" if args.only is None else f"results_{args.only}.json"
    (args.out / name).write_text(json.dumps(res, indent=2) + "\n")
    print(tables(res))


def tables(res: dict[str, Any]) -> str:
    names = {"baseline": "sliding-window classifier (baseline)", "mstcn": "MS-TCN (4 stages x 10 layers)",
             "lac": "LAC-style (ST-GCN++ fine-tuned end to end, frame-wise classifier)",
             "actionformer": "ActionFormer-style (6 levels, soft-NMS)",
             "actionformer_csa": "ActionFormer-style + CSA",
             "asrf": "ASRF-style (LAC + boundary branch, segments classified whole)"}
    seg_head = ["| method | MoF | Edit | F1@10 | F1@25 | F1@50 | train s |", "|---|---|---|---|---|---|---|"]
    det_head = ["| method | mAP@0.3 | mAP@0.5 | mAP@0.7 | train s |", "|---|---|---|---|---|"]

    def rows(part: dict[str, Any], keys: tuple[str, ...], metrics: tuple[str, ...], pct: bool) -> list[str]:
        out = []
        for key in (k for k in keys if k in part):
            m = part[key]
            t = m.get("train_seconds", m.get("wall_seconds", 0.0))
            out.append(f"| {names[key]} | " + " | ".join(fmt(m[k], pct) for k in metrics) + f" | {t:.0f} |")
        return out

    out: list[str] = []
    utk, nw = res["utkinect"], res["nw_ucla_concat"]
    if utk:
        out += ["**UTKinect-Action3D, leave-subjects-out (test subjects 1, 3, 4, 6, 10): segmentation**", "",
                *seg_head, *rows(utk, ("baseline", "mstcn", "lac"), SEG_KEYS, False),
                "", "**UTKinect-Action3D, leave-subjects-out: detection (mAP, %)**", "",
                *det_head, *rows(utk, ("baseline", "actionformer", "actionformer_csa"), DET_KEYS, True)]
    if nw:
        out += ["", "**NW-UCLA concatenated sequences (view 3; test subjects 2, 4, 6, 8, 10): segmentation**", "",
                *seg_head, *rows(nw, ("baseline", "mstcn", "lac", "asrf"), SEG_KEYS, False)]
    parts = ([f"UTKinect {utk['features_seconds']:.0f} s"] if utk else []) + (
        [f"NW-UCLA {nw['features_seconds']:.0f} s"] if nw else [])
    out += ["", f"Feature extraction: {', '.join(parts)}; whole run {res['total_seconds'] / 60:.1f} min."]
    return "\n".join(out).lstrip("\n")


if __name__ == "__main__":
    main()
