"""``videoact run`` with a model-zoo name: every shipped RGB card, served from a loopback HTTP server.

Each shipped card is used as it ships (network, builder options, input spec, label map); only its file hashes are
replaced by those of the file the test writes, since the weights are random: a network of the card's architecture
built by the source's own code (mmaction2's layout via our exporter, transformers' ``save_pretrained``,
PyTorchVideo's hub builders), saved in the source's file format. What is checked is the product path: the
download into ``$VIDEOACT_HOME``, the strict load, the card's preprocessing and the class names in the rows
(Kinetics-400's). That the outputs equal the reference implementation's is proven per layout in
``test_zoo_videomae.py`` / ``test_zoo_pytorchvideo.py`` / ``test_zoo_skeleton.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from tests.loopback import LoopbackServer
from videoact import models

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RGB_CARDS = [c.name for c in models.list_models(task="recognition")]


@pytest.fixture(scope="module")
def demo_video(shared_data: Path) -> Path:
    path = shared_data / "videos" / "demo.mp4"  # mmaction2's demo clip (arm wrestling), 280 frames, 340x256
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


def _write_weights(card: models.ModelCard, www: Path) -> None:
    """The card's files in the source's format, random weights of the card's architecture (seeded)."""
    torch.manual_seed(0)
    if card.layout == "mmaction2":
        from videoact.features.backbones import build_backbone
        from videoact.features.vit.checkpoints import export_state_dict

        vit = build_backbone(card.arch, **card.arch_kwargs)
        torch.save({"state_dict": export_state_dict(vit, "mmaction2"), "meta": {}}, www / card.file("weights").filename)
    elif card.layout == "hf_videomae":
        transformers = pytest.importorskip("transformers")
        names = models.label_map(card.labels)
        cfg = transformers.VideoMAEConfig(num_frames=card.input["frames"], image_size=card.input["crop"],
                                          num_labels=len(names), id2label=dict(enumerate(names)),
                                          label2id={n: i for i, n in enumerate(names)}, use_mean_pooling=True)
        out = www / "_hf"
        transformers.VideoMAEForVideoClassification(cfg).save_pretrained(out)
        for spec in card.files:
            os.replace(out / spec.filename, www / spec.filename)
    elif card.layout == "pytorchvideo":
        hub = pytest.importorskip("pytorchvideo.models.hub")
        net = getattr(hub, card.arch)(pretrained=False)
        torch.save({"model_state": net.state_dict()}, www / card.file("weights").filename)
    elif card.layout == "mmaction2_stgcn":  # the port keeps mmaction2's names; its equality: test_zoo_skeleton.py
        from videoact.features.skeleton.mmaction2 import build_recognizer

        net = build_recognizer(**card.arch_kwargs)
        torch.save({"state_dict": net.state_dict(), "meta": {}}, www / card.file("weights").filename)
    else:
        raise AssertionError(f"no writer for layout {card.layout!r} in this test")


def _served_card(card: models.ModelCard, www: Path, cards: Path) -> None:
    """The shipped card's YAML with each file's hash replaced by the served file's."""
    raw = yaml.safe_load(card.path.read_text(encoding="utf-8"))
    for f in raw["files"]:
        f["sha256"] = hashlib.sha256((www / f["filename"]).read_bytes()).hexdigest()
        f["sha256_prefix"] = None
        f.pop("size", None)
    (cards / f"{card.name}.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")


@contextlib.contextmanager
def _served(card: models.ModelCard, tmp_path: Path) -> Iterator[tuple[LoopbackServer, dict[str, str]]]:
    """Random weights of ``card`` (``tmp_path/www``), its served copy (``tmp_path/cards``), a loopback server for
    them and the environment that makes videoact fetch from it (cache: ``tmp_path/home``)."""
    www, cards = tmp_path / "www", tmp_path / "cards"
    for d in (www, cards):
        d.mkdir()
    _write_weights(card, www)
    _served_card(card, www, cards)
    with LoopbackServer(www) as srv:
        yield srv, {"VIDEOACT_CARDS": str(tmp_path / "cards"), "VIDEOACT_MIRROR": srv.url(""),
                    "VIDEOACT_HOME": str(tmp_path / "home")}


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videoact.cli", "run", *args], capture_output=True, text=True,
                          env={**os.environ, **env, "OMP_NUM_THREADS": "1"}, cwd=cwd, timeout=600)


@pytest.mark.parametrize("name", RGB_CARDS)
def test_run_with_a_zoo_name_writes_kinetics_rows(name: str, demo_video: Path, tmp_path: Path) -> None:
    card = models.get_model(name)
    home = tmp_path / "home"
    with _served(card, tmp_path) as (srv, env):
        out = _run([str(demo_video), "-o", str(tmp_path / "run"), "pose.enabled=false",
                    f"recognition.model={name}", "recognition.stride_s=100", "recognition.top_k=3"], env, tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
        assert {Path(r).name for r in srv.requests} == {f.filename for f in card.files}  # each file fetched once
    for spec in card.files:  # downloaded into the cache, verified, nothing half-written
        assert (home / "models" / name / spec.filename).is_file()
    assert not list((home / "models").rglob("*.part"))
    seg = pd.concat(pd.read_parquet(p) for p in (tmp_path / "run" / "segments").rglob("*.parquet"))
    kinetics = set(models.label_map("kinetics400"))
    assert len(seg) == 2 * 3  # the first and the last window of the clip, top 3 each
    assert set(seg["label"]) <= kinetics and set(seg["label_space"]) == {"kinetics400"}
    assert set(seg["source"].str.split("@").str[0]) == {name}
    assert (seg.groupby("frame_start")["score"].sum() < 1.0 + 1e-6).all()  # probabilities of one softmax
    labels = pd.concat(pd.read_parquet(p) for p in (tmp_path / "run" / "labels").rglob("*.parquet"))
    assert list(labels.sort_values("id")["name"]) == list(models.label_map("kinetics400"))


def test_run_with_the_ntu_skeleton_card_writes_ntu60_rows(shared_data: Path, tmp_path: Path) -> None:
    """BlazePose on a real NTU RGB+D video -> COCO-17 -> mmaction2's ST-GCN++ pipeline -> NTU-60 names."""
    video = shared_data / "videos" / "S001C001P001R001A001_rgb.avi"  # NTU's own video (103 frames, 1080p)
    if not video.is_file():
        pytest.skip(f"{video} is missing")
    name = "stgcnpp_ntu60_xsub_2d_joint"
    card = models.get_model(name)
    with _served(card, tmp_path) as (_, env):
        out = _run([str(video), "-o", str(tmp_path / "run"), f"recognition.model={name}", "recognition.window_s=3",
                    "recognition.stride_s=100", "recognition.top_k=2"], env, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    seg = pd.concat(pd.read_parquet(p) for p in (tmp_path / "run" / "segments").rglob("*.parquet"))
    seg = seg[seg["task"] == "recognition"]
    assert len(seg) >= 2 and len(seg) % 2 == 0
    assert set(seg["label"]) <= set(models.label_map("ntu60")) and set(seg["label_space"]) == {"ntu60"}
    assert set(seg["source"].str.split("@").str[0]) == {name}


def test_run_offline_without_the_weights_is_rc2_naming_model_url_and_path(demo_video: Path, tmp_path: Path) -> None:
    name = "x3d_xs_k400"
    card = models.get_model(name)
    out = _run([str(demo_video), "-o", str(tmp_path / "run"), "pose.enabled=false", f"recognition.model={name}"],
               {"VIDEOACT_OFFLINE": "1", "VIDEOACT_HOME": str(tmp_path / "home")}, tmp_path)
    assert out.returncode == 2, out.stderr
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in out.stderr, out.stderr
    assert name in err[0] and card.file().urls[0] in err[0]
    assert str(tmp_path / "home" / "models" / name / card.file().filename) in err[0]
    assert not (tmp_path / "run" / "segments").exists()


def test_run_with_a_tampered_download_is_rc2_and_leaves_no_file(demo_video: Path, tmp_path: Path) -> None:
    name = "x3d_xs_k400"
    card = models.get_model(name)
    home = tmp_path / "home"
    with _served(card, tmp_path) as (_, env):
        with (tmp_path / "www" / card.file().filename).open("ab") as f:  # the file changes after its hash was published
            f.write(b"\0")
        out = _run([str(demo_video), "-o", str(tmp_path / "run"), "pose.enabled=false", f"recognition.model={name}"],
                   env, tmp_path)
    assert out.returncode == 2, out.stderr
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and name in err[0] and "sha256" in err[0] and str(home / "models" / name) in err[0]
    assert not [p for p in (home / "models").rglob("*") if p.is_file()]


def test_build_backbone_pretrained_takes_the_cards_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``build_backbone(NAME, pretrained=True)``: the hub model's own features (its head's pre-pool conv), not ours."""
    from videoact.features.backbones import build_backbone

    name = "x3d_s_k400"
    card = models.get_model(name)
    ref = pytest.importorskip("pytorchvideo.models.hub").x3d_s(pretrained=False).eval()
    with _served(card, tmp_path) as (_, env):
        ref.load_state_dict(torch.load(tmp_path / "www" / card.file().filename, weights_only=True)["model_state"])
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        models.reload_cards()
        try:
            backbone = build_backbone(name, pretrained=True)
        finally:
            monkeypatch.undo()
            models.reload_cards()
    x = torch.randn(1, 3, 13, 160, 160)
    with torch.no_grad():
        h = x
        for block in ref.blocks[:-1]:
            h = block(h)
        pool = ref.blocks[-1].pool
        h = pool.pre_act(pool.pre_norm(pool.pre_conv(h)))  # (1, 432, 13, 5, 5): X3D's conv5
        ours = backbone(x).to_dense()
    assert ours.shape == h.shape
    assert torch.allclose(ours, h, atol=1e-5), (ours - h).abs().max()
