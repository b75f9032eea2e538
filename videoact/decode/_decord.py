"""decord backend: the primary frame reader (fast batched random access), with its memory problems fenced in.

decord's memory problems, measured on a 1080p H.264 file (``scripts/bench_decode.py``), and what is
done about them:

- ``get_batch`` keeps memory it never gives back: RSS grows by about 1.5-2 MB per decoded 1080p frame
  (600 frames read in chunks of 32: 2.3 GB peak) and ``seek(0)`` returns only part of it. Reading
  forward with ``next()`` is usually flat, but not always: in some runs it grew by about 3 MB a frame.
- So: ``VideoSource.stream`` (the long-video path) decodes with PyAV in ``auto`` mode (flat memory,
  and faster than decord on these files). Here, requests are split into chunks of ``max_batch``
  frames, consecutive forward reads use ``next()`` rather than ``get_batch``, the reader is
  ``seek(0)``-ed after each random-access request, and every reader has a bounded lifetime: it is
  dropped and reopened once ``reader_budget_mb`` of frames went through it, whichever way they were
  read (reopening costs one index pass, plus a decode from the keyframe when resuming forward reads).
- ``get_batch`` sometimes returns a stale frame (one decoded earlier in the same call) for the last
  one or two frames of a file with B-frames: a race at the end-of-stream flush that shows up under CPU
  load (NTU's H.264-in-AVI: 22 wrong last frames in 240 loaded trials). Reading the last
  ``_TAIL`` frames as one contiguous run never did (0 in 320 runs of 4 and 8 frames), so a request
  that touches the tail decodes the whole tail run and picks from it.

decord is never the first reader of a file: ``VideoSource`` probes with PyAV first (decord aborts or
hangs on some malformed inputs) and maps decord errors to ``VideoDecodeError``.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import numpy as np

from videoact.decode._common import VideoDecodeError

_TAIL = 8  # last frames of a file that get_batch reads only as one contiguous run (see above)


def available() -> bool:
    try:
        import decord  # noqa: F401
    except Exception:  # ImportError, or a broken native library
        return False
    return True


class DecordReader:
    """Frames by index through ``decord.VideoReader.get_batch``; decord applies the display rotation itself."""

    name = "decord"

    def __init__(self, path: Path, meta: dict[str, Any], *, num_threads: int = 0, max_batch: int = 32,
                 reader_budget_mb: float = 1024.0) -> None:
        self.path = path
        self._n = int(meta["n_frames"])
        w, h = int(meta["width"]), int(meta["height"])
        self._shape = (w, h, 3) if int(meta["rotation"]) in (90, 270) else (h, w, 3)  # (H, W, 3) upright
        self._num_threads, self._max_batch = num_threads, max_batch
        frame_mb = self._shape[0] * self._shape[1] * 3 / 1e6
        self._frames_per_reader = max(max_batch, int(reader_budget_mb / frame_mb))  # decoded frames per instance
        self._reader: Any = None
        self._decoded = 0  # frames the current reader decoded
        self._pos: int | None = None  # index next() returns, when known
        self.readers_opened = 0

    def _open(self) -> Any:
        if self._reader is None:
            import decord

            try:
                self._reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=self._num_threads)
            except Exception as exc:  # DECORDError, RuntimeError: decord has no common base class
                raise VideoDecodeError(self.path, f"decord cannot open it ({_short(exc)})") from None
            self.readers_opened += 1
            self._decoded, self._pos = 0, 0
            if len(self._reader) < self._n:
                n = len(self._reader)
                self.close()
                raise VideoDecodeError(self.path, f"decord sees {n} frames where the demuxer counted {self._n}")
        return self._reader

    def read(self, indices: np.ndarray, *, sequential: bool = False) -> np.ndarray:
        """Frames at ``indices`` as (T, H, W, 3) uint8.

        ``sequential`` marks one window of a forward streaming pass: decord keeps its position
        (no ``seek(0)``) so the next window continues without re-decoding from a keyframe.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= self._n):
            bad = int(indices.max() if indices.max() >= self._n else indices.min())
            raise VideoDecodeError(self.path, f"frame {bad} is out of range (the video has {self._n} frames)")
        if self._reader is not None and self._decoded >= self._frames_per_reader:
            self.close()  # bounded reader lifetime
        reader = self._open()
        try:
            if sequential and len(indices) and (np.diff(indices) == 1).all():
                return self._read_forward(reader, int(indices[0]), len(indices))
            return self._read_batch(reader, indices, rewind=not sequential)
        except VideoDecodeError:
            raise
        except Exception as exc:
            self.close()
            raise VideoDecodeError(self.path, f"decord failed to decode frames ({_short(exc)})") from None

    def _read_forward(self, reader: Any, start: int, count: int) -> np.ndarray:
        """Consecutive frames with next(): no get_batch, so no memory growth."""
        if self._pos != start:
            reader.seek_accurate(start)
        out = np.empty((count, *self._shape), dtype=np.uint8)  # (T, H, W, 3)
        for t in range(count):
            out[t] = reader.next().asnumpy()
        self._pos = start + count
        self._decoded += count
        return out

    def _read_batch(self, reader: Any, indices: np.ndarray, *, rewind: bool) -> np.ndarray:
        # Decode each wanted frame once, in file order: decord seeks per index otherwise (backwards is very slow).
        wanted, inverse = np.unique(indices, return_inverse=True)
        out = np.empty((len(wanted), *self._shape), dtype=np.uint8)  # (T, H, W, 3)
        tail_start = max(0, self._n - _TAIL)
        head = wanted[wanted < tail_start]
        for s in range(0, len(head), self._max_batch):
            chunk = head[s:s + self._max_batch]
            out[s:s + len(chunk)] = reader.get_batch(chunk.tolist()).asnumpy()
            self._decoded += len(chunk)
        if len(head) < len(wanted):  # the end-of-stream race: decode the tail as one run
            tail = reader.get_batch(list(range(tail_start, self._n))).asnumpy()
            self._decoded += len(tail)
            out[len(head):] = tail[wanted[len(head):] - tail_start]
        if rewind:  # gives back part of what get_batch keeps; forward clip runs rewind once, at their end
            reader.seek(0)
            self._pos = 0
        else:
            self._pos = None  # decord's position after get_batch is its own business: seek_accurate next time
        return out if len(wanted) == len(indices) and (inverse == np.arange(len(indices))).all() else out[inverse]

    def end_stream(self) -> None:
        """A streaming pass ended: rewind so decord drops what it buffered."""
        if self._reader is not None:
            try:
                self._reader.seek(0)
                self._pos = 0
            except Exception:
                self.close()

    def close(self) -> None:
        if self._reader is not None:
            self._reader = None
            gc.collect()  # decord frees its demuxer and frame pool only when the object is collected


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
