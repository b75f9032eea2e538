"""Joint layouts, mappings between them, skeleton transforms and input modalities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from videoact.datasets.skeleton import load_msr_action3d, read_nw_ucla_json
from videoact.features.skeleton import transforms as T
from videoact.features.skeleton.layouts import LAYOUTS, convert, get_layout, mapping
from videoact.features.skeleton.modalities import bones, motion, person_weights, stack_modalities
from videoact.registry import UnknownNameError


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_graph_is_a_tree_to_the_centre(name: str) -> None:
    lay = LAYOUTS[name]
    parents = lay.parents
    for j in range(lay.num_joints):  # every joint reaches the centre by following parents
        seen, k = set(), j
        while k != lay.center:
            assert k not in seen, f"{name}: cycle through joint {k}"
            seen.add(k)
            k = parents[k]
    assert np.isfinite(lay.hop_distance()).all()
    a = lay.adjacency("spatial")
    assert a.shape == (3, lay.num_joints, lay.num_joints)
    np.testing.assert_array_equal(a[0], np.eye(lay.num_joints))
    for k in (1, 2):  # column-normalised: what a joint sends is split evenly
        sums = a[k].sum(0)
        assert np.allclose(sums[sums > 0], 1.0)
    perm = lay.mirror_permutation()
    np.testing.assert_array_equal(perm[perm], np.arange(lay.num_joints))
    for i, j in enumerate(perm):
        if lay.joints[i].startswith("left_"):
            assert lay.joints[j] == "right_" + lay.joints[i][5:]
    covered = set().union(*lay.parts.values())
    assert covered == set(range(lay.num_joints)), f"{name}: joints outside every part"


def test_unknown_layout_and_mapping_name_the_choices() -> None:
    with pytest.raises(UnknownNameError, match="unknown joint layout 'openpose18'; known: coco17, kinect20"):
        get_layout("openpose18")
    with pytest.raises(KeyError, match="no joint mapping from sbu15 to coco17"):
        mapping("sbu15", "coco17")


def test_mediapipe_to_kinect_derives_centre_joints_and_min_scores() -> None:
    rng = np.random.default_rng(0)
    mp = get_layout("mediapipe33")
    x = rng.normal(size=(2, 5, 33, 3)).astype(np.float32)
    k = convert(x, "mediapipe33", "kinect20")
    kin = get_layout("kinect20")
    mid_hips = (x[..., mp.index("left_hip"), :] + x[..., mp.index("right_hip"), :]) / 2
    np.testing.assert_allclose(k[..., kin.index("hip_center"), :], mid_hips, atol=1e-6)
    np.testing.assert_array_equal(k[..., kin.index("left_elbow"), :], x[..., mp.index("left_elbow"), :])
    s = rng.random((5, 33)).astype(np.float32)
    ks = convert(s, "mediapipe33", "kinect20", scores=True)
    np.testing.assert_array_equal(ks[:, kin.index("hip_center")],
                                  np.minimum(s[:, mp.index("left_hip")], s[:, mp.index("right_hip")]))
    for src, dst in [("mediapipe33", "ntu25"), ("mediapipe33", "coco17"), ("ntu25", "kinect20"),
                     ("kinect20", "ntu25"), ("coco17", "kinect20"), ("msr20", "kinect20")]:
        assert np.allclose(mapping(src, dst).sum(1), 1.0)


def test_msr_order_maps_onto_kinect_anatomy(shared_data: Path) -> None:
    """MSR Action3D's own joint order, mapped to Kinect v1 order, gives an upright body (y up, head on top)."""
    sample = next(s for s in load_msr_action3d(shared_data / "skeleton" / "msr_action3d") if s.name.startswith("a01"))
    k = convert(sample.keypoints, "msr20", "kinect20")[0, 0]  # (20, 3), first frame
    kin = get_layout("kinect20")
    y = {n: k[kin.index(n), 1] for n in ("head", "shoulder_center", "spine", "hip_center", "left_knee", "left_foot")}
    assert y["head"] > y["shoulder_center"] > y["spine"] > y["hip_center"] > y["left_knee"] > y["left_foot"]


@pytest.fixture(scope="module")
def ucla_sample(shared_data: Path) -> np.ndarray:
    return read_nw_ucla_json(shared_data / "skeleton" / "nw_ucla" / "all_sqe" / "a01_s01_e00_v01.json").keypoints


def test_center_resample_and_trim(ucla_sample: np.ndarray) -> None:
    x = T.center(ucla_sample, "kinect20", "spine")
    np.testing.assert_allclose(x[0, 0, 1], 0.0, atol=1e-6)
    np.testing.assert_allclose(x - x[0, 0, 1], ucla_sample - ucla_sample[0, 0, 1], atol=1e-5)  # a pure shift
    t = x.shape[1]
    r = T.resample(x, 32)
    assert r.shape == (1, 32, 20, 3)
    np.testing.assert_array_equal(r[0, 0], x[0, 0])
    np.testing.assert_array_equal(r[0, -1], x[0, t - 1])
    padded = np.concatenate([np.zeros_like(x[:, :3]), x, np.zeros_like(x[:, :5])], axis=1)
    assert T.trim(padded).shape[1] == t
    rng = np.random.default_rng(0)
    for _ in range(20):
        rr = T.resample(x, 16, rng=rng, crop=(0.5, 1.0))
        # every sampled frame is a real frame, in time order
        idx = [int(np.flatnonzero((x[0] == f).all(axis=(1, 2)))[0]) for f in rr[0]]
        assert idx == sorted(idx) and idx[-1] - idx[0] <= t


def test_rotation_keeps_shape_and_zeros_mirror_is_an_involution(ucla_sample: np.ndarray) -> None:
    x = T.center(ucla_sample, "kinect20")
    x = np.concatenate([x, np.zeros_like(x)])  # a padding person
    rng = np.random.default_rng(1)
    r = T.random_rotate_scale(x, rng, max_degrees=(45, 45, 45), scale=(1.0, 1.0))
    np.testing.assert_allclose(np.linalg.norm(r[0], axis=-1), np.linalg.norm(x[0], axis=-1), atol=1e-5)
    assert not r[1].any()
    np.testing.assert_allclose(T.mirror(T.mirror(x, "kinect20"), "kinect20"), x)


def test_align_view_puts_hips_on_x_and_spine_up(ucla_sample: np.ndarray) -> None:
    kin = get_layout("kinect20")
    rng = np.random.default_rng(2)
    x = T.random_rotate_scale(T.center(ucla_sample, "kinect20"), rng, max_degrees=(80, 80, 80), scale=(1, 1))
    a = T.align_view(x, "kinect20")
    f = a[0, 0]
    hips = f[kin.index("right_hip")] - f[kin.index("left_hip")]
    assert hips[0] > 0 and np.allclose(hips[1:], 0, atol=1e-5)
    up = f[kin.index("shoulder_center")] - (f[kin.index("left_hip")] + f[kin.index("right_hip")]) / 2
    assert up[1] > 0 and abs(up[2]) < 1e-5
    # the original and the rotated copy align to the same pose
    np.testing.assert_allclose(T.align_view(T.center(ucla_sample, "kinect20"), "kinect20"), a, atol=1e-4)


def test_modalities(ucla_sample: np.ndarray) -> None:
    x = torch.from_numpy(T.resample(ucla_sample, 8).transpose(3, 1, 2, 0)).unsqueeze(0)  # (1, 3, 8, 20, 1)
    b = bones(x, "kinect20")
    kin = get_layout("kinect20")
    assert not b[:, :, :, kin.center].any()
    elbow, shoulder = kin.index("left_elbow"), kin.index("left_shoulder")
    torch.testing.assert_close(b[..., elbow, :], x[..., elbow, :] - x[..., shoulder, :])
    m = motion(x)
    torch.testing.assert_close(m[:, :, 0], x[:, :, 1] - x[:, :, 0])
    assert not m[:, :, -1].any()
    assert stack_modalities(x, ["joint", "bone", "joint_motion", "bone_motion"], "kinect20").shape == (1, 12, 8, 20, 1)
    two = torch.cat([x, torch.zeros_like(x)], dim=-1)  # second person is padding
    torch.testing.assert_close(person_weights(two), torch.tensor([[1.0, 0.0]]))
