"""PSUMNet part streams (``psumnet``) and ISTA-Net token attention (``ista``): shapes, streams, fusion,
entity rearrangement, gradients, and a short training run on real NW-UCLA skeletons."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from videoact.features.skeleton import factory  # noqa: F401  (registers the built-ins)
from videoact.features.skeleton.ista import build_ista, rearrange_entities
from videoact.features.skeleton.layouts import LAYOUTS, Layout, get_layout
from videoact.features.skeleton.psumnet import PSUMNet, build_psumnet, part_streams, stream_layout, stream_loss
from videoact.features.skeleton.registry import MODELS


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # the test machine is shared; one thread is also the fastest for these small tensors
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(n)


# (layout, coordinates C, persons M, frames T): NW-UCLA, NTU RGB+D, SBU (2D)
CASES = [("kinect20", 3, 1, 52), ("ntu25", 3, 2, 40), ("sbu15", 2, 2, 25)]


def _input(layout: str, c: int, m: int, t: int, n: int = 3) -> torch.Tensor:
    return torch.randn(n, c, t, get_layout(layout).num_joints, m)  # (N, C, T, V, M)


def test_registered_under_their_names() -> None:
    assert MODELS["psumnet"] is build_psumnet
    assert MODELS["ista"] is build_ista


@pytest.mark.parametrize("name", ["psumnet", "ista"])
@pytest.mark.parametrize(("layout", "c", "m", "t"), CASES)
def test_output_shapes(name: str, layout: str, c: int, m: int, t: int) -> None:
    net = MODELS[name](layout=layout, num_classes=7, in_channels=c, num_persons=m)
    x = _input(layout, c, m, t)
    assert net(x).shape == (3, 7)
    net.eval()
    with torch.no_grad():
        out = net(x)
    assert out.shape == (3, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["psumnet", "ista"])
def test_wrong_input_shape_names_the_layout(name: str) -> None:
    net = MODELS[name](layout="kinect20", num_classes=4)
    with pytest.raises(ValueError, match="kinect20"):
        net(torch.randn(2, 3, 16, 25, 1))  # 25 joints: an ntu25 batch
    with pytest.raises(ValueError, match="kinect20"):
        net(torch.randn(2, 2, 16, 20, 1))  # 2D coordinates into a 3D model


# ------------------------------------------------------------------------------------------------ PSUMNet


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_psumnet_streams_cover_every_joint_and_are_connected(layout: str) -> None:
    lay = get_layout(layout)
    streams = part_streams(layout)
    assert list(streams) == ["body", "arms", "legs"]  # every registered layout has arm and leg parts
    assert streams["body"] == tuple(range(lay.num_joints))
    assert set().union(*map(set, streams.values())) == set(range(lay.num_joints))
    for part, idx in lay.parts.items():  # each limb part lies inside its stream (named independently here)
        if "arm" in part or "hand" in part:
            assert set(idx) <= set(streams["arms"]), part
        if "leg" in part or "foot" in part:
            assert set(idx) <= set(streams["legs"]), part
    for name, joints in streams.items():
        sub = stream_layout(layout, joints, name)
        assert sub.num_joints == len(joints) and len(sub.edges) >= len(joints) - 1
        assert np.isfinite(sub.hop_distance()).all(), f"{layout}:{name} is not connected"


def test_psumnet_layout_without_limb_parts_has_the_body_stream_only() -> None:
    chain = Layout(name="chain3", joints=("a", "b", "c"), edges=((1, 0), (2, 1)), center=0)
    assert part_streams(chain) == {"body": (0, 1, 2)}
    net = PSUMNet(chain, num_classes=4, width=8)
    assert net.stream_names == ["body"]
    assert net(torch.randn(2, 3, 12, 3, 1)).shape == (2, 4)


def _stream_names(layout: str, stream: str) -> set[str]:
    lay = get_layout(layout)
    return {lay.joints[j] for j in part_streams(layout)[stream]}


def _both(*joints: str) -> set[str]:
    return {f"{side}_{j}" for side in ("left", "right") for j in joints}


def test_psumnet_limb_streams_by_name() -> None:
    # PSUMNet's NTU hand stream has 13 joints (spine-shoulder + both arms down to thumb and hand tip) and its leg
    # stream 9 (spine-base + both legs); the names below are written out by hand
    assert _stream_names("ntu25", "arms") == {"spine_shoulder"} | _both("shoulder", "elbow", "wrist", "hand",
                                                                        "hand_tip", "thumb")
    assert _stream_names("ntu25", "legs") == {"spine_base"} | _both("hip", "knee", "ankle", "foot")
    assert _stream_names("kinect20", "arms") == {"shoulder_center"} | _both("shoulder", "elbow", "wrist", "hand")
    assert _stream_names("kinect20", "legs") == {"hip_center"} | _both("hip", "knee", "ankle", "foot")
    # COCO's arms share no joint: the stream grows to the joint that connects them (the nose, its centre)
    assert _stream_names("coco17", "arms") == {"nose"} | _both("shoulder", "elbow", "wrist")


def test_psumnet_stream_reads_only_its_joints() -> None:
    net = build_psumnet(layout="kinect20", num_classes=5, width=16).eval()
    x = _input("kinect20", 3, 1, 20)
    y = x.clone()
    y[:, :, :, get_layout("kinect20").index("left_foot")] += 0.5  # a leaf: changes its joint and bone only
    with torch.no_grad():
        a, b = net.stream_logits(x), net.stream_logits(y)
    body, arms, legs = (net.stream_names.index(s) for s in ("body", "arms", "legs"))
    assert torch.equal(a[arms], b[arms])
    assert not torch.allclose(a[legs], b[legs]) and not torch.allclose(a[body], b[body])


def test_psumnet_fuses_softmax_scores_and_sums_stream_losses() -> None:
    net = build_psumnet(layout="ntu25", num_classes=6, num_persons=2, width=16,
                        stream_weights={"body": 2.0, "arms": 1.0, "legs": 1.0}).eval()
    x = _input("ntu25", 3, 2, 24, n=4)
    target = torch.tensor([0, 3, 5, 1])
    with torch.no_grad():
        z = net.stream_logits(x)
        fused = net(x)
    assert z.shape == (3, 4, 6) and net.stream_names == ["body", "arms", "legs"]
    p = z.softmax(-1)
    expected = torch.log((2 * p[0] + p[1] + p[2]) / 4)
    assert torch.allclose(fused, expected, atol=1e-6)
    assert torch.allclose(fused.exp().sum(1), torch.ones(4), atol=1e-6)  # fused scores are log-probabilities
    manual = sum(F.cross_entropy(z[i], target).item() for i in range(3))
    assert stream_loss(z, target).item() == pytest.approx(manual, rel=1e-6)


def test_psumnet_persons_order_and_padding_do_not_matter() -> None:
    net = build_psumnet(layout="ntu25", num_classes=5, num_persons=2, width=16).eval()
    x = _input("ntu25", 3, 2, 16)
    one = x[..., :1]
    padded = torch.cat([one, torch.zeros_like(one)], dim=-1)  # a one-person sample in a two-person batch
    with torch.no_grad():
        assert torch.allclose(net(x), net(x.flip(-1)), atol=1e-5)
        assert torch.allclose(net(padded), net(one), atol=1e-5)


def test_psumnet_default_size_is_small() -> None:
    n = sum(p.numel() for p in build_psumnet(layout="ntu25", num_classes=60, num_persons=2).parameters())
    assert 0.5e6 < n < 3e6, n


# ------------------------------------------------------------------------------------------------ ISTA-Net


def test_rearrange_entities_permutes_persons_per_sample() -> None:
    n, m = 64, 3
    x = torch.randn(n, 2, 5, 15, m)
    out = rearrange_entities(x, torch.Generator().manual_seed(1))
    orders = set()
    for i in range(n):
        # which input entity landed in each slot: match whole (C, T, V) skeletons
        order = tuple(next(k for k in range(m) if torch.equal(out[i, ..., s], x[i, ..., k])) for s in range(m))
        assert sorted(order) == list(range(m)), order  # a permutation: nobody lost or duplicated
        orders.add(order)
    assert len(orders) >= 4, orders  # 6 orders possible; 64 draws hit most of them
    again = rearrange_entities(x, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)  # seeded: reproducible
    single = torch.randn(4, 3, 5, 20, 1)
    assert torch.equal(rearrange_entities(single), single)


def test_ista_rearranges_entities_in_training_only() -> None:
    net = build_ista(layout="sbu15", num_classes=8, in_channels=2, num_persons=2, dim=32, depth=2)
    x = _input("sbu15", 2, 2, 25, n=8)
    torch.manual_seed(5)
    y_train = net(x)  # training mode: entities shuffled inside forward
    torch.manual_seed(5)
    shuffled = rearrange_entities(x)  # the same draw, done by hand
    assert not torch.equal(shuffled, x)
    net.entity_rearrangement = False
    assert torch.allclose(net(shuffled), y_train, atol=1e-6)
    assert not torch.allclose(net(x), y_train, atol=1e-4)
    net.entity_rearrangement = True
    net.eval()
    with torch.no_grad():
        a, b = net(x), net(x)
        swapped = net(x.flip(-1))
    assert torch.equal(a, b)  # eval: no shuffling, deterministic
    # the entity embedding tells the slots apart, so order is not ignored by construction: that is what the
    # train-time rearrangement is for
    assert not torch.allclose(a, swapped, atol=1e-6)


def test_ista_tokens_of_all_entities_form_one_set() -> None:
    net = build_ista(layout="sbu15", num_classes=8, in_channels=2, num_persons=2, dim=32, depth=2).eval()
    x = _input("sbu15", 2, 2, 25)
    with torch.no_grad():
        h, grid = net.tokens(x)
    assert grid == (2, math.ceil(25 / 4), 15) and h.shape == (3, 2 * 7 * 15, 32)


def test_ista_absent_entity_is_masked_out() -> None:
    # a two-person model on a one-person sample (second person all zeros) must equal attention over the first
    # person's tokens alone: computed here from the tokens with the other entity's tokens dropped
    net = build_ista(layout="ntu25", num_classes=5, num_persons=2, dim=32, depth=2).eval()
    x = _input("ntu25", 3, 2, 16, n=2)
    x[..., 1] = 0
    with torch.no_grad():
        out = net(x)
        h, (_, t, v) = net.tokens(x)
        h = h[:, : t * v]  # entity 0's tokens
        for block in net.blocks:
            h = block(h, (1, t, v))
        ref = net.fc(net.norm(h).mean(1))
    assert torch.allclose(out, ref, atol=1e-5)


# ------------------------------------------------------------------------------------------------ both


def _build_for_grads(name: str) -> tuple[nn.Module, Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]]:
    if name == "psumnet":
        return (build_psumnet(layout="ntu25", num_classes=5, num_persons=2, width=16),
                lambda net, x, y: stream_loss(net.stream_logits(x), y))
    return (build_ista(layout="ntu25", num_classes=5, num_persons=2, dim=32, depth=2),
            lambda net, x, y: F.cross_entropy(net(x), y))


@pytest.mark.parametrize("name", ["psumnet", "ista"])
def test_gradients_reach_every_parameter(name: str) -> None:
    net, loss_fn = _build_for_grads(name)
    x = _input("ntu25", 3, 2, 16, n=4)
    loss_fn(net, x, torch.tensor([0, 1, 2, 3])).backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead


# ---------------------------------------------------------------------------------------- real data: NW-UCLA



@pytest.fixture(scope="module")
def ucla(nw_ucla_batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = nw_ucla_batch
    assert x.shape == (40, 3, 32, 20, 1) and torch.bincount(y).tolist() == [4] * 10
    return x, y


@pytest.mark.parametrize("name", ["psumnet", "ista"])
def test_tiny_model_trains_on_real_nw_ucla(name: str, ucla: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = ucla
    if name == "psumnet":  # three GCN streams cost more per step on CPU: width 8, mini-batches of 20
        net: nn.Module = build_psumnet(layout="kinect20", num_classes=10, width=8)
        batch, lr = 20, 1e-2

        def loss_fn(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            return stream_loss(net.stream_logits(xb), yb) / 3  # mean per stream, comparable with one CE

    else:
        net = build_ista(layout="kinect20", num_classes=10, dim=32, depth=2)
        batch, lr = 40, 3e-3

        def loss_fn(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(net(xb), yb)

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        idx = torch.randperm(len(y), generator=gen)[:batch]
        opt.zero_grad()
        loss = loss_fn(x[idx], y[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(10), abs=0.5)  # starts near chance
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    # 30 fast steps leave the batch-norm running statistics behind the weights; re-estimate them on the
    # training batch (a plain train-mode pass with cumulative averaging), then score in eval mode
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.reset_running_stats()
                mod.momentum = None
        net(x)
        net.eval()
        acc = (net(x).argmax(1) == y).float().mean().item()
    assert acc >= 0.6, acc  # chance is 0.1
