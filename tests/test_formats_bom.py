"""One text policy for every importer: a UTF-8 byte-order mark (what Windows editors write) is not part of the
first field. Each real file is imported as is and with a BOM prepended; the tables must be identical."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from videoact.annotations.formats import import_annotations
from videoact.annotations.formats._common import FormatError, read_text

AVA = Path("detection/ava")
CASES = [  # (format, file under shared/data, options)
    ("ava", AVA / "mmaction2_tests_ava_dataset/ava_sample.csv", {}),
    ("ava", AVA / "mmaction2_tests_eval_detection/pred.csv", {"kind": "pred"}),
    ("ava-excluded", AVA / "mmaction2_tests_ava_dataset/ava_excluded_timestamps_sample.csv", {}),
    ("ava-labelmap", AVA / "ava_action_list_v2.1_for_activitynet_2018.pbtxt", {}),
    ("ava-labelmap", AVA / "mmaction2_ava_label_map.txt", {}),
    ("activitynet", Path("localization/mmaction2_eval_localization/gt.json"), {}),
    ("activitynet", Path("localization/mmaction2_eval_localization/result.json"), {}),
    ("thumos14-classes", Path("localization/thumos14/detclasslist_ucf101_ids.txt"), {}),
    ("ego4d-lta-taxonomy", Path("anticipation/ego4d_lta/fho_lta_taxonomy_v1.json"), {}),
]


def _with_bom(src: Path, dst: Path) -> Path:
    dst.write_bytes(b"\xef\xbb\xbf" + src.read_bytes())
    return dst


@pytest.mark.parametrize("fmt, rel, options", CASES, ids=[f"{c[0]}:{c[1].name}" for c in CASES])
def test_a_bom_changes_nothing(shared_data: Path, tmp_path: Path, fmt: str, rel: Path, options: dict) -> None:
    src = shared_data / rel
    plain = import_annotations(fmt, src, **options)
    bom = import_annotations(fmt, _with_bom(src, tmp_path / src.name), **options)
    assert sum(plain.summary().values()) > 0
    for name, df in plain.items():
        other = getattr(bom, name)
        if "source" in df.columns:  # an importer may record the file it read
            df, other = df.drop(columns="source"), other.drop(columns="source")
        pd.testing.assert_frame_equal(df.reset_index(drop=True), other.reset_index(drop=True))


def test_a_thumos14_folder_with_bom_files(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "localization/thumos14/annotations_val"
    folder = tmp_path / "val"
    folder.mkdir()
    for p in sorted(src.glob("*.txt")):
        _with_bom(p, folder / p.name)
    plain, bom = import_annotations("thumos14", src), import_annotations("thumos14", folder)
    assert len(plain.segments) > 100
    cols = [c for c in plain.segments.columns if c != "source"]
    pd.testing.assert_frame_equal(plain.segments[cols], bom.segments[cols])


def test_other_bytes_that_are_not_utf8_name_the_file_and_offset(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("vid,0902,caf\xe9\n".encode("latin-1"))
    with pytest.raises(FormatError, match=r"latin1\.csv: not UTF-8 text \(invalid continuation byte at byte 12\)"):
        read_text(bad)
    shutil.copy(bad, tmp_path / "copy.csv")
