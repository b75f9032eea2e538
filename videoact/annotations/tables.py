"""``Tables``: the in-memory bundle of the six annotation tables that stages pass around."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from videoact.annotations import schema


def merge_meta(into: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Merge format metadata one level deep: ``{"ava": {src1: ...}}`` + ``{"ava": {src2: ...}}`` keeps both."""
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), Mapping):
            into[key] = {**into[key], **value}
        else:
            into[key] = value
    return into


@dataclass
class Tables:
    """The six annotation tables as pandas DataFrames (see ``schema`` for their columns).

    Every head returns a ``Tables``; importers return one, exporters take one; the evaluators compare
    two. ``meta`` carries format options an importer saw (e.g. ActivityNet's ``version``) so that the
    matching exporter can write them back.

    Example:
        >>> t = Tables(segments=pd.DataFrame({"video_id": ["v"], "task": ["localization"],
        ...     "t_start_s": [1.0], "t_end_s": [2.5], "score": [0.9], "source": ["demo"]}))
        >>> t = t.validated()
        >>> t.segments.loc[0, "t_end_s"]
        np.float64(2.5)
    """

    videos: pd.DataFrame = field(default_factory=lambda: schema.empty("videos"))
    segments: pd.DataFrame = field(default_factory=lambda: schema.empty("segments"))
    boxes: pd.DataFrame = field(default_factory=lambda: schema.empty("boxes"))
    skeletons: pd.DataFrame = field(default_factory=lambda: schema.empty("skeletons"))
    forecasts: pd.DataFrame = field(default_factory=lambda: schema.empty("forecasts"))
    labels: pd.DataFrame = field(default_factory=lambda: schema.empty("labels"))
    meta: dict[str, Any] = field(default_factory=dict)

    def items(self) -> Iterator[tuple[str, pd.DataFrame]]:
        for name in schema.TABLE_NAMES:
            yield name, getattr(self, name)

    def validated(self, where: str = "<memory>") -> Tables:
        """A copy with every table checked and in canonical dtypes and column order."""
        out = {name: schema.validate(name, schema.with_frames(name, df) if len(df) else df, where=where)
               for name, df in self.items()}
        return Tables(**out, meta=dict(self.meta))

    @property
    def video_ids(self) -> list[str]:
        """Every video id that appears in a per-video table, in first-seen order."""
        ids: dict[str, None] = {}
        for name in schema.PER_VIDEO_TABLES:
            for v in getattr(self, name)["video_id"]:
                ids.setdefault(v, None)
        return list(ids)

    def for_video(self, video_id: str) -> Tables:
        """The rows of one video (labels are shared, so they are kept whole)."""
        out: dict[str, pd.DataFrame] = {}
        for name, df in self.items():
            out[name] = df if name == "labels" else df[df["video_id"] == video_id].reset_index(drop=True)
        return Tables(**out, meta=dict(self.meta))

    def label_names(self, label_space: str | None = None) -> dict[int, str]:
        """``{id: name}`` of one label space (the only one when ``label_space`` is None)."""
        df = self.labels
        spaces = list(dict.fromkeys(df["label_space"]))
        if label_space is None:
            if len(spaces) > 1:
                raise schema.AnnotationError(f"several label spaces {spaces}: say which one")
            label_space = spaces[0] if spaces else None
        sub = df[df["label_space"] == label_space]
        return dict(zip(sub["id"].astype(int), sub["name"], strict=True))

    @classmethod
    def concat(cls, parts: Iterable[Tables]) -> Tables:
        parts = list(parts)
        if not parts:
            return cls()
        out: dict[str, pd.DataFrame] = {}
        for name in schema.TABLE_NAMES:
            frames = [getattr(p, name) for p in parts if len(getattr(p, name))]
            out[name] = (pd.concat(frames, ignore_index=True) if frames else schema.empty(name))
        meta: dict[str, Any] = {}
        for p in parts:
            merge_meta(meta, p.meta)
        return cls(**out, meta=meta)

    def __len__(self) -> int:
        return sum(len(df) for _, df in self.items())

    def summary(self) -> dict[str, int]:
        return {name: len(df) for name, df in self.items()}

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={n}" for name, n in self.summary().items())
        return f"Tables({counts})"

    def __str__(self) -> str:
        """The counts, then the first rows of each non-empty table (``print(tables)``)."""
        parts = [repr(self)]
        for name, df in self.items():
            if len(df):
                parts.append(f"-- {name} ({len(df)} rows)\n{_shown(df.head(3)).to_string(max_cols=12)}")
        return "\n".join(parts)

    def _repr_html_(self, head: int = 5) -> str:
        """Notebooks: the row count of every table, then the first ``head`` rows of each non-empty one."""
        import html

        parts = ["<div><b>videoact.Tables</b>: "
                 + ", ".join(f"{name} <b>{n}</b>" for name, n in self.summary().items()) + "</div>"]
        for name, df in self.items():
            if not len(df):
                continue
            shown = _shown(df.head(head))
            parts.append(f"<details open><summary><b>{html.escape(name)}</b> ({len(df)} rows)</summary>"
                         f"{shown.to_html(max_cols=20, na_rep='', notebook=True)}</details>")
        return "\n".join(parts)

    def to_polars(self) -> dict[str, Any]:
        """``{table name: polars.DataFrame}`` (list columns as ``List(Float32)``); needs ``pip install polars``."""
        try:
            import polars as pl
        except ImportError:
            raise ImportError("Tables.to_polars() needs polars: pip install polars") from None
        import pyarrow as pa

        out = {}
        for name, df in self.items():
            types = {c.name: c.type for c in schema.SCHEMAS[name]}
            arrays = {}
            for col in df.columns:
                tp = types.get(col)
                if tp is not None and pa.types.is_list(tp):
                    arrays[col] = pa.array([None if v is None else v for v in df[col]], type=tp)
                else:
                    arrays[col] = pa.Array.from_pandas(df[col], type=tp)
            out[name] = pl.from_arrow(pa.table(arrays), rechunk=False)
        return out


def _shown(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` for display: list columns (keypoints, scores) as their length, not hundreds of numbers."""
    df = df.copy()
    for col in ("keypoints", "scores"):
        if col in df.columns:
            df[col] = df[col].map(lambda v: "" if v is None else f"float32[{len(v)}]")
    return df


def parse_attrs(df: pd.DataFrame) -> pd.DataFrame:
    """The JSON ``attrs`` column of a table as a DataFrame: one column per key, ``df``'s index, NaN where a row
    lacks a key (``df.attrs`` is pandas' own metadata dict; the column is ``df["attrs"]``).

    Example:
        >>> seg = pd.DataFrame({"attrs": ['{"rank": 1}', None, '{"rank": 2, "window": 3}']})
        >>> parse_attrs(seg)["rank"].tolist()
        [1.0, nan, 2.0]
    """
    if "attrs" not in df.columns:
        raise KeyError("this table has no 'attrs' column")
    return pd.DataFrame.from_records([schema.loads_attrs(v) for v in df["attrs"]], index=df.index)


assert [f.name for f in fields(Tables)][:-1] == list(schema.TABLE_NAMES)
