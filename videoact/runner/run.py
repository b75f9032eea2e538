"""The main job on one video: every enabled stage, from decoding to the tables.

``process_video`` is pure (a video and a config in, ``Tables`` out). The driver around it, which writes
run directories, skips finished videos and records failures, is ``batch.run_videos``; the engines that
run it over many videos at once (process pool, Ray) are in ``engines.py`` and ``ray_engine.py``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from videoact._version import __version__
from videoact.annotations import schema
from videoact.annotations.tables import Tables
from videoact.config import AnticipationConfig, RunConfig, fingerprint
from videoact.decode.probe import VideoDecodeError, probe_video, sha256_file
from videoact.runner.errors import StageError
from videoact.runner.inputs import VideoRef

log = logging.getLogger("videoact.run")

# every stage this version has, in order
STAGES = ("decode", "pose", "recognition", "temporal", "detection", "anticipation")


def stages(cfg: RunConfig) -> list[str]:
    """The stages ``cfg`` runs (a skeleton recognition model reads poses, so it needs the pose stage; an RGB
    model reads frames)."""
    out = ["decode"]
    if cfg.pose.enabled:
        out.append("pose")
    if cfg.recognition.enabled and (cfg.pose.enabled or _recognition_input(cfg.recognition.model) == "rgb"):
        out.append("recognition")
    if cfg.temporal.enabled:
        out.append("temporal")
    if cfg.detection.enabled:
        out.append("detection")
    if cfg.anticipation.enabled:
        out.append("anticipation")
    return out


@functools.lru_cache(maxsize=8)
def _recognition_input(ref: str) -> str:
    """``rgb`` for a model.pt written by the ``rgb_recognition`` trainer, else ``skeleton`` (a missing or foreign
    file included: the skeleton loader then says what is wrong with it)."""
    if ref.startswith("builtin:"):
        return "skeleton"
    try:
        import torch

        from videoact.heads.recognition.clip import CHECKPOINT_FORMAT

        state = torch.load(ref, map_location="cpu", weights_only=True)
    except Exception:  # unreadable here: load_recognizer reports it with the file name
        return "skeleton"
    return "rgb" if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT else "skeleton"


@functools.lru_cache(maxsize=4)
def _recognizer(ref: str) -> Any:
    if _recognition_input(ref) == "rgb":
        from videoact.heads.recognition.clip import load_clip_recognizer

        return load_clip_recognizer(ref)
    from videoact.heads.recognition.skeleton import load_recognizer

    return load_recognizer(ref)


@functools.lru_cache(maxsize=4)
def _detector(ref: str) -> Any:
    from videoact.heads.detection.model import load_detection_model

    return load_detection_model(ref)


@functools.lru_cache(maxsize=2)
def _proposals(path: str) -> pd.DataFrame:
    from videoact.heads.detection.boxes import read_proposals

    return read_proposals(path)


def _check_detection(cfg: RunConfig) -> None:
    dc = cfg.detection
    if dc.model is None:
        raise StageError("detection", "detection.model is not set: give the model.pt written by `videoact train "
                                      "configs/detection/...` (detection.model=PATH)")
    if dc.boxes == "pose" and not cfg.pose.enabled:
        raise StageError("detection", "detection.boxes=pose reads the pose stage's person boxes: set "
                                      "pose.enabled=true, or detection.boxes to a proposals file (.pkl or AVA .csv)")


def process_video(ref: VideoRef, cfg: RunConfig, *, progress: bool = False) -> Tables:
    """Run every enabled stage on one video and return its tables.

    Raises:
        StageError: naming the stage that failed and why.
    """
    try:
        info = probe_video(ref.path, backend=cfg.decode.backend)
    except VideoDecodeError as exc:
        raise StageError("decode", str(exc)) from None
    source = f"videoact-{__version__}@{fingerprint(cfg)}"
    videos = pd.DataFrame([{
        "video_id": ref.video_id, "uri": str(ref.path.resolve()), "fps": info.fps, "n_frames": info.n_frames,
        "duration_s": info.duration_s, "width": info.width, "height": info.height, "rotation": info.rotation,
        "codec": info.codec, "sha256": sha256_file(ref.path) if cfg.decode.sha256 else None,
        "source": source,
        "attrs": schema.dumps_attrs({"decode_backend": info.backend, "n_frames_exact": info.n_frames_exact}),
    }])
    tables = Tables(videos=videos)
    pose_boxes = None
    if "pose" in stages(cfg):
        track = _poses(ref, cfg, progress)
        from videoact.features.pose import person_boxes, pose_tables

        tables = Tables.concat([tables, pose_tables(track, ref.video_id, source=f"{track.backend}@{source}")])
        pose_boxes = person_boxes(track, ref.video_id, source=f"{track.backend}@{source}")
        tables = Tables.concat([tables, Tables(boxes=pose_boxes)])
        if "recognition" in stages(cfg) and _recognition_input(cfg.recognition.model) == "skeleton":
            rc = cfg.recognition
            try:
                from videoact.heads.recognition.skeleton import recognize_track

                clf = _recognizer(rc.model)
                segs = recognize_track(track, clf, video_id=ref.video_id, label_space=clf.label_space,
                                       source=f"{clf.name}@{source}", window_s=rc.window_s, stride_s=rc.stride_s,
                                       top_k=rc.top_k, min_pose_fraction=rc.min_pose_fraction)
            except (FileNotFoundError, ValueError, KeyError) as exc:
                raise StageError("recognition", str(exc)) from None
            tables = Tables.concat([tables, Tables(segments=segs)])
    if "temporal" in stages(cfg):
        _check_temporal(cfg)
        tables = Tables.concat([tables, Tables(segments=_temporal(ref, cfg, track, info.fps, info.n_frames, source))])
    if "recognition" in stages(cfg) and _recognition_input(cfg.recognition.model) == "rgb":
        tables = Tables.concat([tables, Tables(segments=_recognize_rgb(ref, cfg, source))])
    if "detection" in stages(cfg):
        tables = Tables.concat([tables, Tables(boxes=_detect(ref, cfg, pose_boxes, source))])
    if "anticipation" in stages(cfg):
        tables = Tables.concat([tables, Tables(forecasts=_anticipate(ref, cfg, tables))])
    return tables.validated(where=str(ref.path))


def _recognize_rgb(ref: VideoRef, cfg: RunConfig, source: str) -> pd.DataFrame:
    """``recognition`` segments of an RGB clip model: one clip per window, a window every ``stride_s``."""
    from videoact.decode.source import VideoSource
    from videoact.heads.recognition.clip import recognize_windows

    rc = cfg.recognition
    try:
        rec = _recognizer(rc.model)
        with VideoSource(ref.path, backend=cfg.decode.backend) as src:
            return recognize_windows(rec, src, video_id=ref.video_id, stride_s=rc.stride_s, k=rc.top_k,
                                     source=f"{rec.source}@{source}")
    except VideoDecodeError as exc:
        raise StageError("decode", str(exc)) from None
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise StageError("recognition", str(exc)) from None


def _detect(ref: VideoRef, cfg: RunConfig, pose_boxes: pd.DataFrame | None, source: str) -> pd.DataFrame:
    """``detection`` boxes of one video: the pose stage's person boxes or a proposals file, classified by the model."""
    from videoact.decode.source import VideoSource
    from videoact.heads.detection.detect import detect_video

    dc = cfg.detection
    _check_detection(cfg)
    try:
        model = _detector(dc.model)
        if dc.boxes == "pose":
            boxes = pose_boxes
        else:
            proposals = _proposals(dc.boxes)
            boxes = proposals[proposals["video_id"] == ref.video_id]
            if not len(boxes):
                raise ValueError(f"{dc.boxes}: no person boxes for video {ref.video_id!r} (keys are "
                                 "'video_id,timestamp'; name the video file after its id)")
        with VideoSource(ref.path, backend=cfg.decode.backend) as src:
            return detect_video(src, model, video_id=ref.video_id, source=f"{model.name}@{source}", boxes=boxes,
                                hz=dc.hz, clip_len=dc.clip_len, frame_step=dc.frame_step,
                                score_threshold=dc.score_threshold, top_k=dc.top_k, box_gap_s=dc.box_gap_s,
                                min_box_score=dc.min_box_score)
    except VideoDecodeError as exc:
        raise StageError("decode", str(exc)) from None
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise StageError("detection", str(exc)) from None


def _check_temporal(cfg: RunConfig) -> None:
    if cfg.temporal.model is None:
        raise StageError("temporal", "temporal.model is not set: give the model.pt written by `videoact train "
                                     "configs/temporal/...` (temporal.model=PATH)")
    if not cfg.pose.enabled:
        raise StageError("temporal", "the temporal heads read the pose stage's skeletons: set pose.enabled=true")


@functools.lru_cache(maxsize=2)
def _temporal_model(ref: str) -> tuple[Any, dict[str, Any]]:
    from videoact.heads.temporal import load_temporal_model

    return load_temporal_model(ref)


def _temporal(ref: VideoRef, cfg: RunConfig, track: Any, fps: float, n_frames: int, source: str) -> pd.DataFrame:
    """``segmentation`` / ``localization`` segments of one whole video from its pose track."""
    from videoact.heads.recognition.skeleton import track_on_grid
    from videoact.heads.temporal import predict_video

    try:
        model, meta = _temporal_model(cfg.temporal.model)
        grid_s = float(meta["grid_s"])
        keypoints = track_on_grid(track, layout=meta["layout"], grid_s=grid_s,
                                  duration_s=n_frames / fps if fps else None)  # (M, S, V, C)
        cache = Path(cfg.runner.cache_dir) / "temporal" if cfg.runner.cache_dir else None
        rows = predict_video(model, meta, keypoints, video_id=ref.video_id, fps=1.0 / grid_s, step_frames=1,
                             n_frames=keypoints.shape[1], cache_dir=cache, source=f"{meta['head']}@{source}")
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise StageError("temporal", str(exc)) from None
    if len(rows) and fps:  # the model ran on its grid: frames at the video's rate
        rows = rows.assign(fps=fps, frame_start=(rows["t_start_s"] * fps).round().astype("int64"),
                           frame_end=(rows["t_end_s"] * fps).round().astype("int64").clip(upper=n_frames))
    return rows


def _check_anticipation(cfg: RunConfig) -> None:
    if "recognition" not in stages(cfg):
        raise StageError("anticipation", "anticipation reads the recognition stage's actions: enable recognition "
                                         "(recognition.enabled=true, and pose.enabled=true for a skeleton model)")
    ac = cfg.anticipation
    if ac.backend == "action_lm" and ac.checkpoint is None:
        raise StageError("anticipation", "anticipation.checkpoint is not set: give the action_lm.pt written by "
                                         "`videoact train configs/anticipation/action_lm_epic55.yaml`")


@functools.lru_cache(maxsize=2)
def _forecast_vocab(ac: AnticipationConfig) -> Any:
    """The verb/noun vocabulary forecasts are written in: ``vocab_file``, else the action LM checkpoint's own."""
    from videoact.heads.anticipation.data import ego4d_vocab, epic55_vocab

    if ac.vocab_file is not None:
        path = Path(ac.vocab_file)
        return ego4d_vocab(path) if path.suffix == ".json" else epic55_vocab(path)
    if ac.backend == "action_lm" and ac.checkpoint is not None:
        from videoact.heads.anticipation.action_lm import load_action_lm

        return load_action_lm(ac.checkpoint)[1]
    raise ValueError(f"backend {ac.backend} has no vocabulary of its own: set anticipation.vocab_file (an EPIC-55 "
                     "folder or an Ego4D fho_lta_taxonomy.json)")


@functools.lru_cache(maxsize=2)
def _forecaster(ac: AnticipationConfig) -> tuple[Any, Any, Any]:
    """(backend, action map, in-context example bank) of an anticipation config, loaded once per process."""
    from videoact.heads.anticipation.head import backend_from_config, read_action_map
    from videoact.heads.anticipation.prompting import example_bank_from_file

    pc = ac.prompt
    bank = None
    if ac.backend != "action_lm" and pc.examples_from is not None and pc.n_examples > 0:
        bank = example_bank_from_file(pc.examples_from, _forecast_vocab(ac), n_observed=ac.n_observed, z=ac.z,
                                      max_examples=pc.max_examples, taxonomy=ac.vocab_file)
    amap = None if ac.action_map is None else read_action_map(ac.action_map)
    return backend_from_config(ac), amap, bank


def _anticipate(ref: VideoRef, cfg: RunConfig, tables: Tables) -> pd.DataFrame:
    """``forecasts`` of one video: its recognised actions (top-1 windows merged into actions) -> K x Z actions."""
    from videoact.heads.anticipation.head import forecast_video, observed_actions

    _check_anticipation(cfg)
    try:
        vocab = _forecast_vocab(cfg.anticipation)
        backend, action_map, bank = _forecaster(cfg.anticipation)
        segments = Tables(segments=tables.segments).validated(where=str(ref.path)).segments
        seen = observed_actions(segments, vocab, action_map=action_map, min_score=cfg.anticipation.min_score,
                                where=str(ref.path))
        return forecast_video(Tables(segments=seen), cfg.anticipation, backend=backend, vocab=vocab,
                              bank=bank).forecasts
    except (FileNotFoundError, ValueError, KeyError, ImportError, schema.AnnotationError) as exc:
        raise StageError("anticipation", str(exc)) from None


def _poses(ref: VideoRef, cfg: RunConfig, progress: bool) -> Any:
    from videoact.decode.source import VideoSource
    from videoact.features.pose import build_pose_backend, extract_poses

    try:
        backend = build_pose_backend(cfg.pose.backend, **cfg.pose.options)
    except (ImportError, FileNotFoundError, ValueError, KeyError) as exc:
        raise StageError("pose", str(exc)) from None
    try:
        with VideoSource(ref.path, backend=cfg.decode.backend) as src:
            return extract_poses(src, backend, every=cfg.pose.every, max_frames=cfg.pose.max_frames,
                                 progress=progress)
    except VideoDecodeError as exc:
        raise StageError("decode", str(exc)) from None
    finally:
        backend.close()


def label_tables(cfg: RunConfig) -> pd.DataFrame | None:
    """The label spaces the run's recognition and detection models predict (written once per run)."""
    parts = []
    if "recognition" in stages(cfg):
        try:
            clf = _recognizer(cfg.recognition.model)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise StageError("recognition", str(exc)) from None
        parts.append(pd.DataFrame({"label_space": clf.label_space, "id": range(len(clf.classes)),
                                   "name": list(clf.classes)}))
    if "temporal" in stages(cfg):
        _check_temporal(cfg)
        try:
            meta = _temporal_model(cfg.temporal.model)[1]
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise StageError("temporal", str(exc)) from None
        parts.append(pd.DataFrame({"label_space": meta["label_space"], "id": range(len(meta["classes"])),
                                   "name": list(meta["classes"])}))
    if "detection" in stages(cfg):
        _check_detection(cfg)
        try:
            det = _detector(cfg.detection.model)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise StageError("detection", str(exc)) from None
        parts.append(pd.DataFrame({"label_space": det.label_space, "id": list(det.class_ids),
                                   "name": list(det.class_names)}))
    if "anticipation" in stages(cfg):
        _check_anticipation(cfg)
        try:
            parts.append(_forecast_vocab(cfg.anticipation).labels())
        except (FileNotFoundError, ValueError, KeyError, ImportError) as exc:
            raise StageError("anticipation", str(exc)) from None
    return pd.concat(parts, ignore_index=True) if parts else None

