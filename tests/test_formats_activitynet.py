"""ActivityNet json: the real mmaction2 files round trip byte-identical; bad input names the JSON path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from videoact.annotations import schema, store
from videoact.annotations.formats import FormatError, export_annotations, import_annotations
from videoact.annotations.formats.activitynet import export_activitynet, import_activitynet
from videoact.annotations.tables import Tables

REAL_FILES = ["gt.json", "result.json"]


@pytest.fixture()
def loc(shared_data: Path) -> Path:
    return shared_data / "localization" / "mmaction2_eval_localization"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_file_round_trip_is_value_and_byte_identical(loc: Path, tmp_path: Path, name: str) -> None:
    tables = import_annotations("activitynet", loc / name)
    written = export_annotations("activitynet", tables, tmp_path / name)
    assert written == [tmp_path / name]
    assert _load(written[0]) == _load(loc / name)
    assert written[0].read_bytes() == (loc / name).read_bytes()


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_file_round_trip_through_store(loc: Path, tmp_path: Path, name: str) -> None:
    tables = import_activitynet(loc / name)
    store.write_tables(tmp_path / "run", tables, manifest={"import": {"meta": tables.meta}})
    loaded = store.load(tmp_path / "run")
    (tmp_path / "out").mkdir()
    out = export_activitynet(loaded, tmp_path / "out")[0]
    assert out == tmp_path / "out" / name  # a folder gets the imported file's name
    assert _load(out) == _load(loc / name)
    assert out.read_bytes() == (loc / name).read_bytes()


def test_real_ground_truth_rows(loc: Path) -> None:
    t = import_activitynet(loc / "gt.json")
    assert t.meta["activitynet"]["layout"] == "mmaction2" and t.meta["activitynet"]["id_prefix"] == "v_"
    v = t.videos.set_index("video_id")
    assert list(v.index) == ["bYUmtLBL7W4", "hDPLy21Yyuk"]  # "v_" stripped as mmaction2 does
    assert v.loc["bYUmtLBL7W4", "duration_s"] == 224.49
    assert (v.loc["bYUmtLBL7W4", "width"], v.loc["bYUmtLBL7W4", "height"]) == (1920, 1080)
    assert v.loc["hDPLy21Yyuk", "split"] == "validation"
    assert v.loc["hDPLy21Yyuk", "uri"] == "https://www.youtube.com/watch?v=hDPLy21Yyuk"
    s = t.segments
    assert len(s) == 4 and list(s["seq"]) == [0, 1, 2, 3]
    assert set(s["task"]) == {"localization"} and set(s["score"]) == {1.0}
    assert set(s["source"]) == {"ground_truth:activitynet"}
    assert s["label_id"].isna().all() and s["fps"].isna().all() and s["frame_start"].isna().all()
    last = s.iloc[3]
    assert (last["video_id"], last["label"]) == ("hDPLy21Yyuk", "Cleaning shoes")
    assert (last["t_start_s"], last["t_end_s"]) == (21.392480499219968, 76.161)


def test_real_results_rows_match_ground_truth_ids(loc: Path) -> None:
    gt = import_activitynet(loc / "gt.json")
    pred = import_activitynet(loc / "result.json")
    assert len(pred.videos) == 0 and len(pred.segments) == 14
    assert set(pred.segments["source"]) == {"predictions:result.json"}
    assert set(pred.segments["video_id"]) == set(gt.videos["video_id"])
    first = pred.segments.iloc[0]
    assert (first["score"], first["t_start_s"], first["t_end_s"]) == (
        0.6533445119857788,
        0.0,
        206.3465619982159,
    )
    assert pred.meta["activitynet"]["top_keys"] == ["results"]


def _official_gt(real: dict[str, Any]) -> dict[str, Any]:
    """The official layout built from the real flat file, with the fields the official file has too."""
    db = {k[2:]: v for k, v in real.items()}
    first = next(iter(db))
    db[first] = {**db[first], "extra_field": {"x": 1}}
    db[first]["annotations"][0] = {**db[first]["annotations"][0], "comment": "kept"}
    db["testvideo01"] = {
        "subset": "testing",
        "url": "",
        "annotations": [],
        "duration": 12.5,
        "resolution": "sntsc",
    }
    return {
        "version": "VERSION 1.3",
        "taxonomy": [{"nodeId": 0, "nodeName": "Root", "parentId": None}],
        "database": db,
    }


@pytest.mark.parametrize("indent", [None, 2])
def test_official_ground_truth_layout(loc: Path, tmp_path: Path, indent: int | None) -> None:
    value = _official_gt(_load(loc / "gt.json"))
    src = tmp_path / "activity_net.v1-3.json"
    src.write_text(json.dumps(value, indent=indent), encoding="utf-8")
    t = import_activitynet(src)
    assert t.meta["activitynet"]["layout"] == "official" and t.meta["activitynet"]["id_prefix"] == ""
    v = t.videos.set_index("video_id")
    assert json.loads(v.loc["testvideo01", "attrs"]) == {
        "resolution": "sntsc",
        "_key_order": ["subset", "url", "annotations", "duration", "resolution"],
    }
    assert json.loads(v.loc["bYUmtLBL7W4", "attrs"]) == {"extra_field": {"x": 1}}
    assert json.loads(t.segments.loc[0, "attrs"]) == {"comment": "kept"}
    out = export_activitynet(t, tmp_path / "out.json")[0]
    assert _load(out) == value
    assert out.read_bytes() == src.read_bytes()
    store.write_tables(tmp_path / "run", t, manifest={"import": {"meta": t.meta}})
    again = export_activitynet(store.load(tmp_path / "run"), tmp_path / "again.json")[0]
    assert again.read_bytes() == src.read_bytes()


def test_official_results_layout_keeps_version_external_data_and_empty_lists(
    loc: Path, tmp_path: Path
) -> None:
    results = _load(loc / "result.json")["results"]
    items = list(results.items())
    value = {
        "version": "VERSION 1.3",
        "results": dict([items[1], ("novideo", []), items[0], ("lastempty", [])]),  # not in id order
        "external_data": {"used": True, "details": "Kinetics-400 features"},
    }
    src = tmp_path / "pred.json"
    src.write_text(json.dumps(value), encoding="utf-8")
    t = import_activitynet(src, source="bmn@abc123")
    assert set(t.segments["source"]) == {"bmn@abc123"}
    assert t.meta["activitynet"]["top"] == {"version": "VERSION 1.3", "external_data": value["external_data"]}
    out = export_activitynet(t, tmp_path / "out.json")[0]
    assert _load(out) == value
    assert list(_load(out)["results"]) == list(value["results"])  # video order, empty lists in place
    assert out.read_bytes() == src.read_bytes()
    store.write_tables(tmp_path / "run", t, manifest={"import": {"meta": t.meta}})
    again = export_activitynet(store.load(tmp_path / "run"), tmp_path / "again.json")[0]
    assert again.read_bytes() == src.read_bytes()  # the store keeps one file per video, sorted by id


def test_export_without_meta_writes_official_or_flat_layout(loc: Path, tmp_path: Path) -> None:
    real = _load(loc / "gt.json")
    t = import_activitynet(loc / "gt.json")
    t.meta = {}
    official = _load(export_activitynet(t, tmp_path / "official.json")[0])
    assert official == {
        "version": "VERSION 1.3",
        "taxonomy": [],
        "database": {k[2:]: v for k, v in real.items()},
    }
    flat = export_activitynet(t, tmp_path / "flat.json", layout="mmaction2")[0]
    assert _load(flat) == real
    assert flat.read_bytes() == (loc / "gt.json").read_bytes()  # default indent 4 = mmaction2's own


def test_mixed_ground_truth_and_predictions(loc: Path, tmp_path: Path) -> None:
    both = Tables.concat([import_activitynet(loc / "gt.json"), import_activitynet(loc / "result.json")])
    both.meta = {}
    with pytest.raises(schema.AnnotationError, match="kind='gt' or 'pred'"):
        export_activitynet(both, tmp_path / "x.json")
    pred = _load(export_activitynet(both, tmp_path / "p.json", kind="pred")[0])
    assert pred["results"] == _load(loc / "result.json")["results"]
    gt = _load(export_activitynet(both, tmp_path / "g.json", kind="gt", layout="mmaction2")[0])
    assert gt == _load(loc / "gt.json")


def test_class_list_gives_label_ids_and_labels(loc: Path, tmp_path: Path) -> None:
    classes = tmp_path / "classes.txt"
    classes.write_text("Applying sunscreen\nCleaning shoes\nWakeboarding\n", encoding="utf-8")
    t = import_activitynet(loc / "gt.json", label_map=classes)
    assert list(t.segments["label_id"]) == [2, 2, 2, 1]
    assert list(t.labels["name"]) == ["Applying sunscreen", "Cleaning shoes", "Wakeboarding"]
    assert set(t.labels["label_space"]) == {"activitynet"}
    numbered = tmp_path / "numbered.txt"
    numbered.write_text("10 Wakeboarding\n20 Cleaning shoes\n", encoding="utf-8")
    p = import_activitynet(loc / "result.json", class_list=numbered)
    assert set(p.segments["label_id"]) == {10, 20}
    short = tmp_path / "short.txt"
    short.write_text("Wakeboarding\n", encoding="utf-8")
    with pytest.raises(FormatError) as err:
        import_activitynet(loc / "gt.json", label_map=short)
    assert "gt.json" in str(err.value) and "database" not in str(err.value)
    assert "v_hDPLy21Yyuk.annotations[0].label" in str(err.value) and "unknown class 'Cleaning shoes'" in str(
        err.value
    )


def test_kind_mismatch_is_an_error(loc: Path) -> None:
    with pytest.raises(FormatError, match=r"result\.json.*asked for kind='gt' but the file holds results"):
        import_activitynet(loc / "result.json", kind="gt")
    assert len(import_activitynet(loc / "gt.json", kind="gt").segments) == 4


def _gt_ann(v: dict[str, Any]) -> dict[str, Any]:
    return v["v_bYUmtLBL7W4"]["annotations"][2]


def _swap(seg: list[float]) -> None:
    seg[0], seg[1] = seg[1], seg[0]


GT_BREAKS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "reversed",
        lambda v: _swap(_gt_ann(v)["segment"]),
        "v_bYUmtLBL7W4.annotations[2].segment: reversed segment",
    ),
    (
        "text-number",
        lambda v: _gt_ann(v)["segment"].__setitem__(0, "135.5"),
        "v_bYUmtLBL7W4.annotations[2].segment[0]: segment start is not a number: '135.5'",
    ),
    (
        "bool-number",
        lambda v: _gt_ann(v)["segment"].__setitem__(1, True),
        "v_bYUmtLBL7W4.annotations[2].segment[1]: segment end is not a number",
    ),
    (
        "three-numbers",
        lambda v: _gt_ann(v)["segment"].append(1.0),
        "v_bYUmtLBL7W4.annotations[2].segment: segment must be a [start, end] pair",
    ),
    ("no-label", lambda v: _gt_ann(v).pop("label"), "v_bYUmtLBL7W4.annotations[2]: missing key 'label'"),
    (
        "no-segment",
        lambda v: _gt_ann(v).pop("segment"),
        "v_bYUmtLBL7W4.annotations[2]: missing key 'segment'",
    ),
    (
        "no-annotations",
        lambda v: v["v_hDPLy21Yyuk"].pop("annotations"),
        "v_hDPLy21Yyuk: missing key 'annotations'",
    ),
    (
        "text-duration",
        lambda v: v["v_hDPLy21Yyuk"].__setitem__("duration", "76.23"),
        "v_hDPLy21Yyuk.duration: duration is not a number",
    ),
    ("negative", lambda v: _gt_ann(v)["segment"].__setitem__(0, -1.0), "negative segment start"),
]


@pytest.mark.parametrize(("case", "brk", "problem"), GT_BREAKS, ids=[c[0] for c in GT_BREAKS])
def test_malformed_ground_truth_names_file_and_json_path(
    loc: Path, tmp_path: Path, case: str, brk: Callable[[dict[str, Any]], None], problem: str
) -> None:
    value = _load(loc / "gt.json")
    brk(value)
    bad = tmp_path / f"gt_{case}.json"
    bad.write_text(json.dumps(value, indent=4), encoding="utf-8")
    with pytest.raises(FormatError) as err:
        import_activitynet(bad)
    assert err.value.path == str(bad) and str(bad) in str(err.value)
    assert problem in str(err.value)


def test_malformed_official_and_results_name_the_json_path(loc: Path, tmp_path: Path) -> None:
    official = _official_gt(_load(loc / "gt.json"))
    _swap(official["database"]["hDPLy21Yyuk"]["annotations"][0]["segment"])
    bad = tmp_path / "official.json"
    bad.write_text(json.dumps(official), encoding="utf-8")
    with pytest.raises(
        FormatError,
        match=r"official\.json: database\.hDPLy21Yyuk\.annotations\[0\]\.segment: "
        r"reversed segment \[76\.161, 21\.39",
    ):
        import_activitynet(bad)
    pred = _load(loc / "result.json")
    pred["results"]["hDPLy21Yyuk"][1]["score"] = "high"
    bad = tmp_path / "pred.json"
    bad.write_text(json.dumps(pred), encoding="utf-8")
    with pytest.raises(
        FormatError, match=r"pred\.json: results\.hDPLy21Yyuk\[1\]\.score: score is not a number"
    ):
        import_activitynet(bad)


def test_broken_json_and_duplicate_keys(loc: Path, tmp_path: Path) -> None:
    lines = (loc / "gt.json").read_text(encoding="utf-8").splitlines()
    broken = tmp_path / "broken.json"
    broken.write_text("\n".join(lines[:10] + lines[11:]), encoding="utf-8")  # drop the line of one number
    with pytest.raises(FormatError) as err:
        import_activitynet(broken)
    assert err.value.line == 11 and "broken.json:11: broken JSON" in str(err.value)
    text = (loc / "gt.json").read_text(encoding="utf-8")
    dup = tmp_path / "dup.json"
    dup.write_text(text.replace('"v_hDPLy21Yyuk"', '"v_bYUmtLBL7W4"'), encoding="utf-8")
    with pytest.raises(FormatError, match=r"dup\.json:\d+: duplicate key 'v_bYUmtLBL7W4'"):
        import_activitynet(dup)
    other = tmp_path / "other.json"
    other.write_text('{"videos": [1, 2]}', encoding="utf-8")
    with pytest.raises(FormatError, match=r"other\.json: \(top level\): not ActivityNet json"):
        import_activitynet(other)


def test_export_from_pipeline_rows_without_meta(tmp_path: Path) -> None:
    seg = pd.DataFrame(
        {
            "video_id": ["b", "a", "b"],
            "task": "localization",
            "t_start_s": [1.0, 0.5, 3.0],
            "t_end_s": [2.0, 4.0, 5.5],
            "label": ["Run", "Jump", "Run"],
            "score": [0.9, 0.8, 0.1],
            "source": "bmn@f00",
        }
    )
    t = Tables(segments=seg).validated()
    out = _load(export_activitynet(t, tmp_path / "p.json")[0])
    assert out == {
        "version": "VERSION 1.3",
        "external_data": {"used": False, "details": ""},
        "results": {
            "b": [
                {"label": "Run", "score": 0.9, "segment": [1.0, 2.0]},
                {"label": "Run", "score": 0.1, "segment": [3.0, 5.5]},
            ],
            "a": [{"label": "Jump", "score": 0.8, "segment": [0.5, 4.0]}],
        },
    }
    assert list(out) == ["version", "results", "external_data"]
