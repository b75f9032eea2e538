"""The ``recognition`` stage of ``videoact run``: sliding windows -> top-k ``recognition`` segments.

One stage for both kinds of model: a skeleton model reads the pose stage's track (and is skipped when the pose
stage is off), an RGB clip model reads the frames. The kind comes from the model zoo's card for a zoo name
(``recognition.model=videomae_b16_k400``: downloaded once, before the first video), else from the checkpoint
format of a model.pt (``rgb_recognition`` trainer: RGB).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videoact.pipeline import VideoContext, stage_errors

if TYPE_CHECKING:
    import pandas as pd

    from videoact.annotations.tables import Tables
    from videoact.config import RunConfig


@functools.lru_cache(maxsize=8)
def model_input(ref: str) -> str:
    """``rgb`` for a model.pt written by the ``rgb_recognition`` trainer, else ``skeleton`` (a missing or foreign
    file included: the skeleton loader then says what is wrong with it)."""
    if ref.startswith("builtin:"):
        return "skeleton"
    from videoact import models

    if models.is_model(ref):
        return "skeleton" if models.get_model(ref).task == "skeleton" else "rgb"
    from videoact.annotations.store import load_torch_file
    from videoact.heads.recognition.clip import CHECKPOINT_FORMAT

    if not Path(ref).is_file():  # builtin:NAME or a missing file: the skeleton loader says which
        return "skeleton"
    state = load_torch_file(ref, what="recognition model (a model.pt written by `videoact train`, or a zoo name)")
    return "rgb" if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT else "skeleton"


@functools.lru_cache(maxsize=4)
def load_recognition_model(ref: str, device: str = "cpu") -> Any:
    """The recognizer of ``ref`` (a zoo name, ``builtin:NAME`` or a model.pt) on ``device`` (a resolved
    ``torch.device`` string), loaded once per process and device."""
    from videoact import models

    if models.is_model(ref):
        from videoact.heads.recognition.zoo import load_zoo_recognizer

        rec = load_zoo_recognizer(ref)
    elif model_input(ref) == "rgb":
        from videoact.heads.recognition.clip import load_clip_recognizer

        rec = load_clip_recognizer(ref)
    else:
        from videoact.heads.recognition.skeleton import load_recognizer

        rec = load_recognizer(ref)
    return to_device(rec, device)


def to_device(rec: Any, device: str) -> Any:
    """A recognizer (clip, skeleton or zoo skeleton) with its network (and zero-shot class embeddings) on
    ``device``; inputs follow the network's device in ``predict_proba``."""
    if device == "cpu":
        return rec
    import dataclasses

    import torch

    rec.model.to(device)  # every recognizer keeps its network in ``.model``
    emb = getattr(rec, "class_embeddings", None)
    if isinstance(emb, torch.Tensor):
        rec = dataclasses.replace(rec, class_embeddings=emb.to(device))
    return rec


def run_device(cfg: RunConfig) -> str:
    """``runner.device`` resolved (``auto`` -> cuda or cpu), as a string: the loaders' cache key."""
    from videoact.devices import resolve_device

    return str(resolve_device(cfg.runner.device))


class RecognitionStage:
    name = "recognition"

    def enabled(self, cfg: RunConfig) -> bool:
        rc = cfg.recognition
        return rc.enabled and (cfg.pose.enabled or model_input(rc.model) == "rgb")

    def needs(self, cfg: RunConfig) -> dict[str, str]:
        return {}  # a skeleton model without the pose stage is not enabled (see ``enabled``)

    def check(self, cfg: RunConfig) -> None:
        """A zoo model's files are fetched here, before the first video: a failed download is rc 2, one line."""
        from videoact import models

        ref = cfg.recognition.model
        if not models.is_model(ref):
            return
        from videoact.config import ConfigError
        from videoact.models.hub import DownloadError

        card = models.get_model(ref)
        if card.task not in ("recognition", "skeleton"):
            raise ConfigError(f"recognition.model: {ref!r} is a {card.task} card, not a recognition model; "
                              f"see `videoact models list --task recognition`")
        try:
            models.download(ref)
        except DownloadError as exc:
            raise ConfigError(f"recognition.model: {exc}") from None

    def labels(self, cfg: RunConfig) -> pd.DataFrame | None:
        import pandas as pd

        with stage_errors(self.name):
            clf = load_recognition_model(cfg.recognition.model, run_device(cfg))
        return pd.DataFrame({"label_space": clf.label_space, "id": range(len(clf.classes)),
                             "name": list(clf.classes)})

    def run(self, ctx: VideoContext) -> Tables:
        from videoact.annotations.tables import Tables
        from videoact.devices import autocast

        rc = ctx.cfg.recognition
        with stage_errors(self.name):
            device = run_device(ctx.cfg)
            rec = load_recognition_model(rc.model, device)
            with autocast(device, ctx.cfg.runner.precision):
                if model_input(rc.model) == "rgb":
                    from videoact.heads.recognition.clip import recognize_windows

                    segs = recognize_windows(rec, ctx.video(), video_id=ctx.video_id, stride_s=rc.stride_s,
                                             k=rc.top_k, source=f"{rec.source}@{ctx.source}",
                                             batch_size=rc.batch_size)
                else:
                    from videoact.heads.recognition.skeleton import recognize_track

                    segs = recognize_track(ctx.pose_track, rec, video_id=ctx.video_id, label_space=rec.label_space,
                                           source=f"{rec.name}@{ctx.source}", window_s=rc.window_s,
                                           stride_s=rc.stride_s, top_k=rc.top_k,
                                           min_pose_fraction=rc.min_pose_fraction, batch_size=rc.batch_size)
                    if not len(segs):
                        frames = ctx.pose_track.frames
                        seen = sum(1 for f in frames if f.persons)
                        ctx.note(self.name, f"no window to classify: a person in {seen} of {len(frames)} processed "
                                            f"frames; a {rc.window_s:g} s window needs one in at least "
                                            f"{rc.min_pose_fraction:.0%} of its frames (recognition.min_pose_fraction)")
        return Tables(segments=segs)
