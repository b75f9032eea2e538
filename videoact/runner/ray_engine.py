"""``--engine ray``: the per-video function in Ray actors, on an existing cluster or on a local one.

Each actor takes one CPU and runs one video at a time, keeping the models the stages load between
videos. Its results (the tables) come back to the parent through the object store, so the cluster needs
no filesystem shared with RUN_DIR and the parent writes them exactly as with the local engine.

The cluster's Python environment needs videoact (the same version) installed.
Addresses: ``--address``, else ``RAY_ADDRESS``, else a new local cluster. A local cluster, or a cluster
at a loopback address, runs in Ray's single-machine mode: without it Ray replaces 127.0.0.1 by the
machine's network address and listens on every interface.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from videoact.config import RunConfig
from videoact.runner.engines import ProcessFn, VideoResult, process_one, timeout_message
from videoact.runner.errors import EngineError
from videoact.runner.inputs import VideoRef

log = logging.getLogger("videoact.run")

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
START_TIMEOUT_S = 300.0  # an actor that has not started by then (no free CPU on the cluster) is dropped


def is_loopback(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast on a wrong ``host:port`` (``ray.init`` retries an unreachable address for minutes)."""
    target = address.split("://", 1)[-1]
    if target == "auto" or ":" not in target:
        return
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        raise EngineError(f"no Ray cluster answers at {address} ({exc}); check --address / RAY_ADDRESS (the head "
                          "prints it at `ray start --head`), or leave both out to run on a new local cluster") from None


def _connect(address: str | None) -> tuple[Any, bool]:
    """``(ray, started_here)``: Ray connected to ``address`` (or RAY_ADDRESS, or a new local cluster)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None or is_loopback(address):
        if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
            log.warning("ray was imported before videoact could keep this cluster on 127.0.0.1: set "
                        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray, or it may listen on every interface")
        os.environ.update(LOOPBACK_ENV)  # read when ray is imported
    try:
        import ray
    except ImportError:
        raise EngineError("--engine ray needs Ray: pip install 'videoact[ray]'") from None
    if ray.is_initialized():  # a notebook or a script that connected already
        return ray, False
    common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address is None:
            ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, **common)
        else:
            ray.init(address=address, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"at {address}" if address else "on this machine"
        raise EngineError(f"cannot start or reach a Ray cluster {where} ({exc}); start one with `ray start --head`, "
                          "or leave out --address and RAY_ADDRESS to run on a new local one") from None
    return ray, True


class _VideoActor:
    """A Ray worker process that runs videos one at a time."""

    def __init__(self, cfg: RunConfig, fn: ProcessFn, timeout_s: float | None) -> None:
        import videoact.runner.run  # noqa: F401  (seconds of imports, before the first video's clock starts)

        self.cfg, self.fn, self.timeout_s = cfg, fn, timeout_s

    def ready(self) -> bool:
        return True

    def process(self, ref: VideoRef) -> VideoResult:
        return self.fn(ref, self.cfg, timeout_s=self.timeout_s)


def run_ray(todo: Sequence[VideoRef], cfg: RunConfig, *, address: str | None = None, workers: int | None = None,
            timeout_s: float | None = None, fn: ProcessFn = process_one) -> Iterator[VideoResult]:
    """One actor per CPU of the cluster (or ``workers``), one video each at a time, results as they finish.

    The timeout is the actor's alarm (actor methods run in the worker's main thread); an actor that has not
    answered ``min(timeout_s, 10)`` seconds later is killed and replaced, as is one that died.
    """
    ray, started_here = _connect(address)
    actor_cls = ray.remote(num_cpus=1)(_VideoActor)
    live: list[Any] = []

    def start_actors(k: int) -> list[Any]:
        new = {}
        for _ in range(k):
            actor = actor_cls.remote(cfg, fn, timeout_s)
            new[actor.ready.remote()] = actor
        done, late = ray.wait(list(new), num_returns=len(new), timeout=START_TIMEOUT_S)
        if late:
            log.warning("%d of %d Ray actors did not start within %g s (no free CPU?); going on without them",
                        len(late), len(new), START_TIMEOUT_S)
        for r in late:
            ray.kill(new[r])
        started = []
        for r in done:
            try:
                ray.get(r)
                started.append(new[r])
            except ray.exceptions.RayError as exc:
                log.warning("a Ray actor did not start: %s", exc)
        if not started and not live:
            raise EngineError(f"no Ray actor started within {START_TIMEOUT_S:g} s (a free CPU on the cluster "
                              f"{address or os.environ.get('RAY_ADDRESS') or 'on this machine'} is needed)")
        live.extend(started)
        return started

    def retire(actor: Any) -> None:
        ray.kill(actor)
        live.remove(actor)

    try:
        pending = deque(todo)
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        idle = start_actors(min(n, len(pending))) if pending else []
        inflight: dict[Any, tuple[Any, VideoRef, float]] = {}
        hard_s = timeout_s + min(timeout_s, 10.0) if timeout_s else float("inf")
        while pending or inflight:
            while idle and pending:
                actor, ref = idle.pop(), pending.popleft()
                inflight[actor.process.remote(ref)] = (actor, ref, time.monotonic() + hard_s)
            if not inflight:
                raise EngineError(f"no Ray actor could be restarted; {len(pending)} video(s) not run (re-run the "
                                  "same command to process them)")
            next_deadline = min(d for _, _, d in inflight.values())
            wait_s = None if next_deadline == float("inf") else max(0.0, next_deadline - time.monotonic())
            done, _ = ray.wait(list(inflight), num_returns=1, timeout=wait_s)
            for obj in done:
                actor, ref, _ = inflight.pop(obj)
                try:
                    result = ray.get(obj)
                except ray.exceptions.RayError as exc:  # the worker process died (a decoder crash, out of memory)
                    result = VideoResult(ref.video_id, stage="crash",
                                         error=f"the Ray worker failed on this video ({type(exc).__name__}: "
                                               f"{str(exc).splitlines()[0] if str(exc) else ''}); the others went on")
                if result.stage in ("crash", "timeout"):  # dead, or interrupted at an arbitrary point: start afresh
                    retire(actor)
                    idle.extend(start_actors(1))
                else:
                    idle.append(actor)
                yield result
            now = time.monotonic()
            for obj, (actor, ref, deadline) in list(inflight.items()):
                if now > deadline:
                    del inflight[obj]
                    retire(actor)
                    idle.extend(start_actors(1))
                    yield VideoResult(ref.video_id, stage="timeout", error=timeout_message(timeout_s),
                                      seconds=timeout_s or 0.0)
    finally:
        for actor in live:
            ray.kill(actor)
        if started_here:
            ray.shutdown()
