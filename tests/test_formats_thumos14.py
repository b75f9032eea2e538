"""THUMOS14: real per-class ground truth and class list come back byte for byte; results value for value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from videoact.annotations import schema, store
from videoact.annotations.formats import FormatError, export_annotations, import_annotations
from videoact.annotations.formats.thumos14 import (
    export_thumos14,
    export_thumos14_classes,
    export_thumos14_results,
    import_thumos14,
    import_thumos14_classes,
    import_thumos14_results,
)
from videoact.annotations.tables import Tables

SUBSETS = ["annotations_val", "annotations_test"]
CLASS_IDS = {
    "BaseballPitch": 7,
    "BasketballDunk": 9,
    "Billiards": 12,
    "CleanAndJerk": 21,
    "CliffDiving": 22,
    "CricketBowling": 23,
    "CricketShot": 24,
    "Diving": 26,
    "FrisbeeCatch": 31,
    "GolfSwing": 33,
    "HammerThrow": 36,
    "HighJump": 40,
    "JavelinThrow": 45,
    "LongJump": 51,
    "PoleVault": 68,
    "Shotput": 79,
    "SoccerPenalty": 85,
    "TennisSwing": 92,
    "ThrowDiscus": 93,
    "VolleyballSpiking": 97,
}


@pytest.fixture()
def th(shared_data: Path) -> Path:
    return shared_data / "localization" / "thumos14"


@pytest.fixture()
def class_list(th: Path) -> Path:
    return th / "detclasslist_ucf101_ids.txt"


def _class_files(folder: Path) -> list[str]:
    """The real files an export must reproduce: every class file and Ambiguous, not readme.txt."""
    return sorted(p.name for p in folder.iterdir() if p.name != "readme.txt")


def _assert_same_files(written: list[Path], out: Path, real: Path) -> None:
    got = sorted(str(p.relative_to(out)) for p in written)
    want = sorted(
        str(p.relative_to(real))
        for p in real.rglob("*.txt")
        if p.name not in ("readme.txt", "detclasslist_ucf101_ids.txt")
    )
    assert got == want
    for rel in want:
        assert (out / rel).read_bytes() == (real / rel).read_bytes(), rel


def test_real_root_folder_import(th: Path, class_list: Path) -> None:
    t = import_annotations("thumos14", th, class_list=class_list)
    meta = t.meta["thumos14"]
    assert meta["layout"] == "root"
    assert meta["skipped"] == [
        "annotations_test/readme.txt",
        "annotations_val/readme.txt",
        "detclasslist_ucf101_ids.txt",
    ]
    assert [len(f["files"]) for f in meta["folders"]] == [21, 21]
    assert len(t.videos) == 413 and len(t.segments) == 6553
    assert set(t.videos["split"]) == {"val", "test"}
    assert t.videos["video_id"].str.startswith("video_validation_").eq(t.videos["split"] == "val").all()
    seg = t.segments
    amb = seg[seg["flag"] == "ambiguous"]
    assert len(amb) == 99 + 89 and set(amb["label"]) == {"Ambiguous"} and amb["label_id"].isna().all()
    named = seg[seg["flag"].isna()]
    assert (named["label"].map(CLASS_IDS) == named["label_id"]).all()
    assert set(seg["source"]) == {"ground_truth:thumos14"} and set(seg["score"]) == {1.0}
    assert set(seg["task"]) == {"localization"} and seg["fps"].isna().all()
    assert dict(zip(t.labels["name"], t.labels["id"], strict=True)) == CLASS_IDS
    first = seg[(seg["label"] == "BaseballPitch") & (seg["seq"] == 0)]
    assert sorted(first[["video_id", "t_start_s", "t_end_s"]].values.tolist()) == [
        ["video_test_0000324", 49.2, 53.5],
        ["video_validation_0000266", 72.8, 76.4],
    ]


@pytest.mark.parametrize("with_classes", [False, True])
def test_real_root_folder_exports_byte_identical(
    th: Path, class_list: Path, tmp_path: Path, with_classes: bool
) -> None:
    t = import_thumos14(th, class_list=class_list if with_classes else None)
    out = tmp_path / "out"
    written = export_annotations("thumos14", t, out)
    _assert_same_files(written, out, th)
    assert len(written) == 42


@pytest.mark.parametrize("subset", SUBSETS)
def test_real_subset_folder_exports_byte_identical(th: Path, tmp_path: Path, subset: str) -> None:
    t = import_thumos14(th / subset)
    assert t.meta["thumos14"]["layout"] == "folder" and t.meta["thumos14"]["skipped"] == ["readme.txt"]
    written = export_thumos14(t, tmp_path)
    assert sorted(p.name for p in written) == _class_files(th / subset)
    assert len(written) == 21
    for p in written:
        assert p.read_bytes() == (th / subset / p.name).read_bytes(), p.name


def test_export_without_meta_rebuilds_the_layout(th: Path, tmp_path: Path) -> None:
    t = import_thumos14(th)
    t.meta = {}
    written = export_thumos14(t, tmp_path)  # two splits -> annotations_<split>/ folders
    _assert_same_files(written, tmp_path, th)


@pytest.mark.parametrize(
    "rel",
    [
        "annotations_val/BaseballPitch_val.txt",
        "annotations_test/Ambiguous_test.txt",
        "annotations_test/CliffDiving_test.txt",
    ],
)
def test_real_single_file_round_trip(th: Path, tmp_path: Path, rel: str) -> None:
    t = import_thumos14(th / rel)
    assert set(t.videos["split"]) == {rel.split("_")[-1][:-4]}
    out = export_thumos14(t, tmp_path / "x.txt")
    assert out == [tmp_path / "x.txt"]
    assert out[0].read_bytes() == (th / rel).read_bytes()


def test_real_single_file_round_trip_through_store(th: Path, tmp_path: Path) -> None:
    real = th / "annotations_val" / "BaseballPitch_val.txt"
    t = import_thumos14(real)
    store.write_tables(tmp_path / "run", t, manifest={"import": {"meta": t.meta}})
    again = export_thumos14(store.load(tmp_path / "run"), tmp_path)  # a folder gets the file's own name
    assert again == [tmp_path / real.name]
    assert again[0].read_bytes() == real.read_bytes()


def test_folder_round_trip_through_store(th: Path, tmp_path: Path) -> None:
    """A small real folder (the whole one has 413 videos: slow in the store) keeps every byte."""
    src = tmp_path / "gt" / "annotations_test"
    src.mkdir(parents=True)
    videos: set[str] = set()
    for name in ("FrisbeeCatch_test.txt", "GolfSwing_test.txt"):
        lines = (th / "annotations_test" / name).read_text().splitlines()
        if name.startswith("Golf"):
            lines.reverse()  # real lines out of video order: only seq can restore it after the store
        (src / name).write_text("\n".join(lines) + "\n")
        videos |= {line.split()[0] for line in lines}
    amb = [
        ln
        for ln in (th / "annotations_test" / "Ambiguous_test.txt").read_text().splitlines()
        if ln.split()[0] in videos
    ]
    assert amb  # real Ambiguous lines of those videos
    (src / "Ambiguous_test.txt").write_text("\n".join(amb) + "\n")
    (src / "readme.txt").write_text((th / "annotations_test" / "readme.txt").read_text())
    t = import_thumos14(tmp_path / "gt")
    store.write_tables(tmp_path / "run", t, manifest={"import": {"meta": t.meta}})
    loaded = store.load(tmp_path / "run")
    assert len(loaded.segments) == len(t.segments) and set(loaded.segments["flag"].dropna()) == {"ambiguous"}
    written = export_thumos14(loaded, tmp_path / "out")
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in written) == [
        "annotations_test/Ambiguous_test.txt",
        "annotations_test/FrisbeeCatch_test.txt",
        "annotations_test/GolfSwing_test.txt",
    ]
    for p in written:
        assert p.read_bytes() == (src / p.name).read_bytes(), p.name


def test_noncanonical_lines_are_kept_byte_identical(th: Path, tmp_path: Path) -> None:
    lines = (th / "annotations_val" / "GolfSwing_val.txt").read_text().splitlines()
    vid, s, e = lines[0].split()
    lines[0] = f"{vid}\t{s}  {e}"  # other spacing
    lines[1] = lines[1] + "0"  # "12.30": same value, other text
    src = tmp_path / "GolfSwing_val.txt"
    src.write_bytes(("\r\n".join(lines)).encode())  # CRLF, no final newline
    t = import_thumos14(src)
    assert t.segments.loc[0, "t_start_s"] == float(s)
    out = export_thumos14(t, tmp_path / "out.txt")[0]
    assert out.read_bytes() == src.read_bytes()
    t.segments.loc[0, "t_start_s"] = 0.25  # an edited row no longer uses its raw line
    out = export_thumos14(t, tmp_path / "edited.txt")[0]
    assert out.read_bytes().decode().split("\r\n")[:2] == [f"{vid}  0.25 {e}", lines[1]]


def test_real_class_list_round_trip(class_list: Path, tmp_path: Path) -> None:
    t = import_annotations("thumos14-classes", class_list)
    assert dict(zip(t.labels["name"], t.labels["id"], strict=True)) == CLASS_IDS
    assert set(t.labels["label_space"]) == {"thumos14"}
    assert t.meta["thumos14-classes"]["newline"] == "\r\n"
    out = export_annotations("thumos14-classes", t, tmp_path / "classes.txt")[0]
    assert out.read_bytes() == class_list.read_bytes()
    store.write_tables(tmp_path / "run", t, manifest={"import": {"meta": t.meta}})
    again = export_thumos14_classes(store.load(tmp_path / "run"), tmp_path)[0]
    assert again.name == "detclasslist_ucf101_ids.txt" and again.read_bytes() == class_list.read_bytes()


def _results_file(th: Path, tmp_path: Path) -> tuple[Path, list[tuple[str, float, float, int, float]]]:
    """Detections made from real ground-truth lines, with scores and the .mpeg suffix of real submissions."""
    rows = []
    for name, cid in (("GolfSwing_test.txt", 33), ("BaseballPitch_test.txt", 7)):
        for k, line in enumerate((th / "annotations_test" / name).read_text().splitlines()[:6]):
            vid, s, e = line.split()
            rows.append((f"{vid}.mpeg", float(s), float(e) + 0.37, cid, round(0.9 - 0.11 * k, 4)))
    rows.reverse()  # not grouped by video or class
    path = tmp_path / "run1.txt"
    path.write_text("".join(f"{v} {s} {e} {c} {conf}\n" for v, s, e, c, conf in rows))
    return path, rows


def _parse(path: Path) -> list[tuple[str, float, float, int, float]]:
    out = []
    for line in path.read_text().splitlines():
        v, s, e, c, conf = line.split()
        out.append((v, float(s), float(e), int(c), float(conf)))
    return out


def test_results_round_trip_value_identical(th: Path, class_list: Path, tmp_path: Path) -> None:
    path, rows = _results_file(th, tmp_path)
    t = import_annotations("thumos14-results", path, class_list=class_list)
    seg = t.segments
    assert len(seg) == len(rows) and list(seg["seq"]) == list(range(len(rows)))
    assert not seg["video_id"].str.endswith(".mpeg").any()  # ids match the ground truth
    assert set(seg["label"]) == {"GolfSwing", "BaseballPitch"} and set(seg["label_id"]) == {33, 7}
    assert set(seg["source"]) == {"predictions:run1.txt"}
    assert list(seg["score"]) == [r[4] for r in rows]
    out = export_annotations("thumos14-results", t, tmp_path / "out.txt")[0]
    assert _parse(out) == rows == _parse(path)
    store.write_tables(tmp_path / "run", t, manifest={"import": {"meta": t.meta}})
    again = export_thumos14_results(store.load(tmp_path / "run"), tmp_path / "again.txt")[0]
    assert _parse(again) == rows


def test_results_mixed_suffix_and_missing_ids(th: Path, class_list: Path, tmp_path: Path) -> None:
    path, _ = _results_file(th, tmp_path)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(".mpeg", "", 1)
    path.write_text("\n".join(lines) + "\n")
    t = import_thumos14_results(path)
    assert t.segments["label"].isna().all()  # no class list: the id alone
    assert _parse(export_thumos14_results(t, tmp_path / "o.txt")[0]) == _parse(path)
    t.segments["label_id"] = pd.array([None] * len(t.segments), dtype="Int64")
    t.segments["label"] = "GolfSwing"
    with pytest.raises(schema.AnnotationError, match="no UCF101 class id for label 'GolfSwing'"):
        export_thumos14_results(t, tmp_path / "p.txt")
    out = export_thumos14_results(t, tmp_path / "p.txt", class_list=class_list)[0]
    assert {r[3] for r in _parse(out)} == {33}


def _break(tmp_path: Path, real: Path, name: str, lineno: int, new_line: str) -> Path:
    lines = real.read_text().splitlines()
    lines[lineno - 1] = new_line
    bad = tmp_path / name
    bad.write_text("\n".join(lines) + "\n")
    return bad


GT_CASES = [
    ("drop-end", lambda v, s, e: f"{v}  {s}", "expected 3 columns 'video start end', got 2"),
    ("extra-col", lambda v, s, e: f"{v}  {s} {e} 7", "expected 3 columns 'video start end', got 4"),
    ("bad-number", lambda v, s, e: f"{v}  {s}x {e}", "start time is not a number: '{s}x'"),
    ("nan", lambda v, s, e: f"{v}  {s} nan", "end time is not finite: 'nan'"),
    ("reversed", lambda v, s, e: f"{v}  {e} {s}", "reversed segment: start {e} > end {s}"),
    ("negative", lambda v, s, e: f"{v}  -{s} {e}", "negative start time -{s}"),
]


@pytest.mark.parametrize(("case", "make", "problem"), GT_CASES, ids=[c[0] for c in GT_CASES])
def test_malformed_ground_truth_line(
    th: Path, tmp_path: Path, case: str, make: Callable[[str, str, str], str], problem: str
) -> None:
    real = th / "annotations_val" / "HighJump_val.txt"
    v, s, e = real.read_text().splitlines()[4].split()
    bad = _break(tmp_path, real, "HighJump_val.txt", 5, make(v, s, e))
    with pytest.raises(FormatError) as err:
        import_thumos14(bad, strict=True)
    msg = str(err.value)
    assert err.value.line == 5 and f"{bad}:5: " in msg
    assert problem.format(s=s, e=e) in msg
    if case not in ("reversed", "negative"):  # the two the evalkit reads (see the lenient tests below)
        with pytest.raises(FormatError, match=f"{bad}:5: "):
            import_thumos14(bad)


@pytest.mark.parametrize(
    ("case", "make", "reason", "warning"),
    [
        ("reversed", lambda v, s, e: f"{v}  {e} {s}", ["reversed"], "1 reversed segment(s)"),
        ("negative", lambda v, s, e: f"{v}  -{s} {e}", ["negative_time"], "1 row(s) with a negative time"),
        ("both", lambda v, s, e: f"{v}  {e} -{s}", ["negative_time", "reversed"],
         "1 reversed segment(s) (start > end; kept as written, the evalkit orders the ends); 1 row(s) with a negative"),
    ],
)
def test_evalkit_readable_ground_truth_is_kept_raw(
    th: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str, make: Callable[[str, str, str], str],
    reason: list[str], warning: str,
) -> None:
    """Reversed and negative rows are kept exactly as written (``flag="lenient"``), one warning line per file,
    and the file exports back byte for byte."""
    real = th / "annotations_val" / "HighJump_val.txt"
    v, s, e = real.read_text().splitlines()[4].split()
    bad = _break(tmp_path, real, "HighJump_val.txt", 5, make(v, s, e))
    caplog.set_level("WARNING")
    t = import_thumos14(bad)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and str(bad) in msgs[0] and warning in msgs[0] and "--strict" in msgs[0], msgs
    row = t.segments[t.segments["seq"] == 4].iloc[0]
    start, end = (float(x) for x in make(v, s, e).split()[1:])
    assert (row["t_start_s"], row["t_end_s"], row["flag"]) == (start, end, "lenient")
    assert sorted(schema.loads_attrs(row["attrs"])["lenient"]) == sorted(reason)
    assert (t.segments["flag"] == "lenient").sum() == 1
    store.write_tables(tmp_path / "st", t, manifest={"import": {"meta": t.meta}})
    out = export_thumos14(store.load(tmp_path / "st"), tmp_path / "out")
    assert out[0].read_bytes() == bad.read_bytes()


def test_lenient_ambiguous_row_keeps_its_flag(th: Path, tmp_path: Path) -> None:
    real = th / "annotations_val" / "Ambiguous_val.txt"
    v, s, e = real.read_text().splitlines()[0].split()
    bad = _break(tmp_path, real, "Ambiguous_val.txt", 1, f"{v}  {e} {s}")
    t = import_thumos14(bad)
    row = t.segments[t.segments["seq"] == 0].iloc[0]
    assert row["flag"] == "ambiguous" and schema.loads_attrs(row["attrs"])["lenient"] == ["reversed"]
    assert (row["t_start_s"], row["t_end_s"]) == (float(e), float(s))


def test_malformed_ground_truth_in_a_folder_names_the_file(th: Path, tmp_path: Path) -> None:
    real = th / "annotations_val" / "Billiards_val.txt"
    v, s, e = real.read_text().splitlines()[9].split()
    (tmp_path / "readme.txt").write_text("skipped\n")
    bad = _break(tmp_path, real, "Billiards_val.txt", 10, f"{v}  {e} {s}")
    with pytest.raises(FormatError, match=rf"{bad}:10: reversed segment"):
        import_thumos14(tmp_path, strict=True)
    assert (import_thumos14(tmp_path).segments["flag"] == "lenient").sum() == 1


def test_unknown_class_with_class_list(th: Path, class_list: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Juggling_val.txt"
    bad.write_text((th / "annotations_val" / "GolfSwing_val.txt").read_text())
    assert len(import_thumos14(bad).segments) == 31  # no class list: any class name
    with pytest.raises(FormatError) as err:
        import_thumos14(bad, class_list=class_list)
    assert str(err.value).startswith(f"{bad}: unknown class 'Juggling' (from the file name)")
    path, _ = _results_file(th, tmp_path)
    lines = path.read_text().splitlines()
    cols = lines[2].split()
    cols[3] = "8"
    lines[2] = " ".join(cols)
    path.write_text("\n".join(lines) + "\n")
    assert len(import_thumos14_results(path).segments) == 12
    with pytest.raises(FormatError, match=rf"{path}:3: unknown class id 8 \(not in the class list"):
        import_thumos14_results(path, label_map=class_list, strict=True)
    # the evalkit skips it with a warning: kept (null label, marked), dropped and counted by the evaluator
    t = import_thumos14_results(path, label_map=class_list)
    odd = t.segments[t.segments["label"].isna()]
    assert len(t.segments) == 12 and len(odd) == 1 and int(odd["label_id"].iloc[0]) == 8
    assert schema.loads_attrs(odd["attrs"].iloc[0])["lenient"] == ["unknown_class_id"]


def test_bad_file_name_and_empty_folder(th: Path, tmp_path: Path) -> None:
    bad = tmp_path / "golf.txt"
    bad.write_text((th / "annotations_val" / "GolfSwing_val.txt").read_text())
    with pytest.raises(FormatError, match=rf"{bad}: file name must be <Class>_<subset>.txt"):
        import_thumos14(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match=r"no <Class>_<subset>\.txt files"):
        import_thumos14(empty)


RESULT_CASES = [
    (lambda c: c[:4], "expected 5 columns 'video start end class_id conf', got 4"),
    (lambda c: [*c, "x"], "expected 5 columns 'video start end class_id conf', got 6"),
    (lambda c: [c[0], c[1], c[2], "7.0", c[4]], "class id is not an integer: '7.0'"),
    (lambda c: [c[0], c[1], c[2], c[3], "high"], "confidence is not a number: 'high'"),
    (lambda c: [c[0], c[2], c[1], c[3], c[4]], "reversed segment"),
    (lambda c: [c[0], "1,5", c[2], c[3], c[4]], "start time is not a number: '1,5'"),
]


@pytest.mark.parametrize(
    ("make", "problem"), RESULT_CASES, ids=["4cols", "6cols", "id", "conf", "rev", "comma"]
)
def test_malformed_results_line(
    th: Path, tmp_path: Path, make: Callable[[list[str]], list[str]], problem: str
) -> None:
    path, _ = _results_file(th, tmp_path)
    lines = path.read_text().splitlines()
    lines[6] = " ".join(make(lines[6].split()))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as err:
        import_thumos14_results(path, strict=True)
    assert err.value.line == 7 and str(err.value).startswith(f"{path}:7: ") and problem in str(err.value)


def test_evalkit_sample_style_results_are_kept_raw(th: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Rows like the evalkit's own Run-2-det.txt (``-6.1 18.3``, ``18.8 4.9``, ``-9.8 -3.3``): kept as written, one
    warning with both counts, value-identical export."""
    path = tmp_path / "Run-x-det.txt"
    path.write_text("video_validation_0000683 -6.1 18.3 7 0.496328\nvideo_validation_0000683 18.8 4.9 7 0.114401\n"
                    "video_validation_0000687 -9.8 -3.3 7 0.407491\nvideo_validation_0000690 3.0 4.1 7 0.630590\n")
    caplog.set_level("WARNING")
    t = import_thumos14_results(path)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "1 reversed segment(s)" in msgs[0] and "2 row(s) with a negative time" in msgs[0], msgs
    seg = t.segments
    assert list(seg["flag"].fillna("-")) == ["lenient", "lenient", "lenient", "-"]
    assert seg[["t_start_s", "t_end_s"]].values.tolist() == [[-6.1, 18.3], [18.8, 4.9], [-9.8, -3.3], [3.0, 4.1]]
    store.write_tables(tmp_path / "st", t, manifest={"import": {"meta": t.meta}})
    out = export_thumos14_results(store.load(tmp_path / "st"), tmp_path / "out.txt")[0]
    assert _parse(out) == _parse(path)
    with pytest.raises(FormatError, match=rf"{path}:1: negative start time -6.1"):
        import_thumos14_results(path, strict=True)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("7 BaseballPitch extra", "expected 2 columns"),
        ("seven BaseballPitch", "class id is not an integer: 'seven'"),
        ("9 Foo", "duplicate class id 9"),
        ("99 BaseballPitch", "duplicate class name 'BaseballPitch'"),
    ],
)
def test_malformed_class_list(class_list: Path, tmp_path: Path, line: str, problem: str) -> None:
    lines = class_list.read_bytes().decode().split("\r\n")
    lines[3] = line
    bad = tmp_path / "classes.txt"
    bad.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(FormatError) as err:
        import_thumos14_classes(bad)
    assert str(err.value).startswith(f"{bad}:4: ") and problem in str(err.value)


def test_export_pipeline_rows_without_split_is_an_error(tmp_path: Path) -> None:
    seg = pd.DataFrame(
        {
            "video_id": ["v1"],
            "task": "localization",
            "t_start_s": [1.0],
            "t_end_s": [2.0],
            "label": ["Diving"],
            "score": [1.0],
            "source": "ground_truth:thumos14",
        }
    )
    t = Tables(segments=seg).validated()
    with pytest.raises(schema.AnnotationError, match="video 'v1' has no split"):
        export_thumos14(t, tmp_path)
    t.videos = schema.validate("videos", pd.DataFrame({"video_id": ["v1"], "split": ["test"], "source": "x"}))
    written = export_thumos14(t, tmp_path)
    assert written == [tmp_path / "Diving_test.txt"] and written[0].read_text() == "v1  1.0 2.0\n"
