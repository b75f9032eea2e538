"""Review exports: CVAT for video 1.1 XML and Label Studio json, round trips through the command line.

Real inputs: a real run over ``videos/demo_skeleton.mp4`` (``short_run``) and the real AVA csv files of
mmaction2's tests. Each format holds only some fields; those must come back value-identical (box corners
within a float64 ulp or two: pixel and percent arithmetic do not always divide back exactly).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import videoact
from videoact.annotations.formats import FormatError, import_annotations, list_exporters, list_importers

AVA = ("detection", "ava", "mmaction2_tests_eval_detection")
CORNERS = ["x1", "y1", "x2", "y2"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videoact.cli", *args], capture_output=True, text=True, timeout=300)


def _ok(*args: str) -> subprocess.CompletedProcess[str]:
    out = _cli(*args)
    assert out.returncode == 0, out.stderr
    return out


def _same(a: pd.DataFrame, b: pd.DataFrame, cols: list[str], keys: list[str], *, corner_tol: float = 0.0) -> None:
    """Equal held columns (row order free), corners within ``corner_tol`` (absolute, in [0, 1] units)."""
    a = a.sort_values(keys, kind="stable").reset_index(drop=True)
    b = b.sort_values(keys, kind="stable").reset_index(drop=True)
    assert len(a) == len(b)
    pd.testing.assert_frame_equal(a[cols], b[cols], check_dtype=False)
    if corner_tol:
        diff = np.abs(a[CORNERS].to_numpy(float) - b[CORNERS].to_numpy(float))
        assert diff.max() <= corner_tol, diff.max()


def test_formats_are_registered() -> None:
    assert {"cvat-video", "labelstudio"} <= set(list_importers()) & set(list_exporters())
    out = _ok("export", "--help")
    assert "cvat-video" in out.stdout and "labelstudio" in out.stdout


def test_cvat_round_trip_of_a_real_run_via_cli(short_run: Path, tmp_path: Path) -> None:
    run = videoact.load(short_run)
    fps, src = float(run.videos["fps"].iloc[0]), run.boxes["source"].iloc[0]
    xml = tmp_path / "run.xml"
    _ok("export", str(short_run), "--format", "cvat-video", "-o", str(xml))
    text = xml.read_text()
    assert "<version>1.1</version>" in text and "<width>1920</width>" in text and 'outside="1"' in text
    _ok("import", "cvat-video", str(xml), "-o", str(tmp_path / "back"), "--source", src,
        "-O", f"fps={fps!r}", "-O", "task=proposal")
    back = videoact.load(tmp_path / "back")
    held = ["video_id", "task", "frame", "actor_id", "label", "score", "source"]
    # one ulp of a value in [0, 1] is at most 1.1e-16
    _same(run.boxes, back.boxes, held, ["frame"], corner_tol=2.3e-16)
    assert np.allclose(back.boxes["t_s"], back.boxes["frame"] / fps, rtol=0, atol=0)  # t_s = frame / fps
    assert back.videos[["width", "height", "n_frames"]].iloc[0].tolist() == [1920, 1080, 72]
    # exporting the re-import writes the same file
    _ok("export", str(tmp_path / "back"), "--format", "cvat-video", "-o", str(tmp_path / "again.xml"))
    again = (tmp_path / "again.xml").read_text()
    assert again.replace('source="manual"', 'source="auto"') == text


def test_cvat_round_trip_of_real_ava_ground_truth(shared_data: Path, tmp_path: Path) -> None:
    ava = shared_data.joinpath(*AVA)
    _ok("import", "ava", str(ava / "gt.csv"), "-o", str(tmp_path / "gt"), "--kind", "gt",
        "--label-map", str(ava / "action_list.txt"))
    gt = videoact.load(tmp_path / "gt")
    # several videos -> a folder with one XML per video; AVA has no frame size or fps, so they are options
    _ok("export", str(tmp_path / "gt"), "--format", "cvat-video", "-o", str(tmp_path / "xml"),
        "-O", "fps=30", "-O", "width=640", "-O", "height=480")
    files = sorted((tmp_path / "xml").glob("*.xml"))
    assert [f.stem for f in files] == sorted(set(gt.boxes["video_id"]))
    _ok("import", "cvat-video", str(tmp_path / "xml"), "-o", str(tmp_path / "back"), "--dataset", "ava",
        "-O", "fps=30", "-O", "label_space=ava")
    back = videoact.load(tmp_path / "back")
    # an actor with two actions at one keyframe becomes two CVAT tracks of the same group: both come back
    held = ["video_id", "t_s", "actor_id", "label", "label_space", "score", "source", "task"]
    _same(gt.boxes, back.boxes, held, ["video_id", "t_s", "actor_id", "label"], corner_tol=2.3e-16)


def test_labelstudio_round_trip_of_a_real_run_via_cli(short_run: Path, tmp_path: Path) -> None:
    run = videoact.load(short_run)
    out = tmp_path / "tasks.json"
    _ok("export", str(short_run), "--format", "labelstudio", "-o", str(out))
    config = (tmp_path / "tasks.labeling.xml").read_text()
    assert '<VideoRectangle name="proposal"' in config and '<TimelineLabels name="recognition"' in config
    _ok("import", "labelstudio", str(out), "-o", str(tmp_path / "back"), "-O", "label_space=nw_ucla_xview")
    back = videoact.load(tmp_path / "back")
    held = ["video_id", "task", "frame", "t_s", "actor_id", "label", "score", "source"]
    run_boxes = run.boxes.assign(label_space=None)
    _same(run_boxes, back.boxes, held, ["frame"], corner_tol=1e-15)
    seg_held = ["video_id", "task", "t_start_s", "t_end_s", "frame_start", "frame_end", "label", "label_space",
                "score", "source"]
    _same(run.segments, back.segments, seg_held, ["t_start_s", "score"])


def test_labelstudio_round_trip_of_real_ava_detections(shared_data: Path, tmp_path: Path) -> None:
    ava = shared_data.joinpath(*AVA)
    _ok("import", "ava", str(ava / "pred.csv"), "-o", str(tmp_path / "pred"), "--kind", "pred",
        "--label-map", str(ava / "action_list.txt"))
    pred = videoact.load(tmp_path / "pred")
    _ok("export", str(tmp_path / "pred"), "--format", "labelstudio", "-o", str(tmp_path / "p.json"), "-O", "fps=30")
    back = import_annotations("labelstudio", tmp_path / "p.json", label_space="ava").boxes
    # detections without person ids: each (label) track gets no actor; times come back exactly from 'time'
    held = ["video_id", "t_s", "actor_id", "label", "label_space", "score", "source", "task"]
    _same(pred.boxes, back, held, ["video_id", "t_s", "label", "score", "x1", "y1"], corner_tol=1e-15)
    assert back["actor_id"].isna().all()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


_CVAT_HEAD = ('<?xml version="1.0"?><annotations><version>1.1</version><meta><task><name>v</name><size>10</size>'
              '<original_size><width>100</width><height>50</height></original_size></task></meta>')


@pytest.mark.parametrize(("body", "problem"), [
    ("<annotations><version>1.1", "broken XML"),
    ('<annotations><meta><task><name>v</name></task></meta></annotations>', "original_size"),
    (_CVAT_HEAD + '<image id="0" name="a.jpg"/></annotations>', "CVAT for images"),
    (_CVAT_HEAD + '<track id="0" label="a"><box frame="1" xtl="50" ytl="1" xbr="10" ybr="9"/></track></annotations>',
     "wrong order"),
    (_CVAT_HEAD + '<track id="0" label="a"><polygon frame="1" points="1,2"/></track></annotations>',
     "only boxes are read"),
    (_CVAT_HEAD + '<track id="0" label="a"><box frame="x" xtl="1" ytl="1" xbr="2" ybr="2"/></track></annotations>',
     "frame is not an integer"),
])
def test_malformed_cvat_names_file_and_problem(tmp_path: Path, body: str, problem: str) -> None:
    path = _write(tmp_path, "bad.xml", body)
    with pytest.raises(FormatError, match=problem) as err:
        import_annotations("cvat-video", path, fps=30)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(("body", "problem"), [
    ('[{"data": {"video": "a.mp4"}, "annotations": [{"result": [{"type": "polygonlabels", "value": {}}]}]}]',
     "result type 'polygonlabels' is not read"),
    ('[{"data": {"video": "a.mp4", "fps": 25}, "annotations": [{"result": [{"type": "videorectangle", "value": '
     '{"sequence": [{"frame": 1, "x": 1, "y": 1, "width": 2, "height": 2, "rotation": 30}]}}]}]}]', "rotated"),
    ('[{"data": {"video": "a.mp4", "fps": 25}, "annotations": [{"result": [{"type": "videorectangle", "value": '
     '{"sequence": [{"frame": 0, "x": 1, "y": 1, "width": 2, "height": 2}]}}]}]}]', "1-based"),
    ('[{"data": {"video": "a.mp4", "fps": 25}, "annotations": [{"result": [{"type": "videorectangle", "value": '
     '{"sequence": [{"frame": 1, "x": 90, "y": 1, "width": 20, "height": 2}]}}]}]}]', "leaves the frame"),
    ('[{"video": "a.mp4"}]', "'data' object"),
    ('[{"data": {"video": "a.mp4"}, "data": {}}]', "duplicate key"),
])
def test_malformed_labelstudio_names_file_and_problem(tmp_path: Path, body: str, problem: str) -> None:
    path = _write(tmp_path, "bad.json", body)
    with pytest.raises(FormatError, match=problem) as err:
        import_annotations("labelstudio", path)
    assert str(path) in str(err.value)


def test_cli_reports_malformed_review_files_without_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.xml", _CVAT_HEAD + '<track id="0" label="a"><box frame="1" xtl="50" ytl="1" '
                                                      'xbr="10" ybr="9"/></track></annotations>')
    out = _cli("import", "cvat-video", str(path), "-o", str(tmp_path / "d"), "-O", "fps=30")
    assert out.returncode == 2 and "broken.xml" in out.stderr and "wrong order" in out.stderr
    assert "Traceback" not in out.stderr
    out = _cli("import", "cvat-video", str(path), "-o", str(tmp_path / "e"))
    assert out.returncode == 2 and "fps=" in out.stderr and "Traceback" not in out.stderr
