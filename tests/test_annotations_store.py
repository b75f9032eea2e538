from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import videoact
from videoact.annotations import schema, store
from videoact.annotations.schema import AnnotationError
from videoact.annotations.tables import Tables


def _segments(**over: object) -> pd.DataFrame:
    row = {"video_id": "v1", "task": "localization", "t_start_s": 1.0, "t_end_s": 2.5, "fps": 30.0,
           "label": "jump", "label_id": 3, "score": 0.9, "source": "test"}
    row.update(over)
    return pd.DataFrame([row])


def _boxes(**over: object) -> pd.DataFrame:
    row = {"video_id": "v1", "task": "detection", "t_s": 902.0, "x1": 0.1, "y1": 0.2, "x2": 0.5, "y2": 0.9,
           "label_id": 12, "score": 1.0, "actor_id": 0, "source": "ground_truth:ava"}
    row.update(over)
    return pd.DataFrame([row])


def test_frames_are_derived_from_seconds_and_fps() -> None:
    t = Tables(segments=_segments()).validated()
    assert t.segments.loc[0, "frame_start"] == 30 and t.segments.loc[0, "frame_end"] == 75
    t = Tables(segments=_segments(fps=None)).validated()
    assert pd.isna(t.segments.loc[0, "frame_start"])  # no fps, no frames: never invented


@pytest.mark.parametrize(
    ("table", "df", "message"),
    [
        ("segments", _segments(t_start_s=3.0, t_end_s=2.0), "reversed segment"),
        ("segments", _segments(task="tracking"), "task must be one of"),
        ("segments", _segments(t_start_s=float("nan")), "required column 't_start_s' is empty"),
        ("segments", _segments(t_start_s=-1.0), "t_start_s is negative"),
        ("segments", _segments(label_id=1.5), "column 'label_id' must be int64"),
        ("segments", _segments(score="high"), "column 'score' must be double"),
        ("segments", _segments(attrs="[1]"), "attrs must be a JSON object"),
        ("segments", _segments(colour="red"), "unknown column(s) ['colour']"),
        ("segments", _segments().drop(columns=["source"]), "missing the required column 'source'"),
        ("boxes", _boxes(x2=1.2), "normalised to [0, 1]"),
        ("boxes", _boxes(x1=0.6), "wrong order"),
        ("boxes", _boxes(x1=None, y1=None, x2=None, y2=None), "flagged 'empty' or 'excluded'"),
        ("boxes", _boxes(x1=None), "needs all four"),
        ("videos", pd.DataFrame({"video_id": ["a", "a"], "source": ["s", "s"]}), "duplicate video_id"),
        ("labels", pd.DataFrame({"label_space": ["x", "x"], "id": [1, 1], "name": ["a", "b"]}), "duplicate id"),
    ],
)
def test_validator_names_the_problem(table: str, df: pd.DataFrame, message: str) -> None:
    with pytest.raises(AnnotationError) as exc:
        schema.validate(table, df, where="fixture.csv")
    assert "fixture.csv" in str(exc.value)
    assert message in str(exc.value)


def test_flagged_rows_without_boxes_are_valid() -> None:
    df = schema.validate("boxes", _boxes(x1=None, y1=None, x2=None, y2=None, label_id=None, flag="empty"))
    assert df.loc[0, "flag"] == "empty"


def test_round_trip_through_parquet_keeps_values_and_dtypes(tmp_path: Path) -> None:
    kp = np.arange(34, dtype=np.float32)
    t = Tables(
        videos=pd.DataFrame({"video_id": ["a/b", ".hidden"], "fps": [25.0, None], "source": ["s", "s"]}),
        segments=pd.concat([_segments(video_id="a/b", seq=1), _segments(video_id=".hidden", seq=0)]),
        boxes=_boxes(video_id="a/b"),
        skeletons=pd.DataFrame({"video_id": ["a/b"], "frame": [4], "person_id": [0], "layout": ["coco17"],
                                "dims": [2], "coord_space": ["image_px"], "keypoints": [kp],
                                "scores": [np.ones(17)], "source": ["pose"]}),
        forecasts=pd.DataFrame({"video_id": ["a/b"], "anchor_idx": [7], "candidate": [1], "step": [1],
                                "verb_id": [3], "noun_id": [9], "source": ["lm"]}),
        labels=pd.DataFrame({"label_space": ["ava", "ntu60"], "id": [12, 0], "name": ["stand", "drink water"]}),
    ).validated()
    store.write_tables(tmp_path, t)
    # one file per video, names escaped and reversible; no temp files left behind
    names = sorted(p.name for p in (tmp_path / "segments").iterdir())
    assert names == ["%2Ehidden.parquet", "a%2Fb.parquet"]
    assert not list(tmp_path.rglob("*.tmp"))
    back = videoact.load(tmp_path)
    for name, df in t.items():
        got = getattr(back, name)
        key = [c for c in ("video_id", "label_space", "seq") if c in df.columns]
        a = df.sort_values(key).reset_index(drop=True)
        b = got.sort_values(key).reset_index(drop=True)
        if name == "skeletons":
            np.testing.assert_array_equal(b.loc[0, "keypoints"], kp)
            a, b = a.drop(columns=["keypoints", "scores"]), b.drop(columns=["keypoints", "scores"])
        pd.testing.assert_frame_equal(a, b, check_dtype=True)
    assert list(back.segments["seq"]) == [0, 1]  # rows come back in source order


def test_schema_version_is_in_every_file_and_checked(tmp_path: Path) -> None:
    store.write_tables(tmp_path, Tables(segments=_segments()))
    path = tmp_path / "segments" / "v1.parquet"
    meta = pq.read_schema(path).metadata
    assert meta[b"videoact.schema_version"] == schema.SCHEMA_VERSION.encode()
    assert meta[b"videoact.table"] == b"segments"
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"videoact.schema_version": b"0", b"videoact.table": b"segments"}),
                   path)
    with pytest.raises(AnnotationError, match="schema version '0'"):
        videoact.load(tmp_path)


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "boxes").mkdir()
    (tmp_path / "boxes" / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(AnnotationError, match=r"x\.parquet: not a readable Parquet file"):
        videoact.load(tmp_path)


def test_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "segments" / "v1.parquet"
    store.write_tables(tmp_path, Tables(segments=_segments(label="old")))

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.write_tables(tmp_path, Tables(segments=_segments(label="new")))
    monkeypatch.undo()
    assert videoact.load(tmp_path).segments.loc[0, "label"] == "old"  # the old file is intact
    assert not list(target.parent.glob("*.tmp"))


def test_duckdb_queries_the_directory(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    store.write_tables(tmp_path, Tables(segments=pd.concat([_segments(), _segments(video_id="v2", score=0.5)])))
    rows = duckdb.sql(f"SELECT video_id, score FROM '{tmp_path}/segments/*.parquet' ORDER BY video_id").fetchall()
    assert rows == [("v1", 0.9), ("v2", 0.5)]


def test_append_merges_imports(tmp_path: Path) -> None:
    store.append_tables(tmp_path, Tables(boxes=_boxes()), {"format": "a"})
    store.append_tables(tmp_path, Tables(boxes=_boxes(x1=None, y1=None, x2=None, y2=None, flag="excluded",
                                                        t_s=903.0, label_id=None)), {"format": "b"})
    back = videoact.load(tmp_path)
    assert len(back.boxes) == 2 and set(back.boxes["flag"].dropna()) == {"excluded"}
    assert [r["format"] for r in store.read_manifest(tmp_path)["imports"]] == ["a", "b"]


def test_empty_tables_have_schema_columns() -> None:
    for name in schema.TABLE_NAMES:
        assert list(schema.empty(name).columns) == schema.columns(name)
        assert len(schema.arrow_schema(name)) == len(schema.columns(name))
    assert isinstance(schema.arrow_schema("boxes").field("x1").type, pa.DataType)
