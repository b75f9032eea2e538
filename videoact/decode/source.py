"""``VideoSource``: one video file as metadata plus frames by index, over decord or PyAV.

Backend selection (``backend="auto"``, the ``decode.backend`` default):

1. PyAV always opens the file first and demuxes it once (``_pyav.probe``): a missing, empty, non-video,
   audio-only, moov-less or otherwise unreadable file raises ``VideoDecodeError`` here, before decord
   ever sees it (decord aborts or hangs on some malformed files). The probe counts the frames that
   are really in the file and collects their timestamps.
2. decord is used when it is installed and the probe found nothing decord mishandles (no corrupt
   packets, and the container's frame count agrees with the demuxed count: decord trusts the
   header). It opens lazily, on the first read that needs it.
3. Otherwise PyAV decodes; ``info.backend_note`` says why. If decord fails to open or to decode
   (at any read), the source switches to PyAV for good and retries the read: ``info.backend`` and
   ``info.backend_note`` then say so. ``probe_video`` reads frame 0, so its record is settled.
4. ``stream()`` (every frame in order, the long-video path) always decodes with PyAV in ``auto`` mode:
   decord's memory can grow with every frame it decodes (see ``_decord``), PyAV's stays flat, and
   PyAV with frame threads is also the faster sequential decoder here (``docs/benchmarks.md``).

``backend="decord"`` or ``"pyav"`` forces one reader: no fallback, its errors are ``VideoDecodeError``.
Both readers return identical pixels on the test videos, frames upright (display rotation applied).

Example::

    with VideoSource("clip.mp4") as src:
        print(src.info.fps, len(src))
        clip = src.get_frames(np.arange(0, 64, 4))  # (16, H, W, 3) uint8
        for start, window in src.stream(window=64):  # memory bounded by one window
            ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from videoact.decode import _decord, _pyav
from videoact.decode._common import VideoDecodeError, VideoInfo

log = logging.getLogger("videoact.decode")

Backend = Literal["auto", "decord", "pyav"]
BACKENDS = ("auto", "decord", "pyav")


class _Reader(Protocol):
    name: str

    def read(self, indices: np.ndarray, *, sequential: bool = False) -> np.ndarray: ...

    def close(self) -> None: ...


class VideoSource:
    """Metadata and uint8 frames ``(T, H, W, 3)`` of one video; see the module doc for the backend rule.

    Args:
        path: the video file.
        backend: ``auto`` (decord, PyAV fallback), ``decord`` or ``pyav``.
        num_threads: decoder threads (0: let FFmpeg choose).
        max_batch: most frames decord decodes in one ``get_batch`` call.
        reader_budget_mb: decord reader lifetime: MB of frames decoded by ``get_batch`` before it is reopened.
        max_bad_frames: frames that do not decode replaced by the previous one (PyAV; listed in ``bad_frames``)
            before a damaged video is an error.
    """

    def __init__(self, path: str | Path, *, backend: Backend = "auto", num_threads: int = 0, max_batch: int = 32,
                 reader_budget_mb: float = 1024.0, max_bad_frames: int = 0) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoDecodeError(self.path, "no such file" if not self.path.exists() else "not a regular file")
        if self.path.stat().st_size == 0:
            raise VideoDecodeError(self.path, "empty file (0 bytes)")
        self._meta = _pyav.probe(self.path)
        self._max_bad = max_bad_frames
        self._opts: dict[str, Any] = {"num_threads": num_threads}
        self._decord_opts: dict[str, Any] = {"max_batch": max_batch, "reader_budget_mb": reader_budget_mb}
        self._forced = backend != "auto"
        self._reader: _Reader
        self._stream_reader: _Reader | None = None  # PyAV for stream() when auto picked decord
        note = ""
        if backend == "pyav":
            self._reader = self._pyav_reader()
        elif backend == "decord":
            if not _decord.available():
                raise VideoDecodeError(self.path, "decord is not installed; use backend=pyav")
            self._reader = _decord.DecordReader(self.path, self._meta, **self._opts, **self._decord_opts)
            self._reader.read(np.zeros(1, dtype=np.int64))  # opens it; errors name the file
        else:
            # decord opens lazily, on the first read that needs it (stream() never does); if it fails
            # then, the source switches to PyAV and retries (see _read).
            note = self._decord_unsuitable()
            self._reader = self._pyav_reader() if note else \
                _decord.DecordReader(self.path, self._meta, **self._opts, **self._decord_opts)
        meta = {k: v for k, v in self._meta.items() if k in VideoInfo.__dataclass_fields__}
        self.info = VideoInfo(path=str(self.path), backend=self._reader.name, backend_note=note, **meta)
        if note:
            log.info("%s: %s", self.path, note)

    # ---------------------------------------------------------------------------------------------- selection

    def _pyav_reader(self) -> _Reader:
        return _pyav.PyAVReader(self.path, self._meta, **self._opts, max_bad_frames=self._max_bad)

    @property
    def bad_frames(self) -> list[int]:
        """Indices of the frames that did not decode and were replaced by the previous one (sorted)."""
        readers = (self._reader, self._stream_reader)
        return sorted({i for r in readers if r is not None for i in getattr(r, "bad_frames", ())})

    def _decord_unsuitable(self) -> str:
        """Why auto selection skips decord for this file ('' when it does not)."""
        m = self._meta
        if not _decord.available():
            return "decord is not installed; PyAV decodes it"
        if m["n_corrupt_packets"]:
            return f"{m['n_corrupt_packets']} damaged packet(s) (truncated file?); PyAV decodes the rest"
        if m["n_frames_container"] is not None and m["n_frames_container"] != m["n_frames"]:
            return (f"the container claims {m['n_frames_container']} frames but holds {m['n_frames']}; "
                    "PyAV decodes it (decord trusts the header)")
        return ""

    def _switch_to_pyav(self, exc: VideoDecodeError) -> None:
        note = f"decord failed mid-read ({exc.reason}); switched to PyAV"
        log.warning("%s: %s", self.path, note)
        self._reader.close()
        self._reader = self._pyav_reader()
        object.__setattr__(self.info, "backend", "pyav")  # the record says which reader decodes now
        object.__setattr__(self.info, "backend_note", note)

    @property
    def backend(self) -> str:
        return self._reader.name

    # ---------------------------------------------------------------------------------------------- frames

    def __len__(self) -> int:
        return self.info.n_frames

    def _read(self, indices: np.ndarray, *, sequential: bool = False) -> np.ndarray:
        try:
            return self._reader.read(indices, sequential=sequential)
        except VideoDecodeError as exc:
            if self._forced or self._reader.name != "decord":
                raise
            self._switch_to_pyav(exc)
            return self._reader.read(indices)

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed) as a (T, H, W, 3) uint8 tensor."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) == 0:
            raise ValueError("no frame indices requested")
        if idx.min() < 0 or idx.max() >= len(self):
            raise IndexError(f"{self.path}: frame indices must lie in [0, {len(self)}), got {idx.min()}..{idx.max()}")
        return torch.from_numpy(self._read(idx))

    def clips(self, clip_indices: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        """Decode sampler output clip by clip: one (T, H, W, 3) tensor per index array, lazily.

        Clips that move forward through the video (every sampler here) are read as one forward
        pass: decord keeps its position between clips instead of rewinding after each.
        """
        last = -1
        try:
            for idx in clip_indices:
                idx = np.asarray(idx, dtype=np.int64).reshape(-1)
                if len(idx) == 0:
                    raise ValueError("empty clip: a sampler returned no frame indices")
                if idx.min() < 0 or idx.max() >= len(self):
                    raise IndexError(f"{self.path}: clip indices must lie in [0, {len(self)}), "
                                     f"got {idx.min()}..{idx.max()}")
                forward = int(idx.min()) >= last
                last = int(idx.min())
                yield torch.from_numpy(self._read(idx, sequential=forward))
        finally:
            if isinstance(self._reader, _decord.DecordReader):
                self._reader.end_stream()

    def stream(self, window: int = 64, *, start: int = 0,
               stop: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Every frame in ``[start, stop)`` in order, ``window`` frames at a time: ``(first_index, (T, H, W, 3))``.

        Each frame is decoded once and memory holds one window, whatever the video's length.
        """
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        stop = len(self) if stop is None else min(stop, len(self))
        if not self._forced and self._reader.name == "decord":
            if self._stream_reader is None:
                self._stream_reader = self._pyav_reader()
            reader = self._stream_reader
            for s in range(start, stop, window):
                yield s, torch.from_numpy(reader.read(np.arange(s, min(s + window, stop), dtype=np.int64)))
            return
        try:
            for s in range(start, stop, window):
                idx = np.arange(s, min(s + window, stop), dtype=np.int64)
                yield s, torch.from_numpy(self._read(idx, sequential=True))
        finally:
            if isinstance(self._reader, _decord.DecordReader):
                self._reader.end_stream()

    def count_decoded_frames(self) -> int:
        """Decode the whole video with PyAV and count the frames (slow; the probe's packet count is the default)."""
        container = _pyav._open(self.path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            return sum(1 for _ in _pyav._decode_packets(container, stream))
        finally:
            container.close()

    # ---------------------------------------------------------------------------------------------- lifetime

    def close(self) -> None:
        self._reader.close()
        if self._stream_reader is not None:
            self._stream_reader.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return (f"VideoSource({str(self.path)!r}, backend={self.backend!r}, {i.width}x{i.height}, "
                f"{i.n_frames} frames @ {i.fps:.4g} fps)")
