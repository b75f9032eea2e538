"""Downloads of model-zoo files: cached, atomic, verified before first use.

``download(card)`` returns ``{role: path}`` for every file of a card, fetching what the cache lacks:

* cache: ``$VIDEOACT_HOME/models/<card name>/<file name>`` (``$VIDEOACT_HOME`` defaults to ``~/.cache/videoact``);
* each URL of the file in order (primary, then mirrors); ``$VIDEOACT_MIRROR`` (a base URL such as an internal
  server of an air-gapped cluster, or a local folder) replaces them all by ``$VIDEOACT_MIRROR/<file name>``;
* written to ``<file>.<pid>.part`` and renamed only once complete and verified, so the cache never holds half a
  file (nor a wrong one), and two processes filling the same cache do not write into each other's download;
* an HTML page (by ``Content-Type`` or by its first bytes), an HTTP error or a body shorter than
  ``Content-Length`` is a ``DownloadError``, never something loaded;
* one retry of each URL after a dropped connection, a timeout, a truncated body or a 5xx / 429 answer;
* ``VIDEOACT_OFFLINE=1`` (or ``offline=True``): nothing is fetched; a missing file is a ``DownloadError`` naming
  the exact path to put it at.

Verification happens once, not on every use. The sha256 (or the published prefix, e.g. OpenMMLab's 8 hex
digits) is checked when the file arrives; the measured digest is then written beside it as ``<file>.sha256``
(``sha256sum`` format) and a file with such a marker is used without being read again, so loading a 300 MB
checkpoint does not cost a hash each time. A file without a marker (one a user put there by hand, e.g. on an
offline machine) is hashed on first use. The marker is distrusted, and the file hashed again, when its digest
no longer matches the card (the card was updated) or the file's size differs from the card's ``size``.
``download(card, verify=True)`` (``videoact models download NAME --verify``) re-hashes cached files regardless;
a file that fails is deleted and fetched again (offline: a ``DownloadError``, and the file is left alone).

A card that publishes no hash (``FileSpec.verifiable`` false) still downloads: a warning says the file could not
be verified, and the measured sha256 is recorded in the marker, so ``--verify`` later detects a change.

Every ``DownloadError`` message is one line naming the model, the URL(s) and the cache path.
"""

from __future__ import annotations

import glob
import hashlib
import http.client
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from videoact._version import __version__
from videoact.models._card import FileSpec, ModelCard, home

CHUNK = 1 << 20
RETRY_DELAY_S = 0.5  # before the one retry of a URL (tests set it to 0)
MARKER_SUFFIX = ".sha256"
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head")

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A model file that could not be had: one line naming the model, the URL and the cache path."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# ------------------------------------------------------------------------------------------------ paths

def cache_path(card: ModelCard, spec: FileSpec) -> Path:
    if spec.bundled:
        return Path(__file__).resolve().parent / "labels" / spec.filename
    return home() / "models" / card.name / spec.filename


def marker_path(path: Path) -> Path:
    """``<file>.sha256``: the digest measured when ``path`` was verified (``sha256sum`` format)."""
    return path.with_name(path.name + MARKER_SUFFIX)


def offline_mode() -> bool:
    return os.environ.get("VIDEOACT_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def urls_of(spec: FileSpec) -> list[str]:
    """Where ``spec`` is fetched from, in order: ``$VIDEOACT_MIRROR/<file name>`` alone when it is set (a URL,
    or a folder, read as ``file://``), else the card's URLs."""
    mirror = os.environ.get("VIDEOACT_MIRROR", "").strip()
    if mirror:
        if "://" not in mirror:
            mirror = Path(mirror).expanduser().resolve().as_uri()
        return [f"{mirror.rstrip('/')}/{spec.filename}"]
    return list(spec.urls)


# ------------------------------------------------------------------------------------------------ hashes

def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def hash_problem(spec: FileSpec, digest: str) -> str:
    """'' when ``digest`` matches what the card publishes (or the card publishes nothing), else why not."""
    if spec.sha256 and digest != spec.sha256.strip().lower():
        return f"sha256 {digest} where the card says {spec.sha256}"
    if spec.sha256_prefix and not digest.startswith(spec.sha256_prefix.strip().lower()):
        return f"sha256 {digest} does not start with the published {spec.sha256_prefix}"
    return ""


def hash_kind(spec: FileSpec) -> str:
    """How well a file is checked: ``full`` (sha256), ``prefix`` (a published prefix), ``bundled``, ``none``."""
    if spec.bundled:
        return "bundled"
    return "full" if spec.sha256 else "prefix" if spec.sha256_prefix else "none"


def read_marker(path: Path) -> str | None:
    """The digest recorded beside ``path``, or None (no marker, or one that does not parse)."""
    try:
        text = marker_path(path).read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return None
    digest = text[0].lower() if text else ""
    return digest if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) else None


def write_marker(path: Path, digest: str) -> None:
    """Record ``digest`` beside ``path`` (atomically; a read-only cache just goes without)."""
    marker = marker_path(path)
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.part")
    try:
        tmp.write_text(f"{digest}  {path.name}\n", encoding="utf-8")
        os.replace(tmp, marker)
    except OSError as exc:
        log.debug("could not write %s: %s", marker, exc)
        tmp.unlink(missing_ok=True)


def _drop(path: Path) -> None:
    path.unlink(missing_ok=True)
    marker_path(path).unlink(missing_ok=True)


def _unverified_warning(card: ModelCard, spec: FileSpec, path: Path, digest: str) -> None:
    note = f" ({spec.hash_note})" if spec.hash_note else ""
    log.warning("model %s: %s could not be verified: the card publishes no sha256%s; measured sha256 %s, "
                "recorded in %s", card.name, spec.filename, note, digest, marker_path(path))


# ------------------------------------------------------------------------------------------------ download

def download(card: ModelCard, *, offline: bool | None = None, progress: bool = True, timeout: float = 30.0,
             verify: bool = False) -> dict[str, Path]:
    """``{role: path}`` for every file of ``card``, each in the cache and verified (see the module doc).

    ``verify``: hash cached files again even when their marker says they were verified."""
    offline = offline_mode() if offline is None else offline
    return {spec.role: fetch_file(card, spec, offline=offline, progress=progress, timeout=timeout, verify=verify)
            for spec in card.files}


def is_cached(card: ModelCard, spec: FileSpec) -> bool:
    return cache_path(card, spec).is_file()


def _cached_ok(card: ModelCard, spec: FileSpec, path: Path, *, offline: bool, verify: bool) -> bool:
    """Whether the cached ``path`` may be used as it is; a file that fails its check is deleted (online)."""
    marker = read_marker(path)
    trusted = marker is not None and not hash_problem(spec, marker)
    if trusted and not verify and (spec.size is None or path.stat().st_size == spec.size):
        return True  # verified when it arrived: not read again
    digest = sha256_of(path)
    problem = hash_problem(spec, digest)
    if not problem and not spec.verifiable and marker is not None and digest != marker:
        problem = f"sha256 {digest} where {marker_path(path).name} recorded {marker}"
    if not problem and spec.size is not None and path.stat().st_size != spec.size:
        problem = f"{path.stat().st_size} bytes where the card says {spec.size}"
    if not problem:
        if not spec.verifiable and marker is None:
            _unverified_warning(card, spec, path, digest)
        if marker != digest:
            write_marker(path, digest)
        return True
    if offline:
        raise DownloadError(f"model {card.name}: the cached {path} does not match the card ({problem}); offline "
                            f"(VIDEOACT_OFFLINE=1), so it is left as it is: replace it with the right file"
                            + (f" from {urls_of(spec)[0]}" if urls_of(spec) else ""))
    log.warning("model %s: the cached %s does not match the card (%s); downloading it again", card.name, path,
                problem)
    _drop(path)
    return False


def fetch_file(card: ModelCard, spec: FileSpec, *, offline: bool, progress: bool, timeout: float,
               verify: bool = False) -> Path:
    path = cache_path(card, spec)
    if spec.bundled:
        if not path.is_file():
            raise DownloadError(f"model {card.name}: the bundled file {path} is missing (reinstall videoact)")
        return path
    if path.is_file() and _cached_ok(card, spec, path, offline=offline, verify=verify):
        return path
    urls = urls_of(spec)
    if offline or not urls:
        why = "offline (VIDEOACT_OFFLINE=1)" if offline else "the card lists no URL"
        where = f" from {urls[0]}" if urls else ""
        raise DownloadError(f"model {card.name}: {why}; download {spec.filename}{where} and put it at {path}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"model {card.name}: cannot create the cache folder {path.parent} ({exc}); "
                            f"set VIDEOACT_HOME to a writable folder") from None
    _remove_stale_parts(path)
    errors = []
    for url in urls:
        for attempt in range(2):  # one retry after a dropped connection
            try:
                digest = _get(url, path, spec, progress=progress, timeout=timeout, label=card.name)
            except _Retry as exc:
                error = f"{url}: {exc}"
                if attempt == 0:
                    errors.append(error)
                    time.sleep(RETRY_DELAY_S)
                    continue
                errors[-1] = f"{error} (twice)" if error == errors[-1] else f"{errors[-1]}; {error}"
            except DownloadError as exc:
                errors.append(f"{url}: {exc}")
            else:
                write_marker(path, digest)
                if not spec.verifiable:
                    _unverified_warning(card, spec, path, digest)
                return path
            break
    raise DownloadError(f"model {card.name}: could not download {spec.filename} to {path} ({'; '.join(errors)}); "
                        f"without network, download it elsewhere and put it at that path")


def _remove_stale_parts(path: Path, age_s: float = 86400.0) -> None:
    """``<file>.<pid>.part`` files older than a day: left by a process that was killed mid-download."""
    for stale in path.parent.glob(f"{glob.escape(path.name)}.*.part"):
        try:
            if time.time() - stale.stat().st_mtime > age_s:
                stale.unlink()
        except OSError:
            pass


class _Retry(Exception):
    """A failure worth one more try of the same URL (dropped connection, timeout, truncation, 5xx)."""


def _open(url: str, timeout: float):  # an http.client.HTTPResponse (or urllib's file response)
    request = urllib.request.Request(url, headers={"User-Agent": f"videoact/{__version__}"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        message = f"HTTP {exc.code} {exc.reason}"
        if exc.code >= 500 or exc.code == 429:
            raise _Retry(message) from None
        raise DownloadError(message) from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, FileNotFoundError):
            raise DownloadError(f"no such file ({exc.reason.filename or url})") from None
        if isinstance(exc, ValueError) or (isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, str)):
            raise DownloadError(f"bad URL ({reason})") from None  # unknown scheme, no host, ...
        raise _Retry(f"no connection ({type(reason).__name__}: {reason})") from None


def _get(url: str, path: Path, spec: FileSpec, *, progress: bool, timeout: float, label: str) -> str:
    """Fetch ``url`` into ``path`` (via a ``.part`` file, renamed once complete and verified); its sha256."""
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    bar = None
    try:
        resp = _open(url, timeout)
        with resp:
            ctype = resp.headers.get("Content-Type", "") or ""
            if "html" in ctype.lower():
                raise DownloadError(f"the server sent an HTML page ({ctype}), not the file")
            try:
                total = int(resp.headers.get("Content-Length") or 0) or None
            except ValueError:
                total = None
            got = 0
            bar = _bar(total, label, spec.filename) if progress else None
            h = hashlib.sha256()
            try:
                f = open(part, "wb")  # closed by the with below
            except OSError as exc:
                raise DownloadError(f"cannot write {part} ({exc}); set VIDEOACT_HOME to a writable folder") from None
            with f:
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except (OSError, ValueError, http.client.HTTPException) as exc:  # IncompleteRead, reset, timeout
                        raise _Retry(f"connection dropped after {got} bytes ({type(exc).__name__})") from None
                    if not block:
                        break
                    if got == 0 and block.lstrip()[:40].lower().startswith(_HTML_STARTS):
                        raise DownloadError("the server sent an HTML page, not the file")
                    try:
                        f.write(block)
                    except OSError as exc:
                        raise DownloadError(f"cannot write {part} ({exc})") from None
                    h.update(block)
                    got += len(block)
                    if bar is not None:
                        bar.update(len(block))
        if total is not None and got < total:
            raise _Retry(f"truncated: {got} of {total} bytes")
        if spec.size is not None and got != spec.size:
            raise DownloadError(f"{got} bytes where the card says {spec.size}")
        digest = h.hexdigest()
        problem = hash_problem(spec, digest)
        if problem:
            raise DownloadError(f"hash mismatch: {problem}; the download was deleted")
        os.replace(part, path)
        return digest
    finally:
        if bar is not None:
            bar.close()
        part.unlink(missing_ok=True)


def _bar(total: int | None, label: str, filename: str):  # tqdm or None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"{label}: {filename}", file=sys.stderr,
                disable=not sys.stderr.isatty() and os.environ.get("VIDEOACT_PROGRESS") != "1")
