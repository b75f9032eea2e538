"""Zoo skeleton models: mmaction2's ST-GCN++ checkpoints and test pipeline (features.skeleton.mmaction2,
heads.recognition.zoo_skeleton) against mmaction2's own code, on real keypoints.

Reference: mmaction2 1.2.0's ``STGCN`` and ``GCNHead`` module files, loaded directly (``import mmaction.models``
is broken in 1.2.0: its package ``__init__`` imports a missing ``localizers.drn``), with seeded random weights,
saved as an mmaction2 checkpoint and served by a loopback server to ``videoact.models.download``; and
mmaction2's own pipeline classes (``PreNormalize2D``, ``GenSkeFeat``, ``UniformSampleFrames``, ``PoseDecode``,
``FormatGCNInput``), which import fine from ``mmaction.datasets.transforms``. Keypoints: the real HRNet COCO-17
poses of the UCF101 sample pickle (two persons, 163 frames), and BlazePose run on a real NTU video. The pickle
stores float16; both sides get float32 copies (mmaction2 would normalise float16 in float16).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.loopback import LoopbackServer
from videoact import models
from videoact.features.skeleton import mmaction2 as mm
from videoact.heads.recognition.skeleton import recognize_track
from videoact.heads.recognition.zoo_skeleton import ZooCardError, load_zoo_skeleton

UCF_PICKLE = "skeleton/samples_misc/example_UCF101_skeleton.pkl"
NTU_VIDEO = "videos/S001C001P001R001A001_rgb.avi"
CARD = "test_stgcnpp_2d_joint"
PKG = "_videoact_mmaction2_gcn_ref"
BLAZEPOSE_TO_COCO = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _package(name: str, path: Path) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__path__ = [str(path)]
    sys.modules[name] = mod
    return mod


@pytest.fixture(scope="module")
def ref() -> types.SimpleNamespace:
    """mmaction2's STGCN / GCNHead / Graph classes from their files, under a private package name."""
    mmaction = pytest.importorskip("mmaction")
    pytest.importorskip("mmcv")
    from mmaction.registry import MODELS

    root = Path(mmaction.__file__).parent / "models"
    if f"{PKG}.heads.gcn_head" not in sys.modules:
        _package(PKG, root)
        utils = _package(f"{PKG}.utils", root / "utils")
        graph = _load(f"{PKG}.utils.graph", root / "utils" / "graph.py")
        gcn = _load(f"{PKG}.utils.gcn_utils", root / "utils" / "gcn_utils.py")
        utils.Graph = graph.Graph
        utils.mstcn, utils.unit_gcn, utils.unit_tcn = gcn.mstcn, gcn.unit_gcn, gcn.unit_tcn
        _package(f"{PKG}.backbones", root / "backbones")
        _package(f"{PKG}.losses", root / "losses")
        _package(f"{PKG}.heads", root / "heads")
        try:
            _load(f"{PKG}.backbones.stgcn", root / "backbones" / "stgcn.py")
            _load(f"{PKG}.losses.base", root / "losses" / "base.py")
            _load(f"{PKG}.losses.cross_entropy_loss", root / "losses" / "cross_entropy_loss.py")
            _load(f"{PKG}.heads.base", root / "heads" / "base.py")
            _load(f"{PKG}.heads.gcn_head", root / "heads" / "gcn_head.py")
        except KeyError as exc:  # a class already registered by another import of the same file
            pytest.skip(f"mmaction2's ST-GCN could not be registered: {exc}")
    stgcn, head = sys.modules[f"{PKG}.backbones.stgcn"], sys.modules[f"{PKG}.heads.gcn_head"]

    def build(num_classes: int = 60, layout: str = "coco") -> torch.nn.Module:
        net = torch.nn.Module()
        net.backbone = stgcn.STGCN(graph_cfg=dict(layout=layout, mode="spatial"), gcn_adaptive="init",
                                   gcn_with_res=True, tcn_type="mstcn")
        was = MODELS._imported  # BaseHead builds its loss by name: do not let the registry import mmaction.models
        MODELS._imported = True
        try:
            net.cls_head = head.GCNHead(num_classes=num_classes, in_channels=256)
        finally:
            MODELS._imported = was
        return net

    from mmaction.datasets.transforms import formatting, pose_transforms

    return types.SimpleNamespace(build=build, Graph=sys.modules[f"{PKG}.utils.graph"].Graph,
                                 pt=pose_transforms, fmt=formatting)


def randomize(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in net.state_dict().items():
        if v.dtype.is_floating_point:
            positive = "running_var" in k or k.endswith("bn.weight")
            v = torch.rand(v.shape, generator=gen) + 0.5 if positive else 0.1 * torch.randn(v.shape, generator=gen)
        state[k] = v
    net.load_state_dict(state)
    return net.eval()


def ref_pipeline(ref: types.SimpleNamespace, kp: np.ndarray, score: np.ndarray | None, img_shape: tuple[int, int],
                 *, feats: tuple[str, ...] = ("j",), clip_len: int = 100, num_clips: int = 10) -> np.ndarray:
    """mmaction2's own test pipeline of the stgcnpp ntu60-xsub 2D configs."""
    from mmengine.dataset import Compose

    pipe = Compose([ref.pt.PreNormalize2D(), ref.pt.GenSkeFeat(dataset="coco", feats=list(feats)),
                    ref.pt.UniformSampleFrames(clip_len=clip_len, num_clips=num_clips, test_mode=True),
                    ref.pt.PoseDecode(), ref.fmt.FormatGCNInput(num_person=2)])
    results = {"keypoint": kp.astype(np.float32).copy(), "img_shape": img_shape, "total_frames": kp.shape[1],
               "start_index": 0}
    if score is not None:
        results["keypoint_score"] = score.astype(np.float32).copy()
    state = np.random.get_state()
    try:
        return pipe(results)["keypoint"]
    finally:
        np.random.set_state(state)


@torch.no_grad()
def ref_logits(net: torch.nn.Module, clips: np.ndarray) -> torch.Tensor:
    return net.cls_head(net.backbone(torch.from_numpy(clips)))


@pytest.fixture(scope="module")
def ucf(shared_data: Path) -> dict:
    with open(shared_data / UCF_PICKLE, "rb") as f:
        return pickle.load(f)


@pytest.fixture(scope="module")
def ref_net(ref: types.SimpleNamespace) -> torch.nn.Module:
    return randomize(ref.build(), seed=3)


@pytest.fixture(scope="module")
def zoo(ref_net: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory):
    """The reference checkpoint served on loopback, a card for it in $VIDEOACT_CARDS, fetched and loaded."""
    root = tmp_path_factory.mktemp("zoo")
    www, cards, home = root / "www", root / "cards", root / "home"
    cards.mkdir()
    weights = www / "stgcnpp_test_20240101-00000000.pth"
    www.mkdir()
    torch.save({"state_dict": copy.deepcopy(ref_net.state_dict()), "meta": {}}, weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    (cards / "test_ntu60_labels.yaml").write_text(
        "name: test_ntu60_labels\ntask: labels\nsummary: NTU-60 names\nlicence: test\nnum_classes: 60\n"
        "files:\n  - {role: labels, filename: ntu60.txt, bundled: true}\n", encoding="utf-8")
    (cards / f"{CARD}.yaml").write_text(f"""name: {CARD}
task: skeleton
summary: test ST-GCN++ (random weights)
licence: test
arch: stgcnpp_mmaction2
arch_kwargs: {{graph_layout: coco}}
layout: mmaction2_stgcn
num_classes: 60
labels: test_ntu60_labels
files:
  - role: weights
    filename: {weights.name}
    urls: [https://example.invalid/{weights.name}]
    sha256: {digest}
input: {{keypoint_layout: coco17, clip_len: 100, num_clips: 10, num_person: 2, normalize: PreNormalize2D,
         feats: [j]}}
""", encoding="utf-8")
    mp = pytest.MonkeyPatch()
    with LoopbackServer(www) as srv:
        mp.setenv("VIDEOACT_CARDS", str(cards))
        mp.setenv("VIDEOACT_HOME", str(home))
        mp.setenv("VIDEOACT_MIRROR", srv.url("").rstrip("/"))
        mp.delenv("VIDEOACT_OFFLINE", raising=False)
        models.reload_cards()
        try:
            if not (Path(models.__file__).parent / "labels" / "ntu60.txt").is_file():
                pytest.skip("videoact/models/labels/ntu60.txt is not there yet")
            card = models.get_model(CARD)
            files = models.download(CARD, progress=False)
            assert srv.requests == [weights.name]
            assert files["weights"].parent == home / "models" / CARD
            yield card, load_zoo_skeleton(card, files)
        finally:
            mp.undo()
            models.reload_cards()


# ------------------------------------------------------------------------------------------------ pieces


@pytest.mark.parametrize("layout", ["coco", "nturgb+d", "openpose"])
@pytest.mark.parametrize("mode", ["spatial", "stgcn_spatial"])
def test_graph_equals_mmaction2s(ref: types.SimpleNamespace, layout: str, mode: str) -> None:
    np.testing.assert_array_equal(mm.graph_adjacency(layout, mode), ref.Graph(layout=layout, mode=mode).A)


def test_port_has_mmaction2s_keys_and_outputs(ref: types.SimpleNamespace, ref_net: torch.nn.Module) -> None:
    ours = mm.build_recognizer(num_classes=60)
    assert set(ours.state_dict()) == set(ref_net.state_dict())
    ours.load_state_dict(ref_net.state_dict(), strict=True)
    x = torch.randn(2, 2, 40, 17, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref_net.cls_head(ref_net.backbone(x)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("frames", [163, 150, 100, 60, 7])
@pytest.mark.parametrize("feats", [("j",), ("b",), ("j", "b", "jm", "bm")])
def test_pipeline_equals_mmaction2s(ref: types.SimpleNamespace, ucf: dict, frames: int,
                                    feats: tuple[str, ...]) -> None:
    """Every UniformSampleFrames branch (T >= 2 clip_len, clip_len <= T < 2 clip_len, T < clip_len, T < clips)."""
    kp, sc = ucf["keypoint"][:, :frames].astype(np.float32), ucf["keypoint_score"][:, :frames].astype(np.float32)
    want = ref_pipeline(ref, kp, sc, ucf["img_shape"], feats=feats)
    pipe = mm.MMAction2SkeletonPipeline(feats=feats)
    got = pipe(kp, sc, img_shape=ucf["img_shape"])
    assert got.shape == (10, 2, 100, 17, 3 * len(feats)) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(pipe(kp[:1], sc[:1], img_shape=ucf["img_shape"])[:, 1], 0)  # padded person


# ----------------------------------------------------------------------------------------- the zoo model


def test_zoo_model_equals_mmaction2_on_real_keypoints(ref: types.SimpleNamespace, ref_net: torch.nn.Module,
                                                      ucf: dict, zoo) -> None:
    _, clf = zoo
    assert clf.name == CARD and clf.label_space == "test_ntu60_labels" and len(clf.classes) == 60
    assert clf.classes[0] == "drink water"
    kp, sc = ucf["keypoint"].astype(np.float32), ucf["keypoint_score"].astype(np.float32)
    clips = ref_pipeline(ref, kp, sc, ucf["img_shape"])
    want = ref_logits(ref_net, clips)
    with torch.no_grad():
        got = clf.model(torch.from_numpy(clf.pipeline(kp, sc, img_shape=ucf["img_shape"])))
    diff = (got - want).abs().max().item()
    print(f"logits max |ours - mmaction2| = {diff:.3g} (max |logit| {want.abs().max().item():.3g})")
    assert diff < 1e-4, diff
    probs = clf.predict_keypoints(kp, sc, img_shape=ucf["img_shape"])
    np.testing.assert_allclose(probs, torch.softmax(want, -1).mean(0).numpy(), atol=1e-6)
    assert abs(probs.sum() - 1) < 1e-5


def test_card_errors_name_the_field(zoo) -> None:
    card, _ = zoo
    from dataclasses import replace

    with pytest.raises(ZooCardError, match="clip_length"):
        load_zoo_skeleton(replace(card, input={**card.input, "clip_length": 64}), {})
    with pytest.raises(ZooCardError, match="arch"):
        load_zoo_skeleton(replace(card, arch="vit_b16"), {})


@pytest.fixture(scope="module")
def blazepose_track(shared_data: Path):
    pytest.importorskip("mediapipe", reason="the pose extra is not installed: pip install 'videoact[pose]'")
    from videoact.decode.source import VideoSource
    from videoact.features.pose import build_pose_backend, extract_poses

    src = VideoSource(shared_data / NTU_VIDEO)
    return extract_poses(src, build_pose_backend("mediapipe"), max_frames=24, progress=False)


def test_recognize_track_with_blazepose_equals_mmaction2(ref: types.SimpleNamespace, ref_net: torch.nn.Module,
                                                         zoo, blazepose_track) -> None:
    """BlazePose on a real 1920x1080 NTU video -> COCO-17 pixels + visibility -> windows -> mmaction2's pipeline
    and network: the segments' scores are mmaction2's clip-averaged probabilities."""
    _, clf = zoo
    track = blazepose_track
    assert track.image_size == (1920, 1080) and track.n_frames_with_pose >= 20
    x = clf.track_input(track)
    assert x.shape == (2, track.n_frames_processed, 17, 3)
    f = next(i for i, fr in enumerate(track.frames) if fr.persons)
    person = track.frames[f].persons[0]
    np.testing.assert_array_equal(x[0, f, :, :2], person.keypoints[BLAZEPOSE_TO_COCO])  # pixels
    np.testing.assert_array_equal(x[0, f, :, 2], person.scores[BLAZEPOSE_TO_COCO])  # visibility
    assert not x[1].any()  # one person in the video: the second slot is padding

    segs = recognize_track(track, clf, video_id="ntu", label_space=clf.label_space, source=clf.name,
                           window_s=0.6, stride_s=0.4, top_k=3)
    assert len(segs) and set(segs["label_space"]) == {clf.label_space} and set(segs["source"]) == {CARD}
    worst = 0.0
    for (start, stop), rows in segs.groupby(["frame_start", "frame_end"]):
        lo, hi = int(np.searchsorted(track.frame_indices, start)), int(np.searchsorted(track.frame_indices, stop))
        w = x[:, lo:hi]
        clips = ref_pipeline(ref, w[..., :2], w[..., 2], (1080, 1920))
        p = torch.softmax(ref_logits(ref_net, clips), -1).mean(0).numpy()
        assert set(rows["label_id"]) == set(np.argsort(-p, kind="stable")[:3].tolist())
        worst = max(worst, float(np.abs(rows["score"].to_numpy() - p[rows["label_id"].to_numpy()]).max()))
        assert rows["label"].tolist() == [clf.classes[i] for i in rows["label_id"]]
    print(f"{segs.groupby(['frame_start']).ngroups} windows, max |score - mmaction2| = {worst:.3g}")
    assert worst < 1e-6, worst


@pytest.mark.parametrize("feats", [("j",), ("b",)])
def test_3d_pipeline_equals_mmaction2s(ref: types.SimpleNamespace, shared_data: Path, feats: tuple[str, ...]) -> None:
    """The ntu60 xsub 3D configs: PreNormalize3D, GenSkeFeat(nturgb+d), on one real NTU sample (two bodies)."""
    from mmengine.dataset import Compose

    raw = np.load(shared_data / "skeleton" / "samples_misc" / "example_NTU-RGB-D_sketeton.npy")
    kp = np.ascontiguousarray(raw.transpose(3, 1, 2, 0))  # (C, T, V, M) -> (M, T, V, C)
    pipe = Compose([ref.pt.PreNormalize3D(), ref.pt.GenSkeFeat(dataset="nturgb+d", feats=list(feats)),
                    ref.pt.UniformSampleFrames(clip_len=100, num_clips=10, test_mode=True),
                    ref.pt.PoseDecode(), ref.fmt.FormatGCNInput(num_person=2)])
    state = np.random.get_state()
    try:
        want = pipe({"keypoint": kp.copy(), "total_frames": kp.shape[1], "start_index": 0})["keypoint"]
    finally:
        np.random.set_state(state)
    got = mm.MMAction2SkeletonPipeline(dataset="nturgb+d", feats=feats, normalize="3d")(kp)
    assert got.shape == (10, 2, 100, 25, 3)
    np.testing.assert_array_equal(got, want)
