"""Choose the ASRF head's decoding on VALIDATION subjects of the NW-UCLA concatenations (never the test subjects).

``configs/temporal/nw_ucla_concat_asrf.yaml`` is trained with ``data.validation=true`` (train subjects 1, 3, 5;
validation 7, 9) once per seed; on the validation sequences the script then prints, as MoF / Edit / F1@{10,25,50}:

* the class branch's frame-wise argmax (no boundaries), and the true boundaries with whole-segment labels;
* boundary precision / recall within 2 steps of a true cut at the chosen decoding;
* every decoding in threshold x min_distance x segment_weight, ranked by the MoF averaged over the seeds.

docs/benchmarks.md ("Temporal heads") quotes it:

    python scripts/asrf_validation.py                 # seeds 0 and 1, about 10 minutes on one thread
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videoact.heads.recognition.skeleton import load_recognizer
from videoact.heads.segmentation.asrf import decode_segments, predict_asrf_chunks, refine
from videoact.heads.temporal import load_temporal_model
from videoact.train import load_train_config
from videoact.train.temporal import (
    load_protocol,
    score_segmentation,
    segmentation_ground_truth,
    segmentation_predictions,
    summary,
    train_segmentation,
)

REPO = Path(__file__).resolve().parents[1]
KEYS = ("accuracy", "edit", "F1@10", "F1@25", "F1@50")


def fmt(r: dict[str, float]) -> str:
    return " / ".join(f"{r[k]:.1f}" for k in KEYS)


def boundary_pr(bench: Any, raw: dict, *, threshold: float, min_distance: int, tol: int = 2) -> tuple[float, float]:
    """Precision / recall of decoded boundaries against the true cuts (each cut matched once, within ``tol``)."""
    tp = fp = fn = 0
    for s in bench.test:
        found = decode_segments(raw[s.name][1], threshold=threshold, min_distance=min_distance)[1:]
        cuts = np.array([a for _, a, _ in s.segments][1:])
        hit: set[int] = set()
        for b in found:
            d = np.abs(cuts - b)
            j = int(d.argmin())
            if d[j] <= tol and j not in hit:
                hit.add(j)
                tp += 1
            else:
                fp += 1
        fn += len(cuts) - len(hit)
    return tp / max(1, tp + fp), tp / max(1, tp + fn)


def one_seed(cfg: Any, grid: list[tuple[float, int, float]]) -> dict[tuple[float, int, float], dict[str, float]]:
    """Train on the validation protocol, print the reference rows, score every decoding in ``grid``."""
    model, _ = load_temporal_model(train_segmentation(cfg))
    bench = load_protocol(cfg.data)
    gt = segmentation_ground_truth(bench, bench.test)
    clf = load_recognizer(cfg.asrf.segment_classifier)
    raw = {s.name: predict_asrf_chunks(model, s.keypoints, chunk=cfg.lac.chunk, layout=bench.layout,
                                       center_joint=cfg.lac.center_joint) for s in bench.test}
    cache: dict[tuple[str, int, int], np.ndarray] = {}

    def whole(s: Any) -> Any:
        def probs(spans: list[tuple[int, int]]) -> np.ndarray:
            for a, b in spans:
                if (s.name, a, b) not in cache:
                    cache[(s.name, a, b)] = clf.predict_proba(s.keypoints[:, a:b])[0]
            return np.stack([cache[(s.name, a, b)] for a, b in spans])
        return probs

    def score(step_probs: dict[str, np.ndarray]) -> dict[str, float]:
        pred = segmentation_predictions(bench, bench.test, step_probs, "asrf_validation")
        return summary("tas", score_segmentation(gt, pred, bench))

    print(f"\nseed {cfg.optim.seed}: {len(bench.train)} train / {len(bench.test)} validation sequences")
    print("  frame-wise argmax, no boundaries:", fmt(score({n: p for n, (p, _) in raw.items()})))
    true = {s.name: refine(raw[s.name][0], np.array([a for _, a, _ in s.segments]), segment_probs=whole(s),
                           segment_weight=1.0) for s in bench.test}
    print("  true boundaries, segments classified whole:", fmt(score(true)))
    p, r = boundary_pr(bench, raw, threshold=cfg.asrf.threshold, min_distance=cfg.asrf.min_distance)
    print(f"  boundaries at threshold {cfg.asrf.threshold} / min distance {cfg.asrf.min_distance}: "
          f"precision {p:.2f}, recall {r:.2f} (within 2 steps of a cut)", flush=True)
    return {(th, md, w): score({s.name: refine(raw[s.name][0], decode_segments(raw[s.name][1], threshold=th,
                                                                               min_distance=md),
                                               segment_probs=whole(s), segment_weight=w) for s in bench.test})
            for th, md, w in grid}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "configs/temporal/nw_ucla_concat_asrf.yaml"))
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--out", type=Path, default=REPO / "runs/asrf_validation")
    ap.add_argument("-o", "--overrides", nargs="*", default=[])
    args = ap.parse_args()
    torch.set_num_threads(1)
    grid = list(itertools.product((0.3, 0.4, 0.5, 0.6, 0.7), (3, 5, 8, 10), (0.0, 0.25, 0.5, 0.75, 1.0)))
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        _, cfg = load_train_config(args.config, ["data.validation=true", f"optim.seed={seed}", "resume=false",
                                                 f"output={args.out / f'seed{seed}'}", *args.overrides])
        runs.append(one_seed(cfg, grid))
    mof = {g: [r[g]["accuracy"] for r in runs] for g in grid}
    ranked = sorted(grid, key=lambda g: -float(np.mean(mof[g])))
    print("\nthreshold / min distance / segment weight: mean MoF (per seed); the first seed's MoF/Edit/F1")
    for g in ranked[:10]:
        per = " / ".join(f"{m:.1f}" for m in mof[g])
        print(f"  {g[0]} / {g[1]} / {g[2]}: {np.mean(mof[g]):.1f} ({per}); {fmt(runs[0][g])}")
    a = cfg.asrf
    for w in (a.segment_weight, 0.0):
        g = (a.threshold, a.min_distance, w)
        print(f"config's boundaries, segment weight {w}: MoF " + " / ".join(f"{m:.1f}" for m in mof[g]))


if __name__ == "__main__":
    main()
