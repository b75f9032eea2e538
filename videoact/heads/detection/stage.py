"""The ``detection`` stage of ``videoact run``: person boxes at keyframes (the pose stage's, or a proposals
file) classified by an AVA detector -> ``boxes`` rows of task ``detection``."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from videoact.config import ConfigError
from videoact.pipeline import VideoContext, stage_errors

if TYPE_CHECKING:
    import pandas as pd

    from videoact.annotations.tables import Tables
    from videoact.config import RunConfig


@functools.lru_cache(maxsize=4)
def _model(ref: str, device: str = "cpu") -> Any:
    """The detector of ``ref`` on ``device`` (a resolved device string), loaded once per process and device."""
    from videoact.heads.detection.model import load_detection_model

    model = load_detection_model(ref)
    model.net.to(device)
    return model


def _device(cfg: RunConfig) -> str:
    from videoact.devices import resolve_device

    return str(resolve_device(cfg.runner.device))


@functools.lru_cache(maxsize=2)
def _proposals(path: str) -> pd.DataFrame:
    from videoact.heads.detection.boxes import read_proposals

    return read_proposals(path)


class DetectionStage:
    name = "detection"

    def enabled(self, cfg: RunConfig) -> bool:
        return cfg.detection.enabled

    def needs(self, cfg: RunConfig) -> dict[str, str]:
        if cfg.detection.boxes != "pose":
            return {}
        return {"pose": "detection.boxes=pose reads the pose stage's person boxes: set pose.enabled=true, or "
                        "detection.boxes to a proposals file (.pkl or AVA .csv)"}

    def check(self, cfg: RunConfig) -> None:
        if cfg.detection.model is None:
            raise ConfigError("detection.model is not set: give the model.pt written by `videoact train "
                              "configs/detection/...` (detection.model=PATH)")

    def labels(self, cfg: RunConfig) -> pd.DataFrame | None:
        import pandas as pd

        with stage_errors(self.name):
            det = _model(str(cfg.detection.model), _device(cfg))
        return pd.DataFrame({"label_space": det.label_space, "id": list(det.class_ids),
                             "name": list(det.class_names)})

    def run(self, ctx: VideoContext) -> Tables:
        from videoact.annotations.tables import Tables
        from videoact.devices import autocast
        from videoact.heads.detection.detect import detect_video

        dc = ctx.cfg.detection
        with stage_errors(self.name):
            device = _device(ctx.cfg)
            model = _model(str(dc.model), device)
            if dc.boxes == "pose":
                boxes = ctx.pose_boxes
            else:
                proposals = _proposals(dc.boxes)
                boxes = proposals[proposals["video_id"] == ctx.video_id]
                if not len(boxes):
                    raise ValueError(f"{dc.boxes}: no person boxes for video {ctx.video_id!r} (keys are "
                                     "'video_id,timestamp'; name the video file after its id)")
            with autocast(device, ctx.cfg.runner.precision):
                rows = detect_video(ctx.video(), model, video_id=ctx.video_id, source=f"{model.name}@{ctx.source}",
                                    boxes=boxes, hz=dc.hz, clip_len=dc.clip_len, frame_step=dc.frame_step,
                                    score_threshold=dc.score_threshold, top_k=dc.top_k, box_gap_s=dc.box_gap_s,
                                    min_box_score=dc.min_box_score, batch_size=dc.batch_size)
        return Tables(boxes=rows)
