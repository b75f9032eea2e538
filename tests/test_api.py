"""The Python API on real clips: videoact.run / videoact.Pipeline, videoact.load (one pyarrow.dataset scan per
table, subsets of videos and columns), the parsed attrs column, and files readable as the umask says."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

import videoact
from videoact.annotations.store import _load_per_row
from videoact.heads.recognition import skeleton as skeleton_head
from videoact.heads.recognition.stage import load_recognition_model

FAST = {"pose.max_frames": 45}


def test_run_in_memory_has_segments_and_labels() -> None:
    t = videoact.run("sample:carphone", **FAST)
    assert len(t.segments) and set(t.segments["label"]) <= set(t.labels["name"])
    assert len(t.labels) == 10 and t.labels["label_space"].iloc[0] == t.segments["label_space"].iloc[0]
    assert "segments=" in repr(t) and "<b>videoact.Tables</b>" in t._repr_html_()


def test_a_pipeline_loads_its_model_once_for_three_clips(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = skeleton_head.load_recognizer
    monkeypatch.setattr(skeleton_head, "load_recognizer", lambda ref: calls.append(ref) or real(ref))
    load_recognition_model.cache_clear()
    pipe = videoact.Pipeline(**FAST)
    clips = ["sample:carphone", str(shared_data / "videos/demo.mp4"), str(shared_data / "videos/demo_skeleton.mp4")]
    tables = [pipe(c) for c in clips]
    assert len(calls) == 1
    assert [t.videos["video_id"].iloc[0] for t in tables] == ["carphone", "demo", "demo_skeleton"]
    load_recognition_model.cache_clear()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("api") / "run"
    old = os.umask(0o022)
    try:
        videoact.run(["sample:carphone", "sample:bikes"], out=out, **FAST)
    finally:
        os.umask(old)
    return out


def test_load_equals_the_per_row_reader_and_reads_subsets(run_dir: Path) -> None:
    new, old = videoact.load(run_dir), _load_per_row(run_dir)
    for name, df in old.items():
        a, b = getattr(new, name), df
        assert list(a.columns) == list(b.columns) and len(a) == len(b), name
        for col in a.columns:
            if col in ("keypoints", "scores"):
                assert all((x is None and y is None) or list(x) == list(y) for x, y in zip(a[col], b[col], strict=True))
            else:
                pd.testing.assert_series_equal(a[col].reset_index(drop=True), b[col].reset_index(drop=True),
                                               check_dtype=False)
    sub = videoact.load(run_dir, videos=["bikes"], tables="skeletons", columns=["video_id", "frame", "keypoints"])
    assert set(sub.skeletons["video_id"]) == {"bikes"} and list(sub.skeletons.columns) == ["video_id", "frame",
                                                                                          "keypoints"]
    assert len(sub.skeletons) == (new.skeletons["video_id"] == "bikes").sum() and len(sub.segments) == 0


def test_attrs_column_parsed_without_clashing_with_dataframe_attrs(run_dir: Path) -> None:
    seg = videoact.load(run_dir).segments
    parsed = videoact.attrs(seg)
    assert list(parsed.index) == list(seg.index) and (parsed["rank"].dropna() >= 1).all()


def test_files_are_0644_under_umask_022(run_dir: Path) -> None:
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and (run_dir / "manifest.json") in files
    modes = {p.relative_to(run_dir).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {0o644}, modes
