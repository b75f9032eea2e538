"""The model zoo's PyTorchVideo classifiers (x3d_xs / x3d_s / x3d_m / slowfast_r50 on Kinetics-400), end to end.

For each, the reference is PyTorchVideo's own hub network (``pytorchvideo.models.hub.<arch>(pretrained=False)``,
seeded random weights with non-trivial BatchNorm statistics), saved as the hub's ``.pyth`` file
(``{"model_state": ...}``) and served from a loopback HTTP server as the card's mirror. The card (the shipped
one's fields, this file's URL and sha256) is read from ``$VIDEOACT_CARDS``; ``videoact.models.download`` fetches
it into ``$VIDEOACT_HOME`` and ``load_pytorchvideo_classifier`` builds our network from it. A real clip of
``videos/demo.mp4`` goes through the hub tutorial's preprocessing (``/255``, ``NormalizeVideo``,
``ShortSideScale``, ``CenterCropVideo``, ``PackPathway`` for SlowFast) into the reference; our network on the
same tensor must give the same logits (read from the reference's head projection by a hook), and the zoo's
recognizer (``load_zoo_recognizer``, ``prepare_clip`` with the card's ``input``) on the same uint8 frames too.

Sizes are the hub tutorial's (182 px for X3D-XS / S, 256 px for X3D-M and SlowFast's 32 frames): one clip each.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip("pytorchvideo", reason="the video extra is not installed: pip install 'videoact[video]'")
yaml = pytest.importorskip("yaml")

import videoact.models as zoo  # noqa: E402
from tests.loopback import LoopbackServer  # noqa: E402
from videoact.decode.source import VideoSource  # noqa: E402
from videoact.features.cnn import build_pytorchvideo_classifier, load_pytorchvideo_classifier  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_HUB = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics"
MEAN, STD = [0.45, 0.45, 0.45], [0.225, 0.225, 0.225]


@dataclasses.dataclass(frozen=True)
class Spec:
    """One hub model and the hub tutorial's transform parameters for it (``model_transform_params``)."""

    card: str
    arch: str
    filename: str
    frames: int
    frame_step: int  # the tutorial's sampling_rate
    side: int
    crop: int
    alpha: int | None = None

    @property
    def arch_kwargs(self) -> dict:
        return {"alpha": self.alpha} if self.alpha else {}


SPECS = {
    "x3d_xs": Spec("x3d_xs_k400", "x3d_xs", "X3D_XS.pyth", 4, 12, 182, 182),
    "x3d_s": Spec("x3d_s_k400", "x3d_s", "X3D_S.pyth", 13, 6, 182, 182),
    "x3d_m": Spec("x3d_m_k400", "x3d_m", "X3D_M.pyth", 16, 5, 256, 256),
    "slowfast_r50": Spec("slowfast_r50_k400", "slowfast_r50", "SLOWFAST_8x8_R50.pyth", 32, 2, 256, 256, alpha=4),
}
LOGIT_SCALE = {"x3d_xs": 50.0, "x3d_s": 50.0, "x3d_m": 50.0, "slowfast_r50": 0.05}  # on the hub's init (std 0.01)
FIRST_FRAME = 60  # demo.mp4: arm wrestling, 280 frames of 340x256


def _pytorchvideo_transforms():
    """PyTorchVideo's transforms import ``torchvision.transforms.functional_tensor``, which torchvision >= 0.17
    renamed ``_functional_tensor``: alias it (only when missing) so PyTorchVideo's own code is the reference."""
    name = "torchvision.transforms.functional_tensor"
    if name not in sys.modules and importlib.util.find_spec(name) is None:
        from torchvision.transforms import _functional_tensor
        sys.modules[name] = _functional_tensor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorchvideo.transforms import ShortSideScale
        from torchvision.transforms._transforms_video import CenterCropVideo, NormalizeVideo
    return ShortSideScale, CenterCropVideo, NormalizeVideo


def reference_input(frames: torch.Tensor, spec: Spec) -> torch.Tensor | list[torch.Tensor]:
    """The hub tutorial's chain on uint8 (T, H, W, 3) frames: (1, 3, T, crop, crop), or [slow, fast] for SlowFast."""
    short_side_scale, center_crop, normalize = _pytorchvideo_transforms()
    x = frames.permute(3, 0, 1, 2).float()  # (C, T, H, W) in 0..255, as EncodedVideo.get_clip gives it
    x = x / 255.0
    x = normalize(MEAN, STD)(x)
    x = short_side_scale(size=spec.side)(x)
    x = center_crop(crop_size=(spec.crop, spec.crop))(x)
    if spec.alpha is None:
        return x[None]
    slow = torch.index_select(x, 1, torch.linspace(0, x.shape[1] - 1, x.shape[1] // spec.alpha).long())  # PackPathway
    return [slow[None], x[None]]


@pytest.fixture(scope="module")
def hd_frames(shared_data: Path) -> torch.Tensor:
    """Two 1920x1080 frames (NTU RGB+D): a large downscale, where resamplers and their rounding differ most."""
    with VideoSource(shared_data / "videos" / "S001C001P001R001A001_rgb.avi") as src:
        return src.get_frames([30, 60])


@dataclasses.dataclass
class Case:
    spec: Spec
    weights: Path  # the hub-layout checkpoint of the reference
    frames: torch.Tensor  # uint8 (T, H, W, 3), the decoded clip
    ref_input: torch.Tensor | list[torch.Tensor]
    ref_logits: torch.Tensor  # (1, 400): the head's projection, averaged over the pooled positions
    ref_probs: torch.Tensor  # (1, 400): the hub network's eval output (X3D) / its softmax (SlowFast: the tutorial)


def _randomise_batchnorm(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():  # non-trivial statistics and affine terms, so loading them is checked too
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.8, 1.2)
                m.bias.uniform_(-0.1, 0.1)


@pytest.fixture(scope="module", params=list(SPECS))
def case(request: pytest.FixtureRequest, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Case:
    import pytorchvideo.models.hub as hub

    spec = SPECS[request.param]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(hub, spec.arch)(pretrained=False).eval()  # the hub's builder and hyper-parameters
    _randomise_batchnorm(ref)
    with torch.no_grad():  # logits of a trained model's scale (|z| up to ~10-20), so 1e-4 on them is a real test
        ref.blocks[-1].proj.weight.mul_(LOGIT_SCALE[spec.arch])
    weights = tmp_path_factory.mktemp(spec.arch) / spec.filename
    torch.save({"model_state": ref.state_dict(), "epoch": 196, "model_epoch": 196}, weights)  # the hub files' layout

    with VideoSource(shared_data / "videos" / "demo.mp4") as src:
        frames = src.get_frames(list(range(FIRST_FRAME, FIRST_FRAME + spec.frames * spec.frame_step, spec.frame_step)))
    ref_input = reference_input(frames, spec)
    seen = []
    hook = ref.blocks[-1].proj.register_forward_hook(lambda m, i, o: seen.append(o))  # (B, t, h, w, 400)
    with torch.no_grad():
        out = ref(list(ref_input) if isinstance(ref_input, list) else ref_input)  # Net rewrites a list in place
    hook.remove()
    logits = seen[0].mean(dim=(1, 2, 3))
    if spec.alpha is None:  # X3D's head ends in a Softmax (at each position, then averaged)
        probs = out
        torch.testing.assert_close(probs.sum(1), torch.ones(1))
    else:  # SlowFast's head has no activation: the tutorial's post_act softmax
        torch.testing.assert_close(out, logits)
        probs = out.softmax(dim=1)
    assert logits.shape == probs.shape == (1, 400)
    assert logits.std() > 0.05, "degenerate reference: random logits this flat would hide a wrong network"
    return Case(spec, weights, frames, ref_input, logits, probs)


def card_dict(spec: Spec, weights: Path) -> dict:
    """The card the zoo ships for ``spec``, with the served file's hash (the shipped card's fields when present)."""
    shipped = zoo.CARD_DIR / f"{spec.card}.yaml"
    if shipped.is_file():
        raw = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    else:  # what the card will say (docs/model_zoo.md): the hub tutorial's transform parameters
        raw = {"name": spec.card, "task": "recognition", "summary": f"PyTorchVideo {spec.arch}, Kinetics-400",
               "licence": "Apache-2.0", "arch": spec.arch, "arch_kwargs": spec.arch_kwargs, "layout": "pytorchvideo",
               "num_classes": 400, "labels": "kinetics400",
               "input": {"frames": spec.frames, "frame_step": spec.frame_step, "short_side": spec.side,
                         "crop": spec.crop, "resize": "pytorchvideo", "mean": MEAN, "std": STD}}
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    raw["files"] = [{"role": "weights", "filename": spec.filename, "urls": [f"{_HUB}/{spec.filename}"],
                     "sha256": digest, "size": weights.stat().st_size}]
    return raw


@pytest.fixture
def served(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The reference checkpoint behind a loopback mirror, its card in ``$VIDEOACT_CARDS``, an empty
    ``$VIDEOACT_HOME``."""
    www, cards, home = tmp_path / "www", tmp_path / "cards", tmp_path / "home"
    cards.mkdir()
    with LoopbackServer(www) as srv:
        shutil.copy(case.weights, www / case.spec.filename)
        (cards / f"{case.spec.card}.yaml").write_text(yaml.safe_dump(card_dict(case.spec, case.weights)), "utf-8")
        monkeypatch.setenv("VIDEOACT_CARDS", str(cards))
        monkeypatch.setenv("VIDEOACT_MIRROR", srv.url("").rstrip("/"))
        monkeypatch.setenv("VIDEOACT_HOME", str(home))
        monkeypatch.delenv("VIDEOACT_OFFLINE", raising=False)
        zoo.reload_cards()
        yield srv
    zoo.reload_cards()  # lazily re-read once monkeypatch has restored the environment


def test_hub_checkpoint_downloads_loads_and_gives_the_reference_logits(case: Case, served: LoopbackServer) -> None:
    spec = case.spec
    card = zoo.get_model(spec.card)
    assert card.layout == "pytorchvideo" and card.arch == spec.arch
    files = zoo.download(spec.card, progress=False)
    assert served.requests == [spec.filename]
    assert files["weights"].read_bytes() == case.weights.read_bytes()
    assert files["weights"].is_relative_to(zoo.home())

    model = load_pytorchvideo_classifier(card, files)
    assert not model.training and model.multi_label is False
    with torch.no_grad():
        x = case.ref_input if spec.alpha is None else case.ref_input[1]  # ours takes the fast pathway only
        logit_map = model.logit_map(x)
        logits = logit_map.mean(dim=(2, 3, 4))
        probs = model.predict(x)
    assert logits.shape == (1, 400)
    diff = (logits - case.ref_logits).abs().max().item()
    print(f"{spec.arch}: logits max |diff| {diff:.2e} (scale {case.ref_logits.abs().max():.2f}), "
          f"probs max |diff| {(probs - case.ref_probs).abs().max():.2e}")
    assert diff < 1e-4
    torch.testing.assert_close(model.forward(x) if spec.alpha is None else logits, logits)
    assert (probs - case.ref_probs).abs().max() < 1e-6
    assert probs.argmax() == case.ref_probs.argmax()


def test_wrong_checkpoint_is_an_error_naming_the_file_and_keys(case: Case, tmp_path: Path) -> None:
    spec = case.spec
    state = torch.load(case.weights, weights_only=True)["model_state"]
    head_key = next(k for k in state if k.endswith("proj.weight"))
    state["blocks.99.extra"] = state.pop(head_key)
    bad = tmp_path / spec.filename
    torch.save({"model_state": state}, bad)
    card = zoo.ModelCard(name=spec.card, task="recognition", summary="s", licence="l", arch=spec.arch,
                         arch_kwargs=spec.arch_kwargs, layout="pytorchvideo")
    with pytest.raises(ValueError, match=rf"{spec.filename}.*missing keys: {head_key}.*unexpected keys: blocks\.99"):
        load_pytorchvideo_classifier(card, {"weights": bad})


def _load_zoo_recognizer():
    try:
        from videoact.heads.recognition.zoo import load_zoo_recognizer
    except ImportError as exc:
        pytest.skip(f"the zoo recognizer is not there yet ({exc})")
    return load_zoo_recognizer


def test_zoo_recognizer_on_real_frames_matches_the_reference(case: Case, served: LoopbackServer,
                                                             hd_frames: torch.Tensor) -> None:
    """``load_zoo_recognizer`` + ``prepare_clip`` (the card's input) on the uint8 frames == the tutorial's chain."""
    from videoact.heads.recognition.clip import prepare_clip

    spec = case.spec
    recognizer = _load_zoo_recognizer()(spec.card, progress=False)
    assert recognizer.classes == zoo.label_map("kinetics400") and not recognizer.multi_label
    cfg = recognizer.input
    assert (cfg.frames, cfg.frame_step, cfg.short_side, cfg.crop) == (spec.frames, spec.frame_step, spec.side,
                                                                      spec.crop)
    clip = prepare_clip(case.frames, cfg)[None]
    fast = case.ref_input if spec.alpha is None else case.ref_input[1]
    assert clip.shape == fast.shape
    pixel_diff = (clip - fast).abs().max().item()
    hd = prepare_clip(hd_frames, cfg)[None]
    hd_ref = reference_input(hd_frames, dataclasses.replace(spec, alpha=None))
    assert hd.shape == hd_ref.shape
    hd_diff = (hd - hd_ref).abs().max().item()

    model = recognizer.model
    seen = []
    hook = model.blocks[-1].register_forward_hook(lambda m, i, o: seen.append(o))  # the logit map
    try:
        with torch.no_grad():
            probs = model.predict(clip)
    finally:
        hook.remove()
    logits = seen[-1].mean(dim=(2, 3, 4))
    diff = (logits - case.ref_logits).abs().max().item()
    print(f"{spec.arch}: recognizer path (resize: {cfg.resize}): input max |diff| {pixel_diff:.2e} "
          f"(1080p frames: {hd_diff:.2e}), "
          f"logits max |diff| {diff:.2e}, probs max |diff| {(probs - case.ref_probs).abs().max():.2e}")
    assert pixel_diff < 1e-4 and hd_diff < 1e-4, f"the card's input (resize: {cfg.resize}) is not the hub transform"
    assert diff < 1e-4
    assert (probs - case.ref_probs).abs().max() < 1e-6


def test_classifier_builders_are_the_hub_networks() -> None:
    """Every key and shape of the hub builder's state dict (the x3d / slowfast hub functions' hyper-parameters)."""
    import pytorchvideo.models.hub as hub

    for arch, spec in SPECS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = {k: v.shape for k, v in getattr(hub, arch)(pretrained=False).state_dict().items()}
        ours = {k: v.shape for k, v in build_pytorchvideo_classifier(arch, **spec.arch_kwargs).state_dict().items()}
        assert ours == ref, arch
    with pytest.raises(KeyError, match="x3d_xs"):
        build_pytorchvideo_classifier("x3d_l")
