"""The Python API: ``videoact.run`` (one call, like ``videoact run``) and ``videoact.Pipeline`` (models loaded once,
called per video).

::

    import videoact
    t = videoact.run("sample:carphone")                       # Tables in memory (labels filled)
    t = videoact.run("videos/", out="runs/a")                 # a resumable run directory, then loaded
    t = videoact.run("clip.mp4", **{"recognition.top_k": 3}, pose=dict(every=2))

    pipe = videoact.Pipeline(recognition=dict(top_k=3))       # plans the stages and loads their models
    for path in paths:
        t = pipe(path)                                        # no reload between videos

Overrides are the config keys of ``videoact config show``: dotted (``**{"recognition.top_k": 3}``) or a section
as a mapping (``pose=dict(enabled=False)``); values are Python values (checked like YAML ones).
"""

from __future__ import annotations

import dataclasses
import sys
import typing
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from videoact.annotations.tables import Tables
from videoact.config import RunConfig, build_config, read_yaml, to_dict

Source = str | Path | Iterable[str | Path]


def make_config(config: str | Path | RunConfig | Mapping[str, Any] | None = None,
                overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """A ``RunConfig`` from defaults, a YAML file / mapping / ``RunConfig``, then ``overrides`` (dotted keys or
    sections as mappings, Python values). ``ConfigError`` names the key."""
    from videoact.config import _set_dotted

    where: str | Path | None = None
    if config is None:
        data: dict[str, Any] = {}
    elif isinstance(config, RunConfig):
        data = to_dict(config)
    elif isinstance(config, Mapping):
        data = dict(config)
    else:
        where, data = config, read_yaml(config)
    for key, value in _flatten(RunConfig, [], dict(overrides or {})):
        _set_dotted(RunConfig, data, key, value, str(value))
    return build_config(RunConfig, data, where=where)


def _flatten(cls: Any, prefix: list[str], values: Mapping[str, Any]) -> Iterable[tuple[list[str], Any]]:
    """``{"pose": {"every": 2}, "recognition.top_k": 3}`` -> ``(["pose", "every"], 2), (["recognition", "top_k"], 3)``;
    a mapping is opened only where the key is a config section (a free-form mapping is set as given)."""
    for key, value in values.items():
        path = [*prefix, *str(key).split(".")]
        tp: Any = cls
        for part in path:
            hints = typing.get_type_hints(tp) if dataclasses.is_dataclass(tp) else {}
            tp = hints.get(part)
        if isinstance(value, Mapping) and dataclasses.is_dataclass(tp):
            yield from _flatten(cls, path, value)
        else:
            yield path, value


def _refs(source: Source) -> list[Any]:
    from videoact.runner.inputs import resolve_inputs

    if isinstance(source, (str, Path)):
        return resolve_inputs(str(source))
    refs = [ref for s in source for ref in resolve_inputs(str(s))]
    ids = [r.video_id for r in refs]
    dup = next((v for v in ids if ids.count(v) > 1), None)
    if dup is not None:
        from videoact.runner.errors import InputError

        raise InputError(f"two videos share the id {dup!r}: give them distinct file names")
    return refs


def _spec(source: Source) -> str:
    return str(source) if isinstance(source, (str, Path)) else ",".join(str(s) for s in source)


class Pipeline:
    """The enabled stages of one config, checked and with their models loaded, run on one video per call.

    Construction plans the stages (``ConfigError`` naming the key for one not set up) and loads each stage's
    model through its cached loader (``functools.lru_cache`` per process); calls reuse them. ``pipe(source)``
    takes what ``videoact run`` takes (a file, a folder, a .csv/.txt manifest, ``sample:NAME``, or a list of
    them) and returns the ``Tables`` of its videos with ``labels`` filled; ``out=`` writes a resumable run
    directory instead (``videoact run -o``) and returns what it holds.

    Example:
        >>> pipe = videoact.Pipeline(pose=dict(max_frames=48))          # doctest: +SKIP
        >>> pipe("sample:carphone").segments.head()                    # doctest: +SKIP
    """

    def __init__(self, config: str | Path | RunConfig | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        from videoact.runner.run import label_tables, plan

        self.config = make_config(config, overrides)
        self.stages = plan(self.config)
        self.labels = label_tables(self.config)  # every stage's labels(): loads (and caches) its model

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def __repr__(self) -> str:
        return f"Pipeline(stages={['decode', *self.stage_names]})"

    def __call__(self, source: Source, *, out: str | Path | None = None, progress: bool | None = None) -> Tables:
        """The tables of ``source``'s videos (in memory, or written to ``out`` and loaded from there).

        Raises:
            StageError: in memory, a video failed (naming the stage); with ``out`` failures are recorded in the
                manifest, warned about, and the other videos' tables returned.
        """
        refs = _refs(source)
        show = sys.stderr.isatty() if progress is None else progress
        if out is not None:
            return self._to_dir(source, refs, Path(out), show)
        from videoact.annotations import schema
        from videoact.runner.run import process_video

        parts = [process_video(ref, self.config, progress=show) for ref in refs]
        tables = Tables.concat(parts)
        tables.labels = (schema.validate("labels", self.labels) if self.labels is not None
                         else schema.empty("labels"))
        return tables

    def _to_dir(self, source: Source, refs: list[Any], out: Path, show: bool) -> Tables:
        from videoact.annotations.store import load
        from videoact.runner.batch import run_videos

        summary = run_videos(refs, out, self.config, input_spec=_spec(source), show_progress=show)
        failed = {**summary.failed_earlier, **summary.failed}
        if failed:
            warnings.warn(f"{len(failed)} video(s) failed (see {out / 'manifest.json'}): "
                          + "; ".join(f"{v}: {e}" for v, e in list(failed.items())[:5]), stacklevel=3)
        return load(out, videos=[r.video_id for r in refs])


def run(source: Source, *, out: str | Path | None = None,
        config: str | Path | RunConfig | Mapping[str, Any] | None = None, **overrides: Any) -> Tables:
    """Run the pipeline on ``source`` (what ``videoact run`` takes: a file, a folder, a manifest, ``sample:NAME``,
    or a list of them) and return its ``Tables``.

    Args:
        out: a run directory: written as ``videoact run -o out`` does (resumable: videos done with the same
            config are skipped), then loaded. Without it nothing is written.
        config: a YAML file, a mapping of sections or a ``RunConfig`` (default: the defaults).
        overrides: config keys, dotted (``**{"recognition.top_k": 3}``) or as sections (``pose=dict(every=2)``).

    Example:
        >>> t = videoact.run("sample:carphone")                      # doctest: +SKIP
        >>> t.segments[["t_start_s", "label", "score"]].head()       # doctest: +SKIP
    """
    return Pipeline(config, **overrides)(source, out=out)
