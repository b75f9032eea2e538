"""Engines: run the per-video function over a todo list and yield one ``VideoResult`` per video as it finishes.

The parent (``batch.run_videos``) alone writes the run directory. Engines hand each video's tables back
instead of writing them: a worker that outlives a killed parent has nothing to write, Ray workers need no
filesystem shared with the parent, and the tables of every engine go through one writer.

* ``run_inline``: this process, one video after another (``--workers 1``; per-video progress bars).
* ``run_pool``: N spawned worker processes (``--workers N``), one video each at a time. A worker that
  crashes, or that does not stop at its video's timeout, is killed and replaced: only that video fails.
* ``ray_engine.run_ray``: the same per-video function in Ray actors (``--engine ray``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from videoact.annotations.tables import Tables
from videoact.config import RunConfig
from videoact.runner.errors import StageError
from videoact.runner.inputs import VideoRef

log = logging.getLogger("videoact.run")


@dataclass(frozen=True)
class VideoResult:
    """What one video gave: its tables, or the stage that failed and why."""

    video_id: str
    tables: Tables | None = None
    stage: str | None = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.tables is not None


class VideoTimeout(BaseException):
    """Raised by the alarm inside a stage; a BaseException so that no ``except Exception`` there swallows it."""


def timeout_message(timeout_s: float | None) -> str:
    return (f"took longer than runner.timeout_s={timeout_s:g} s; raise it (runner.timeout_s=...) and re-run "
            "with --retry-failed")


@contextlib.contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    """Raise ``VideoTimeout`` in this thread after ``seconds`` (SIGALRM: main thread on Unix only)."""
    if not seconds:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        log.warning("runner.timeout_s is only enforced in a main thread on Unix; running without a limit")
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise VideoTimeout

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def process_one(ref: VideoRef, cfg: RunConfig, *, timeout_s: float | None = None,
                progress: bool = False) -> VideoResult:
    """``process_video`` with every failure turned into a result: the function every engine runs."""
    from videoact.runner import run

    t0 = time.perf_counter()

    def failed(stage: str, error: str, tb: str | None = None) -> VideoResult:
        return VideoResult(ref.video_id, stage=stage, error=error, traceback=tb, seconds=time.perf_counter() - t0)

    try:
        with _alarm(timeout_s):
            tables = run.process_video(ref, cfg, progress=progress)
    except VideoTimeout:
        return failed("timeout", timeout_message(timeout_s))
    except StageError as exc:
        return failed(exc.stage, exc.message)
    except Exception as exc:  # a bug or an unexpected library error: recorded, the batch goes on
        return failed("internal", f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=8))
    return VideoResult(ref.video_id, tables=tables, seconds=time.perf_counter() - t0)


ProcessFn = Callable[..., VideoResult]  # (ref, cfg, *, timeout_s) -> VideoResult; process_one or a test double


def run_inline(todo: Sequence[VideoRef], cfg: RunConfig, *, timeout_s: float | None = None,
               progress: bool = False) -> Iterator[VideoResult]:
    """One video after another in this process (the timeout is an alarm: it needs the main thread)."""
    for ref in todo:
        yield process_one(ref, cfg, timeout_s=timeout_s, progress=progress)


# ------------------------------------------------------------------------------------------------ process pool

_STARTED = "started"


def _die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel kills this worker when the parent dies, so a killed run leaves no worker behind."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before prctl
        os._exit(0)


def _worker_main(conn: Connection, cfg: RunConfig, fn: ProcessFn, threads: int, timeout_s: float | None,
                 parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # read when torch loads
        os.environ[var] = str(threads)
    import videoact.runner.run  # noqa: F401  (seconds of imports, before the first video's clock starts)

    while True:
        try:
            ref = conn.recv()
        except (EOFError, OSError):
            return
        if ref is None:
            return
        conn.send(_STARTED)
        result = fn(ref, cfg, timeout_s=timeout_s)
        try:
            conn.send(result)
        except (EOFError, OSError):
            return
        except Exception as exc:  # the result does not pickle
            conn.send(VideoResult(ref.video_id, stage="internal", error=f"result not sent to the parent: {exc}"))


class _Worker:
    """One worker process and the video it is on (``ref``), with the time by which it must answer."""

    def __init__(self, ctx: Any, cfg: RunConfig, fn: ProcessFn, threads: int, timeout_s: float | None) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, cfg, fn, threads, timeout_s, os.getpid()),
                                daemon=True, name="videoact-worker")
        self.proc.start()
        child.close()
        self.timeout_s = timeout_s
        self.ref: VideoRef | None = None
        self.deadline = float("inf")
        self.dead = False

    def give(self, ref: VideoRef) -> bool:
        try:
            self.conn.send(ref)
        except OSError:
            self.dead = True
            return False
        self.ref, self.deadline = ref, float("inf")
        return True

    def poll(self) -> VideoResult | None:
        """The current video's result when there is one; a failure when the worker died or overran."""
        assert self.ref is not None
        ref = self.ref
        try:
            while self.conn.poll():
                msg = self.conn.recv()
                if msg == _STARTED:
                    # The worker's alarm fires at timeout_s; past another min(timeout_s, 10 s) it is stuck in
                    # native code that the alarm cannot interrupt, and gets killed.
                    if self.timeout_s:
                        self.deadline = time.monotonic() + self.timeout_s + min(self.timeout_s, 10.0)
                    continue
                self.ref = None
                if msg.stage == "timeout":  # interrupted at an arbitrary point: start afresh
                    self.kill()
                return msg
        except (EOFError, OSError):
            self.proc.join(timeout=5)
        if not self.proc.is_alive():
            self.dead, self.ref = True, None
            return VideoResult(ref.video_id, stage="crash",
                               error=f"the worker process died (exit code {self.proc.exitcode}) on this video; "
                                     "the other videos went on")
        if time.monotonic() > self.deadline:
            self.kill()
            return VideoResult(ref.video_id, stage="timeout", error=timeout_message(self.timeout_s),
                               seconds=self.timeout_s or 0.0)
        return None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(timeout=10)
        self.dead, self.ref = True, None

    def stop(self) -> None:
        if self.ref is None and not self.dead:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.kill()
        self.conn.close()


def run_pool(todo: Sequence[VideoRef], cfg: RunConfig, *, workers: int, timeout_s: float | None = None,
             fn: ProcessFn = process_one) -> Iterator[VideoResult]:
    """``workers`` spawned processes, each with ``max(1, cores // workers)`` torch threads, one video at a time."""
    ctx = mp.get_context("spawn")  # no fork of a parent that may hold torch / decoder threads
    threads = max(1, (os.cpu_count() or 1) // workers)
    pending = deque(todo)

    def new_worker() -> _Worker:
        return _Worker(ctx, cfg, fn, threads, timeout_s)

    pool = [new_worker() for _ in range(min(workers, len(pending)))]
    try:
        while True:
            for i, w in enumerate(pool):
                while w.ref is None and pending:
                    if w.dead:
                        w.stop()
                        pool[i] = w = new_worker()
                    ref = pending.popleft()
                    if not w.give(ref):
                        pending.appendleft(ref)
            busy = [w for w in pool if w.ref is not None]
            if not busy:
                return
            deadline = min(w.deadline for w in busy)
            timeout = None if deadline == float("inf") else max(0.0, deadline - time.monotonic())
            wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=timeout)
            for w in busy:
                result = w.poll()
                if result is not None:
                    yield result
    finally:
        for w in pool:
            w.stop()
