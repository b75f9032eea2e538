"""The ``temporal`` stage of ``videoact run``: the pose track on the model's time grid -> ``segmentation`` or
``localization`` segments of the whole video, in the video's frames."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videoact.config import ConfigError
from videoact.pipeline import VideoContext, stage_errors

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from videoact.annotations.tables import Tables
    from videoact.config import RunConfig


@functools.lru_cache(maxsize=2)
def _model(ref: str, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The temporal model of ``ref`` on ``device`` (a resolved device string), once per process and device: its
    forward takes and returns CPU tensors (``devices.host_io``), so the chunked inference code is the CPU's."""
    from videoact.devices import host_io
    from videoact.heads.temporal.model import load_temporal_model

    model, meta = load_temporal_model(ref)
    return host_io(model, device), meta


def _device(cfg: RunConfig) -> str:
    from videoact.devices import resolve_device

    return str(resolve_device(cfg.runner.device))


class TemporalStage:
    name = "temporal"

    def enabled(self, cfg: RunConfig) -> bool:
        return cfg.temporal.enabled

    def needs(self, cfg: RunConfig) -> dict[str, str]:
        return {"pose": "the temporal heads read the pose stage's skeletons: set pose.enabled=true"}

    def check(self, cfg: RunConfig) -> None:
        if cfg.temporal.model is None:
            raise ConfigError("temporal.model is not set: give the model.pt written by `videoact train "
                              "configs/temporal/...` (temporal.model=PATH)")

    def labels(self, cfg: RunConfig) -> pd.DataFrame | None:
        import pandas as pd

        with stage_errors(self.name):
            meta = _model(str(cfg.temporal.model), _device(cfg))[1]
        return pd.DataFrame({"label_space": meta["label_space"], "id": range(len(meta["classes"])),
                             "name": list(meta["classes"])})

    def run(self, ctx: VideoContext) -> Tables:
        from videoact.annotations.tables import Tables
        from videoact.devices import autocast
        from videoact.heads.recognition.skeleton import track_on_grid
        from videoact.heads.temporal.model import predict_video

        fps, n_frames, cfg = ctx.info.fps, ctx.info.n_frames, ctx.cfg
        with stage_errors(self.name):
            device = _device(cfg)
            model, meta = _model(str(cfg.temporal.model), device)
            grid_s = float(meta["grid_s"])
            keypoints = track_on_grid(ctx.pose_track, layout=meta["layout"], grid_s=grid_s,
                                      duration_s=n_frames / fps if fps else None)  # (M, S, V, C)
            cache = Path(cfg.runner.cache_dir) / "temporal" if cfg.runner.cache_dir else None
            with autocast(device, cfg.runner.precision):
                rows = predict_video(model, meta, keypoints, video_id=ctx.video_id, fps=1.0 / grid_s,
                                     step_frames=1, n_frames=keypoints.shape[1], cache_dir=cache,
                                     source=f"{meta['head']}@{ctx.source}")
        if len(rows) and fps:  # the model ran on its grid: frames at the video's rate
            rows = rows.assign(fps=fps, frame_start=(rows["t_start_s"] * fps).round().astype("int64"),
                               frame_end=(rows["t_end_s"] * fps).round().astype("int64").clip(upper=n_frames))
        return Tables(segments=rows)
