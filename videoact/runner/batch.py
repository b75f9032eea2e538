"""``videoact run``: the driver that takes an archive of videos through an engine into a run directory.

Who writes what: this process alone writes RUN_DIR. Engines (``engines.py``, ``ray_engine.py``) return each
video's tables; for every result the driver writes the video's table files, then its manifest entry, each
file atomically (temp file in the same folder, fsync, rename). Whenever the run is killed, SIGKILL included:

* no file is half written: a table or the manifest is its old or its new version. An interrupted write
  leaves at most a hidden ``.NAME.*.tmp`` file, which no reader globs (they read ``*.parquet``) and which
  the next run removes;
* a video is ``done`` in the manifest only once all of its files are in place. A video cut off half-way is
  not done, so the next run processes it again and replaces its files; there is one file per video and
  table, so its rows cannot be doubled.

Re-running skips a video whose manifest entry has the same config fingerprint and the same file (size and
modification time, or sha256 with ``runner.hash_identity``): done ones count as skipped, failed ones as
failed in an earlier run until ``--retry-failed``. ``--shard i/N`` keeps the videos with
``sha1(video_id) mod N == i``; shards may share RUN_DIR, as their manifest writes merge under a file lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from tqdm.auto import tqdm

from videoact._version import __version__
from videoact.annotations import schema, store
from videoact.config import RunConfig, fingerprint, to_dict, to_yaml
from videoact.decode.probe import sha256_file
from videoact.runner.engines import VideoResult, run_inline, run_pool
from videoact.runner.errors import EngineError, StageError
from videoact.runner.inputs import VideoRef, shard_of
from videoact.runner.run import label_tables, stages

try:
    import fcntl
except ImportError:  # Windows: no locks; concurrent runs on one RUN_DIR are not supported there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("videoact.run")

ENGINES = ("local", "ray")
RUN_LOCK, MANIFEST_LOCK = ".run.lock", ".manifest.lock"


@dataclass
class RunSummary:
    run_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # done earlier with the same config and file
    failed: dict[str, str] = field(default_factory=dict)  # in this run: video id -> "stage: message"
    failed_earlier: dict[str, str] = field(default_factory=dict)  # same config and file, not retried
    seconds: float = 0.0
    shard: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.failed_earlier

    def line(self) -> str:
        n_failed = len(self.failed) + len(self.failed_earlier)
        n = len(self.done) + len(self.skipped) + n_failed
        rate = len(self.done) / self.seconds * 3600 if self.seconds > 0 and self.done else 0.0
        earlier = (f" ({len(self.failed_earlier)} in an earlier run; --retry-failed re-runs them)"
                   if self.failed_earlier else "")
        shard = f" of shard {self.shard[0]}/{self.shard[1]}" if self.shard else ""
        return (f"{n} video(s){shard}: {len(self.done)} done, {len(self.skipped)} skipped (already done), "
                f"{n_failed} failed{earlier} in {self.seconds:.1f}s ({rate:.0f} videos/hour) -> {self.run_dir}")


def identity(path: Path, *, by_hash: bool = False) -> dict[str, Any]:
    """What makes a video file the same file on the next run: size and mtime, plus sha256 when asked."""
    try:
        st = path.stat()
        out: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        if by_hash:
            out["sha256"] = sha256_file(path)
        return out
    except OSError:
        return {}


def same_file(prev: dict[str, Any], now: dict[str, Any]) -> bool:
    """Same size and, when both have one, same sha256 (a copied or touched file stays done); else same mtime."""
    if not now or prev.get("size") != now.get("size"):
        return False
    if "sha256" in prev and "sha256" in now:
        return bool(prev["sha256"] == now["sha256"])
    return bool(prev.get("mtime_ns") == now.get("mtime_ns"))


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "videoact": __version__}
    for pkg in ("numpy", "pandas", "pyarrow", "av", "decord", "torch", "torchvision", "timm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _remove_temp_files(run_dir: Path) -> None:
    """Temp files of writes that a killed run left (``.NAME.*.tmp``, see ``store.atomic_write_bytes``)."""
    folders = [run_dir, *(run_dir / name for name in schema.TABLE_NAMES)]
    for folder in folders:
        for tmp in folder.glob(".*.tmp"):
            log.info("removing %s (a write cut off by a killed run)", tmp)
            tmp.unlink(missing_ok=True)


def _enter(run_dir: Path) -> IO[str]:
    """Hold a shared lock on RUN_DIR for the run; remove leftover temp files first if no other run is on it."""
    lock = open(run_dir / RUN_LOCK, "a")  # held (shared) until the run ends
    if fcntl is None:
        _remove_temp_files(run_dir)
        return lock
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _remove_temp_files(run_dir)
    except BlockingIOError:
        log.info("another run is writing %s (a shard?); its temp files are left alone", run_dir)
    fcntl.flock(lock, fcntl.LOCK_SH)
    return lock


def _write_manifest(run_dir: Path, header: dict[str, Any], entries: dict[str, dict[str, Any]]) -> None:
    """Merge this run's header and video entries into manifest.json, under a lock (shards share the file)."""
    with open(run_dir / MANIFEST_LOCK, "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = store.read_manifest(run_dir)
        manifest.update(header, updated=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        manifest.setdefault("videos", {}).update(entries)
        store.write_manifest(run_dir, manifest)


def _check_engine(engine: str, workers: int | None, address: str | None) -> None:
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise EngineError(f"--workers {workers}: give 1 or more")
    if address is not None and engine != "ray":
        raise EngineError("--address names a Ray cluster: add --engine ray")
    if engine == "ray" and importlib.util.find_spec("ray") is None:
        raise EngineError("--engine ray needs Ray: pip install 'videoact[ray]'")
    if engine == "ray" and (address or os.environ.get("RAY_ADDRESS")):
        from videoact.runner.ray_engine import check_reachable

        check_reachable(address or os.environ["RAY_ADDRESS"])


def run_videos(refs: list[VideoRef], run_dir: str | Path, cfg: RunConfig, *, input_spec: str = "",
               show_progress: bool | None = None, workers: int | None = None, engine: str = "local",
               address: str | None = None, shard: tuple[int, int] | None = None,
               retry_failed: bool = False) -> RunSummary:
    """Process ``refs`` into ``run_dir``; a failing video is recorded in the manifest and the run goes on.

    Args:
        workers: videos at once. local: 1 (default) runs in this process, N > 1 spawns N worker processes;
            ray: actors (default: one per CPU of the cluster).
        engine: ``local`` or ``ray`` (``address``: the cluster; default RAY_ADDRESS, else a local one).
        shard: ``(i, N)``: only the videos with ``sha1(video_id) mod N == i``.
        retry_failed: run only the videos the manifest lists as failed.

    Raises:
        EngineError: the engine cannot start (bad options, Ray missing or unreachable).
    """
    _check_engine(engine, workers, address)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = store.read_manifest(run_dir)
    if manifest and manifest.get("kind") not in (None, "run"):
        raise StageError("runner", f"{run_dir} holds a '{manifest.get('kind')}' directory, not a run; "
                                   "choose another -o")
    lock = _enter(run_dir)
    try:
        return _run(refs, run_dir, cfg, manifest, input_spec=input_spec, show_progress=show_progress,
                    workers=workers, engine=engine, address=address, shard=shard, retry_failed=retry_failed)
    finally:
        lock.close()


def _run(refs: list[VideoRef], run_dir: Path, cfg: RunConfig, manifest: dict[str, Any], *, input_spec: str,
         show_progress: bool | None, workers: int | None, engine: str, address: str | None,
         shard: tuple[int, int] | None, retry_failed: bool) -> RunSummary:
    fp = fingerprint(cfg)
    if cfg.runner.cache_dir is None:  # feature sequences are cached next to the run (not in its fingerprint)
        cfg = dataclasses.replace(cfg, runner=dataclasses.replace(cfg.runner, cache_dir=str(run_dir / "cache")))
    if shard is not None:
        refs = [ref for ref in refs if shard_of(ref.video_id, shard[1]) == shard[0]]
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    header = {"kind": "run", "videoact_version": __version__, "schema_version": schema.SCHEMA_VERSION,
              "created": manifest.get("created", now), "input": input_spec, "stages": stages(cfg),
              "config_fingerprint": fp, "config": to_dict(cfg), "versions": _versions()}
    store.atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    labels = label_tables(cfg)
    if labels is not None:
        store.write_labels(run_dir, labels)

    status: dict[str, dict[str, Any]] = manifest.get("videos", {})
    summary = RunSummary(run_dir, shard=shard)
    todo: list[VideoRef] = []
    idents: dict[str, dict[str, Any]] = {}
    left_out = 0
    for ref in refs:
        ident = idents[ref.video_id] = identity(ref.path, by_hash=cfg.runner.hash_identity)
        prev = status.get(ref.video_id, {})
        same = prev.get("config_fingerprint") == fp and same_file(prev.get("identity", {}), ident)
        done_file = run_dir / "videos" / f"{store.file_key(ref.video_id)}.parquet"
        if cfg.runner.skip_done and same and prev.get("status") == "done" and done_file.exists():
            summary.skipped.append(ref.video_id)
        elif retry_failed:
            if prev.get("status") == "failed":
                todo.append(ref)
            else:
                left_out += 1
        elif cfg.runner.skip_done and same and prev.get("status") == "failed":
            summary.failed_earlier[ref.video_id] = f"{prev.get('stage')}: {prev.get('error')}"
        else:
            todo.append(ref)
    if left_out:
        log.info("--retry-failed: %d video(s) neither done nor failed are left for a run without it", left_out)
    n_workers = workers or (1 if engine == "local" else None)
    log.info("%d video(s)%s: %d to run, %d done already, %d failed earlier (engine %s, workers: %s)",
             len(refs), f" in shard {shard[0]}/{shard[1]}" if shard else "", len(todo), len(summary.skipped),
             len(summary.failed_earlier), engine, n_workers or "one per cluster CPU")

    show = sys.stderr.isatty() if show_progress is None else show_progress
    by_id = {ref.video_id: ref for ref in todo}
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc="videos", unit="video", disable=not show)
    results = _engine(engine, todo, cfg, workers=workers, address=address, progress=show)
    with contextlib.closing(results), bar:  # closing: the engine stops its workers on any exit
        for k, result in enumerate(results, start=1):
            ref = by_id[result.video_id]
            entry = _store(run_dir, ref, result, identity=idents[ref.video_id], fp=fp)
            _write_manifest(run_dir, header, {ref.video_id: entry})
            if entry["status"] == "done":
                summary.done.append(ref.video_id)
            else:
                summary.failed[ref.video_id] = f"{entry['stage']}: {entry['error']}"
                log.warning("%s failed in %s: %s", ref.video_id, entry["stage"], entry["error"])
            bar.update()
            if summary.failed:
                bar.set_postfix(failed=len(summary.failed))
            if not show:
                log.info("[%d/%d] %s: %s (%.2fs)", k, len(todo), ref.video_id, entry["status"], entry["seconds"])
    summary.seconds = time.perf_counter() - start
    header["summary"] = {"done": len(summary.done), "skipped": len(summary.skipped), "failed": len(summary.failed),
                         "failed_earlier": len(summary.failed_earlier), "seconds": round(summary.seconds, 3),
                         "engine": engine, "workers": n_workers, "shard": list(shard) if shard else None}
    _write_manifest(run_dir, header, {})
    return summary


def _engine(engine: str, todo: list[VideoRef], cfg: RunConfig, *, workers: int | None, address: str | None,
            progress: bool) -> Any:
    timeout_s = cfg.runner.timeout_s
    if engine == "ray" and todo:
        from videoact.runner.ray_engine import run_ray

        return run_ray(todo, cfg, address=address, workers=workers, timeout_s=timeout_s)
    if workers is not None and workers > 1 and len(todo) > 1:
        return run_pool(todo, cfg, workers=workers, timeout_s=timeout_s)
    return run_inline(todo, cfg, timeout_s=timeout_s, progress=progress)


def _store(run_dir: Path, ref: VideoRef, result: VideoResult, *, identity: dict[str, Any], fp: str) -> dict[str, Any]:
    """Write a video's tables (when it succeeded) and return its manifest entry."""
    entry: dict[str, Any] = {"uri": str(ref.path), "identity": identity, "config_fingerprint": fp}
    if result.tables is not None:
        try:
            store.write_video_tables(run_dir, ref.video_id, result.tables)
            entry.update(status="done", rows=result.tables.summary())
        except (OSError, schema.AnnotationError) as exc:
            result = replace(result, tables=None, stage="write", error=f"{type(exc).__name__}: {exc}")
    if result.tables is None:
        entry.update(status="failed", stage=result.stage, error=result.error)
        if result.traceback:
            entry["traceback"] = result.traceback
    entry["seconds"] = round(result.seconds, 4)
    return entry
