"""The model zoo's VideoMAE recognizers end to end: mmaction2's layout and Hugging Face transformers' layout.

For each layout the reference is the source's own code with seeded random weights, at small sizes (64 px, 8
frames, a 64-wide ViT) so the file runs in seconds:

* mmaction2: its ``VisionTransformer`` (``vit_mae.py``, loaded from its file: ``import mmaction.models`` is broken
  in mmaction2 1.2.0) and a linear ``fc_cls`` (what ``TimeSformerHead``, the VideoMAE config's head, is in eval
  mode), saved as mmaction2 saves a recognizer (``{"state_dict": {"backbone.*", "cls_head.fc_cls.*"}, "meta"}``);
  pre-processing by mmaction2's own ``Resize(scale=(-1, S))`` / ``CenterCrop`` / ``FormatShape`` /
  ``PackActionInputs`` transforms and its ``ActionDataPreprocessor``.
* transformers: ``VideoMAEForVideoClassification`` from a small ``VideoMAEConfig`` with Kinetics-400's
  ``id2label``, ``save_pretrained`` (config.json + model.safetensors); pre-processing by the PIL
  ``VideoMAEImageProcessor`` (``VideoMAEImageProcessorPil`` in transformers 5).

The files are served from a loopback HTTP server as the cards' mirror, the cards (with the files' sha256) are
read from ``$VIDEOACT_CARDS``; ``load_zoo_recognizer`` downloads, verifies and loads them, and a real clip of
``videos/demo.mp4`` (340x256, so S = 72 exercises each source's rounding of the long side and the crop
offset) decoded by ``VideoSource`` must give the reference's pixels and logits.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

yaml = pytest.importorskip("yaml")

import videoact.models as zoo  # noqa: E402
from tests.loopback import LoopbackServer  # noqa: E402
from videoact.decode.source import VideoSource  # noqa: E402
from videoact.decode.transforms import clip_pipeline, short_side_size  # noqa: E402
from videoact.heads.recognition.clip import ClipInputConfig, prepare_clip  # noqa: E402
from videoact.heads.recognition.zoo import NETWORKS, is_zoo_name, load_zoo_recognizer, zoo_classes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
FRAMES, STEP, SIDE, CROP, FIRST = 8, 4, 72, 64, 60  # demo.mp4: 340x256 -> long side 95.625
INDICES = np.arange(FIRST, FIRST + FRAMES * STEP, STEP)


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> torch.Tensor:
    with VideoSource(shared_data / "videos" / "demo.mp4") as src:
        return src.get_frames(list(INDICES))  # uint8 (8, 256, 340, 3)


def _randomise(model: torch.nn.Module, seed: int, scale: float = 0.2) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():  # q / v biases start at zero: make every tensor count
            p.copy_(scale * torch.randn(p.shape, generator=gen))


def _exec_mmaction2_file(relpath: str, name: str, cls: str):
    """A class of one mmaction2 file, executed from its path; when another test module registered it already,
    mmaction2's registry holds the class that file defines."""
    mmaction = pytest.importorskip("mmaction")
    path = Path(mmaction.__file__).parent / relpath
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            spec.loader.exec_module(module)
            return getattr(module, cls)
        except KeyError:
            from mmaction.registry import MODELS

            return MODELS.module_dict[cls]


def _card(name: str, *, layout: str, arch: str, files: dict[str, Path], resize: str, labels: str = "kinetics400",
          arch_kwargs: dict | None = None) -> dict:
    return {"name": name, "task": "recognition", "summary": f"test card ({layout})", "licence": "test",
            "arch": arch, "arch_kwargs": arch_kwargs or {"num_classes": 400}, "layout": layout, "num_classes": 400,
            "labels": labels,
            "files": [{"role": role, "filename": p.name, "urls": [f"https://example.invalid/{p.name}"],
                       "sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "size": p.stat().st_size}
                      for role, p in files.items()],
            "input": {"frames": FRAMES, "frame_step": STEP, "short_side": SIDE, "crop": CROP, "resize": resize,
                      "mean": MEAN, "std": STD, "num_clips": 1}}


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``publish(card_dict, files)``: the files behind a loopback mirror, the card in ``$VIDEOACT_CARDS``, an empty
    ``$VIDEOACT_HOME``."""
    www, cards = tmp_path / "www", tmp_path / "cards"
    cards.mkdir()
    with LoopbackServer(www) as srv:
        monkeypatch.setenv("VIDEOACT_CARDS", str(cards))
        monkeypatch.setenv("VIDEOACT_MIRROR", srv.url("").rstrip("/"))
        monkeypatch.setenv("VIDEOACT_HOME", str(tmp_path / "home"))
        monkeypatch.delenv("VIDEOACT_OFFLINE", raising=False)

        def publish(card: dict, files: list[Path]) -> LoopbackServer:
            for f in files:
                shutil.copy(f, www / f.name)
            (cards / f"{card['name']}.yaml").write_text(yaml.safe_dump(card), "utf-8")
            zoo.reload_cards()
            return srv

        yield publish
    zoo.reload_cards()  # re-read lazily once monkeypatch has restored the environment


def _report(what: str, pixels: float, logits: float, scale: float) -> None:
    print(f"{what}: input max |diff| {pixels:.2e}, logits max |diff| {logits:.2e} (logit scale {scale:.2f})")


# ------------------------------------------------------------------------------------------------ mmaction2


@pytest.fixture(scope="module")
def mm_case(frames: torch.Tensor, tmp_path_factory: pytest.TempPathFactory):
    vit_cls = _exec_mmaction2_file("models/backbones/vit_mae.py", "_zoo_mmaction2_vit_mae", "VisionTransformer")
    dp_cls = _exec_mmaction2_file("models/data_preprocessors/data_preprocessor.py", "_zoo_mmaction2_dp",
                                  "ActionDataPreprocessor")
    from mmaction.datasets.transforms.formatting import FormatShape, PackActionInputs
    from mmaction.datasets.transforms.processing import CenterCrop, Resize

    torch.manual_seed(0)
    backbone = vit_cls(img_size=CROP, embed_dims=64, depth=4, num_heads=2, num_frames=FRAMES).eval()
    _randomise(backbone, 1)
    fc_cls = torch.nn.Linear(64, 400)  # TimeSformerHead: dropout (a no-op in eval) + fc_cls
    _randomise(fc_cls, 2, scale=0.5)
    state = {"backbone." + k: v for k, v in backbone.state_dict().items()}
    state |= {"cls_head.fc_cls." + k: v for k, v in fc_cls.state_dict().items()}
    path = tmp_path_factory.mktemp("mm") / "vit-tiny-p16_videomae_test-k400_20240101-00000000.pth"
    torch.save({"meta": {"epoch": 35, "mmengine_version": "0.10.4"}, "state_dict": state}, path)

    imgs = list(frames.numpy())  # what DecordDecode gives: RGB uint8 (H, W, 3) frames
    results = {"imgs": imgs, "img_shape": imgs[0].shape[:2], "original_shape": imgs[0].shape[:2], "modality": "RGB",
               "num_clips": 1, "clip_len": FRAMES}
    for t in (Resize(scale=(-1, SIDE)), CenterCrop(crop_size=CROP), FormatShape(input_format="NCTHW"),
              PackActionInputs()):
        results = t(results)
    dp = dp_cls(mean=[255 * m for m in MEAN], std=[255 * s for s in STD], format_shape="NCTHW")
    x = dp({"inputs": [results["inputs"]], "data_samples": [results["data_samples"]]}, training=False)["inputs"]
    x = x.flatten(0, 1)  # (1 clip x 1 crop, 3, T, H, W)
    with torch.no_grad():
        logits = fc_cls(backbone(x))
    assert logits.shape == (1, 400) and logits.std() > 0.5, "a flat reference would hide a wrong network"
    return path, x, logits


def test_mmaction2_checkpoint_by_name_gives_mmaction2s_pixels_and_logits(mm_case, frames, mirror, shared_data):
    path, ref_x, ref_logits = mm_case
    card = _card("test_vit_tiny_mmaction2", layout="mmaction2", arch="vit_tiny", files={"weights": path},
                 resize="cv2", arch_kwargs={"num_classes": 400, "img_size": CROP, "num_frames": FRAMES})
    srv = mirror(card, [path])
    assert is_zoo_name("test_vit_tiny_mmaction2")
    rec = load_zoo_recognizer("test_vit_tiny_mmaction2")
    assert srv.requests == [path.name]
    assert rec.classes == zoo.label_map("kinetics400") and rec.label_space == "kinetics400"
    assert rec.source == "test_vit_tiny_mmaction2" and rec.input.resize == "cv2" and not rec.model.training
    assert rec.multi_label is False and rec.meta["input_extra"] == {"num_clips": 1}

    x = prepare_clip(frames, rec.input)[None]
    assert x.shape == ref_x.shape
    pixels = (x - ref_x).abs().max().item()
    with torch.no_grad():
        logits = rec.model(x)
    diff = (logits - ref_logits).abs().max().item()
    _report("mmaction2", pixels, diff, ref_logits.abs().max().item())
    assert pixels < 1e-5
    assert diff < 1e-4
    with VideoSource(shared_data / "videos" / "demo.mp4") as src:  # the path videoact run takes
        probs = rec.predict_proba(src.clips([INDICES]))
    assert np.abs(probs - ref_logits.softmax(-1).numpy()).max() < 1e-6
    assert load_zoo_recognizer("test_vit_tiny_mmaction2", offline=True).classes == rec.classes  # cached now
    assert srv.requests == [path.name]


def test_mmaction2_checkpoint_must_fill_the_network(mm_case, tmp_path):
    path, _, _ = mm_case
    state = torch.load(path, weights_only=True)["state_dict"]
    card = zoo.ModelCard(name="t", task="recognition", summary="s", licence="l", arch="vit_tiny",
                         arch_kwargs={"num_classes": 400, "img_size": CROP, "num_frames": FRAMES}, layout="mmaction2",
                         labels="kinetics400")
    load = NETWORKS.get("mmaction2")
    no_head = tmp_path / "no_head.pth"
    torch.save({"state_dict": {k: v for k, v in state.items() if not k.startswith("cls_head.")}}, no_head)
    with pytest.raises(ValueError, match=r"no_head\.pth.*missing head\.weight, head\.bias"):
        load(card, {"weights": no_head})
    extra = tmp_path / "extra.pth"
    torch.save({"state_dict": {**state, "backbone.blocks.7.attn.proj.weight": torch.zeros(64, 64)}}, extra)
    with pytest.raises(ValueError, match=r"extra\.pth.*unexpected.*blocks\.7\.attn\.proj\.weight"):
        load(card, {"weights": extra})
    other = tmp_path / "other_classes.pth"
    torch.save({"state_dict": {**state, "cls_head.fc_cls.weight": torch.zeros(10, 64),
                               "cls_head.fc_cls.bias": torch.zeros(10)}}, other)
    with pytest.raises(ValueError, match=r"other_classes\.pth.*classifier not loaded head\.weight"):
        load(card, {"weights": other})


# ------------------------------------------------------------------------------------- Hugging Face transformers


def _hf_processor():
    transformers = pytest.importorskip("transformers")
    # transformers 5 made VideoMAEImageProcessor torchvision-based; the PIL one (the only one before) is *Pil
    proc = getattr(transformers, "VideoMAEImageProcessorPil", None) or transformers.VideoMAEImageProcessor
    return proc(size={"shortest_edge": SIDE}, crop_size={"height": CROP, "width": CROP}, image_mean=MEAN,
                image_std=STD, resample=2)


@pytest.fixture(scope="module")
def hf_case(frames: torch.Tensor, tmp_path_factory: pytest.TempPathFactory):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("safetensors")
    names = zoo.label_map("kinetics400")
    cfg = transformers.VideoMAEConfig(image_size=CROP, patch_size=16, num_frames=FRAMES, tubelet_size=2,
                                      hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=256, use_mean_pooling=True,
                                      id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    torch.manual_seed(0)
    ref = transformers.VideoMAEForVideoClassification(cfg).eval()
    _randomise(ref, 3)
    _randomise(ref.classifier, 4, scale=1.0)
    folder = tmp_path_factory.mktemp("hf")
    ref.save_pretrained(folder, safe_serialization=True)
    config, weights = folder / "config.json", folder / "model.safetensors"
    assert config.is_file() and weights.is_file()

    pixel_values = _hf_processor()(list(frames.numpy()), return_tensors="pt")["pixel_values"]  # (1, T, 3, H, W)
    with torch.no_grad():
        logits = ref(pixel_values=pixel_values).logits
    assert logits.shape == (1, 400) and logits.std() > 0.5, "a flat reference would hide a wrong network"
    return ref, config, weights, pixel_values.transpose(1, 2), logits


def test_hf_videomae_by_name_gives_transformers_pixels_and_logits(hf_case, frames, mirror, shared_data):
    _, config, weights, ref_x, ref_logits = hf_case
    card = _card("test_videomae_tiny_hf", layout="hf_videomae", arch="vit_tiny",
                 files={"config": config, "weights": weights}, resize="pil")
    srv = mirror(card, [config, weights])
    rec = load_zoo_recognizer("test_videomae_tiny_hf")
    assert sorted(srv.requests) == ["config.json", "model.safetensors"]
    assert rec.classes == zoo.label_map("kinetics400") and rec.label_space == "kinetics400"
    assert rec.source == "test_videomae_tiny_hf" and rec.input.resize == "pil" and not rec.model.training

    x = prepare_clip(frames, rec.input)[None]
    assert x.shape == ref_x.shape
    pixels = (x - ref_x).abs().max().item()
    with torch.no_grad():
        logits = rec.model(x)
    diff = (logits - ref_logits).abs().max().item()
    _report("hf_videomae", pixels, diff, ref_logits.abs().max().item())
    assert pixels < 1e-5
    assert diff < 1e-4
    with VideoSource(shared_data / "videos" / "demo.mp4") as src:
        probs = rec.predict_proba(src.clips([INDICES]))
    assert np.abs(probs - ref_logits.softmax(-1).numpy()).max() < 1e-6


def test_hf_videomae_pre_transformers_5_keys_and_bin_file(hf_case, tmp_path):
    """Files written before transformers 5 (the hub's): ``q_bias`` / ``v_bias``, no ``query.bias``; a .bin."""
    from videoact.features.vit.checkpoints import load_hf_videomae

    ref, config, _, ref_x, ref_logits = hf_case
    old = {}
    for k, v in ref.state_dict().items():
        k = k.replace("attention.attention.query.bias", "attention.attention.q_bias")
        old[k.replace("attention.attention.value.bias", "attention.attention.v_bias")] = v
    assert any(k.endswith("q_bias") for k in old)
    torch.save(old, tmp_path / "pytorch_model.bin")
    vit, classes = load_hf_videomae(config, tmp_path / "pytorch_model.bin")
    assert classes == zoo.label_map("kinetics400")
    with torch.no_grad():
        assert (vit.forward_head(vit(ref_x)) - ref_logits).abs().max() < 1e-4
    del old["videomae.encoder.layer.1.output.dense.bias"]
    old["videomae.encoder.layer.1.surprise.weight"] = torch.zeros(1)
    torch.save(old, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pytorch_model\.bin.*missing: blocks\.1\.mlp\.fc2\.bias.*"
                                         r"unexpected: videomae\.encoder\.layer\.1\.surprise\.weight"):
        load_hf_videomae(config, tmp_path / "pytorch_model.bin")


def test_class_names_come_from_the_label_map_or_id2label():
    k400 = zoo.label_map("kinetics400")
    card = zoo.ModelCard(name="t", task="recognition", summary="s", licence="l", labels="kinetics400")
    assert zoo_classes(card, None) == k400
    assert zoo_classes(card, tuple(f"LABEL_{i}" for i in range(400))) == k400  # transformers' placeholders
    assert zoo_classes(card, tuple(n.upper().replace(" ", "_") for n in k400)) == k400  # the map's spelling
    swapped = (k400[1], k400[0], *k400[2:])
    with pytest.raises(ValueError, match=r"class 0 is 'air drumming'.*says 'abseiling' \(2 classes differ\)"):
        zoo_classes(card, swapped)
    with pytest.raises(ValueError, match="names 3 classes"):
        zoo_classes(card, ("a", "b", "c"))
    unlabelled = zoo.ModelCard(name="t", task="recognition", summary="s", licence="l")
    assert zoo_classes(unlabelled, ("a", "b")) == ("a", "b")
    with pytest.raises(ValueError, match="names no label map"):
        zoo_classes(unlabelled, None)


# --------------------------------------------------------------------------------------------- resize modes


def test_resize_modes_round_as_their_sources(frames):
    h, w = frames.shape[1:3]  # 256 x 340, 72 px: long side 95.625
    assert short_side_size(h, w, SIDE, "torch") == (72, 96)
    assert short_side_size(h, w, SIDE, "pytorchvideo") == (72, 95)  # floor
    assert short_side_size(h, w, SIDE, "cv2") == (72, 96)  # mmcv: int(x + 0.5)
    assert short_side_size(h, w, SIDE, "pil") == (72, 95)  # transformers: int()
    assert short_side_size(w, h, SIDE, "cv2") == (96, 72)  # portrait
    mmcv = pytest.importorskip("mmcv")
    assert mmcv.rescale_size((w, h), (np.inf, SIDE)) == (96, 72)
    resized = clip_pipeline(frames, short_side=SIDE, crop=CROP, mean=(0, 0, 0), std=(1 / 255,) * 3, resize="cv2")
    ref = np.stack([mmcv.imresize(f, (96, 72), interpolation="bilinear") for f in frames.numpy()])
    assert torch.equal(resized, torch.from_numpy(ref[:, 4:68, 16:80]).permute(3, 0, 1, 2).float())
    with pytest.raises(ValueError, match="resize must be one of torch, pytorchvideo, cv2, pil"):
        ClipInputConfig(resize="opencv")


def test_torch_mode_is_unchanged_and_pytorchvideo_mode_is_pytorchvideos(frames):
    from videoact.decode.transforms import normalize, short_side_resize, to_float_cthw

    cfg = ClipInputConfig(frames=FRAMES, short_side=SIDE, crop=CROP)
    assert cfg.resize == "torch"  # the default: what trained ClipRecognizers use
    before = short_side_resize(to_float_cthw(frames), SIDE)[:, :, 4:68, 16:80]  # today's prepare_clip
    assert torch.equal(prepare_clip(frames, cfg), normalize(before, cfg.mean, cfg.std).contiguous())

    if "torchvision.transforms.functional_tensor" not in sys.modules:  # PyTorchVideo imports the old name
        try:
            import torchvision.transforms.functional_tensor  # noqa: F401
        except ImportError:
            from torchvision.transforms import _functional_tensor
            sys.modules["torchvision.transforms.functional_tensor"] = _functional_tensor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pv = pytest.importorskip("pytorchvideo.transforms")
        from torchvision.transforms._transforms_video import CenterCropVideo, NormalizeVideo
    x = frames.permute(3, 0, 1, 2).float() / 255.0
    ref = CenterCropVideo((CROP, CROP))(pv.ShortSideScale(SIDE)(NormalizeVideo(MEAN, STD)(x)))  # offset round(15.5)
    ours = prepare_clip(frames, ClipInputConfig(frames=FRAMES, short_side=SIDE, crop=CROP, mean=tuple(MEAN),
                                                std=tuple(STD), resize="pytorchvideo"))
    torch_mode = prepare_clip(frames, ClipInputConfig(short_side=SIDE, crop=CROP, mean=tuple(MEAN), std=tuple(STD)))
    print(f"pytorchvideo mode: max |diff| {(ours - ref).abs().max():.2e}; torch mode (antialiased, round): "
          f"{(torch_mode - ref).abs().max():.2f}")
    assert (ours - ref).abs().max() < 1e-5


# ------------------------------------------------------------------------------------------- delegation


def test_pytorchvideo_and_skeleton_cards_go_to_their_loaders(monkeypatch, tmp_path):
    import videoact.features.cnn as cnn
    import videoact.models.hub as hub

    class Net(torch.nn.Module):
        multi_label = False
        num_classes = 400

        def forward(self, x):
            return x.mean(dim=(1, 2, 3, 4))[:, None].expand(-1, 400)

        def predict(self, x):
            return self(x).softmax(-1)

    seen = []
    monkeypatch.setattr(hub, "download", lambda card, **kw: {"weights": tmp_path / "w.pyth"})
    monkeypatch.setattr(cnn, "load_pytorchvideo_classifier", lambda card, files: seen.append(files) or Net())
    card = zoo.ModelCard(name="t_x3d", task="recognition", summary="s", licence="l", arch="x3d_s",
                         layout="pytorchvideo", labels="kinetics400",
                         input={"frames": 4, "short_side": 64, "crop": 64, "resize": "pytorchvideo"})
    rec = load_zoo_recognizer(card)
    assert isinstance(rec.model, Net) and seen == [{"weights": tmp_path / "w.pyth"}]  # its own predict is used
    assert rec.input.resize == "pytorchvideo" and len(rec.classes) == 400

    fake = types.ModuleType("videoact.heads.recognition.zoo_skeleton")
    fake.load_zoo_skeleton = lambda card, files: ("skeleton", card.name, files)
    monkeypatch.setitem(sys.modules, "videoact.heads.recognition.zoo_skeleton", fake)
    skel = zoo.ModelCard(name="t_stgcn", task="skeleton", summary="s", licence="l", labels="ntu60")
    assert load_zoo_recognizer(skel) == ("skeleton", "t_stgcn", {"weights": tmp_path / "w.pyth"})
    with pytest.raises(ValueError, match="labels card"):
        load_zoo_recognizer(zoo.ModelCard(name="k", task="labels", summary="s", licence="l"))
