"""The stage pipeline of ``videoact run``: planning and cross-stage checks at config load, one opened video per
run of the stages, and the stage list as the one place a stage is added."""

from __future__ import annotations

from pathlib import Path

import pytest

from videoact.cli import main
from videoact.config import ConfigError, RunConfig, load_config
from videoact.decode import source as source_module
from videoact.pipeline import StageError
from videoact.runner.inputs import VideoRef
from videoact.runner.run import PIPELINE, plan, process_video, stages

REPO = Path(__file__).resolve().parents[1]


def test_the_pipeline_lists_each_stage_once_in_order() -> None:
    names = [s.name for s in PIPELINE]
    assert names == ["pose", "recognition", "temporal", "detection", "anticipation"]
    for stage in PIPELINE:
        for method in ("enabled", "needs", "check", "labels", "run"):
            assert callable(getattr(stage, method)), (stage.name, method)
        assert stage.name in RunConfig.__dataclass_fields__, f"stage {stage.name} has no config section"
    assert len((REPO / "videoact" / "runner" / "run.py").read_text().splitlines()) < 150


@pytest.mark.parametrize(("overrides", "stage", "message"), [
    (["temporal.enabled=true", "temporal.model=m.pt", "pose.enabled=false"], "temporal",
     "the temporal heads read the pose stage's skeletons: set pose.enabled=true"),
    (["temporal.enabled=true"], "temporal", "temporal.model is not set"),
    (["detection.enabled=true"], "detection", "detection.model is not set"),
    (["detection.enabled=true", "detection.model=m.pt", "pose.enabled=false"], "detection",
     "detection.boxes=pose reads the pose stage's person boxes"),
    (["anticipation.enabled=true", "recognition.enabled=false"], "anticipation",
     "anticipation reads the recognition stage's actions"),
    (["anticipation.enabled=true"], "anticipation", "anticipation.checkpoint is not set"),
])
def test_cross_stage_checks_fail_at_config_load(overrides: list[str], stage: str, message: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(RunConfig, None, overrides)
    with pytest.raises(ConfigError, match=message) as err:
        plan(cfg)
    assert err.value.stage == stage  # type: ignore[attr-defined]
    # the CLI: rc 2, one line, no traceback, and no video looked at (the input does not even exist)
    out = tmp_path / "run"
    assert main(["run", str(tmp_path / "missing.mp4"), "-o", str(out), "-q", *overrides]) == 2
    err_text = capsys.readouterr().err
    assert message in err_text and "Traceback" not in err_text and "missing.mp4" not in err_text
    assert not out.exists()
    # a Python caller of process_video gets the same check as the failure of that stage
    with pytest.raises(StageError, match=message) as failed:
        process_video(VideoRef("x", tmp_path / "missing.mp4"), cfg)
    assert failed.value.stage == stage


def test_stages_follow_the_config() -> None:
    assert stages(load_config(RunConfig, None, [])) == ["decode", "pose", "recognition"]
    # a skeleton model without poses is skipped, as before: the run writes the videos table only
    assert stages(load_config(RunConfig, None, ["pose.enabled=false"])) == ["decode"]


def test_one_video_is_opened_once_for_every_stage(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Path] = []
    real_init = source_module.VideoSource.__init__

    def counting_init(self: source_module.VideoSource, path: str | Path, **kwargs: object) -> None:
        opened.append(Path(path))
        real_init(self, path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(source_module.VideoSource, "__init__", counting_init)
    video = shared_data / "videos" / "S001C001P001R001A001_rgb.avi"
    cfg = load_config(RunConfig, None, ["pose.max_frames=40", "recognition.window_s=1.0"])
    tables = process_video(VideoRef("ntu", video), cfg)
    assert opened == [video]
    assert tables.skeletons["frame"].nunique() == 40 and len(tables.segments) > 0 and len(tables.boxes) > 0
