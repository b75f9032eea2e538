"""The four-subnet residual 1D-CNN ensemble (``cnn1d_ensemble``): shapes, fusion, persons, subnets, real training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from videoact.features.skeleton import factory  # noqa: F401  (registers the built-ins)
from videoact.features.skeleton.cnn1d import SUBNETS, CNN1DEnsemble, build_cnn1d_ensemble, ensemble_loss
from videoact.features.skeleton.layouts import get_layout
from videoact.features.skeleton.registry import MODELS


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # the test machine is shared; one thread is also the fastest for these small convolutions
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(n)


def _net(layout: str = "kinect20", num_classes: int = 10, in_channels: int = 3, **kw: object) -> CNN1DEnsemble:
    return build_cnn1d_ensemble(layout=layout, num_classes=num_classes, in_channels=in_channels, **kw)


def test_registered_under_its_name() -> None:
    assert MODELS["cnn1d_ensemble"] is build_cnn1d_ensemble


@pytest.mark.parametrize(("layout", "c", "m", "k"), [("kinect20", 3, 1, 10), ("ntu25", 3, 2, 60), ("coco17", 2, 2, 7)])
def test_output_shapes(layout: str, c: int, m: int, k: int) -> None:
    v = get_layout(layout).num_joints
    net = _net(layout, k, c, num_persons=m)
    assert sum(p.numel() for p in net.parameters()) < 2_000_000
    x = torch.randn(3, c, 24, v, m)
    fused, per = net(x), net(x, return_all=True)
    assert fused.shape == (3, k) and per.shape == (len(SUBNETS), 3, k)
    assert net.subnet_names == list(SUBNETS)
    assert torch.isfinite(fused).all() and torch.isfinite(per).all()
    # the body-part subnet has one branch per part of the layout
    assert list(net.subnets["body_part"].branches) == list(get_layout(layout).parts)


def test_fusion_averages_probabilities_or_logits() -> None:
    net = _net().eval()
    x = torch.randn(4, 3, 30, 20, 1)
    with torch.no_grad():
        per, fused = net(x, return_all=True), net(x)
    mean_prob = sum(np.exp(z) / np.exp(z).sum(1, keepdims=True) for z in per.double().numpy()) / per.shape[0]
    np.testing.assert_allclose(fused.double().softmax(1).numpy(), mean_prob, rtol=1e-5, atol=1e-7)
    net.fusion = "logit"
    with torch.no_grad():
        np.testing.assert_allclose(net(x).numpy(), per.numpy().mean(0), rtol=1e-5, atol=1e-6)


def test_ensemble_loss_is_the_sum_of_subnet_cross_entropies() -> None:
    logits, y = torch.randn(4, 5, 10), torch.randint(0, 10, (5,))
    by_hand = sum(-(z.log_softmax(1)[torch.arange(5), y]).mean() for z in logits)
    assert ensemble_loss(logits, y).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_gradients_reach_every_subnet_and_branch() -> None:
    net = _net()
    x, y = torch.randn(4, 3, 16, 20, 1), torch.randint(0, 10, (4,))
    # one step first: the attention layers' zero-initialised outputs (uniform start) block their inputs' gradient
    ensemble_loss(net(x, return_all=True), y).backward()
    with torch.no_grad():  # plain SGD by hand (torch.optim's first use costs seconds of imports)
        for p in net.parameters():
            p -= 0.1 * p.grad
    names, params = zip(*net.named_parameters(), strict=True)
    per = net(x, return_all=True)
    grads = torch.autograd.grad(ensemble_loss(per, y), params, retain_graph=True)
    dead = [n for n, g in zip(names, grads, strict=True) if not g.abs().sum() > 0]
    assert not dead, dead
    for i, name in enumerate(net.subnet_names):  # and each subnet's logits reach only its own parameters
        grads = torch.autograd.grad(per[i].sum(), params, retain_graph=True, allow_unused=True)
        touched = {n.split(".")[1] for n, g in zip(names, grads, strict=True) if g is not None and g.abs().sum() > 0}
        assert touched == {name}


def test_frame_difference_subnet_sees_motion_only() -> None:
    net = _net().eval()
    x = torch.randn(2, 3, 40, 20, 1)
    shifted = x + torch.tensor([0.7, -1.3, 2.0])[None, :, None, None, None]  # whole body moved, same motion
    with torch.no_grad():
        a, b = net(x, return_all=True), net(shifted, return_all=True)
    i = net.subnet_names.index("frame_difference")
    torch.testing.assert_close(a[i], b[i], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(a[net.subnet_names.index("two_stream")], b[net.subnet_names.index("two_stream")])


def test_body_part_branch_reads_its_own_joints() -> None:
    lay = get_layout("kinect20")
    body = _net().eval().subnets["body_part"]
    x = torch.randn(1, 3, 16, 20, 1, requires_grad=True)
    body.part_features(x, "left_arm").sum().backward()
    used = {lay.joints[v] for v in range(20) if x.grad[0, :, :, v].abs().sum() > 0}
    assert used == {"shoulder_center", "left_shoulder", "left_elbow", "left_wrist", "left_hand"}


def test_attention_maps() -> None:
    net = _net().eval()
    att = net.subnets["attention"]
    x = torch.randn(2, 3, 37, 20, 1)
    with torch.no_grad():
        joint_w, temporal_w = att.attention_maps(x)
        assert joint_w.shape == (2, 1, 20) and temporal_w.shape == (2, 1, 10)  # ceil(37 / 4) steps
        # uniform at initialisation: joint weights 1, temporal weights 1 / T', i.e. plain mean pooling
        torch.testing.assert_close(joint_w, torch.ones_like(joint_w))
        torch.testing.assert_close(temporal_w, torch.full_like(temporal_w, 0.1))
        for p in (*att.joint_att[-1].parameters(), *att.temporal_att[-1].parameters()):
            p.normal_(0, 0.5)
        joint_w, temporal_w = att.attention_maps(x)
    assert joint_w.std() > 0.01 and temporal_w.std() > 0.001
    torch.testing.assert_close(joint_w.mean(-1), torch.ones(2, 1))
    torch.testing.assert_close(temporal_w.sum(-1), torch.ones(2, 1))


def test_persons_padding_and_order_do_not_matter() -> None:
    net = _net("ntu25", 60, num_persons=2).eval()
    a, b = torch.randn(3, 3, 20, 25, 1), torch.randn(3, 3, 20, 25, 1)
    padded = torch.cat([a, torch.zeros_like(a)], -1)  # NTU single-person samples: 2nd person all zeros
    pair, swapped = torch.cat([a, b], -1), torch.cat([b, a], -1)
    with torch.no_grad():
        torch.testing.assert_close(net(padded, return_all=True), net(a, return_all=True), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(net(pair), net(swapped), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(net(pair), net(a), atol=1e-3)


@pytest.mark.parametrize("t", [1, 20, 100])
def test_variable_length(t: int) -> None:
    net = _net()
    x = torch.randn(4, 3, t, 20, 1)
    net.train(t > 1)  # BatchNorm cannot train on a single time step of a tiny batch
    assert net(x).shape == (4, 10) and net(x, return_all=True).shape == (4, 4, 10)
    assert net.subnets["attention"].attention_maps(x)[1].shape == (4, 1, math.ceil(t / 4))


def test_wrong_input_shape_names_the_layout() -> None:
    with pytest.raises(ValueError, match="kinect20"):
        _net()(torch.randn(2, 3, 20, 25, 1))
    with pytest.raises(ValueError, match="fusion"):
        _net(fusion="vote")


# ---------------------------------------------------------------------------------------- real data: NW-UCLA



def test_tiny_model_trains_on_real_nw_ucla(nw_ucla_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = nw_ucla_batch
    assert x.shape == (40, 3, 32, 20, 1) and torch.bincount(y).tolist() == [4] * 10
    net = _net(widths=(16, 32), part_widths=(8, 16))  # two stages: quick on a shared CPU
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = ensemble_loss(net(x, return_all=True), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * losses[0], losses
    net.eval()
    with torch.no_grad():
        acc = (net(x).argmax(1) == y).float().mean().item()
    assert acc >= 0.5, acc  # chance is 0.1
