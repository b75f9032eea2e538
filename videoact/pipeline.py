"""The stage protocol of ``videoact run``: what one stage of the per-video pipeline is and what it is given.

A stage (``pose``, ``recognition``, ``temporal``, ``detection``, ``anticipation``) lives in the package of the
features or head it runs (``features/pose/stage.py``, ``heads/*/stage.py``) and is listed once, in pipeline
order, in ``runner/run.py``. ``runner.run.process_video`` probes the video, builds one :class:`VideoContext`
and hands it to every enabled stage in turn; each stage returns the rows it adds (a ``Tables``) and may leave
what later stages read on the context (the pose track, the person boxes).

Checks that need no video — a model not set, a stage that reads another one that is off — run once, when the
config is loaded (``runner.run.plan``), and fail with ``ConfigError`` naming the key: rc 2 before any video.
Failures inside ``run`` are expected per video (a missing file, a bad checkpoint, an undecodable frame): the
:func:`stage_errors` context turns them into a ``StageError`` naming the stage, which the runner records in
the manifest while the run goes on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from videoact.annotations.tables import Tables
from videoact.decode.probe import VideoDecodeError

if TYPE_CHECKING:
    import pandas as pd

    from videoact.config import RunConfig
    from videoact.decode.source import VideoInfo, VideoSource


class StageError(RuntimeError):
    """A video failed in a named stage (recorded in the manifest, the run goes on)."""

    def __init__(self, stage: str, message: str) -> None:
        self.stage, self.message = stage, message
        super().__init__(f"{stage}: {message}")


@dataclass
class VideoContext:
    """One video on its way through the stages: what it is, its config, and what earlier stages found."""

    video_id: str
    path: Path
    cfg: RunConfig
    info: VideoInfo  # the probe's metadata (fps, frames, size)
    source: str  # ``videoact-<version>@<config fingerprint>``: the ``source`` every stage's rows carry
    progress: bool = False
    tables: Tables = field(default_factory=Tables)  # every row so far (the ``videos`` row first)
    pose_track: Any = None  # features.pose.PoseTrack, set by the pose stage
    pose_boxes: pd.DataFrame | None = None  # the pose stage's person boxes
    notes: dict[str, str] = field(default_factory=dict)  # stage -> why it wrote nothing (``videos.attrs``)
    _video: VideoSource | None = field(default=None, repr=False)

    def note(self, stage: str, text: str) -> None:
        """Say why ``stage`` wrote no rows for this video (e.g. too few poses for a window): the runner keeps it
        in the video's ``attrs["notes"]``, so an empty result is never silent."""
        self.notes[stage] = text

    def video(self) -> VideoSource:
        """The decoded video, opened once on first use and shared by every stage that reads frames."""
        if self._video is None:
            from videoact.decode.source import VideoSource

            self._video = VideoSource(self.path, backend=self.cfg.decode.backend,
                                      max_bad_frames=self.cfg.decode.max_bad_frames)
        return self._video

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None


class Stage(Protocol):
    """One stage of ``videoact run``; stages are stateless singletons (models are cached per process)."""

    name: str  # also the config section that switches it on (``<name>.enabled``)

    def enabled(self, cfg: RunConfig) -> bool:
        """Whether ``cfg`` runs this stage."""
        ...

    def needs(self, cfg: RunConfig) -> dict[str, str]:
        """Stages this one reads under ``cfg`` -> the message (naming the keys) when that stage is off."""
        ...

    def check(self, cfg: RunConfig) -> None:
        """Config errors found without a video (a model not set): ``ConfigError`` naming the key."""
        ...

    def labels(self, cfg: RunConfig) -> pd.DataFrame | None:
        """The ``labels`` rows (label spaces) this stage's predictions use, written once per run."""
        ...

    def run(self, ctx: VideoContext) -> Tables:
        """The rows this stage adds for one video."""
        ...


@contextlib.contextmanager
def stage_errors(stage: str, *also: type[BaseException]) -> Iterator[None]:
    """Expected failures of a stage -> ``StageError(stage, message)`` (decode errors -> stage ``decode``).

    Expected: a missing file, a bad value or an unknown name (``FileNotFoundError``, ``ValueError`` — config and
    annotation errors included — and ``KeyError``), plus ``also``. Anything else is a bug: it propagates and
    the runner records it as stage ``internal`` with its traceback.
    """
    try:
        yield
    except StageError:
        raise
    except VideoDecodeError as exc:
        raise StageError("decode", str(exc)) from None
    except (FileNotFoundError, ValueError, KeyError, *also) as exc:
        raise StageError(stage, str(exc)) from None


@contextlib.contextmanager
def decode_errors() -> Iterator[None]:
    """Only decode errors are expected here (-> ``StageError('decode', ...)``); anything else propagates."""
    try:
        yield
    except VideoDecodeError as exc:
        raise StageError("decode", str(exc)) from None
