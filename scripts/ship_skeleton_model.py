"""Copy a trained skeleton model into the package (``videoact/models/<name>.pt``) and write its model card.

    videoact train configs/skeleton/nw_ucla_stgcnpp.yaml
    python scripts/ship_skeleton_model.py runs/skeleton/nw_ucla_stgcnpp/model.pt --name nw_ucla_stgcnpp \
        --config configs/skeleton/nw_ucla_stgcnpp.yaml

The card states the data, its licence, the measured accuracy and training time (read from the checkpoint,
which the trainer wrote), and the command that reproduces it.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from videoact.heads.recognition.skeleton import load_model

REPO = Path(__file__).resolve().parents[1]
MAX_BYTES = 5 * 2**20

CARD = """# {name}: {model} skeleton action recognition (NW-UCLA, 10 classes)

The built-in model of `videoact run` (`recognition.model: builtin:{name}`): it classifies sliding windows of
3D poses (BlazePose world landmarks mapped onto the Kinect v1 20-joint layout) into the 10 NW-UCLA actions.

| | |
|---|---|
| network | `{model}` ({options}), {params:,} parameters, {size_kb:.0f} KB file |
| input | {frames} frames x 20 joints (`{layout}`) x 3D, {num_persons} person; centred on the `{center}` \
joint of the first frame{align} |
| training data | NW-UCLA (Wang et al., CVPR 2014), views 1 and 2: 1,020 sequences; the `all_sqe` release of CTR-GCN |
| test | view 3 (464 sequences), cross-view protocol |
| **top-1** | **{top1:.1f} %** (top-5 {top5:.1f} %, mean class {mca:.1f} %) |
| training | {epochs} epochs, {train_min:.1f} minutes on a 2-core CPU (no GPU), seed {seed} |
| licence | **CC BY-NC 4.0, non-commercial research use only**: the weights derive from NW-UCLA \
(research-only terms of its authors) and the CTR-GCN data release (CC BY-NC 4.0) |

Classes: {classes}.

## Reproduce

```
videoact train configs/skeleton/{name}.yaml
python scripts/ship_skeleton_model.py runs/skeleton/{name}/model.pt --name {name} --config configs/skeleton/{name}.yaml
```

The numbers above are read from the checkpoint, which the trainer wrote after evaluating on view 3; the
predictions are in `runs/skeleton/{name}/eval/` (`videoact eval recognition --gt .../gt --pred .../pred`).

## Limits

* Trained on Kinect skeletons of 10 subjects in one lab; poses estimated from RGB by BlazePose are noisier,
  and their depth is a guess from one image. Treat predictions on arbitrary video as a demonstration, not as
  a validated classifier.
* Ten everyday actions only; anything else is forced into one of them (look at the scores).
* One person per window (the first tracked person).
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--config", type=Path, required=True)
    args = ap.parse_args()
    clf = load_model(args.checkpoint)  # refuses anything that is not a videoact skeleton checkpoint
    size = args.checkpoint.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{args.checkpoint}: {size / 2**20:.1f} MB, over the 5 MB limit for shipped models")
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    m = clf.meta["metrics"]
    opts = ", ".join(f"{k}={v}" for k, v in state["model_kwargs"].items()
                     if k not in ("layout", "num_classes", "in_channels", "num_persons"))
    dest = REPO / "videoact" / "models" / f"{args.name}.pt"
    dest.parent.mkdir(exist_ok=True)
    shutil.copyfile(args.checkpoint, dest)
    from videoact.train import load_train_config

    _, cfg = load_train_config(args.config)
    card = CARD.format(
        name=args.name, model=state["model"], options=opts, params=sum(p.numel() for p in clf.model.parameters()),
        size_kb=size / 1024, frames=clf.input.frames, layout=clf.layout, num_persons=clf.num_persons,
        center=clf.input.center_joint or "layout centre",
        align="; rotated into a body frame (hips along x, spine along y)" if clf.input.align_view else "",
        top1=100 * m["top1_acc"], top5=100 * m["top5_acc"], mca=100 * m["mean_class_accuracy"],
        epochs=clf.meta["epochs"], train_min=clf.meta["train_seconds"] / 60, seed=cfg.optim.seed,
        classes=", ".join(clf.classes))
    (dest.with_suffix(".md")).write_text(card)
    print(f"{dest} ({size / 1024:.0f} KB) and {dest.with_suffix('.md')}")


if __name__ == "__main__":
    main()
