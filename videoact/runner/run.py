"""The main job: every video through the pipeline, one at a time, into a run directory.

``process_video`` is pure (a video and a config in, ``Tables`` out); ``run_videos`` is the driver
that writes each video's tables atomically, records per-video status in ``manifest.json``, skips
videos already done with the same config, and keeps going when one video fails.
"""

from __future__ import annotations

import functools
import logging
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from videoact import __version__
from videoact.annotations import schema, store
from videoact.annotations.tables import Tables
from videoact.config import RunConfig, fingerprint, to_dict, to_yaml
from videoact.decode.probe import VideoDecodeError, probe_video, sha256_file
from videoact.runner.errors import StageError
from videoact.runner.inputs import VideoRef

log = logging.getLogger("videoact.run")

STAGES = ("decode", "pose", "recognition", "detection")  # every stage this version has, in order


def stages(cfg: RunConfig) -> list[str]:
    """The stages ``cfg`` runs (recognition reads poses, so it needs the pose stage)."""
    out = ["decode"]
    if cfg.pose.enabled:
        out.append("pose")
        if cfg.recognition.enabled:
            out.append("recognition")
    if cfg.detection.enabled:
        out.append("detection")
    return out


@functools.lru_cache(maxsize=4)
def _recognizer(ref: str) -> Any:
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
        if "recognition" in stages(cfg):
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
    if "detection" in stages(cfg):
        tables = Tables.concat([tables, Tables(boxes=_detect(ref, cfg, pose_boxes, source))])
    return tables.validated(where=str(ref.path))


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
    if "detection" in stages(cfg):
        _check_detection(cfg)
        try:
            det = _detector(cfg.detection.model)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise StageError("detection", str(exc)) from None
        parts.append(pd.DataFrame({"label_space": det.label_space, "id": list(det.class_ids),
                                   "name": list(det.class_names)}))
    return pd.concat(parts, ignore_index=True) if parts else None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "videoact": __version__}
    for pkg in ("numpy", "pandas", "pyarrow", "av", "decord", "torch", "torchvision", "timm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _identity(path: Path) -> dict[str, Any]:
    try:
        st = path.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    except OSError:
        return {}


@dataclass
class RunSummary:
    run_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        n = len(self.done) + len(self.skipped) + len(self.failed)
        rate = len(self.done) / self.seconds * 3600 if self.seconds > 0 and self.done else 0.0
        return (f"{n} video(s): {len(self.done)} done, {len(self.skipped)} skipped (already done), "
                f"{len(self.failed)} failed in {self.seconds:.1f}s ({rate:.0f} videos/hour) -> {self.run_dir}")


def run_videos(refs: list[VideoRef], run_dir: str | Path, cfg: RunConfig, *, input_spec: str = "",
               show_progress: bool | None = None) -> RunSummary:
    """Process ``refs`` into ``run_dir``; a failing video is recorded and the run continues."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(cfg)
    manifest = store.read_manifest(run_dir)
    if manifest and manifest.get("kind") not in (None, "run"):
        raise StageError("runner", f"{run_dir} holds a '{manifest.get('kind')}' directory, not a run; "
                                   "choose another -o")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest.update({
        "kind": "run", "videoact_version": __version__, "schema_version": schema.SCHEMA_VERSION,
        "created": manifest.get("created", now), "updated": now, "input": input_spec,
        "stages": stages(cfg), "config_fingerprint": fp, "config": to_dict(cfg), "versions": _versions(),
    })
    status: dict[str, dict[str, Any]] = manifest.setdefault("videos", {})
    store.atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    labels = label_tables(cfg)
    if labels is not None:
        store.write_labels(run_dir, labels)
    summary = RunSummary(run_dir)
    start = time.perf_counter()
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    bar = tqdm(refs, desc="videos", unit="video", disable=not show_progress)
    for ref in bar:
        ident = _identity(ref.path)
        prev = status.get(ref.video_id, {})
        key_file = run_dir / "videos" / f"{store.file_key(ref.video_id)}.parquet"
        if (cfg.runner.skip_done and prev.get("status") == "done" and prev.get("config_fingerprint") == fp
                and prev.get("identity") == ident and key_file.exists()):
            summary.skipped.append(ref.video_id)
            continue
        t0 = time.perf_counter()
        entry: dict[str, Any] = {"uri": str(ref.path), "identity": ident, "config_fingerprint": fp}
        try:
            tables = process_video(ref, cfg, progress=show_progress)
            store.write_video_tables(run_dir, ref.video_id, tables)
            entry.update(status="done", rows=tables.summary())
            summary.done.append(ref.video_id)
        except StageError as exc:
            entry.update(status="failed", stage=exc.stage, error=exc.message)
            summary.failed[ref.video_id] = str(exc)
            log.warning("%s failed in %s: %s", ref.video_id, exc.stage, exc.message)
        except Exception as exc:  # a bug or an unexpected library error: record it, keep the batch alive
            entry.update(status="failed", stage="internal", error=f"{type(exc).__name__}: {exc}",
                         traceback=traceback.format_exc(limit=8))
            summary.failed[ref.video_id] = f"internal: {type(exc).__name__}: {exc}"
            log.error("%s failed with an unexpected error: %s", ref.video_id, exc)
        entry["seconds"] = round(time.perf_counter() - t0, 4)
        status[ref.video_id] = entry
        if not show_progress:
            log.info("%s: %s (%.2fs)", ref.video_id, entry["status"], entry["seconds"])
        store.write_manifest(run_dir, manifest)
    summary.seconds = time.perf_counter() - start
    manifest["summary"] = {"done": len(summary.done), "skipped": len(summary.skipped),
                           "failed": len(summary.failed), "seconds": round(summary.seconds, 3)}
    store.write_manifest(run_dir, manifest)
    return summary
