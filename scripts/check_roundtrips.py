"""Import every annotation file under shared/data/{detection,localization}, store it, export it back, compare.

Each file goes file -> ``import_annotations`` -> Parquet run directory -> ``store.load`` ->
``export_annotations`` -> file, and is compared with the original: byte-identical, or value-identical
(same parsed content) where the format module says bytes cannot be promised.

Usage:
    python scripts/check_roundtrips.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from videoact.annotations import store
from videoact.annotations.formats import export_annotations, import_annotations, safe_pickle_load

# (path relative to the data root, format, import options, export options)
CASES: list[tuple[str, str, dict[str, object], dict[str, object]]] = [
    ("detection/ava/ava_action_list_v2.1_for_activitynet_2018.pbtxt", "ava-labelmap", {}, {}),
    ("detection/ava/mmaction2_ava_label_map.txt", "ava-labelmap", {}, {}),
    ("detection/ava/mmaction2_tests_ava_dataset/action_list.txt", "ava-labelmap", {}, {}),
    ("detection/ava/mmaction2_tests_ava_dataset/ava_sample.csv", "ava", {"kind": "gt"}, {}),
    ("detection/ava/mmaction2_tests_ava_dataset/ava_excluded_timestamps_sample.csv", "ava-excluded", {}, {}),
    ("detection/ava/mmaction2_tests_ava_dataset/ava_proposals_sample.pkl", "ava-proposals", {}, {}),
    ("detection/ava/mmaction2_tests_eval_detection/action_list.txt", "ava-labelmap", {}, {}),
    ("detection/ava/mmaction2_tests_eval_detection/gt.csv", "ava", {"kind": "gt"}, {}),
    ("detection/ava/mmaction2_tests_eval_detection/pred.csv", "ava", {"kind": "pred"}, {}),
    ("localization/mmaction2_eval_localization/gt.json", "activitynet", {}, {}),
    ("localization/mmaction2_eval_localization/result.json", "activitynet", {}, {}),
    ("localization/thumos14/detclasslist_ucf101_ids.txt", "thumos14-classes", {}, {}),
    ("localization/thumos14/annotations_val", "thumos14", {}, {}),
    ("localization/thumos14/annotations_test", "thumos14", {}, {}),
]

# Files under those folders that are documentation, not annotations.
NOT_ANNOTATIONS = {"annotations_val/readme.txt", "annotations_test/readme.txt"}


def _same_values(fmt: str, a: Path, b: Path) -> bool:
    if fmt == "ava-proposals":
        x, y = safe_pickle_load(a), safe_pickle_load(b)
        return list(x) == list(y) and all(
            x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]) for k in x
        )
    if a.suffix == ".json":
        return json.loads(a.read_text()) == json.loads(b.read_text())
    return a.read_bytes() == b.read_bytes()


def _compare(fmt: str, original: Path, exported: Path) -> tuple[str, list[str]]:
    """('byte'|'value'|'DIFFERENT', files compared)."""
    if original.is_dir():
        names = sorted(p.name for p in original.iterdir() if f"{original.name}/{p.name}" not in NOT_ANNOTATIONS)
        out_names = sorted(p.name for p in exported.iterdir())
        if names != out_names:
            return "DIFFERENT", [f"file sets differ: {sorted(set(names) ^ set(out_names))}"]
        match, mismatch, errors = filecmp.cmpfiles(original, exported, names, shallow=False)
        return ("byte" if not mismatch and not errors else "DIFFERENT"), [f"{len(match)} files"]
    if original.read_bytes() == exported.read_bytes():
        return "byte", []
    return ("value" if _same_values(fmt, original, exported) else "DIFFERENT"), []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2
    covered = {args.data / rel for rel, *_ in CASES}
    every = [p for d in ("detection", "localization") for p in (args.data / d).rglob("*") if p.is_file()]
    uncovered = [p for p in every if not any(p == c or c in p.parents for c in covered)]
    bad = 0
    print("| file | format | rows | round trip |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (rel, fmt, imp, exp) in enumerate(CASES):
            src = args.data / rel
            tables = import_annotations(fmt, src, **imp)
            run_dir = Path(tmp) / f"run{i}"
            store.write_tables(run_dir, tables, manifest={"kind": "import", "import": {"meta": tables.meta}})
            back = store.load(run_dir)
            out = Path(tmp) / f"out{i}" / src.name
            export_annotations(fmt, back, out, **exp)
            verdict, extra = _compare(fmt, src, out)
            bad += verdict == "DIFFERENT"
            rows = sum(tables.summary().values())
            print(f"| {rel} | {fmt} | {rows} | {verdict}-identical {' '.join(extra)} |")
    for p in uncovered:
        rel = p.relative_to(args.data).as_posix()
        if not any(rel.endswith(n) for n in NOT_ANNOTATIONS):
            print(f"| {rel} | (no case) | | NOT CHECKED |")
            bad += 1
    print(f"\n{len(CASES)} cases, {bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
