"""The ``pose`` stage of ``videoact run``: every frame's poses -> ``skeletons`` rows and person ``boxes``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videoact.pipeline import VideoContext, decode_errors, stage_errors

if TYPE_CHECKING:
    import pandas as pd

    from videoact.annotations.tables import Tables
    from videoact.config import RunConfig


class PoseStage:
    """Runs the pose backend over the video; later stages read ``ctx.pose_track`` and ``ctx.pose_boxes``."""

    name = "pose"

    def enabled(self, cfg: RunConfig) -> bool:
        return cfg.pose.enabled

    def needs(self, cfg: RunConfig) -> dict[str, str]:
        return {}

    def check(self, cfg: RunConfig) -> None:
        return None

    def labels(self, cfg: RunConfig) -> pd.DataFrame | None:
        return None

    def run(self, ctx: VideoContext) -> Tables:
        from videoact.annotations.tables import Tables
        from videoact.features.pose import build_pose_backend, extract_poses, person_boxes, pose_tables

        pc = ctx.cfg.pose
        with stage_errors(self.name, ImportError):
            backend = build_pose_backend(pc.backend, **pc.options)
        try:
            with decode_errors():
                track = extract_poses(ctx.video(), backend, every=pc.every, max_frames=pc.max_frames,
                                      progress=ctx.progress)
        finally:
            backend.close()
        source = f"{track.backend}@{ctx.source}"
        ctx.pose_track = track
        ctx.pose_boxes = person_boxes(track, ctx.video_id, source=source)
        return Tables.concat([pose_tables(track, ctx.video_id, source=source), Tables(boxes=ctx.pose_boxes)])
