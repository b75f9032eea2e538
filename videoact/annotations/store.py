"""On-disk layout of a run (or an imported dataset): one Parquet file per table per video.

::

    RUN_DIR/
      manifest.json               what made this directory (config, versions, per-video status)
      config.yaml                 the resolved config (runs only)
      videos/<video>.parquet      one file per video and table, written atomically (temp + rename),
      segments/<video>.parquet    so a killed run never leaves a half file and a resumed run can
      boxes/<video>.parquet       skip what is done
      skeletons/<video>.parquet
      forecasts/<video>.parquet
      labels/<label_space>.parquet

DuckDB reads it directly: ``SELECT * FROM 'RUN_DIR/segments/*.parquet'``. Every file carries
``videoact.schema_version`` and ``videoact.table`` in its Parquet key-value metadata.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from videoact.annotations import schema
from videoact.annotations.tables import Tables, merge_meta
from videoact.registry import Registry

MANIFEST = "manifest.json"


def file_key(name: str) -> str:
    """A file-name-safe, reversible key for a video id or label space (``/`` and friends escaped)."""
    key = quote(name, safe="-_.,=+@")
    return "%2E" + key[1:] if key.startswith(".") else key


def current_umask() -> int:
    """The process umask, read without changing it where Linux tells it (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly process-wide)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory, fsync, then rename over ``path``.

    The file gets the mode a plain ``open()`` would give (``0o666 & ~umask``: 0644 under umask 022), set before
    the rename, so a run directory on a shared disk is as readable as the user's umask says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the file what open() would (0644 under umask 022)
            os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through ``atomic_write_bytes``: a killed training never leaves half a checkpoint."""
    import io

    import torch  # only the trainers and heads that save checkpoints need it

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


@dataclass(frozen=True)
class CheckpointKind:
    """A videoact checkpoint format: the ``format`` string its dict carries, what it holds and how to make one."""

    format: str  # e.g. "videoact.skeleton/1"
    what: str  # in messages: "not a videoact {what} checkpoint", "{what} model not found"
    make: str  # the command that writes one


# format string -> kind; one table for error messages (and the model zoo)
CHECKPOINT_KINDS: Registry[CheckpointKind] = Registry("checkpoint format")
for _kind in (
    CheckpointKind("videoact.skeleton/1", "skeleton", "videoact train configs/skeleton/..."),
    CheckpointKind("videoact.temporal/1", "temporal", "videoact train configs/temporal/..."),
    CheckpointKind("videoact.rgb_recognition/1", "RGB recognition", "videoact train configs/rgb/recognition_tiny.yaml"),
    CheckpointKind("videoact.ava_detection/1", "AVA detection", "videoact train configs/detection/ava_tiny.yaml"),
    CheckpointKind("videoact.action_lm/1", "action LM", "videoact train configs/anticipation/action_lm_epic55.yaml"),
):
    CHECKPOINT_KINDS.register(_kind.format, _kind)


class CheckpointError(ValueError):
    """A file that is not a checkpoint videoact can read: the message names it and says what it is instead."""


def load_torch_file(path: str | Path, *, what: str = "checkpoint", fix: str = "",
                    allow: Sequence[type] = ()) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``: tensors and plain data only (``allow``: a few
    more types, e.g. ``argparse.Namespace``), no code from the file ever runs. Anything else is one
    ``CheckpointError`` naming the file and what it is (a pickle that needs Python objects, a truncated archive,
    an empty or foreign file) plus ``fix``; torch's own advice to pass ``weights_only=False`` is never given."""
    import pickle
    import warnings
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # weights_only reads it anyway
            with torch.serialization.safe_globals(list(allow)):
                return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError,
            UnicodeDecodeError, AttributeError, TypeError, IndexError, KeyError) as exc:  # garbage: any of these
        text = str(exc)
        first = (text.strip().splitlines() or [type(exc).__name__])[0]
        found = re.search(r"GLOBAL ([\w.]+)", text)
        with open(path, "rb") as f:
            head = f.read(2)
        if not head:
            kind = "an empty file"
        elif head != b"PK" and head[:1] != b"\x80":  # neither torch's zip archive nor a (legacy) pickle
            kind = f"not a torch file (it starts with {head!r})"
        elif "Weights only load failed" in text or found:
            obj = f" ({found.group(1)})" if found else ""
            kind = (f"a pickle that needs Python objects{obj}, not only tensors and plain data; videoact runs no "
                    "code from a file")
        elif "central directory" in text or "zip archive" in text or isinstance(exc, EOFError):
            kind = "truncated or damaged (its archive is incomplete)"
        else:
            kind = f"not a torch file ({type(exc).__name__}: {first[:120]})"
        raise CheckpointError(f"{path}: not a {what}: {kind}{fix}") from None


def load_torch_checkpoint(path: str | Path, *, fmt: str, what: str | None = None,
                          make: str | None = None) -> dict[str, Any]:
    """A videoact checkpoint: ``torch.load(weights_only=True)`` (tensors and plain data only, no code runs) of a
    dict whose ``format`` is ``fmt``, a ``CHECKPOINT_KINDS`` name. A missing file or another format raises with the
    file, what it should hold and the command that writes one (the kind's ``what`` / ``make`` unless given)."""

    kind = CHECKPOINT_KINDS.get(fmt)
    what, make = what or kind.what, make or kind.make
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} model not found (write one with `{make}`)")
    state = load_torch_file(path, what=f"videoact {what} checkpoint", fix=f"; write one with `{make}`")
    found = state.get("format") if isinstance(state, dict) else None
    if found != fmt:
        other = CHECKPOINT_KINDS.get(found) if isinstance(found, str) and found in CHECKPOINT_KINDS else None
        holds = f"; it is a {other.what} checkpoint ({found!r})" if other is not None else ""
        raise ValueError(f"{path}: not a videoact {what} checkpoint (no format {fmt!r}{holds}); write one with "
                         f"`{make}`")
    return state


def _to_arrow(name: str, df: pd.DataFrame, where: str, *, validated: bool = False) -> pa.Table:
    if not validated:
        df = schema.validate(name, df, where=where)
    arrays = []
    for col in schema.SCHEMAS[name]:
        values = df[col.name]
        if pa.types.is_list(col.type):
            arr = pa.array([None if v is None else list(v) for v in values], type=col.type)
        else:
            arr = pa.array(values.astype(object).where(values.notna(), None).tolist(), type=col.type)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema.arrow_schema(name))


def write_parquet(path: Path, name: str, df: pd.DataFrame, *, validated: bool = False) -> None:
    """Validate ``df`` as table ``name`` (unless the caller just did) and write it atomically to ``path``."""
    table = _to_arrow(name, df, where=str(path), validated=validated)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def read_parquet(path: Path, name: str) -> pd.DataFrame:
    """Read one table file, checking its schema version."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise schema.AnnotationError(f"{path}: not a readable Parquet file ({exc}); delete it and re-run") from None
    _check_meta(path, table.schema.metadata or {}, name)
    return _to_pandas(table, name, str(path))


def _read_many(files: list[Path], name: str, where: str) -> pd.DataFrame:
    """Read many files of one table as one Arrow table (one conversion, one validation)."""
    tables = []
    for path in files:
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise schema.AnnotationError(
                f"{path}: not a readable Parquet file ({exc}); delete it and re-run"
            ) from None
        _check_meta(path, table.schema.metadata or {}, name)
        tables.append(table.replace_schema_metadata(None))
    return _to_pandas(pa.concat_tables(tables, promote_options="permissive"), name, where)


def _check_meta(path: Path, meta: dict[bytes, bytes], name: str) -> None:
    version = meta.get(b"videoact.schema_version", b"").decode()
    if version != schema.SCHEMA_VERSION:
        raise schema.AnnotationError(
            f"{path}: schema version {version or 'missing'!r}, this videoact reads version "
            f"{schema.SCHEMA_VERSION!r}; re-create the file with this version"
        )
    table = meta.get(b"videoact.table", b"").decode()
    if table != name:
        raise schema.AnnotationError(f"{path}: holds table {table!r}, expected {name!r}")


def _to_pandas(table: pa.Table, name: str, where: str) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for col in schema.SCHEMAS[name]:
        if col.name not in table.column_names:
            data[col.name] = [None] * table.num_rows
        elif pa.types.is_list(col.type):
            data[col.name] = [None if v is None else np.asarray(v, dtype=np.float32)
                              for v in table.column(col.name).to_pylist()]
        else:
            data[col.name] = table.column(col.name).to_pandas(types_mapper=_TYPES_MAPPER.get)
    return schema.validate(name, pd.DataFrame(data, columns=schema.columns(name)), where=where)


_TYPES_MAPPER = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}


def write_video_tables(
    root: str | Path, video_id: str, tables: Tables, *, include_empty: bool = True, validated: bool = False
) -> None:
    """Write every per-video table of one video (empty tables too, so "done" is visible on disk)."""
    root = Path(root)
    key = file_key(video_id)
    for name in schema.PER_VIDEO_TABLES:
        df = getattr(tables, name)
        if len(df) and (df["video_id"] != video_id).any():
            raise schema.AnnotationError(f"{name} rows for another video passed to write_video_tables({video_id!r})")
        if len(df) or include_empty:
            write_parquet(root / name / f"{key}.parquet", name, df, validated=validated)


def write_labels(root: str | Path, labels: pd.DataFrame) -> None:
    """Write one file per label space (replacing a label space that is already there)."""
    root = Path(root)
    labels = schema.validate("labels", labels)
    for space, df in labels.groupby("label_space", sort=False):
        write_parquet(root / "labels" / f"{file_key(str(space))}.parquet", "labels", df)


def write_tables(root: str | Path, tables: Tables, *, manifest: dict[str, Any] | None = None) -> Path:
    """Write a whole ``Tables`` (e.g. an imported dataset): one file per video, labels, manifest."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tables = tables.validated()
    groups = {name: dict(iter(getattr(tables, name).groupby("video_id", sort=False)))
              for name in schema.PER_VIDEO_TABLES}
    for vid in tables.video_ids:
        parts = {name: groups[name][vid].reset_index(drop=True) for name in groups if vid in groups[name]}
        write_video_tables(root, vid, Tables(**parts), include_empty=False, validated=True)
    if len(tables.labels):
        write_labels(root, tables.labels)
    if manifest is not None:
        write_manifest(root, manifest)
    return root


def write_manifest(root: str | Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(Path(root) / MANIFEST, json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")


def read_manifest(root: str | Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise schema.AnnotationError(f"{path}: broken JSON ({exc})") from None


def table_files(root: str | Path, name: str) -> list[Path]:
    folder = Path(root) / name
    return sorted(p for p in folder.glob("*.parquet")) if folder.is_dir() else []


def stored_video_ids(root: str | Path, name: str = "videos") -> list[str]:
    return [unquote(p.stem) for p in table_files(root, name)]


def load(root: str | Path, *, videos: Iterable[str] | None = None, tables: Iterable[str] | str | None = None,
         columns: Iterable[str] | None = None) -> Tables:
    """Read a run or imported directory into ``Tables`` (pandas DataFrames).

    Each table's files are read as one ``pyarrow.dataset`` (one scan, one conversion: list columns such as
    ``keypoints`` become float32 arrays in one go, not row by row). Every file's schema version and table name
    are checked; rows are not validated again (they were when written).

    Args:
        root: the directory written by ``videoact run`` or ``videoact import``.
        videos: only these video ids (their files alone are opened); ``labels`` are kept whole.
        tables: which tables to read (a name or names); the others stay empty.
        columns: only these columns of each table read (those a table has; a name no table has is an error).
            With ``columns`` the frames hold just those columns.

    Example:
        >>> import videoact
        >>> t = videoact.load("runs/demo")                           # doctest: +SKIP
        >>> t.segments.groupby("label")["score"].mean()              # doctest: +SKIP
        >>> t = videoact.load("runs/demo", videos=["carphone"], tables="segments",
        ...                   columns=["video_id", "label", "score"])  # doctest: +SKIP
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such run directory (make one with `videoact run` or `videoact import`)")
    names = [tables] if isinstance(tables, str) else list(schema.TABLE_NAMES if tables is None else tables)
    for name in names:
        schema._check_table(name)
    wanted = None if columns is None else list(dict.fromkeys(columns))
    if wanted is not None:
        known = {c for name in names for c in schema.columns(name)}
        unknown = [c for c in wanted if c not in known]
        if unknown:
            raise schema.AnnotationError(f"unknown column(s) {unknown} in the tables {names}")
    ids = None if videos is None else list(dict.fromkeys([videos] if isinstance(videos, str) else videos))
    out: dict[str, pd.DataFrame] = {}
    for name in names:
        if ids is not None and name != "labels":
            files = [p for p in (root / name / f"{file_key(v)}.parquet" for v in ids) if p.is_file()]
        else:
            files = table_files(root, name)
        cols = None if wanted is None else [c for c in wanted if c in schema.columns(name)]
        out[name] = _read_dataset(files, name, cols)
    manifest = read_manifest(root)
    if wanted is not None:  # a Tables needs every table: the ones not read are empty frames of the asked columns
        for name in schema.TABLE_NAMES:
            if name not in out:
                out[name] = schema.empty(name)[[c for c in wanted if c in schema.columns(name)]]
    return Tables(**out, meta=dict(manifest.get("import", {}).get("meta", {})))


def _read_dataset(files: list[Path], name: str, cols: list[str] | None) -> pd.DataFrame:
    """The rows of ``files`` (one table) as one DataFrame in canonical dtypes, in the stored order."""
    import pyarrow.dataset as ds

    full = schema.columns(name)
    if not files:
        df = schema.empty(name)
        return df if cols is None else df[cols]
    for path in files:  # footers only: version and table of every file, a corrupt file named
        try:
            meta = pq.read_schema(path).metadata or {}
        except (OSError, pa.ArrowInvalid) as exc:
            raise schema.AnnotationError(
                f"{path}: not a readable Parquet file ({exc}); delete it and re-run") from None
        _check_meta(path, meta, name)
    read = list(full) if cols is None else list(cols)
    # seq decides the order (below): read it even when not asked for
    if "seq" in full and "seq" not in read:
        read.append("seq")
    dataset = ds.dataset([str(p) for p in files], schema=schema.arrow_schema(name), format="parquet")
    table = dataset.to_table(columns=read)  # files in the given (sorted) order, missing columns null
    df = _arrow_to_frame(table, name)
    seq = df["seq"] if "seq" in df.columns else None
    # seq is a global position (a file's line) for most imports: restore the file's order. Where it
    # restarts per video (Ego4D action_idx) files stay in video order, rows in their stored order.
    if seq is not None and len(seq) and seq.notna().all() and seq.is_unique:
        df = df.sort_values("seq", kind="stable").reset_index(drop=True)
    return df if cols is None else df[cols]


def _arrow_to_frame(table: pa.Table, name: str) -> pd.DataFrame:
    """Arrow -> pandas in the dtypes ``schema.validate`` gives: Int64, string, float64; list columns as one
    float32 buffer split into per-row views (None where null)."""
    types = {c.name: c.type for c in schema.SCHEMAS[name]}
    lists = [c for c in table.column_names if pa.types.is_list(types[c])]
    plain = table.drop_columns(lists) if lists else table
    df = plain.to_pandas(types_mapper=_TYPES_MAPPER.get)
    for c in lists:
        df[c] = _split_list_column(table.column(c))
    return df[table.column_names]


def _split_list_column(column: pa.ChunkedArray) -> pd.Series:
    """A list<float32> column as an object Series of float32 arrays (views into one buffer) and None."""
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    offsets = arr.offsets.to_numpy()
    values = arr.values.to_numpy(zero_copy_only=False)
    values = np.array(values[offsets[0]:offsets[-1]], dtype=np.float32)  # writeable, owned
    parts = np.split(values, offsets[1:-1] - offsets[0])
    out = np.fromiter(parts, dtype=object, count=len(arr)) if len(arr) else np.empty(0, dtype=object)
    if arr.null_count:
        out[arr.is_null().to_numpy(zero_copy_only=False)] = None
    return pd.Series(out, dtype=object)


def _load_per_row(root: str | Path, tables: Iterable[str] = schema.TABLE_NAMES) -> Tables:
    """The loader before issue 20 (files one by one, list columns through ``to_pylist``, every row validated).

    Kept only as the reference of ``scripts/bench_load.py`` and of the test that ``load`` returns the same."""
    root = Path(root)
    out: dict[str, pd.DataFrame] = {}
    for name in tables:
        files = table_files(root, name)
        if not files:
            out[name] = schema.empty(name)
            continue
        out[name] = _read_many(files, name, str(root / name))
        seq = out[name]["seq"] if "seq" in out[name].columns else None
        if seq is not None and len(seq) and seq.notna().all() and seq.is_unique:
            out[name] = out[name].sort_values("seq", kind="stable").reset_index(drop=True)
    manifest = read_manifest(root)
    return Tables(**out, meta=dict(manifest.get("import", {}).get("meta", {})))


def read_video_tables(root: str | Path, video_id: str) -> Tables:
    """The stored tables of one video (missing files read as empty tables)."""
    root = Path(root)
    key = file_key(video_id)
    out: dict[str, pd.DataFrame] = {}
    for name in schema.PER_VIDEO_TABLES:
        path = root / name / f"{key}.parquet"
        out[name] = read_parquet(path, name) if path.exists() else schema.empty(name)
    return Tables(**out)


def _merge_videos(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """One row per video: values from ``new`` win, ``old`` fills what ``new`` leaves empty."""
    if not len(old):
        return new
    if not len(new):
        return old
    merged = new.iloc[[0]].reset_index(drop=True).copy()
    for col in merged.columns:
        if merged[col].isna().iloc[0]:
            merged[col] = old[col].iloc[[0]].to_numpy()
    return merged


def append_tables(root: str | Path, tables: Tables, record: dict[str, Any]) -> Path:
    """Add an import to a directory: rows are appended per video, label spaces replaced, ``record`` logged.

    Used by ``videoact import --append`` so that, e.g., an AVA csv, its label map and its excluded
    timestamps end up in one ground-truth directory.
    """
    root = Path(root)
    manifest = read_manifest(root)
    if manifest.get("kind") not in (None, "import"):
        raise schema.AnnotationError(f"{root} is a '{manifest.get('kind')}' directory; import into another directory")
    root.mkdir(parents=True, exist_ok=True)
    tables = tables.validated()
    for vid in tables.video_ids:
        new = tables.for_video(vid)
        old = read_video_tables(root, vid)
        merged = Tables.concat([old, new])
        merged.videos = _merge_videos(old.videos, new.videos)
        write_video_tables(root, vid, merged, include_empty=False)
    if len(tables.labels):
        write_labels(root, tables.labels)
    manifest.setdefault("kind", "import")
    manifest["schema_version"] = schema.SCHEMA_VERSION
    manifest.setdefault("imports", []).append(record)
    merge_meta(manifest.setdefault("import", {}).setdefault("meta", {}), tables.meta)
    write_manifest(root, manifest)
    return root
