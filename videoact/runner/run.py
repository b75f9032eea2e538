"""The main job on one video: every enabled stage, from decoding to the tables.

``process_video`` is pure (a video and a config in, ``Tables`` out): it probes the video, builds one
``VideoContext`` and hands it to the planned stages in pipeline order (the stage protocol: ``videoact.pipeline``).
The driver around it, which writes run directories, skips finished videos and records failures, is
``batch.run_videos``; the engines that run it over many videos at once (process pool, Ray) are in ``engines.py``
and ``ray_engine.py``. Adding a stage: a module in its features/head package and one line in ``PIPELINE``.
"""

from __future__ import annotations

import pandas as pd

from videoact._version import __version__
from videoact.annotations import schema
from videoact.annotations.tables import Tables
from videoact.config import ConfigError, RunConfig, fingerprint
from videoact.decode.probe import VideoInfo, open_video, sha256_file
from videoact.devices import resolve
from videoact.features.pose.stage import PoseStage
from videoact.heads.anticipation.stage import AnticipationStage
from videoact.heads.detection.stage import DetectionStage
from videoact.heads.recognition.stage import RecognitionStage
from videoact.heads.temporal.stage import TemporalStage
from videoact.pipeline import Stage, StageError, VideoContext, stage_errors
from videoact.runner.inputs import VideoRef

# every stage after decoding, in the order they run: one line per stage
PIPELINE: tuple[Stage, ...] = (
    PoseStage(),
    RecognitionStage(),
    TemporalStage(),
    DetectionStage(),
    AnticipationStage(),
)


def plan(cfg: RunConfig) -> tuple[Stage, ...]:
    """The stages ``cfg`` runs, checked: ``ConfigError`` (rc 2, the key named; ``.stage`` says whose) for a stage
    that is not set up or that reads a stage that is off, or for a ``runner.device`` / ``runner.precision`` this
    machine cannot run (``cuda`` without CUDA, fp16 on CPU). The CLI calls it right after loading the config."""
    try:
        resolve(cfg.runner.device, cfg.runner.precision, prefix="runner")
    except ConfigError as exc:
        exc.stage = "runner"  # type: ignore[attr-defined]
        raise
    planned = tuple(s for s in PIPELINE if s.enabled(cfg))
    names = {s.name for s in planned}
    for stage in planned:
        try:
            for needed, why in stage.needs(cfg).items():
                if needed not in names:
                    raise ConfigError(why)
            stage.check(cfg)
        except ConfigError as exc:
            exc.stage = stage.name  # type: ignore[attr-defined]
            raise
    return planned


def stages(cfg: RunConfig) -> list[str]:
    """Names of the stages ``cfg`` runs (``decode`` first), as the manifest records them."""
    return ["decode", *(s.name for s in plan(cfg))]


def label_tables(cfg: RunConfig) -> pd.DataFrame | None:
    """The label spaces the run's models predict (written once per run)."""
    parts = [labels for s in plan(cfg) if (labels := s.labels(cfg)) is not None]
    return pd.concat(parts, ignore_index=True) if parts else None


def _videos_row(ref: VideoRef, cfg: RunConfig, info: VideoInfo, source: str) -> pd.DataFrame:
    return pd.DataFrame([{
        "video_id": ref.video_id, "uri": str(ref.path.resolve()), "fps": info.fps, "n_frames": info.n_frames,
        "duration_s": info.duration_s, "width": info.width, "height": info.height, "rotation": info.rotation,
        "codec": info.codec, "sha256": sha256_file(ref.path) if cfg.decode.sha256 else None,
        "source": source,
        "attrs": schema.dumps_attrs(video_attrs(info)),
    }])


def video_attrs(info: VideoInfo, notes: dict[str, str] | None = None,
                bad_frames: list[int] | None = None) -> dict[str, object]:
    """``videos.attrs`` of a processed video: its reader, whether the count is exact, a short read (the container
    claims more frames than the file holds: ``truncated``, with both counts), the frames that did not decode
    (``bad_frames``: how many, ``bad_frame_indices``: the first 20; ``decode.max_bad_frames``) and the stages'
    notes."""
    attrs: dict[str, object] = {"decode_backend": info.backend, "n_frames_exact": info.n_frames_exact}
    if info.n_frames_container is not None and info.n_frames < info.n_frames_container:
        attrs.update(truncated=True, n_frames_read=info.n_frames, n_frames_expected=info.n_frames_container)
    if bad_frames:
        attrs.update(bad_frames=len(bad_frames), bad_frame_indices=list(bad_frames[:20]))
    if notes:
        attrs["notes"] = dict(notes)
    return attrs


def process_video(ref: VideoRef, cfg: RunConfig, *, progress: bool = False) -> Tables:
    """Run every enabled stage on one video and return its tables.

    Raises:
        StageError: naming the stage that failed and why.
    """
    try:
        planned = plan(cfg)
    except ConfigError as exc:  # the CLI checks this before any video; a direct caller gets it per video
        raise StageError(getattr(exc, "stage", "config"), str(exc)) from None
    source = f"videoact-{__version__}@{fingerprint(cfg)}"
    with stage_errors("decode"):  # the probe, whose reader every stage then shares
        video = open_video(ref.path, backend=cfg.decode.backend, max_bad_frames=cfg.decode.max_bad_frames)
    ctx = VideoContext(video_id=ref.video_id, path=ref.path, cfg=cfg, info=video.info, source=source,
                       progress=progress, _video=video)
    try:
        ctx.tables = Tables(videos=_videos_row(ref, cfg, video.info, source))
        for stage in planned:
            ctx.tables = Tables.concat([ctx.tables, stage.run(ctx)])
        bad = video.bad_frames
        if ctx.notes or bad:
            ctx.tables.videos["attrs"] = schema.dumps_attrs(video_attrs(video.info, ctx.notes, bad))
    finally:
        ctx.close()
    return ctx.tables.validated(where=str(ref.path))
