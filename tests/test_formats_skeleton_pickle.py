"""mmaction2 / pyskl skeleton pickles, NTU label maps, NTU names and splits, on real shared files."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from videoact.annotations import store
from videoact.annotations.formats import FormatError, export_annotations, import_annotations, safe_pickle_load
from videoact.annotations.formats.skeleton_pickle import ntu_split, ntu_split_dict, parse_ntu_name
from videoact.annotations.tables import Tables

UCF = "skeleton/samples_misc/example_UCF101_skeleton.pkl"
NTU = "skeleton/ntu"


def _via_store(tables: Tables, tmp: Path) -> Tables:
    store.write_tables(tmp, tables, manifest={"import": {"meta": tables.meta}})
    return store.load(tmp)


def _assert_identical(a: Any, b: Any, where: str = "") -> None:
    """Value-identical: same types, keys in the same order, arrays equal with the same dtype and shape."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            _assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert np.array_equal(a, b, equal_nan=True), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _round_trip(src: Path, tmp: Path, **options: Any) -> Tables:
    """Import, export, compare; then again through the Parquet store."""
    t = import_annotations("skeleton-pickle", src, **options)
    original = safe_pickle_load(src)
    out = export_annotations("skeleton-pickle", t, tmp / "out.pkl")[0]
    _assert_identical(original, safe_pickle_load(out))
    out2 = export_annotations("skeleton-pickle", _via_store(t, tmp / "store"), tmp / "out2.pkl")[0]
    _assert_identical(original, safe_pickle_load(out2))
    return t


# ---------------------------------------------------------------------------------------------- UCF101 (real)


def test_ucf101_pickle_imports(shared_data: Path) -> None:
    t = import_annotations("skeleton-pickle", shared_data / UCF, fps=25)
    v, s, k = t.videos.iloc[0], t.segments.iloc[0], t.skeletons
    assert (v["video_id"], v["n_frames"], v["height"], v["width"]) == (
        "v_ApplyEyeMakeup_g01_c01",
        163,
        256,
        340,
    )
    assert (s["label_id"], s["frame_start"], s["frame_end"], s["t_end_s"]) == (0, 0, 163, 163 / 25)
    assert len(k) == 2 * 163 and set(k["layout"]) == {"coco17"} and set(k["coord_space"]) == {"image_px"}
    raw = safe_pickle_load(shared_data / UCF)
    row = k[(k["person_id"] == 1) & (k["frame"] == 160)].iloc[0]
    np.testing.assert_array_equal(row["keypoints"], raw["keypoint"][1, 160].reshape(-1).astype(np.float32))
    np.testing.assert_array_equal(row["scores"], raw["keypoint_score"][1, 160].astype(np.float32))
    assert row["t_s"] == pytest.approx(160 / 25) and row["dims"] == 2


def test_ucf101_pickle_round_trip_value_identical(shared_data: Path, tmp_path: Path) -> None:
    t = _round_trip(shared_data / UCF, tmp_path)
    assert t.meta["skeleton-pickle"]["container"] == "single"


def test_ucf101_without_keypoints_keeps_the_rest(shared_data: Path, tmp_path: Path) -> None:
    t = import_annotations("skeleton-pickle", shared_data / UCF, keypoints="false")
    assert len(t.skeletons) == 0
    back = safe_pickle_load(export_annotations("skeleton-pickle", t, tmp_path / "o.pkl")[0])
    raw = safe_pickle_load(shared_data / UCF)
    _assert_identical({k: v for k, v in raw.items() if not k.startswith("keypoint")}, back)


# ----------------------------------------------------------------------------------------- NTU (real samples)


def _read_ntu_xyz(path: Path) -> np.ndarray:
    """x, y, z of every body slot of a raw ``.skeleton`` file as (M, T, 25, 3) (layout in spec §2)."""
    lines = path.read_text().splitlines()
    n_frames, pos = int(lines[0]), 1
    frames: list[list[np.ndarray]] = []
    for _ in range(n_frames):
        n_bodies, pos = int(lines[pos]), pos + 1
        bodies = []
        for _ in range(n_bodies):
            n_joints = int(lines[pos + 1])
            joints = [[float(x) for x in lines[pos + 2 + j].split()[:3]] for j in range(n_joints)]
            bodies.append(np.asarray(joints))
            pos += 2 + n_joints
        frames.append(bodies)
    m = max(len(b) for b in frames)
    out = np.zeros((m, n_frames, 25, 3), dtype=np.float32)
    for t, bodies in enumerate(frames):
        for i, body in enumerate(bodies):
            out[i, t] = body
    return out


@pytest.fixture(scope="module")
def ntu_pickle(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full NTU60-style 3D pickle of the real ``.skeleton`` samples: label = A - 1, xsub/xview splits."""
    files = sorted((shared_data / NTU / "skeletons").glob("*.skeleton"))
    assert len(files) >= 3
    anns = []
    for f in files:
        kp = _read_ntu_xyz(f)
        anns.append(
            {
                "frame_dir": f.stem,
                "label": parse_ntu_name(f.stem)["action"] - 1,
                "keypoint": kp,
                "total_frames": kp.shape[1],
            }
        )
    path = tmp_path_factory.mktemp("ntu") / "ntu60_3danno.pkl"
    path.write_bytes(
        pickle.dumps({"split": ntu_split_dict([a["frame_dir"] for a in anns], "ntu60"), "annotations": anns})
    )
    return path


def test_ntu_pickle_imports(shared_data: Path, ntu_pickle: Path) -> None:
    t = import_annotations("skeleton-pickle", ntu_pickle, label_map=shared_data / NTU / "label_map_ntu60.txt")
    s = t.segments.set_index("video_id")
    assert (
        s.loc["S001C001P001R001A011", "label_id"] == 10
        and s.loc["S001C001P001R001A011", "label"] == "reading"
    )
    assert s.loc["S002C001P003R001A003", "label"] == "brushing teeth" and set(s["label_space"]) == {"ntu60"}
    assert s.loc["S001C001P001R001A011", "frame_end"] == 82  # first line of the real file: 82 frames
    assert s.loc["S001C001P001R001A011", "t_end_s"] == pytest.approx(82 / 30)  # NTU default 30 fps
    v = t.videos.set_index("video_id")
    assert v.loc["S001C001P001R001A011", "split"] == "xsub_train,xview_val"  # P001 trains, C001 tests
    assert v.loc["S004C002P003R001A017", "split"] == "xsub_val,xview_train"  # P003 tests, C002 trains
    k = t.skeletons
    assert set(k["layout"]) == {"ntu25"} and set(k["coord_space"]) == {"world_m"} and set(k["dims"]) == {3}
    assert k["scores"].isna().all()  # 3D pickles have no keypoint_score
    assert len(t.labels) == 60


def test_ntu_pickle_round_trip_value_identical(ntu_pickle: Path, tmp_path: Path) -> None:
    t = _round_trip(ntu_pickle, tmp_path)
    assert t.meta["skeleton-pickle"]["splits"] == ["xsub_train", "xsub_val", "xview_train", "xview_val"]
    assert "split_lists" not in t.meta["skeleton-pickle"]  # rebuilt from videos.split


def test_bare_list_with_odd_values_round_trips(ntu_pickle: Path, tmp_path: Path) -> None:
    data = safe_pickle_load(ntu_pickle)
    anns = data["annotations"]
    anns[0]["label"] = np.int64(anns[0]["label"])  # numpy scalar, tuple shape, extra array and dict keys
    anns[1]["img_shape"] = (1080, 1920)
    anns[1]["box_score"] = np.linspace(0, 1, 6, dtype=np.float16).reshape(2, 3)
    anns[2]["extra"] = {"__odd": [1, (2, 3)], 4: {5, 6}}
    src = tmp_path / "list.pkl"
    src.write_bytes(pickle.dumps(anns))
    t = _round_trip(src, tmp_path)
    assert t.videos.set_index("video_id").loc["S002C001P003R001A003", "width"] == 1920


def test_full_pickle_with_explicit_split_order_round_trips(ntu_pickle: Path, tmp_path: Path) -> None:
    data = safe_pickle_load(ntu_pickle)
    names = [a["frame_dir"] for a in data["annotations"]]
    data["split"] = {"test": names[::-1], "never": [], "missing_sample": ["S017C003P020R002A060"]}
    data["version"] = (1, 0)
    src = tmp_path / "explicit.pkl"
    src.write_bytes(pickle.dumps(data))
    t = _round_trip(src, tmp_path)
    assert set(t.meta["skeleton-pickle"]["split_lists"]) == {"test", "missing_sample"}


def test_export_of_pipeline_skeletons(tmp_path: Path) -> None:
    """Rows that never came from a pickle (a pose head): shapes from the rows, float32, split from videos."""
    rng = np.random.default_rng(0)
    kp = rng.random((2, 4, 17, 2), dtype=np.float32)
    rows = [
        {
            "video_id": "clip",
            "frame": t,
            "person_id": m,
            "layout": "coco17",
            "dims": 2,
            "coord_space": "image_px",
            "keypoints": kp[m, t].reshape(-1),
            "scores": np.full(17, 0.5, np.float32),
            "source": "pose@1",
        }
        for m in range(2)
        for t in range(4)
        if (m, t) != (1, 3)
    ]
    videos = pd.DataFrame(
        [{"video_id": "clip", "n_frames": 5, "height": 480, "width": 640, "split": "val", "source": "probe"}]
    )
    segments = pd.DataFrame(
        [
            {
                "video_id": "clip",
                "task": "recognition",
                "t_start_s": 0.0,
                "t_end_s": 1.0,
                "label_id": 4,
                "score": 1.0,
                "source": "gt",
            }
        ]
    )
    t = Tables(videos=videos, segments=segments, skeletons=pd.DataFrame(rows)).validated()
    data = safe_pickle_load(export_annotations("skeleton-pickle", t, tmp_path / "o.pkl")[0])
    assert data["split"] == {"val": ["clip"]}
    ann = data["annotations"][0]
    assert (ann["frame_dir"], ann["label"], ann["total_frames"], ann["img_shape"]) == (
        "clip",
        4,
        5,
        (480, 640),
    )
    assert ann["keypoint"].shape == (2, 5, 17, 2) and ann["keypoint"].dtype == np.float32
    expected = np.zeros((2, 5, 17, 2), np.float32)
    expected[:, :4] = kp
    expected[1, 3] = 0  # the row that was never there stays zero
    np.testing.assert_array_equal(ann["keypoint"], expected)
    assert ann["keypoint_score"].shape == (2, 5, 17) and ann["keypoint_score"][0, 0, 0] == np.float32(0.5)


# ------------------------------------------------------------------------------------------ malformed pickles


class _Evil:
    """Pickles to a call of ``Path.touch`` that would create a marker file if the loader ran it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_pickle_with_a_foreign_class_is_refused_not_run(ntu_pickle: Path, tmp_path: Path) -> None:
    data = safe_pickle_load(ntu_pickle)
    marker = tmp_path / "pwned"
    data["annotations"][1]["note"] = _Evil(marker)
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps(data))
    with pytest.raises(FormatError, match=r"evil\.pkl: not a plain-data pickle \(refusing to load pathlib"):
        import_annotations("skeleton-pickle", bad)
    assert not marker.exists()


def _broken(ntu_pickle: Path, kind: str) -> Any:
    data = safe_pickle_load(ntu_pickle)
    ann = data["annotations"][1]
    if kind == "label":
        del ann["label"]
    elif kind == "ndim":
        ann["keypoint"] = ann["keypoint"][0]
    elif kind == "channels":
        ann["keypoint"] = np.zeros((1, 5, 25, 4), dtype=np.float32)
    elif kind == "score":
        ann["keypoint_score"] = np.zeros((1, 3, 25), dtype=np.float32)
    elif kind == "dup":
        ann["frame_dir"] = data["annotations"][0]["frame_dir"]
    elif kind == "labelmap":
        ann["label"] = 60
    elif kind == "top":
        data = {"samples": data["annotations"]}
    elif kind == "frames":
        ann["total_frames"] = "82"
    return data


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("label", "annotations[1] (frame_dir='S002C001P003R001A003'): missing 'label'"),
        (
            "ndim",
            "annotations[1] (frame_dir='S002C001P003R001A003'): 'keypoint' must be a numpy array "
            "(M, T, V, C)",
        ),
        ("channels", "with C 2 or 3, got (1, 5, 25, 4)"),
        ("score", "'keypoint_score' must have shape (M, T, V) = (1, 100, 25), got (1, 3, 25)"),
        (
            "dup",
            "annotations[1] (frame_dir='S001C001P001R001A011'): duplicate frame_dir, first at annotations[0]",
        ),
        ("labelmap", "annotations[1] (frame_dir='S002C001P003R001A003'): unknown label 60"),
        ("top", "expected {'split', 'annotations'}, a list of annotations, or one annotation dict"),
        ("frames", "'total_frames' must be a non-negative integer, got '82'"),
    ],
)
def test_malformed_pickles(
    shared_data: Path, ntu_pickle: Path, tmp_path: Path, kind: str, problem: str
) -> None:
    bad = tmp_path / "bad_anno.pkl"
    bad.write_bytes(pickle.dumps(_broken(ntu_pickle, kind)))
    with pytest.raises(FormatError) as exc:
        import_annotations("skeleton-pickle", bad, label_map=shared_data / NTU / "label_map_ntu60.txt")
    assert "bad_anno.pkl: " in str(exc.value) and problem in str(exc.value)


# ------------------------------------------------------------------------------------------------- label maps


@pytest.mark.parametrize(
    ("name", "space", "n"),
    [("label_map_ntu60.txt", "ntu60", 60), ("label_map_nturgbd_120.txt", "ntu120", 120)],
)
def test_ntu_labelmap_round_trip_byte_identical(
    shared_data: Path, tmp_path: Path, name: str, space: str, n: int
) -> None:
    src = shared_data / NTU / name
    t = import_annotations("ntu-labelmap", src)
    names = t.label_names(space)
    assert len(names) == n and names[0] == "drink water" and names[59] == "walking apart from each other"
    out = export_annotations("ntu-labelmap", t, tmp_path / "out.txt")[0]
    assert out.read_bytes() == src.read_bytes()
    out2 = export_annotations("ntu-labelmap", _via_store(t, tmp_path / "store"), tmp_path / "out2.txt")[0]
    assert out2.read_bytes() == src.read_bytes()
    assert set(import_annotations("ntu-labelmap", src, label_space="mine").labels["label_space"]) == {"mine"}


def test_ntu_labelmap_crlf_without_final_newline_round_trips(shared_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "crlf.txt"
    src.write_bytes((shared_data / NTU / "label_map_ntu60.txt").read_bytes().replace(b"\n", b"\r\n")[:-2])
    t = import_annotations("ntu-labelmap", src)
    assert t.label_names("ntu60")[59] == "walking apart from each other"
    assert export_annotations("ntu-labelmap", t, tmp_path / "o.txt")[0].read_bytes() == src.read_bytes()


@pytest.mark.parametrize(
    ("edit", "line", "problem"),
    [
        (lambda s: s.replace("brushing teeth\n", "\n"), 3, "empty class name"),
        (
            lambda s: s.replace("brushing teeth\n", "drink water\n"),
            3,
            "duplicate class name 'drink water' (first on line 1)",
        ),
    ],
)
def test_ntu_labelmap_malformed(
    shared_data: Path, tmp_path: Path, edit: Any, line: int, problem: str
) -> None:
    bad = tmp_path / "bad_map.txt"
    bad.write_text(edit((shared_data / NTU / "label_map_ntu60.txt").read_text()))
    with pytest.raises(FormatError) as exc:
        import_annotations("ntu-labelmap", bad)
    assert f"bad_map.txt:{line}: {problem}" in str(exc.value)


# ------------------------------------------------------------------------------------------- names and splits


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("S001C002P003R002A013", {"setup": 1, "camera": 2, "performer": 3, "replication": 2, "action": 13}),
        (
            "S032C003P106R002A120.skeleton",
            {"setup": 32, "camera": 3, "performer": 106, "replication": 2, "action": 120},
        ),
        (
            "videos/S001C001P001R001A001_rgb.avi",
            {"setup": 1, "camera": 1, "performer": 1, "replication": 1, "action": 1},
        ),
    ],
)
def test_parse_ntu_name(name: str, expected: dict[str, int]) -> None:
    assert parse_ntu_name(name) == expected


@pytest.mark.parametrize(
    ("name", "bench", "split"),
    [
        ("S001C001P001R001A001", "xsub60", "train"),
        ("S001C001P003R001A001", "xsub60", "val"),
        ("S001C001P001R001A001", "xview60", "val"),
        ("S001C002P003R001A001", "xview60", "train"),
        ("S001C003P003R001A001", "xview60", "train"),
        ("S018C001P045R001A061", "xsub120", "train"),
        ("S018C001P044R001A061", "xsub120", "val"),
        ("S001C001P038R001A001", "xsub120", "train"),
        ("S002C001P003R001A003", "xset120", "train"),
        ("S031C001P001R001A001", "xset120", "val"),
    ],
)
def test_ntu_split(name: str, bench: str, split: str) -> None:
    assert ntu_split(name, bench) == split


@pytest.mark.parametrize(
    ("name", "bench", "problem"),
    [
        ("S018C001P045R001A061", "xsub60", "not an NTU60 sample"),
        ("S001C001P001R001A001", "xsub", "unknown NTU benchmark"),
        ("A001S001", "xsub60", r"is not an NTU RGB\+D sample name"),
    ],
)
def test_ntu_split_refuses(name: str, bench: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ntu_split(name, bench)


@pytest.mark.parametrize(
    ("dataset", "counts"),
    [
        # published sample counts of the four benchmarks, without the samples that have no skeleton
        ("ntu60", {"xsub_train": 40091, "xsub_val": 16487, "xview_train": 37646, "xview_val": 18932}),
        ("ntu120", {"xsub_train": 63026, "xsub_val": 50919, "xset_train": 54468, "xset_val": 59477}),
    ],
)
def test_ntu_splits_match_the_official_sample_lists(
    shared_data: Path, dataset: str, counts: dict[str, int]
) -> None:
    stats = shared_data / NTU / "metadata" / f"{dataset}_statistics"
    names = (stats / "skes_available_name.txt").read_text().split()
    for field in ("setup", "camera", "performer", "replication"):
        values = [int(x) for x in (stats / f"{field}.txt").read_text().split()]
        assert [parse_ntu_name(n)[field] for n in names] == values
    labels = [int(x) for x in (stats / "label.txt").read_text().split()]
    assert [parse_ntu_name(n)["action"] for n in names] == labels
    split = ntu_split_dict(names, dataset)
    assert {k: len(v) for k, v in split.items()} == counts
    assert not set(split["xsub_train"]) & set(split["xsub_val"])
    assert sum(map(len, split.values())) == 2 * len(names)  # every sample in one half of each benchmark
