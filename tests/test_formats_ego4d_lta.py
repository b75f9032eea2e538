"""Ego4D LTA taxonomy, annotation and submission json: the real taxonomy, spec-shaped other files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from videoact.annotations import store
from videoact.annotations.formats import FormatError, export_annotations, import_annotations
from videoact.annotations.formats.ego4d_lta import load_taxonomy, split_key
from videoact.annotations.schema import AnnotationError
from videoact.annotations.tables import Tables

TAXONOMY = "anticipation/ego4d_lta/fho_lta_taxonomy_v1.json"


@pytest.fixture(scope="module")
def taxonomy_path(shared_data: Path) -> Path:
    return shared_data / TAXONOMY


@pytest.fixture(scope="module")
def taxonomy(taxonomy_path: Path) -> tuple[list[str], list[str]]:
    return load_taxonomy(taxonomy_path)


def _via_store(tables: Tables, tmp: Path) -> Tables:
    store.write_tables(tmp, tables, manifest={"import": {"meta": tables.meta}})
    return store.load(tmp)


# --------------------------------------------------------------------------------------------------- taxonomy


def test_taxonomy_imports_two_label_spaces(taxonomy_path: Path) -> None:
    t = import_annotations("ego4d-lta-taxonomy", taxonomy_path)
    verbs = t.label_names("ego4d_lta_v1_verb")
    nouns = t.label_names("ego4d_lta_v1_noun")
    assert (len(verbs), len(nouns)) == (115, 478)  # v1 class counts (spec §3)
    raw = json.loads(taxonomy_path.read_text())
    assert verbs[0] == raw["verbs"][0] == "adjust_(regulate,_increase/reduce,_change)"
    assert nouns[477] == raw["nouns"][477] and nouns[0] == "apple"
    t2 = import_annotations("ego4d-lta-taxonomy", taxonomy_path, version="v2")
    assert set(t2.labels["label_space"]) == {"ego4d_lta_v2_verb", "ego4d_lta_v2_noun"}


def test_taxonomy_round_trip_is_byte_identical(taxonomy_path: Path, tmp_path: Path) -> None:
    t = import_annotations("ego4d-lta-taxonomy", taxonomy_path)
    assert t.meta["ego4d-lta-taxonomy"]["byte_exact"] is True
    out = export_annotations("ego4d-lta-taxonomy", t, tmp_path / "tax.json")[0]
    assert out.read_bytes() == taxonomy_path.read_bytes()
    back = _via_store(t, tmp_path / "store")
    out2 = export_annotations("ego4d-lta-taxonomy", back, tmp_path / "tax2.json")[0]
    assert out2.read_bytes() == taxonomy_path.read_bytes()


def test_taxonomy_in_another_layout_round_trips_value_identical(taxonomy_path: Path, tmp_path: Path) -> None:
    raw = json.loads(taxonomy_path.read_text())
    src = tmp_path / "compact.json"
    src.write_text(json.dumps(raw, separators=(",", ":")))  # no json.dumps setting we try writes this
    t = import_annotations("ego4d-lta-taxonomy", src)
    assert t.meta["ego4d-lta-taxonomy"]["byte_exact"] is False
    out = export_annotations("ego4d-lta-taxonomy", t, tmp_path / "out.json")[0]
    assert json.loads(out.read_text()) == raw


@pytest.mark.parametrize(
    ("edit", "line", "problem"),
    [
        (lambda text: text.replace('"blow",', '"blow"', 1), 8, "broken JSON"),  # "blow" is on line 7
        (lambda text: text.replace('"blow"', '"break"', 1), 8, "verbs[5] 'break' duplicates verbs[4]"),
        (lambda text: text.replace('"blow"', "17", 1), 2, "verbs[4] must be a non-empty string"),
        (lambda text: text.replace('"nouns"', '"objects"', 1), None, "key 'nouns' must be a list"),
    ],
)
def test_taxonomy_malformed(
    taxonomy_path: Path, tmp_path: Path, edit: Any, line: int | None, problem: str
) -> None:
    bad = tmp_path / "bad_taxonomy.json"
    bad.write_text(edit(taxonomy_path.read_text()))
    with pytest.raises(FormatError) as exc:
        import_annotations("ego4d-lta-taxonomy", bad)
    msg = str(exc.value)
    assert "bad_taxonomy.json" in msg and problem in msg
    if line is not None:
        assert f"bad_taxonomy.json:{line}:" in msg


# ------------------------------------------------------------------------------------------------ annotations


def _entry(
    clip: str, video: str, idx: int, verbs: list[str] | None, nouns: list[str] | None, v: int, n: int
) -> dict[str, Any]:
    start = 2.5 * idx + 0.4
    e: dict[str, Any] = {
        "clip_uid": clip,
        "video_uid": video,
        "clip_id": 7,
        "action_idx": idx,
        "clip_parent_start_sec": 120.0,
        "clip_parent_end_sec": 420.0,
        "clip_parent_start_frame": 3600,
        "clip_parent_end_frame": 12600,
        "action_clip_start_sec": start,
        "action_clip_end_sec": start + 8.0,
        "action_clip_start_frame": round(start * 30),
        "action_clip_end_frame": round((start + 8.0) * 30),
    }
    if verbs is not None and nouns is not None:
        e.update({"verb": verbs[v], "noun": nouns[n], "verb_label": v, "noun_label": n})
    return e


def _annotation(taxonomy: tuple[list[str], list[str]] | None, split: str = "val") -> dict[str, Any]:
    verbs, nouns = taxonomy if taxonomy else (None, None)
    clips = [
        _entry("0a1b2c3d-clip-one", "vid-aaaa", i, verbs, nouns, (3 * i) % 115, (7 * i + 1) % 478)
        for i in range(4)
    ]
    clips += [_entry("9f8e7d6c-clip-two", "vid-bbbb", i, verbs, nouns, 114 - i, 477 - i) for i in range(3)]
    return {
        "version": "v1",
        "date": "220224",
        "description": "Ego4D LTA annotations",
        "split": split,
        "clips": clips,
    }


def _write(tmp_path: Path, name: str, data: Any, indent: int | None = 2) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=indent))
    return path


def _assert_same_json(a: Path, b: Path) -> None:
    """Value-identical: equal after json.load, with keys (top level and per entry) in the same order."""
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    assert da == db
    assert list(da) == list(db)
    if isinstance(da, dict) and "clips" in da:
        assert [list(e) for e in da["clips"]] == [list(e) for e in db["clips"]]
    else:
        assert list(da.items()) == list(db.items())


def test_annotations_import_columns(taxonomy: tuple[list[str], list[str]], tmp_path: Path) -> None:
    data = _annotation(taxonomy)
    t = import_annotations("ego4d-lta", _write(tmp_path, "fho_lta_val.json", data))
    s, v = t.segments, t.videos
    assert len(s) == 7 and list(v["video_id"]) == ["0a1b2c3d-clip-one", "9f8e7d6c-clip-two"]
    e = data["clips"][5]
    row = s.iloc[5]
    assert (row["video_id"], row["seq"], row["task"]) == ("9f8e7d6c-clip-two", 1, "recognition")
    assert row["t_start_s"] == e["action_clip_start_sec"] and row["t_end_s"] == e["action_clip_end_sec"]
    assert (row["frame_start"], row["frame_end"], row["fps"]) == (
        e["action_clip_start_frame"],
        e["action_clip_end_frame"],
        30.0,
    )
    assert (row["verb"], row["noun"], row["verb_id"], row["noun_id"]) == (
        taxonomy[0][113],
        taxonomy[1][476],
        113,
        476,
    )
    assert row["source"] == "ground_truth:ego4d_lta" and row["score"] == 1.0
    attrs = json.loads(row["attrs"])
    assert list(attrs) == [
        "video_uid",
        "clip_id",
        "clip_parent_start_sec",
        "clip_parent_end_sec",
        "clip_parent_start_frame",
        "clip_parent_end_frame",
    ]
    assert v.iloc[1]["split"] == "val" and v.iloc[1]["dataset"] == "ego4d_lta"
    assert json.loads(v.iloc[1]["attrs"])["video_uid"] == "vid-bbbb"


@pytest.mark.parametrize("split", ["train", "test_unannotated"])
def test_annotations_round_trip_value_identical(
    taxonomy: tuple[list[str], list[str]], tmp_path: Path, split: str
) -> None:
    data = _annotation(taxonomy if split == "train" else None, split)
    src = _write(tmp_path, f"fho_lta_{split}.json", data)
    t = import_annotations("ego4d-lta", src)
    if split != "train":  # unannotated: no labels, null ids, and no keys invented on export
        assert t.segments["verb_id"].isna().all() and t.segments["noun"].isna().all()
    out = export_annotations("ego4d-lta", t, tmp_path / "out.json")[0]
    _assert_same_json(src, out)
    out2 = export_annotations("ego4d-lta", _via_store(t, tmp_path / "store"), tmp_path / "out2.json")[0]
    _assert_same_json(src, out2)


def test_annotations_odd_values_and_order_survive(
    taxonomy: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    data = _annotation(taxonomy)
    clips = data["clips"]
    clips[1]["verb_label"], clips[1]["noun_label"] = -1, None  # a column cannot hold these: kept in attrs
    clips[2] = {
        "noun": clips[2]["noun"],
        **{k: v for k, v in clips[2].items() if k != "noun"},
    }  # own key order
    data["clips"] = [
        clips[4],
        clips[0],
        clips[5],
        clips[1],
        clips[2],
        clips[3],
        clips[6],
    ]  # clips interleaved
    src = _write(tmp_path, "odd.json", data, indent=None)
    t = import_annotations("ego4d-lta", src)
    assert "order" in t.meta["ego4d-lta"]
    row = t.segments[(t.segments["video_id"] == "0a1b2c3d-clip-one") & (t.segments["seq"] == 1)].iloc[0]
    assert pd.isna(row["verb_id"]) and json.loads(row["attrs"])["verb_label"] == -1
    out = export_annotations("ego4d-lta", t, tmp_path / "out.json")[0]
    _assert_same_json(src, out)
    out2 = export_annotations("ego4d-lta", _via_store(t, tmp_path / "store"), tmp_path / "out2.json")[0]
    _assert_same_json(src, out2)


def _break(data: dict[str, Any], i: int, **change: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    for k, v in change.items():
        if v is KeyError:
            del data["clips"][i][k]
        else:
            data["clips"][i][k] = v
    return data


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"action_idx": KeyError}, "clips[2]: missing field(s) ['action_idx']"),
        ({"action_clip_end_sec": 0.1}, "reversed segment"),
        ({"action_clip_start_sec": "5.0"}, "action_clip_start_sec must be a non-negative number"),
        ({"action_idx": 1}, "duplicate (clip_uid, action_idx), first at clips[1]"),
        ({"action_idx": -2}, "action_idx must be a non-negative integer"),
        ({"action_clip_start_frame": 900}, "action_clip_end_frame 402 < action_clip_start_frame 900"),
    ],
)
def test_annotations_malformed(
    taxonomy: tuple[list[str], list[str]], tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    data = _break(_annotation(taxonomy), 2, **change)
    bad = _write(tmp_path, "bad_lta.json", data)
    # line of clips[2]'s "clip_uid" key in the indent=2 file: 8 header lines, then 18 lines per entry
    line = json.dumps(data, indent=2).splitlines().index('      "clip_uid": "0a1b2c3d-clip-one",', 30) + 1
    with pytest.raises(FormatError) as exc:
        import_annotations("ego4d-lta", bad)
    msg = str(exc.value)
    assert f"bad_lta.json:{line}:" in msg and "clips[2]" in msg and problem in msg


def test_annotations_checked_against_the_taxonomy(
    taxonomy_path: Path, taxonomy: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    src = _write(tmp_path, "fho_lta_val.json", _annotation(taxonomy))
    t = import_annotations("ego4d-lta", src, label_map=taxonomy_path)  # the CLI's --label-map
    assert set(t.segments["label_space"]) == {"ego4d_lta_v1"} and len(t.labels) == 115 + 478
    for change, problem in [
        ({"verb_label": 115}, "unknown verb_label 115: the taxonomy has 115 verbs"),
        ({"noun": "spaceship"}, "unknown noun 'spaceship' (not in the taxonomy)"),
        ({"verb": taxonomy[0][0], "verb_label": 1}, "disagrees with verb_label 1"),
    ]:
        bad = _write(tmp_path, "bad_names.json", _break(_annotation(taxonomy), 3, **change))
        with pytest.raises(FormatError) as exc:
            import_annotations("ego4d-lta", bad, taxonomy=taxonomy_path)
        assert (
            "bad_names.json:" in str(exc.value) and "clips[3]" in str(exc.value) and problem in str(exc.value)
        )


def test_annotations_export_of_pipeline_rows(tmp_path: Path) -> None:
    rows = [
        {
            "video_id": "clipZ",
            "task": "recognition",
            "t_start_s": 1.0 + i,
            "t_end_s": 1.5 + i,
            "fps": 30.0,
            "verb": "take",
            "noun": "cup",
            "verb_id": 3,
            "noun_id": 9,
            "seq": i,
            "score": 1.0,
            "source": "m@x",
        }
        for i in (1, 0)
    ]
    t = Tables(segments=pd.DataFrame(rows)).validated()
    data = json.loads(export_annotations("ego4d-lta", t, tmp_path / "o.json")[0].read_text())
    assert data["clips"] == [
        {
            "clip_uid": "clipZ",
            "action_idx": 0,
            "action_clip_start_sec": 1.0,
            "action_clip_end_sec": 1.5,
            "action_clip_start_frame": 30,
            "action_clip_end_frame": 45,
            "verb": "take",
            "noun": "cup",
            "verb_label": 3,
            "noun_label": 9,
        },
        {
            "clip_uid": "clipZ",
            "action_idx": 1,
            "action_clip_start_sec": 2.0,
            "action_clip_end_sec": 2.5,
            "action_clip_start_frame": 60,
            "action_clip_end_frame": 75,
            "verb": "take",
            "noun": "cup",
            "verb_label": 3,
            "noun_label": 9,
        },
    ]


def test_annotations_not_an_annotation_file(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad_top.json", {"version": "v1", "clips": {"a": 1}})
    with pytest.raises(FormatError, match=r"bad_top\.json:1: expected a JSON object with a 'clips' list"):
        import_annotations("ego4d-lta", bad)


# ------------------------------------------------------------------------------------------------- submission


def _submission(k: int = 5, z: int = 20) -> dict[str, Any]:
    keys = ["0a1b2c3d-clip-one_7", "weird_clip_uid_12", "9f8e7d6c-clip-two_8"]  # last underscore splits
    return {
        key: {
            "verb": [[(a * 31 + c * 7 + s) % 115 for s in range(z)] for c in range(k)],
            "noun": [[(a * 17 + c * 5 + s * 3) % 478 for s in range(z)] for c in range(k)],
        }
        for a, key in enumerate(keys)
    }


def test_submission_import_columns(
    taxonomy_path: Path, taxonomy: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    data = _submission()
    t = import_annotations(
        "ego4d-lta-submission", _write(tmp_path, "outputs.json", data), taxonomy=taxonomy_path
    )
    f = t.forecasts
    assert len(f) == 3 * 5 * 20
    assert list(dict.fromkeys(zip(f["video_id"], f["anchor_idx"], strict=True))) == [
        ("0a1b2c3d-clip-one", 7),
        ("weird_clip_uid", 12),
        ("9f8e7d6c-clip-two", 8),
    ]
    row = f[(f["video_id"] == "weird_clip_uid") & (f["candidate"] == 3) & (f["step"] == 20)].iloc[0]
    assert row["verb_id"] == data["weird_clip_uid_12"]["verb"][2][19]
    assert row["noun"] == taxonomy[1][data["weird_clip_uid_12"]["noun"][2][19]]
    assert row["source"] == "predictions:outputs.json" and row["label_space"] == "ego4d_lta_v1"
    assert t.meta["ego4d-lta-submission"]["k"] == 5 and t.meta["ego4d-lta-submission"]["z"] == 20
    assert split_key("a_b_3") == ("a_b", 3)


def test_submission_round_trip_value_identical(tmp_path: Path) -> None:
    src = _write(tmp_path, "outputs.json", _submission(), indent=None)
    t = import_annotations("ego4d-lta-submission", src)
    assert t.forecasts["verb"].isna().all()  # no taxonomy, no names
    out = export_annotations("ego4d-lta-submission", t, tmp_path / "out.json", k=5, z=20)[0]
    _assert_same_json(src, out)
    out2 = export_annotations(
        "ego4d-lta-submission", _via_store(t, tmp_path / "store"), tmp_path / "o2.json"
    )[0]
    _assert_same_json(src, out2)


def test_submission_export_checks_k_and_z(tmp_path: Path) -> None:
    t = import_annotations("ego4d-lta-submission", _write(tmp_path, "outputs.json", _submission(k=4, z=20)))
    with pytest.raises(
        AnnotationError, match=r"0a1b2c3d-clip-one_7: candidates \[1, 2, 3, 4\], expected 1\.\.5"
    ):
        export_annotations("ego4d-lta-submission", t, tmp_path / "o.json", k=5)
    with pytest.raises(AnnotationError, match=r"candidate 1: steps .* expected 1\.\.19"):
        export_annotations("ego4d-lta-submission", t, tmp_path / "o.json", z="19")
    short = t.forecasts[~((t.forecasts["candidate"] == 2) & (t.forecasts["step"] == 20))]
    with pytest.raises(
        AnnotationError,
        match=r"candidate 2: steps \[1, 2, 3, '\.\.\.', 18, 19\] \(19 steps\), expected 1\.\.20",
    ):
        export_annotations("ego4d-lta-submission", Tables(forecasts=short), tmp_path / "o.json")


def test_submission_export_maps_names_with_a_taxonomy(
    taxonomy_path: Path, taxonomy: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    verbs, nouns = taxonomy
    rows = [
        {
            "video_id": "clipA",
            "anchor_idx": 9,
            "candidate": 1,
            "step": s + 1,
            "verb": verbs[s],
            "noun": nouns[s],
            "source": "gpt@abc",
        }
        for s in range(3)
    ]
    t = Tables(forecasts=pd.DataFrame(rows)).validated()
    with pytest.raises(AnnotationError, match="has no verb_id; pass taxonomy="):
        export_annotations("ego4d-lta-submission", t, tmp_path / "o.json")
    out = export_annotations("ego4d-lta-submission", t, tmp_path / "o.json", taxonomy=taxonomy_path)[0]
    assert json.loads(out.read_text()) == {"clipA_9": {"verb": [[0, 1, 2]], "noun": [[0, 1, 2]]}}
    rows[1]["noun"] = "spaceship"
    with pytest.raises(AnnotationError, match="noun 'spaceship' is not in the taxonomy"):
        export_annotations(
            "ego4d-lta-submission",
            Tables(forecasts=pd.DataFrame(rows)).validated(),
            tmp_path / "o.json",
            taxonomy=taxonomy_path,
        )


def _bad_submission(kind: str) -> dict[str, Any]:
    data = _submission(k=2, z=3)
    v = data["weird_clip_uid_12"]
    if kind == "ragged":
        v["verb"][1].append(4)
    elif kind == "shape":
        v["noun"] = v["noun"][:1]
    elif kind == "float":
        v["noun"][0][1] = 2.0
    elif kind == "range":
        v["verb"][1][2] = 115
    elif kind == "key":
        data["weird_clip_uid_x"] = data.pop("weird_clip_uid_12")
    elif kind == "missing":
        del v["noun"]
    return data


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("ragged", "key 'weird_clip_uid_12': 'verb' candidates have different or zero lengths [3, 4]"),
        ("shape", "key 'weird_clip_uid_12': verb is 2x3 (K x Z) but noun is 1x3"),
        ("float", "key 'weird_clip_uid_12': noun[0][1] = 2.0 is not a non-negative integer id"),
        ("range", "key 'weird_clip_uid_12': verb[1][2] = 115 is not in the taxonomy (115 verbs)"),
        ("key", "key 'weird_clip_uid_x' is not '<clip_uid>_<action_idx>'"),
        ("missing", "key 'weird_clip_uid_12': value must be {'verb'"),
    ],
)
def test_submission_malformed(taxonomy_path: Path, tmp_path: Path, kind: str, problem: str) -> None:
    data = _bad_submission(kind)
    bad = _write(tmp_path, "bad_outputs.json", data)
    key = next(k for k in data if k.startswith("weird"))
    line = json.dumps(data, indent=2).splitlines().index(f'  "{key}": {{') + 1
    with pytest.raises(FormatError) as exc:
        import_annotations("ego4d-lta-submission", bad, taxonomy=taxonomy_path)
    msg = str(exc.value)
    assert f"bad_outputs.json:{line}:" in msg and problem in msg


def test_submission_duplicate_key(tmp_path: Path) -> None:
    data = _submission(k=1, z=2)
    text = json.dumps(data, indent=2)
    first = next(iter(data))
    text = text[:-2] + f',\n  "{first}": {json.dumps(data[first])}\n}}'  # the key again, at the end
    bad = tmp_path / "dup_outputs.json"
    bad.write_text(text)
    line = len(text.splitlines()) - 1
    with pytest.raises(FormatError, match=rf"dup_outputs\.json:{line}: duplicate key '{first}'"):
        import_annotations("ego4d-lta-submission", bad)


def test_submission_import_checks_k_and_z(tmp_path: Path) -> None:
    src = _write(tmp_path, "outputs.json", _submission(k=5, z=20))
    with pytest.raises(
        FormatError,
        match=r"outputs\.json:2: key '0a1b2c3d-clip-one_7': 5 candidates of 20 steps, "
        r"expected K=5, Z=21",
    ):
        import_annotations("ego4d-lta-submission", src, z="21")
