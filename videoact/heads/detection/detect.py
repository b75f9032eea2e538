"""AVA-style detection over a whole video: keyframes at ``hz`` -> centred clips -> backbone -> head -> ``boxes``.

Each keyframe with person boxes becomes one clip of ``clip_len`` frames, ``frame_step`` apart, centred on the
keyframe (``decode.samplers.keyframe_clips``: the keyframe is frame ``clip_len // 2``, clips are clamped at the
video's ends). The backbone is told that frame is the keyframe (EVAD keeps all of its tokens); the head scores
every box, and each box writes its ``top_k`` classes scored at least ``score_threshold`` as ``boxes`` rows
with task ``detection`` (``label_id`` = the label map's action id, so ``videoact export --format ava`` writes
an official csv).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd
import torch

from videoact.annotations import schema
from videoact.decode.samplers import frame_at_time, keyframe_clips, keyframe_times
from videoact.decode.source import VideoSource
from videoact.heads.detection.boxes import KeyframeBoxes, PersonDetector, detect_people, keyframe_boxes
from videoact.heads.detection.model import DetectionModel, prepare_clip


def frame_times(src: VideoSource) -> np.ndarray:
    """Presentation time of every frame (``index / fps`` when the probe has no timestamps)."""
    times = np.asarray(src.info.timestamps_s, dtype=np.float64)
    return times if len(times) == len(src) else np.arange(len(src)) / src.info.fps


def score_rows(probs: np.ndarray, kb: KeyframeBoxes, model: DetectionModel, *, base: dict[str, Any], top_k: int,
               score_threshold: float) -> list[dict[str, Any]]:
    """``boxes`` rows of one keyframe: per box, its ``top_k`` classes scored ``>= score_threshold``."""
    rows = []
    k = min(top_k, probs.shape[1])
    for i, p in enumerate(probs):
        attrs = schema.dumps_attrs({"box_score": round(float(kb.scores[i]), 6)})
        for c in np.argsort(-p, kind="stable")[:k]:
            if p[c] < score_threshold:
                break
            x1, y1, x2, y2 = (float(v) for v in kb.boxes[i])
            rows.append({**base, "actor_id": int(kb.actor_ids[i]), "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                         "label": model.class_names[c], "label_id": model.class_ids[c],
                         "label_space": model.label_space, "score": float(p[c]), "attrs": attrs})
    return rows


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(items, size)):
        yield batch


def detect_video(
    src: VideoSource,
    model: DetectionModel,
    *,
    video_id: str,
    source: str,
    boxes: pd.DataFrame | None = None,
    detector: PersonDetector | None = None,
    hz: float = 1.0,
    clip_len: int | None = None,
    frame_step: int | None = None,
    score_threshold: float = 0.002,
    top_k: int = 5,
    box_gap_s: float = 0.25,
    min_box_score: float = 0.0,
    batch_size: int = 4,
) -> pd.DataFrame:
    """``boxes`` rows (task ``detection``) of one video.

    Args:
        boxes: person boxes of this video (``proposal`` rows: the pose stage's, or ``read_proposals``); or
        detector: a ``PersonDetector`` run on each keyframe instead.
        hz: keyframes per second, from t = 0.
        clip_len, frame_step: the clip around each keyframe (None: as the model was trained).
        box_gap_s: how far from a keyframe its boxes may be taken (``keyframe_boxes``).
        min_box_score: person boxes scored lower are not classified.
    """
    if (boxes is None) == (detector is None):
        raise ValueError("give person boxes or a person detector (exactly one)")
    clip_len = clip_len or model.input.clip_len
    if clip_len != model.input.clip_len:
        raise ValueError(f"clip_len {clip_len}: the model was trained on {model.input.clip_len}-frame clips and its "
                         "position table has that many slices; leave detection.clip_len null")
    frame_step = frame_step or model.input.frame_step
    times = frame_times(src)
    keyframes = keyframe_times(src.info.duration_s, hz=hz)
    found: list[KeyframeBoxes] = []
    if detector is None:
        found = [kb for kb in keyframe_boxes(boxes, keyframes, max_gap_s=box_gap_s, min_score=min_box_score) if len(kb)]
        keyframes = [kb.t_s for kb in found]
    clips = src.clips(keyframe_clips(times, keyframes, clip_len=clip_len, frame_step=frame_step))

    def with_boxes() -> Iterator[tuple[KeyframeBoxes, torch.Tensor]]:
        # clip by clip, so memory holds one batch of clips whatever the video's length
        for i, (t, frames) in enumerate(zip(keyframes, clips, strict=True)):
            if detector is None:
                yield found[i], frames
                continue
            (kb,) = detect_people(detector, [frames[clip_len // 2].numpy()], [t], min_score=min_box_score)
            if len(kb):  # the clip's centre frame is the keyframe's frame
                yield kb, frames

    rows: list[dict[str, Any]] = []
    with torch.inference_mode():
        for batch in _batches(with_boxes(), batch_size):
            x = torch.stack([prepare_clip(frames, model.input) for _, frames in batch])
            for (kb, _), probs in zip(batch, model.predict(x, [kb.boxes for kb, _ in batch]), strict=True):
                base = {"video_id": video_id, "task": "detection", "t_s": kb.t_s, "fps": src.info.fps,
                        "frame": frame_at_time(kb.t_s, times), "source": source}
                rows += score_rows(probs, kb, model, base=base, top_k=top_k, score_threshold=score_threshold)
    df = pd.DataFrame(rows) if rows else schema.empty("boxes")
    return schema.validate("boxes", df, where=f"detect_video({video_id!r})")
