"""The training loop every trainer shares (``videoact.train.common.TrainLoop``): one progress line per epoch (or
every ``optim.log_every`` steps) from ``videoact train``, quiet with ``-q``; a ``last.pt`` written by another config,
a corrupt one and a foreign one are errors that name the file (and the changed keys) without a traceback; a stopped
training resumes to the weights and history of an uninterrupted one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from videoact.config import ConfigError
from videoact.train import load_train_config
from videoact.train.common import changed_keys

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videoact.cli", "train", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One feature cache for both temporal trainers (the same windows): encoded once."""
    return tmp_path_factory.mktemp("features")


def _skeleton(tmp: Path, shared: Path) -> tuple[Path, list[str]]:
    yaml = tmp / "skeleton.yaml"
    yaml.write_text(
        "trainer: skeleton\n"
        f"data: {{benchmark: sbu_partial, root: {shared / 'skeleton' / 'sbu_kinect_interaction_partial'}}}\n"
        "input: {frames: 16}\n"
        "model: {name: stgcnpp, options: {width: 0.125, stages: [1, 1], modalities: [joint]}}\n"
        "optim: {batch_size: 16, lr: 0.1, warmup_epochs: 1, eval_every: 0}\n")
    return yaml, []


def _rgb(tmp: Path, shared: Path) -> tuple[Path, list[str]]:
    video = shared / "videos" / "demo.mp4"
    (tmp / "train.csv").write_text(f"path,label,t_start_s,t_end_s\n{video},early,0,3\n{video},late,4,7\n")
    yaml = tmp / "rgb.yaml"
    yaml.write_text(
        "trainer: rgb_recognition\n"
        f"data: {{train: {tmp / 'train.csv'}, val: null}}\n"
        "input: {frames: 4, frame_step: 2, short_side: 40, crop: 32}\n"
        "model: {backbone: vit_tiny, head: linear}\n"
        "optim: {batch_size: 2, lr: 0.003, warmup_epochs: 0}\n")
    return yaml, []


def _detection(tmp: Path, shared: Path) -> tuple[Path, list[str]]:
    rows = [f"demo_spatiotemporal_det,{t:04d},0.100,0.150,0.450,0.950,{12 if t < 5 else 80},0" for t in range(1, 9)]
    (tmp / "gt.csv").write_text("\n".join(rows) + "\n")
    return REPO / "configs" / "detection" / "ava_tiny.yaml", [
        f"data.videos={shared / 'videos'}", f"data.train_csv={tmp / 'gt.csv'}", "data.val_csv=null",
        f"data.label_map={shared / 'detection/ava/mmaction2_ava_label_map.txt'}", "optim.batch_size=8"]


_TEMPORAL = ("data.max_videos=3", "features.window=32", "features.stride=8", "features.extra_windows=[]")


def _segmentation(tmp: Path, shared: Path) -> tuple[Path, list[str]]:
    return REPO / "configs" / "temporal" / "nw_ucla_concat_mstcn.yaml", [
        f"data.root={shared / 'skeleton' / 'nw_ucla'}", *_TEMPORAL, "model.options={stages: 1, layers: 2}"]


def _localization(tmp: Path, shared: Path) -> tuple[Path, list[str]]:
    return REPO / "configs" / "temporal" / "utkinect_actionformer.yaml", [
        "data.protocol=nw_ucla_concat", f"data.root={shared / 'skeleton' / 'nw_ucla'}", "data.options={}",
        *_TEMPORAL, "model.options={dim: 32, heads: 2, window: 5, stem_blocks: 1}"]


TRAINERS = {"skeleton": _skeleton, "rgb_recognition": _rgb, "ava_detection": _detection,
            "segmentation": _segmentation, "localization": _localization}


@pytest.mark.slow
@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_progress_per_epoch_and_a_stale_last_pt_is_a_clean_error(trainer: str, tmp_path: Path, shared_data: Path,
                                                                 feature_cache: Path) -> None:
    config, overrides = TRAINERS[trainer](tmp_path, shared_data)
    overrides += [f"output={tmp_path / 'out'}", "optim.epochs=2", "optim.threads=1"]
    if trainer in ("segmentation", "localization"):
        overrides.append(f"features.cache={feature_cache}")
    done = _cli(config, *overrides)
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if " epoch " in line]
    assert [line.split(" epoch ")[1].split()[0] for line in progress] == ["1/2", "2/2"], done.stderr
    assert all(" loss " in line and " s" in line for line in progress), progress
    # the same output with another learning rate: the error names the file, the key and both values, the fix
    stale = _cli(config, *overrides, "optim.lr=0.0123", "-q")
    assert stale.returncode == 2, stale.stderr
    assert "Traceback" not in stale.stderr and "INFO" not in stale.stderr, stale.stderr  # -q: errors only
    message = stale.stderr.strip()
    assert message.startswith("videoact: error: ") and str(tmp_path / "out" / "last.pt") in message, message
    assert "optim.lr: " in message and "-> 0.0123" in message and "resume: false" in message, message


def test_step_trainers_log_every_log_every_steps(tmp_path: Path, shared_data: Path) -> None:
    done = _cli(REPO / "configs/anticipation/action_lm_epic55.yaml",
                f"data.root={shared_data / 'anticipation/epic_kitchens_55'}", "data.stride=16", "model.d_model=16",
                "model.n_layers=1", "model.n_heads=2", "optim.steps=20", "optim.batch_size=8", "optim.warmup=2",
                "optim.log_every=8", "optim.threads=1", f"output={tmp_path / 'lm.pt'}")
    assert done.returncode == 0, done.stderr
    steps = [line.split(" step ")[1].split()[0] for line in done.stderr.splitlines() if " step " in line]
    assert steps == ["8/20", "16/20", "20/20"], done.stderr


def test_corrupt_or_foreign_last_pt_is_a_config_error_naming_it(tmp_path: Path, shared_data: Path) -> None:
    from videoact.train.skeleton import train_skeleton

    config, _ = _skeleton(tmp_path, shared_data)
    cfg = load_train_config(config, [f"output={tmp_path / 'out'}", "optim.epochs=1", "optim.threads=1"])[1]
    last = tmp_path / "out" / "last.pt"
    last.parent.mkdir()
    last.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"last\.pt: not a training checkpoint .*resume: false"):
        train_skeleton(cfg)
    torch.save({"weights": torch.zeros(2)}, last)
    with pytest.raises(ConfigError, match=r"last\.pt: not a last\.pt written by `videoact train`"):
        train_skeleton(cfg)


def test_changed_keys_are_dotted_paths_with_both_values() -> None:
    old = {"optim": {"lr": 0.1, "epochs": 4}, "model": {"options": {"width": 0.25}}, "output": "a"}
    new = {"optim": {"lr": 0.2, "epochs": 4}, "model": {"options": {"width": 0.25, "stages": [1]}}, "output": "a"}
    assert changed_keys(old, new) == ["optim.lr: 0.1 -> 0.2", "model.options.stages: '<absent>' -> [1]"]


def test_stopped_localization_resumes_to_the_uninterrupted_weights_and_history(tmp_path: Path, shared_data: Path,
                                                                              feature_cache: Path) -> None:
    """The loss normaliser travels in ``last.pt``; an evaluation at the stopping epoch stays in the history."""
    import json

    from videoact.train.temporal import train_localization

    config, overrides = _localization(tmp_path, shared_data)

    def cfg(out: str, *more: str):
        return load_train_config(config, [*overrides, f"features.cache={feature_cache}", f"output={tmp_path / out}",
                                          "optim.threads=1", "optim.epochs=3", "optim.eval_every=2", *more])[1]

    full = train_localization(cfg("a"))
    assert train_localization(cfg("b", "optim.stop_after=2")).name == "last.pt"
    resumed = train_localization(cfg("b"))
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in (full, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ha, hb = (json.loads((tmp_path / d / "metrics.json").read_text())["history"] for d in "ab")
    strip = [{k: v for k, v in h.items() if k != "train_seconds"} for h in ha], \
        [{k: v for k, v in h.items() if k != "train_seconds"} for h in hb]
    assert strip[0] == strip[1] and "average_mAP" in strip[1][1], strip
