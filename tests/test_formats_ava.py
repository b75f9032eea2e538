"""AVA formats: real files round trip byte-identically (proposals value-identically); bad lines are named."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videoact.annotations import store
from videoact.annotations.formats import (
    FormatError,
    export_annotations,
    import_annotations,
    list_exporters,
    list_importers,
    safe_pickle_load,
)
from videoact.annotations.formats.ava import format_timestamp, keyframe_key, read_label_map
from videoact.annotations.tables import Tables

AVA = Path("detection/ava")
SAMPLE = AVA / "mmaction2_tests_ava_dataset/ava_sample.csv"
GT = AVA / "mmaction2_tests_eval_detection/gt.csv"
PRED = AVA / "mmaction2_tests_eval_detection/pred.csv"
EXCLUDED = AVA / "mmaction2_tests_ava_dataset/ava_excluded_timestamps_sample.csv"
PROPOSALS = AVA / "mmaction2_tests_ava_dataset/ava_proposals_sample.pkl"
OFFICIAL_MAP = AVA / "ava_action_list_v2.1_for_activitynet_2018.pbtxt"
TEXT_MAP = AVA / "mmaction2_ava_label_map.txt"
SAMPLE_MAP = AVA / "mmaction2_tests_ava_dataset/action_list.txt"
EVAL_MAP = AVA / "mmaction2_tests_eval_detection/action_list.txt"

OFFICIAL_IDS = [1, *range(3, 16), 17, 20, 22, 24, *range(26, 31), 34, 36, 37, 38, 41, 43, *range(45, 50),
                51, 52, 54, *range(56, 71), 72, 73, 74, *range(76, 81)]


def _through_store(tables: Tables, tmp: Path) -> Tables:
    store.write_tables(tmp, tables, manifest={"import": {"meta": tables.meta}})
    return store.load(tmp)


def test_formats_are_registered() -> None:
    for name in ("ava", "ava-labelmap", "ava-excluded", "ava-proposals"):
        assert name in list_importers() and name in list_exporters()


# --------------------------------------------------------------------------------------- byte-identical


@pytest.mark.parametrize(
    ("fmt", "rel", "n_boxes", "n_labels"),
    [
        ("ava", SAMPLE, 8, 0),
        ("ava", GT, 12, 0),
        ("ava", PRED, 30, 0),
        ("ava-excluded", EXCLUDED, 2, 0),
        ("ava-labelmap", OFFICIAL_MAP, 0, 60),
        ("ava-labelmap", TEXT_MAP, 0, 60),
        ("ava-labelmap", SAMPLE_MAP, 0, 4),
        ("ava-labelmap", EVAL_MAP, 0, 3),
    ],
)
def test_real_files_round_trip_byte_identical(
    shared_data: Path, tmp_path: Path, fmt: str, rel: Path, n_boxes: int, n_labels: int
) -> None:
    src = shared_data / rel
    tables = import_annotations(fmt, src)
    assert (len(tables.boxes), len(tables.labels)) == (n_boxes, n_labels)
    out = tmp_path / "memory" / src.name
    export_annotations(fmt, tables, out)
    assert out.read_bytes() == src.read_bytes()

    loaded = _through_store(tables, tmp_path / "store")
    out2 = tmp_path / "disk" / src.name
    export_annotations(fmt, loaded, out2)
    assert out2.read_bytes() == src.read_bytes()


def test_ground_truth_values(shared_data: Path) -> None:
    b = import_annotations("ava", shared_data / GT).boxes
    first = b.iloc[0]
    assert (first.video_id, first.t_s, first.label_id, first.actor_id) == ("3reY9zJKhqN", 1774.0, 3, 0)
    assert [first.x1, first.y1, first.x2, first.y2] == [0.278, 0.203, 0.964, 0.677]
    assert (b["score"] == 1.0).all() and (b["source"] == "ground_truth:ava").all()
    assert b["actor_id"].tolist() == [0, 1, 2, 3] * 3
    assert b["fps"].isna().all() and b["frame"].isna().all() and b["label"].isna().all()
    assert b["seq"].tolist() == list(range(12))


def test_predictions_values(shared_data: Path) -> None:
    t = import_annotations("ava", shared_data / PRED)
    b = t.boxes
    assert b["score"].iloc[:3].tolist() == [0.655, 0.949, 0.640]
    assert b["actor_id"].isna().all()
    assert (b["source"] == "predictions:pred.csv").all()
    assert t.meta["ava"]["predictions:pred.csv"]["kind"] == "pred"


def test_sample_keeps_zero_padded_timestamps(shared_data: Path) -> None:
    b = import_annotations("ava", shared_data / SAMPLE).boxes
    assert b["t_s"].tolist()[:4] == [902.0, 902.0, 902.0, 903.0]
    assert b["attrs"].isna().all()  # "0902" is the canonical spelling: nothing extra to keep


def test_label_map_fills_names(shared_data: Path) -> None:
    t = import_annotations("ava", shared_data / GT, label_map=shared_data / EVAL_MAP)
    assert t.boxes["label"].iloc[:2].tolist() == ["action3", "action1"]
    assert t.label_names("ava") == {1: "action1", 2: "action2", 3: "action3"}


def test_label_maps_read_the_same(shared_data: Path) -> None:
    official = read_label_map(shared_data / OFFICIAL_MAP)
    text = read_label_map(shared_data / TEXT_MAP)
    assert list(official) == OFFICIAL_IDS
    assert official == text
    assert official[1] == "bend/bow (at the waist)" and official[80] == "watch (a person)"
    sample = read_label_map(shared_data / SAMPLE_MAP)
    assert sample == {12: "action1", 17: "action2", 79: "action3", 80: "action3"}


def test_label_map_style_can_be_switched(shared_data: Path, tmp_path: Path) -> None:
    t = import_annotations("ava-labelmap", shared_data / TEXT_MAP)
    export_annotations("ava-labelmap", t, tmp_path / "m.pbtxt", style="pbtxt")
    assert (tmp_path / "m.pbtxt").read_bytes() == (shared_data / OFFICIAL_MAP).read_bytes()
    t = import_annotations("ava-labelmap", shared_data / OFFICIAL_MAP)
    export_annotations("ava-labelmap", t, tmp_path / "m.txt", style="text")
    assert (tmp_path / "m.txt").read_bytes() == (shared_data / TEXT_MAP).read_bytes()


def test_excluded_rows_are_flagged(shared_data: Path) -> None:
    b = import_annotations("ava-excluded", shared_data / EXCLUDED).boxes
    assert b["flag"].tolist() == ["excluded", "excluded"]
    assert b[["x1", "y1", "x2", "y2"]].isna().all().all()
    assert b["t_s"].tolist() == [903.0, 902.0]


def test_gt_and_excluded_share_a_directory(shared_data: Path, tmp_path: Path) -> None:
    gt = import_annotations("ava", shared_data / SAMPLE)
    ex = import_annotations("ava-excluded", shared_data / EXCLUDED)
    loaded = _through_store(Tables.concat([gt, ex]), tmp_path / "store")
    for fmt, rel in (("ava", SAMPLE), ("ava-excluded", EXCLUDED)):
        out = tmp_path / rel.name
        export_annotations(fmt, loaded, out)
        assert out.read_bytes() == (shared_data / rel).read_bytes()


# -------------------------------------------------------------------------------------- value-identical


def _assert_same_proposals(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        np.testing.assert_array_equal(a[key], b[key])


def test_proposals_round_trip_value_identical(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / PROPOSALS
    original = safe_pickle_load(src)
    tables = import_annotations("ava-proposals", src)
    b = tables.boxes
    assert len(b) == 5 and (b["task"] == "proposal").all() and b["label_id"].isna().all()
    assert b["score"].iloc[0] == pytest.approx(0.998163)
    export_annotations("ava-proposals", tables, tmp_path / "p.pkl")
    _assert_same_proposals(original, safe_pickle_load(tmp_path / "p.pkl"))

    loaded = _through_store(tables, tmp_path / "store")
    export_annotations("ava-proposals", loaded, tmp_path / "p2.pkl")
    _assert_same_proposals(original, safe_pickle_load(tmp_path / "p2.pkl"))


def test_proposals_keep_dtype_key_text_and_empty_keys(tmp_path: Path) -> None:
    data = {
        "vidA,902": np.array([[0.1, 0.2, 0.3, 0.4, 0.9]], dtype=np.float32),
        "vidA,0903": np.zeros((0, 5), dtype=np.float32),
        "vidB,0904": np.array([[0.0, 0.0, 1.0, 1.0]], dtype=np.float64),
    }
    src = tmp_path / "props.pkl"
    src.write_bytes(pickle.dumps(data, protocol=4))
    tables = import_annotations("ava-proposals", src)
    assert tables.boxes["flag"].fillna("-").tolist() == ["-", "empty", "-"]
    for t in (tables, _through_store(tables, tmp_path / "store")):
        export_annotations("ava-proposals", t, tmp_path / "out.pkl")
        _assert_same_proposals(data, safe_pickle_load(tmp_path / "out.pkl"))


# -------------------------------------------------------------------------------- non-canonical spellings


def test_unusual_spellings_round_trip_byte_identical(shared_data: Path, tmp_path: Path) -> None:
    """Unpadded times, short decimals, empty keyframes, CRLF, blank lines and no final newline survive."""
    lines = (shared_data / GT).read_text().splitlines()
    odd = [
        lines[0].replace(",1774,", ",1774.5,"),
        lines[1].replace("0.050", "0.05"),
        "3reY9zJKhqN,902",
        ",".join(lines[2].split(",")[:7]),  # 7 columns: no person id
        "",
        lines[3],
    ]
    src = tmp_path / "odd.csv"
    src.write_bytes("\r\n".join(odd).encode())
    tables = import_annotations("ava", src)
    assert tables.boxes["flag"].tolist()[2] == "empty"
    assert tables.boxes["t_s"].tolist()[:3] == [1774.5, 1774.0, 902.0]
    for t in (tables, _through_store(tables, tmp_path / "store")):
        export_annotations("ava", t, tmp_path / "out.csv")
        assert (tmp_path / "out.csv").read_bytes() == src.read_bytes()


def test_unusual_score_spellings_round_trip(shared_data: Path, tmp_path: Path) -> None:
    lines = (shared_data / PRED).read_text().splitlines()
    odd = [lines[0][: -len("0.655")] + "0.65500", lines[1][: -len("0.949")] + "9.49e-01",
           ",".join(lines[2].split(",")[:7]), lines[3]]
    src = tmp_path / "odd_pred.csv"
    src.write_text("\n".join(odd) + "\n")
    tables = import_annotations("ava", src, kind="pred")
    assert tables.boxes["score"].tolist() == [0.655, 0.949, 1.0, 0.681]
    export_annotations("ava", tables, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == src.read_bytes()


def test_edited_values_are_written_fresh(shared_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "short.csv"
    src.write_text("vid,902,0.5,0.1,0.9,0.9,12,3\n")
    tables = import_annotations("ava", src)
    tables.boxes.loc[0, "x1"] = 0.25  # the kept text "0.5" no longer applies
    export_annotations("ava", tables, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == "vid,902,0.250,0.1,0.9,0.9,12,3\n"  # untouched cells kept


def test_pipeline_rows_export_without_meta(tmp_path: Path) -> None:
    boxes = pd.DataFrame({"video_id": ["v", "v"], "task": ["detection"] * 2, "t_s": [903.0, 902.0],
                          "x1": [0.1, 0.2], "y1": [0.1, 0.2], "x2": [0.5, 0.6], "y2": [0.5, 0.6],
                          "label_id": [12, 80], "score": [0.123456789, 0.5], "source": ["slowfast@abc"] * 2})
    t = Tables(boxes=boxes).validated()
    export_annotations("ava", t, tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text() == ("v,0903,0.100,0.100,0.500,0.500,12,0.123456789\n"
                                                "v,0902,0.200,0.200,0.600,0.600,80,0.5\n")
    export_annotations("ava", t, tmp_path / "p4.csv", score_decimals="4")
    assert (tmp_path / "p4.csv").read_text().splitlines()[0].endswith(",12,0.1235")
    back = import_annotations("ava", tmp_path / "p.csv")
    assert back.boxes["score"].tolist() == [0.123456789, 0.5]


def test_several_sources_need_a_choice(shared_data: Path, tmp_path: Path) -> None:
    # GT first: Tables.concat merges meta shallowly, so meta["ava"] keeps only the last import's entry
    # (PRED's); the GT file needs no meta beyond the defaults. See the integration note in the report.
    both = Tables.concat([import_annotations("ava", shared_data / p) for p in (GT, PRED)])
    with pytest.raises(Exception, match="several sources"):
        export_annotations("ava", both, tmp_path / "x.csv")
    export_annotations("ava", both, tmp_path / "pred.csv", source="predictions:pred.csv")
    assert (tmp_path / "pred.csv").read_bytes() == (shared_data / PRED).read_bytes()
    export_annotations("ava", both, tmp_path / "gt.csv", source="ground_truth:ava")
    assert (tmp_path / "gt.csv").read_bytes() == (shared_data / GT).read_bytes()


def test_timestamp_helpers() -> None:
    assert format_timestamp(902.0) == "0902" and format_timestamp(1798) == "1798"
    assert format_timestamp(902.5) == "902.5"
    assert keyframe_key("_-Z6wFjXtGQ", 902) == "_-Z6wFjXtGQ,0902"


# ---------------------------------------------------------------------------------------------- malformed


Edit = Callable[[list[str]], list[str]]


def _break_line(src: Path, dst: Path, line_no: int, new: str | None) -> Path:
    lines = src.read_text().splitlines()
    if new is None:
        del lines[line_no - 1]
    else:
        lines[line_no - 1] = new
    dst.write_text("\n".join(lines) + "\n")
    return dst


def _fields(src: Path, line_no: int) -> list[str]:
    return src.read_text().splitlines()[line_no - 1].split(",")


@pytest.mark.parametrize(
    ("rel", "line", "edit", "problem"),
    [
        (GT, 3, lambda f: f[:6], "wrong column count"),
        (GT, 2, lambda f: [*f, "x"], "wrong column count"),
        (GT, 4, lambda f: [*f[:2], "0.1x", *f[3:]], "x1 is not a number: '0.1x'"),
        (GT, 5, lambda f: [f[0], "17:74", *f[2:]], "timestamp is not a number"),
        (GT, 6, lambda f: [*f[:2], "0.900", f[3], "0.100", *f[5:]], "wrong box order"),
        (GT, 7, lambda f: [*f[:5], "1.200", *f[6:]], "outside [0, 1]"),
        (GT, 8, lambda f: [*f[:6], "three", f[7]], "action id is not an integer"),
        (SAMPLE, 2, lambda f: [*f[:7], "p1"], "person id (column 8 of a ground-truth file) is not an"),
        (PRED, 9, lambda f: [*f[:7], "high"], "score (column 8 of a detection file) is not a number"),
    ],
)
def test_malformed_csv_names_file_line_problem(
    shared_data: Path, tmp_path: Path, rel: Path, line: int, edit: Edit, problem: str
) -> None:
    src = shared_data / rel
    new = ",".join(edit(_fields(src, line)))
    bad = _break_line(src, tmp_path / f"bad_{src.name}", line, new)
    with pytest.raises(FormatError) as exc:
        import_annotations("ava", bad, kind="pred" if rel == PRED else "gt", strict=True)
    msg = str(exc.value)
    assert f"bad_{src.name}:{line}:" in msg and problem in msg, msg
    if problem != "wrong box order":  # the one problem the official reader accepts (see below)
        with pytest.raises(FormatError, match=f"bad_{src.name}:{line}:"):
            import_annotations("ava", bad, kind="pred" if rel == PRED else "gt")


def test_unknown_label_with_a_label_map_strict(shared_data: Path) -> None:
    """The real sample uses action 74, which its own action_list.txt does not list (line 7)."""
    with pytest.raises(FormatError) as exc:
        import_annotations("ava", shared_data / SAMPLE, label_map=shared_data / SAMPLE_MAP, strict=True)
    msg = str(exc.value)
    assert "ava_sample.csv:7:" in msg and "unknown label 74" in msg and "action_list.txt" in msg, msg


def test_unknown_label_is_kept_and_counted_by_default(
    shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The official reader filters rows outside the label map (its keyframe stays annotated): the row is kept
    with its id, a null label and ``attrs["lenient"]``; one warning line gives the count; export is unchanged."""
    caplog.set_level("WARNING")
    tables = import_annotations("ava", shared_data / SAMPLE, label_map=shared_data / SAMPLE_MAP)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "ava_sample.csv" in msgs[0] and "1 row(s) with an action id outside the label map" \
        in msgs[0] and "--strict" in msgs[0], msgs
    b = tables.boxes
    odd = b[b["label"].isna()]
    assert len(b) == 8 and len(odd) == 1 and int(odd["label_id"].iloc[0]) == 74 and int(odd["seq"].iloc[0]) == 6
    assert odd["flag"].isna().all() and "label_not_in_map" in odd["attrs"].iloc[0]
    loaded = _through_store(tables, tmp_path / "store")
    export_annotations("ava", loaded, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == (shared_data / SAMPLE).read_bytes()


def test_reversed_boxes_are_kept_raw_with_one_warning(
    shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Reversed boxes (the official evaluator reads them and they never match): values as written,
    ``flag="lenient"``, one warning line per file with the count, byte-identical export; strict refuses."""
    src = shared_data / PRED
    lines = src.read_text().splitlines()
    for no in (2, 5, 11):  # x reversed in 2 and 11, y in 5
        f = lines[no - 1].split(",")
        if no == 5:
            f[3], f[5] = f[5], f[3]
        else:
            f[2], f[4] = f[4], f[2]
        lines[no - 1] = ",".join(f)
    bad = tmp_path / "rev_pred.csv"
    bad.write_text("\n".join(lines) + "\n")
    caplog.set_level("WARNING")
    tables = import_annotations("ava", bad, kind="pred")
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "rev_pred.csv" in msgs[0] and "3 reversed box(es)" in msgs[0], msgs
    b = tables.boxes.sort_values("seq")
    rev = b[b["flag"] == "lenient"]
    assert list(rev["seq"]) == [1, 4, 10]
    assert (rev["x1"] > rev["x2"]).sum() == 2 and (rev["y1"] > rev["y2"]).sum() == 1
    orig = lines[1].split(",")
    assert rev.iloc[0][["x1", "x2"]].tolist() == [float(orig[2]), float(orig[4])]  # raw, not swapped back
    loaded = _through_store(tables, tmp_path / "store")
    assert (loaded.boxes["flag"] == "lenient").sum() == 3
    export_annotations("ava", loaded, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == bad.read_bytes()
    with pytest.raises(FormatError, match=r"rev_pred\.csv:2: wrong box order"):
        import_annotations("ava", bad, kind="pred", strict=True)


def test_forcing_gt_on_a_prediction_file_fails_clearly(shared_data: Path) -> None:
    with pytest.raises(FormatError, match=r"pred\.csv:1: person id .* is not an integer: '0.655'"):
        import_annotations("ava", shared_data / PRED, kind="gt")


def test_malformed_excluded(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / EXCLUDED
    bad = _break_line(src, tmp_path / "bad_excl.csv", 2, "_-Z6wFjXtGQ,0902,0.1")
    with pytest.raises(FormatError, match=r"bad_excl\.csv:2: wrong column count"):
        import_annotations("ava-excluded", bad)
    bad = _break_line(src, tmp_path / "bad_excl2.csv", 1, "0f39OWEqJ24,09o3")
    with pytest.raises(FormatError, match=r"bad_excl2\.csv:1: timestamp is not a number"):
        import_annotations("ava-excluded", bad)


@pytest.mark.parametrize(
    ("rel", "line", "new", "problem"),
    [
        (SAMPLE_MAP, 7, "  id: 12", "duplicate label id 12"),
        (SAMPLE_MAP, 3, "  id: twelve", "label id is not an integer"),
        (SAMPLE_MAP, 3, None, "label map item has no id"),
        (SAMPLE_MAP, 2, None, "label map item has no name"),
        (SAMPLE_MAP, 4, "  id: 13", "label map item repeats the field 'id'"),
        (TEXT_MAP, 5, "fall down", "expected 'ID: name'"),
        (TEXT_MAP, 6, "1: get up", "duplicate label id 1"),
    ],
)
def test_malformed_label_maps(
    shared_data: Path, tmp_path: Path, rel: Path, line: int, new: str | None, problem: str
) -> None:
    bad = _break_line(shared_data / rel, tmp_path / "bad_map.txt", line, new)
    with pytest.raises(FormatError) as exc:
        import_annotations("ava-labelmap", bad)
    msg = str(exc.value)
    # A removed line's item is reported at its 'item {' line, which is line 1 here.
    expect_line = 1 if new is None else line
    assert f"bad_map.txt:{expect_line}:" in msg and problem in msg, msg


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"vid0902": np.zeros((1, 5))}, "is not 'video_id,timestamp'"),
        ({"vid,0902": np.zeros((2, 3))}, "expected a numeric (N, 5) or (N, 4) array"),
        ({"vid,0902": np.array([[0.5, 0.1, 0.2, 0.9, 0.9]])}, "row 0: wrong box order"),
        ({"vid,0902": np.array([[0.1, 0.1, 0.2, 0.9, 0.9], [0.1, 0.1, 1.5, 0.9, 0.9]])},
         "row 1: box coordinate x2"),
        ({"vid,09x2": np.zeros((1, 5))}, "timestamp is not a number"),
        ([np.zeros((1, 5))], "expected a dict"),
    ],
)
def test_malformed_proposals(tmp_path: Path, data: object, problem: str) -> None:
    src = tmp_path / "bad_props.pkl"
    src.write_bytes(pickle.dumps(data, protocol=4))
    with pytest.raises(FormatError) as exc:
        import_annotations("ava-proposals", src)
    assert "bad_props.pkl" in str(exc.value) and problem in str(exc.value), str(exc.value)
