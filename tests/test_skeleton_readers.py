"""Skeleton dataset readers on the real files in ../shared/data/skeleton (values checked against plain string
parsing), plus NTU files built from the documented format for what the real samples lack (two bodies, empty
frames, truncation)."""

from __future__ import annotations

import collections
import json
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from videoact.annotations.formats._common import FormatError, safe_pickle_load
from videoact.datasets.skeleton import (
    MSR_ACTION3D_CLASSES,
    MSR_ACTION_SETS,
    NTU60_CLASSES,
    NTU120_CLASSES,
    NW_UCLA_CLASSES,
    SBU_CLASSES,
    SBU_FOLDS,
    UTKINECT_CLASSES,
    UTKINECT_HALF_SPLITS,
    SkeletonSample,
    frame_labels,
    layout_num_joints,
    load_msr_action3d,
    load_nw_ucla,
    load_sbu_processed,
    load_utkinect,
    msr_split,
    ntu_split,
    nw_ucla_split,
    read_msr_skeleton,
    read_ntu_missing,
    read_ntu_skeleton,
    read_paddle_npy,
    read_pyskl_pickle,
    read_sbu_raw,
    sbu_fold,
    utkinect_split,
    utkinect_trimmed,
)
from videoact.features.skeleton.layouts import LAYOUTS

pytestmark = pytest.mark.shared_data


def _check(sample: SkeletonSample, layout: str, c: int) -> None:
    """The array convention every reader promises: float32 (M, T, V, C), V from the layout."""
    assert sample.layout == layout
    assert sample.keypoints.dtype == np.float32 and sample.keypoints.ndim == 4
    assert sample.keypoints.shape[2] == layout_num_joints(layout)
    if layout in LAYOUTS:
        assert sample.keypoints.shape[2] == LAYOUTS[layout].num_joints
    assert sample.keypoints.shape[3] == c
    if sample.scores is not None:
        assert sample.scores.dtype == np.float32 and sample.scores.shape == sample.keypoints.shape[:3]
    if sample.frames is not None:
        assert sample.frames.shape == (sample.keypoints.shape[1],)


@pytest.fixture(scope="module")
def sk(shared_data: Path) -> Path:
    return shared_data / "skeleton"


# ------------------------------------------------------------------------------------------------------ NTU


def test_ntu_real_files_and_one_joint_by_hand(sk: Path) -> None:
    files = sorted((sk / "ntu" / "skeletons").glob("*.skeleton"))
    assert len(files) == 3
    for f in files:
        s = read_ntu_skeleton(f)
        _check(s, "ntu25", 3)
        lines = f.read_bytes().decode().split("\r\n")
        assert s.keypoints.shape == (1, int(lines[0]), 25, 3)
        assert s.name == f.stem and s.fps == 30.0
        assert s.label == int(f.stem[-3:]) - 1 and s.subject == int(f.stem[9:12]) and s.view == int(f.stem[5:8])
        assert ntu_split(s.name, "xsub60") in ("train", "val")
    # S001C001P001R001A011: one body per frame, so frame t, joint j sits on line 1 + 28 t + 3 + j (0-based)
    f = sk / "ntu" / "skeletons" / "S001C001P001R001A011.skeleton"
    lines = f.read_bytes().decode().split("\r\n")
    t, j = 40, 11
    assert lines[1 + 28 * t] == "1" and lines[1 + 28 * t + 2] == "25"
    tokens = lines[1 + 28 * t + 3 + j].split()
    xyz = read_ntu_skeleton(f)
    color = read_ntu_skeleton(f, coords="color")
    depth = read_ntu_skeleton(f, coords="depth")
    np.testing.assert_array_equal(xyz.keypoints[0, t, j], np.float32([float(x) for x in tokens[0:3]]))
    np.testing.assert_array_equal(depth.keypoints[0, t, j], np.float32([float(x) for x in tokens[3:5]]))
    np.testing.assert_array_equal(color.keypoints[0, t, j], np.float32([float(x) for x in tokens[5:7]]))
    assert color.keypoints.shape == (1, 82, 25, 2)
    assert xyz.meta["tracking_state"][0, t, j] == int(tokens[11])
    assert xyz.meta["body_ids"] == [int(lines[2].split()[0])] == [72057594037931648]


def _joint_line(x: float, y: float, z: float) -> str:
    return f"{x:.6f} {y:.6f} {z:.6f} 250.1 200.2 1000.3 500.4 0.1 0.2 0.3 0.4 2"


def _write_ntu(path: Path, frames: list[list[tuple[str, float]]]) -> None:
    """An NTU .skeleton file: ``frames[t]`` = [(bodyID, offset), ...]; joint j of a body = (offset + j/10, j/10, 3)."""
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for bid, off in bodies:
            out.append(f"{bid} 0 1 1 1 1 0 -0.1 0.1 2")
            out.append("25")
            out += [_joint_line(off + j / 10, j / 10, 3.0) for j in range(25)]
    path.write_bytes(("\r\n".join(out) + "\r\n").encode())


A, B, C = "72057594037931648", "72057594037931999", "72057594037932001"


def test_ntu_two_bodies_tracked_by_id(tmp_path: Path) -> None:
    # A moves a little, B a lot, C not at all; frame 2 has nobody; in frame 3 the SDK lists B before A
    frames = [
        [(A, 0.00), (C, 5.0)],
        [(A, 0.01), (B, 1.0), (C, 5.0)],
        [],
        [(B, 3.0), (A, 0.03), (C, 5.0)],
        [(B, 4.0), (C, 5.0)],
        [(A, 0.05), (B, 5.0), (C, 5.0)],
    ]
    path = tmp_path / "S001C002P003R002A050.skeleton"
    _write_ntu(path, frames)
    s = read_ntu_skeleton(path)  # max_bodies=2: C (no motion) is dropped
    _check(s, "ntu25", 3)
    assert s.keypoints.shape == (2, 6, 25, 3)
    assert (s.label, s.subject, s.view) == (49, 3, 2)
    assert s.meta["body_ids"] == [int(B), int(A)]  # most motion first
    assert s.meta["dropped_body_ids"] == [int(C)]
    np.testing.assert_array_equal(s.meta["bodies_per_frame"], [2, 3, 0, 3, 2, 3])
    b, a = s.keypoints
    np.testing.assert_allclose(b[:, 0, 0], [0, 1.0, 0, 3.0, 4.0, 5.0], atol=1e-6)  # absent in 0 and 2
    np.testing.assert_allclose(a[:, 0, 0], [0.0, 0.01, 0, 0.03, 0, 0.05], atol=1e-6)
    assert not s.keypoints[:, 2].any()  # the empty frame stays, as zeros
    np.testing.assert_allclose(a[3, 7], [0.03 + 0.7, 0.7, 3.0], atol=1e-6)  # slot swap in frame 3 followed
    one = read_ntu_skeleton(path, max_bodies=1)
    assert one.keypoints.shape == (1, 6, 25, 3) and one.meta["body_ids"] == [int(B)]
    np.testing.assert_array_equal(one.keypoints[0], b)


def test_ntu_bad_files(sk: Path, tmp_path: Path) -> None:
    real = (sk / "ntu" / "skeletons" / "S002C001P003R001A003.skeleton").read_bytes().decode()
    lines = real.split("\r\n")
    cut = tmp_path / "S002C001P003R001A003.skeleton"
    cut.write_bytes("\r\n".join(lines[:1000]).encode())  # ends inside a joint block
    with pytest.raises(FormatError, match="truncated") as err:
        read_ntu_skeleton(cut)
    # one body per frame = 28 lines per frame: frame 36 (1-based) has its joints from line 1 + 28 * 35 + 3 + 1
    assert err.value.path == str(cut) and err.value.line == 985 and "frame 36 of 100" in err.value.problem
    bad = list(lines)
    bad[500] = bad[500].replace(bad[500].split()[1], "1.2.3", 1)
    garbled = tmp_path / "garbled.skeleton"
    garbled.write_bytes("\r\n".join(bad).encode())
    with pytest.raises(FormatError) as err:
        read_ntu_skeleton(garbled)
    assert err.value.line == 501 and "1.2.3" in err.value.problem
    extra = tmp_path / "extra.skeleton"
    extra.write_bytes((real + "1\r\n").encode())
    with pytest.raises(FormatError, match="after the last"):
        read_ntu_skeleton(extra)
    with pytest.raises(FileNotFoundError):
        read_ntu_skeleton(tmp_path / "absent.skeleton")


def test_ntu_missing_lists_and_classes(sk: Path, tmp_path: Path) -> None:
    ntu = sk / "ntu"
    m60 = read_ntu_missing(ntu / "NTU_RGBD_samples_with_missing_skeletons.txt")  # 3-line header
    m120 = read_ntu_missing(ntu / "NTU_RGBD120_samples_with_missing_skeletons.txt")
    plain60 = read_ntu_missing(ntu / "metadata" / "ntu60_statistics" / "samples_with_missing_skeletons.txt")
    assert len(m60) == 302 and len(m120) == 535
    assert m60 == plain60 and m60 <= m120
    assert "S001C002P005R002A008" in m60
    bad = tmp_path / "missing.txt"
    bad.write_text("S001C002P005R002A008\nS001C002P006R001A008\nnot a name\n")
    with pytest.raises(FormatError) as err:
        read_ntu_missing(bad)
    assert err.value.line == 3
    assert list(NTU120_CLASSES) == (ntu / "label_map_nturgbd_120.txt").read_text(encoding="utf-8").splitlines()
    assert list(NTU60_CLASSES) == (ntu / "label_map_ntu60.txt").read_text(encoding="utf-8").splitlines()


# -------------------------------------------------------------------------------------------------- NW-UCLA


@pytest.fixture(scope="module")
def nw_ucla(sk: Path) -> tuple[list[SkeletonSample], float]:
    t0 = time.process_time()
    samples = load_nw_ucla(sk / "nw_ucla")
    return samples, time.process_time() - t0


def test_nw_ucla(sk: Path, nw_ucla: tuple[list[SkeletonSample], float]) -> None:
    samples, seconds = nw_ucla
    assert seconds < 5.0, f"loading NW-UCLA took {seconds:.1f} s of CPU"
    assert len(samples) == 1484
    for s in samples:
        _check(s, "kinect20", 3)
        assert s.keypoints.shape[0] == 1 and s.keypoints.shape[1] >= 1
    split = collections.Counter(nw_ucla_split(s) for s in samples)
    assert split == {"train": 1020, "test": 464}
    val = safe_pickle_load(sk / "nw_ucla" / "val_label.pkl")
    test = {s.name: s for s in samples if nw_ucla_split(s) == "test"}
    assert {v["file_name"] for v in val} == set(test) and len(val) == 464
    for v in val:
        s = test[v["file_name"]]
        assert s.label == v["label"] - 1 and s.num_frames == v["length"] and s.view == 3
    counts = collections.Counter(s.label for s in samples)
    assert [counts[k] for k in range(len(NW_UCLA_CLASSES))] == [150, 152, 141, 173, 148, 149, 142, 142, 145, 142]
    first = next(s for s in samples if s.name == "a08_s03_e01_v02")
    assert (first.label, first.subject, first.view, first.meta["action"]) == (6, 3, 2, 8)
    # one value by hand: the first number after "skeletons" is frame 0, joint 0, x
    text = (sk / "nw_ucla" / "all_sqe" / "a01_s01_e00_v01.json").read_text()
    x0 = text.split('"skeletons": [[[', 1)[1].split(",", 1)[0]
    assert samples[0].name == "a01_s01_e00_v01"
    assert samples[0].keypoints[0, 0, 0, 0] == np.float32(float(x0))


def test_nw_ucla_refuses_inconsistent_label(sk: Path, tmp_path: Path) -> None:
    src = sk / "nw_ucla" / "all_sqe" / "a01_s01_e00_v01.json"
    (tmp_path / "all_sqe").mkdir()
    data = json.loads(src.read_text())
    data["label"] = 3
    (tmp_path / "all_sqe" / src.name).write_text(json.dumps(data))
    with pytest.raises(FormatError, match="belongs to action a03"):
        load_nw_ucla(tmp_path)
    with pytest.raises(FileNotFoundError, match="all_sqe"):
        load_nw_ucla(tmp_path / "all_sqe")


# ----------------------------------------------------------------------------------------------- MSR Action3D


def test_msr_action3d(sk: Path) -> None:
    root = sk / "msr_action3d"
    samples = load_msr_action3d(root)
    assert len(samples) == 557
    for s in samples:
        _check(s, "msr20", 3)
        assert s.scores is not None and s.fps == 15.0
    assert len({s.label for s in samples}) == 20 == len(MSR_ACTION3D_CLASSES)
    counts = collections.Counter(s.label for s in samples)
    assert counts[14] == 20 and counts[0] == 27 and counts[7] == 30
    split = collections.Counter(msr_split(s) for s in samples)
    assert split == {"train": 284, "test": 273}
    assert sum(s.meta["zero_frames"] for s in samples) == 252
    assert sum(s.meta["zero_frames"] > 0 for s in samples) == 13
    assert not any(s.meta["all_zero"] for s in samples)
    # one value by hand: line 22 of a01_s01_e01 is frame 1, joint 1
    s = next(s for s in samples if s.name == "a01_s01_e01")
    tokens = (root / "skeleton3D_real_world" / "a01_s01_e01_skeleton3D.txt").read_text().splitlines()[21].split()
    np.testing.assert_array_equal(s.keypoints[0, 1, 1], np.float32([float(x) for x in tokens[:3]]))
    assert s.scores[0, 1, 1] == np.float32(float(tokens[3]))
    assert (s.label, s.subject, s.meta["repetition"]) == (0, 1, 1)
    everything = load_msr_action3d(root, files="all")
    assert len(everything) == 567
    assert [s.name for s in everything if s.meta["all_zero"]] == ["a13_s09_e02"]


def test_msr_action_sets_match_the_mat_file(sk: Path) -> None:
    sio = pytest.importorskip("scipy.io")
    sets = sio.loadmat(sk / "msr_action3d" / "meta" / "tr_te_splits.mat")["action_sets"]
    for k, name in enumerate(("AS1", "AS2", "AS3")):
        assert [a - 1 for a in sets[0, k].ravel().tolist()] == list(MSR_ACTION_SETS[name])


def test_msr_bad_line(sk: Path, tmp_path: Path) -> None:
    lines = (sk / "msr_action3d" / "skeleton3D_real_world" / "a01_s01_e01_skeleton3D.txt").read_text().splitlines()
    lines[44] = " ".join(lines[44].split()[:3])  # 3 numbers, and 5 on the next line: the count still fits
    lines[45] = lines[45] + " 1.0"
    bad = tmp_path / "a01_s01_e01_skeleton3D.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as err:
        read_msr_skeleton(bad)
    assert err.value.line == 45 and "expected 4 numbers" in err.value.problem


# --------------------------------------------------------------------------------------------------- UTKinect


@pytest.fixture(scope="module")
def utk(sk: Path) -> list:
    return load_utkinect(sk / "utkinect_action3d")


def test_utkinect_recordings(sk: Path, utk: list) -> None:
    assert len(utk) == 20
    for r in utk:
        _check(r, "kinect20", 3)
        assert r.keypoints.shape[0] == 1 and r.label is None
        assert (np.diff(r.frames) >= 0).all()
    assert sum(len(r.segments) for r in utk) == 199
    assert sum(r.meta["repeated_frames"] for r in utk) == 542
    assert {r.name: r.meta["unlabelled"] for r in utk if r.meta["unlabelled"]} == {"s10_e02": ["carry"]}
    # first rows of joints_s01_e01.txt by hand (two rows share frame number 190)
    lines = (sk / "utkinect_action3d" / "joints" / "joints_s01_e01.txt").read_text().splitlines()
    r = utk[0]
    assert r.name == "s01_e01" and r.subject == 1 and r.num_frames == len(lines) == 560
    for row in (0, 1):
        tokens = lines[row].split()
        assert r.frames[row] == int(tokens[0]) == 190
        np.testing.assert_array_equal(r.keypoints[0, row].ravel(), np.float32([float(x) for x in tokens[1:]]))
    assert r.segments[0] == (0, 252, 390)


def test_utkinect_trimmed_and_frame_labels(sk: Path, utk: list) -> None:
    trimmed = utkinect_trimmed(utk)
    assert len(trimmed) == 199
    counts = collections.Counter(s.label for s in trimmed)
    assert counts == {k: 20 for k in range(10) if k != 4} | {4: 19}
    for s in trimmed:
        _check(s, "kinect20", 3)
        assert s.meta["start_frame"] <= s.frames.min() and s.frames.max() <= s.meta["end_frame"]
    walk = next(s for s in trimmed if s.name == "s01_e01_walk")
    lines = (sk / "utkinect_action3d" / "joints" / "joints_s01_e01.txt").read_text().splitlines()
    rows = [i for i, line in enumerate(lines) if 252 <= int(line.split()[0]) <= 390]
    assert walk.num_frames == len(rows) and walk.label == UTKINECT_CLASSES.index("walk")
    np.testing.assert_array_equal(walk.keypoints[0], utk[0].keypoints[0, rows])
    labels = frame_labels(utk[0])
    assert labels.shape == (560,)
    inside = np.zeros(560, dtype=bool)
    for _, a, b in utk[0].segments:
        inside |= (utk[0].frames >= a) & (utk[0].frames <= b)
    assert ((labels == -1) == ~inside).all()
    # pull 1640-1686 and push 1686-1748 share frame 1686: the later start (push) owns it
    at = utk[0].frames == 1686
    assert at.any() and (labels[at] == UTKINECT_CLASSES.index("push")).all()
    assert (labels[utk[0].frames == 1684] == UTKINECT_CLASSES.index("pull")).all()


def test_utkinect_modified_labels_and_splits(sk: Path) -> None:
    mod = load_utkinect(sk / "utkinect_action3d", labels="actionLabel_modified.txt")
    assert next(r for r in mod if r.name == "s01_e02").segments[0] == (0, 154, 270)
    assert utkinect_split(mod[0], split=0) == "test" and utkinect_split(mod[2], split=0) == "train"
    sio = pytest.importorskip("scipy.io")
    tr = sio.loadmat(sk / "utkinect_action3d" / "meta" / "tr_te_splits.mat")["tr_subjects"]
    assert [tuple(row) for row in tr.tolist()] == list(UTKINECT_HALF_SPLITS)


# -------------------------------------------------------------------------------------------------------- SBU


def test_sbu(sk: Path) -> None:
    root = sk / "sbu_kinect_interaction_partial"
    samples = load_sbu_processed(root / "val_2d_resampled25.json")
    assert len(samples) == 84
    for s in samples:
        _check(s, "sbu15", 2)
        assert s.keypoints.shape == (2, 25, 15, 2)
    counts = collections.Counter(s.label for s in samples)
    assert counts == {0: 9, 1: 9, 2: 10, 3: 15, 4: 6, 5: 10, 6: 14, 7: 11} and len(SBU_CLASSES) == 8
    x0 = (root / "val_2d_resampled25.json").read_text().split("[[[[[", 1)[1].split(",", 1)[0]
    assert samples[0].keypoints[0, 0, 0, 0] == np.float32(float(x0))

    raw = read_sbu_raw(root / "raw_samples" / "skeleton_pos.txt")
    assert len(raw) == 1 and raw[0].keypoints.shape == (2, 21, 15, 3)
    _check(raw[0], "sbu15", 3)
    tokens = (root / "raw_samples" / "skeleton_pos.txt").read_text().splitlines()[0].split(",")
    assert raw[0].frames[0] == int(tokens[0]) == 278
    np.testing.assert_array_equal(raw[0].keypoints[0, 0].ravel(), np.float32([float(v) for v in tokens[1:46]]))
    np.testing.assert_array_equal(raw[0].keypoints[1, 0].ravel(), np.float32([float(v) for v in tokens[46:91]]))
    glued = read_sbu_raw(root / "raw_samples" / "skeleton_pos_2.txt")
    assert [s.name for s in glued] == ["skeleton_pos_2_0", "skeleton_pos_2_1"]
    assert [s.num_frames for s in glued] == [29, 17]
    assert glued[1].frames[0] == 350 and glued[0].frames[-1] == 594
    assert sorted(s for fold in SBU_FOLDS for s in fold) == sorted(set(s for fold in SBU_FOLDS for s in fold))
    assert sum(len(f) for f in SBU_FOLDS) == 21 and sbu_fold("s07s03") == 3


# ------------------------------------------------------------------------------------ pyskl / PaddleVideo


def test_pyskl_pickles(sk: Path, tmp_path: Path) -> None:
    path = sk / "samples_misc" / "example_UCF101_skeleton.pkl"
    (ucf,) = read_pyskl_pickle(path)
    _check(ucf, "coco17", 2)
    raw = safe_pickle_load(path)
    assert ucf.name == "v_ApplyEyeMakeup_g01_c01" and ucf.label == 0
    assert ucf.keypoints.shape == (2, 163, 17, 2) and raw["keypoint"].dtype == np.float16
    np.testing.assert_array_equal(ucf.keypoints, raw["keypoint"].astype(np.float32))
    np.testing.assert_array_equal(ucf.scores, raw["keypoint_score"].astype(np.float32))
    assert ucf.meta["img_shape"] == (256, 340) and ucf.meta["total_frames"] == 163

    ntu = read_ntu_skeleton(sk / "ntu" / "skeletons" / "S002C001P003R001A003.skeleton")
    ann3d = {"frame_dir": ntu.name, "label": ntu.label, "keypoint": ntu.keypoints.astype(np.float16),
             "total_frames": ntu.num_frames}  # fmt: skip
    whole = {"split": {"xsub_train": [ntu.name], "xsub_val": [ucf.name]}, "annotations": [ann3d, raw]}
    (tmp_path / "whole.pkl").write_bytes(pickle.dumps(whole))
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([ann3d, raw]))
    a, b = read_pyskl_pickle(tmp_path / "whole.pkl")
    _check(a, "ntu25", 3)
    assert (a.name, a.label, a.subject, a.view, a.meta["splits"]) == (ntu.name, 2, 3, 1, ["xsub_train"])
    assert b.layout == "coco17" and b.meta["splits"] == ["xsub_val"] and b.subject is None
    np.testing.assert_array_equal(a.keypoints, ntu.keypoints.astype(np.float16).astype(np.float32))
    assert [s.name for s in read_pyskl_pickle(tmp_path / "list.pkl")] == [ntu.name, ucf.name]
    with pytest.raises(FormatError, match="joints"):
        read_pyskl_pickle(tmp_path / "list.pkl", layout="ntu25")  # the 17-joint sample does not fit


def test_paddle_npy(sk: Path, tmp_path: Path) -> None:
    path = sk / "samples_misc" / "example_NTU-RGB-D_sketeton.npy"
    s = read_paddle_npy(path, "ntu25")
    _check(s, "ntu25", 3)
    arr = np.load(path)
    assert s.keypoints.shape == (1, 72, 25, 3) and s.meta["padded_shape"] == (3, 300, 25, 2)
    np.testing.assert_array_equal(s.keypoints[0, 10, 4], arr[:, 10, 4, 0])
    assert not arr[:, 72:].any() and not arr[..., 1].any()  # what was dropped was padding
    fsd = read_paddle_npy(sk / "samples_misc" / "fsd10_example_skeleton.npy", "unknown25", score_channel=2)
    _check(fsd, "unknown25", 2)
    assert fsd.keypoints.shape == (1, 117, 25, 2) and fsd.scores is not None
    raw = np.load(sk / "samples_misc" / "fsd10_example_skeleton.npy")
    assert fsd.scores[0, 3, 1] == np.float32(raw[2, 3, 1, 0])
    # zero frames inside the sequence stay; only the trailing padding goes
    x = np.zeros((3, 10, 17, 2), np.float32)
    x[:, [0, 1, 4], :, 0] = 1.0
    np.save(tmp_path / "gap.npy", x)
    gap = read_paddle_npy(tmp_path / "gap.npy", "coco17")
    assert gap.keypoints.shape == (1, 5, 17, 3) and not gap.keypoints[0, 2:4].any()
    with pytest.raises(ValueError, match="layout 'coco17' has 17"):
        read_paddle_npy(path, "coco17")
