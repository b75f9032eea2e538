"""Ego4D long-term action anticipation (LTA): taxonomy, annotation json and submission json.

Formats (EGO4D/forecasting ``LONG_TERM_ANTICIPATION.md``; see ``../shared/specs/evaluation.md`` §3):

``ego4d-lta-taxonomy``  ``fho_lta_taxonomy.json`` = ``{"verbs": [...], "nouns": [...]}``. Ids are 0-based list
    positions. Imported into the ``labels`` table as two label spaces, ``ego4d_lta_<version>_verb`` and
    ``ego4d_lta_<version>_noun`` (option ``version``, default ``"v1"``: 115 verbs / 478 nouns; v2 has 117 /
    521). Round trip: **byte-identical** when the file is written the way ``json.dumps`` writes it (the real
    v1 file is, with ``indent=2`` and no final newline; the importer detects indent and final newline and
    records them in ``meta["ego4d-lta-taxonomy"]``); otherwise value-identical.

``ego4d-lta``  ``fho_lta_{train,val,test_unannotated}.json`` = ``{"version", "date", "description", "split",
    "clips": [...]}``; each entry of ``clips`` is one annotated action of a clip. One ``segments`` row per
    entry (``task="recognition"``, ``video_id=clip_uid``; times are seconds *relative to the clip*,
    ``action_clip_{start,end}_sec``; frames are the file's ``action_clip_{start,end}_frame`` kept as they are,
    at Ego4D's canonical ``fps=30``; ``verb/noun/verb_id/noun_id`` from ``verb/noun/verb_label/noun_label``;
    ``seq=action_idx``, the position of the action within its clip). Every other field (``video_uid``,
    ``clip_parent_*`` = where the clip lies in its parent video, ``action_video_*``, ...) goes into ``attrs``
    in the file's key order. One ``videos`` row per clip (``split`` from the file, ``dataset="ego4d_lta"``,
    clip-level fields such as ``video_uid`` and ``clip_parent_*`` in ``attrs``; ``seq`` = the order clips
    first appear). The unannotated test split has no ``verb/noun/verb_label/noun_label`` keys (the official
    loader fills -1): those rows get null ids, and the absent keys stay absent on export. A value that a
    column cannot hold exactly (an id of -1 or null, a non-numeric time) is kept in ``attrs`` under its own
    key instead. Entry order is restored from (clip first-seen order, ``action_idx``) when the file is in that
    order (grouped by clip, sorted by ``action_idx``), else from an explicit order list in
    ``meta["ego4d-lta"]``. With option ``taxonomy`` (or ``label_map``) ids and names are checked and the label
    spaces added. Round trip: **value-identical** (``json.load`` of both files compare equal, entries and keys
    in the original order); not byte-identical (whitespace and float spelling are ``json.dumps``'s). Our
    tables hold more than the format: a per-row ``source``/``score``, label-space names; those are not
    written.

``ego4d-lta-submission``  ``outputs.json`` = ``{"<clip_uid>_<action_idx>": {"verb": [[Z ints] x K], "noun":
    [[Z ints] x K]}}`` (``tasks/long_term_anticipation.py test_epoch_end``; K=5, Z=20 officially). One
    ``forecasts`` row per (key, candidate 1..K, step 1..Z); ``video_id`` = the key up to its *last* underscore
    (Ego4D clip uids are hyphenated UUIDs, but we do not rely on it), ``anchor_idx`` = the index of the last
    observed action, ``seq`` = the key's position in the file. The format holds no scores, names or times:
    ``verb``/``noun`` names are filled from a taxonomy when one is given, and ``score``/``anchor_t_s`` stay
    null. Round trip: **value-identical**, keys in the original order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations import schema
from videoact.annotations.formats._common import FormatError, read_json, register_exporter, register_importer
from videoact.annotations.store import atomic_write_text
from videoact.annotations.tables import Tables

EGO4D_FPS = 30.0
DATASET = "ego4d_lta"
TAXONOMY_FMT = "ego4d-lta-taxonomy"
ANNOT_FMT = "ego4d-lta"
SUBMIT_FMT = "ego4d-lta-submission"

# entry key -> (table column, kind); kinds: "str", "index" (non-negative int), "float" (non-negative time)
_MAPPED: dict[str, tuple[str, str]] = {
    "clip_uid": ("video_id", "str"),
    "action_idx": ("seq", "index"),
    "action_clip_start_sec": ("t_start_s", "float"),
    "action_clip_end_sec": ("t_end_s", "float"),
    "action_clip_start_frame": ("frame_start", "index"),
    "action_clip_end_frame": ("frame_end", "index"),
    "verb": ("verb", "str"),
    "noun": ("noun", "str"),
    "verb_label": ("verb_id", "index"),
    "noun_label": ("noun_id", "index"),
}
_REQUIRED = ("clip_uid", "action_idx", "action_clip_start_sec", "action_clip_end_sec")
# Fields that describe the clip rather than the action; copied into the videos row's attrs.
_CLIP_FIELDS = (
    "video_uid",
    "clip_id",
    "clip_parent_start_sec",
    "clip_parent_end_sec",
    "clip_parent_start_frame",
    "clip_parent_end_frame",
)
# Key order used when exporting rows that were not imported from an Ego4D file.
_DEFAULT_KEYS = [
    "clip_uid",
    "video_uid",
    "action_idx",
    "action_clip_start_sec",
    "action_clip_end_sec",
    "action_clip_start_frame",
    "action_clip_end_frame",
    "verb",
    "noun",
    "verb_label",
    "noun_label",
]


# ---------------------------------------------------------------------------------------------------- helpers


def _line_of(text: str, needle: str) -> int | None:
    """1-based line of the first occurrence of ``needle`` (used to point at a json key), or None."""
    pos = text.find(needle)
    return None if pos < 0 else text.count("\n", 0, pos) + 1


def _entry_lines(text: str, n: int) -> list[int | None]:
    """Line of each entry's ``"clip_uid"`` key, when the file has exactly one per entry (else unknown)."""
    lines: list[int | None] = []
    pos = text.find('"clip_uid"')
    while pos >= 0:
        lines.append(text.count("\n", 0, pos) + 1)
        pos = text.find('"clip_uid"', pos + 1)
    return lines if len(lines) == n else [None] * n


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _json_layout(data: Any, text: str) -> dict[str, Any]:
    """The ``json.dumps`` settings that reproduce ``text`` byte for byte, if any do."""
    for indent in (2, 4, None, 1, 3, "\t"):
        for ensure_ascii in (False, True):
            dumped = json.dumps(data, indent=indent, ensure_ascii=ensure_ascii)
            for final_newline in (False, True):
                if dumped + ("\n" if final_newline else "") == text:
                    return {
                        "indent": indent,
                        "ensure_ascii": ensure_ascii,
                        "final_newline": final_newline,
                        "byte_exact": True,
                    }
    return {"indent": 2, "ensure_ascii": False, "final_newline": text.endswith("\n"), "byte_exact": False}


def _dump_json(data: Any, layout: Mapping[str, Any]) -> str:
    text = json.dumps(data, indent=layout.get("indent"), ensure_ascii=bool(layout.get("ensure_ascii", False)))
    return text + ("\n" if layout.get("final_newline") else "")


def _py(v: object) -> Any:
    """A table cell as a plain Python value (pandas NA / NaN -> None, numpy ints -> int)."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item"):
        return v.item()  # type: ignore[union-attr]
    return v


# --------------------------------------------------------------------------------------------------- taxonomy


def load_taxonomy(path: str | Path) -> tuple[list[str], list[str]]:
    """``(verbs, nouns)`` of an Ego4D LTA taxonomy json; ids are list positions."""
    path = Path(path)
    data, text = read_json(path)
    return _parse_taxonomy(path, data, text)


def _parse_taxonomy(path: Path, data: Any, text: str) -> tuple[list[str], list[str]]:
    if not isinstance(data, dict):
        raise FormatError(
            path, 1, f"the taxonomy must be a JSON object with 'verbs' and 'nouns', got {type(data).__name__}"
        )
    out: list[list[str]] = []
    for key in ("verbs", "nouns"):
        names = data.get(key)
        line = _line_of(text, f'"{key}"')
        if not isinstance(names, list):
            raise FormatError(
                path, line, f"key {key!r} must be a list of class names, got {type(names).__name__}"
            )
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name:
                raise FormatError(path, line, f"{key}[{i}] must be a non-empty string, got {name!r}")
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in seen:
                start = text.find(f'"{key}"')
                first = text.find(json.dumps(name), max(start, 0))
                second = text.find(json.dumps(name), first + 1) if first >= 0 else -1
                dup_line = text.count("\n", 0, second) + 1 if second >= 0 else line
                raise FormatError(path, dup_line, f"{key}[{i}] {name!r} duplicates {key}[{seen[name]}]")
            seen[name] = i
        out.append(list(names))
    return out[0], out[1]


def _space(version: str, head: str) -> str:
    return f"ego4d_lta_{version}_{head}"


@register_importer(TAXONOMY_FMT)
def import_taxonomy(path: Path, *, version: str = "v1") -> Tables:
    """Verbs and nouns as two label spaces, so forecasts can be named and checked against them."""
    path = Path(path)
    data, text = read_json(path)
    verbs, nouns = _parse_taxonomy(path, data, text)
    rows = [{"label_space": _space(version, "verb"), "id": i, "name": n} for i, n in enumerate(verbs)]
    rows += [{"label_space": _space(version, "noun"), "id": i, "name": n} for i, n in enumerate(nouns)]
    extra = {k: v for k, v in data.items() if k not in ("verbs", "nouns")}
    meta = {"version": version, "key_order": list(data), "extra": extra, **_json_layout(data, text)}
    return Tables(labels=pd.DataFrame(rows), meta={TAXONOMY_FMT: meta}).validated(where=str(path))


@register_exporter(TAXONOMY_FMT)
def export_taxonomy(tables: Tables, out: Path, *, version: str | None = None) -> list[Path]:
    """Write ``{"verbs", "nouns"}`` back; ids must be 0..n-1 in each space (the format stores positions)."""
    meta = dict(tables.meta.get(TAXONOMY_FMT, {}))
    version = version or meta.get("version") or "v1"
    lists: dict[str, list[str]] = {}
    for key, head in (("verbs", "verb"), ("nouns", "noun")):
        space = _space(version, head)
        sub = tables.labels[tables.labels["label_space"] == space].sort_values("id")
        if not len(sub):
            have = sorted(set(tables.labels["label_space"]))
            raise schema.AnnotationError(
                f"{out}: no label space {space!r} to export (have {have}); pass version= to pick another"
            )
        ids = [int(i) for i in sub["id"]]
        if ids != list(range(len(ids))):
            raise schema.AnnotationError(
                f"{out}: label space {space!r} ids must be 0..{len(ids) - 1} without "
                "gaps: the taxonomy stores only list positions"
            )
        lists[key] = [str(n) for n in sub["name"]]
    data: dict[str, Any] = {}
    extra = meta.get("extra", {})
    for key in meta.get("key_order", ["verbs", "nouns"]):
        data[key] = lists[key] if key in lists else extra.get(key)
    for key in ("verbs", "nouns"):
        data.setdefault(key, lists[key])
    atomic_write_text(out, _dump_json(data, meta if meta else {"indent": 2}))
    return [out]


# ------------------------------------------------------------------------------------------------ annotations


def _fits(value: object, kind: str) -> bool:
    """Whether a column of ``kind`` holds ``value`` exactly (else the value is kept in attrs)."""
    if kind == "str":
        return isinstance(value, str)
    if kind == "index":
        return _is_int(value) and value >= 0  # type: ignore[operator]
    number = _is_int(value) or isinstance(value, float)
    return number and math.isfinite(value) and value >= 0  # type: ignore[arg-type,operator]


@register_importer(ANNOT_FMT)
def import_ego4d_lta(
    path: Path,
    *,
    taxonomy: Path | None = None,
    label_map: Path | None = None,
    version: str = "v1",
    dataset: str = DATASET,
    fps: float | str = EGO4D_FPS,
    source: str | None = None,
) -> Tables:
    """One segment per annotated action, one video row per clip; every field kept for a lossless export.

    With ``taxonomy`` (or ``label_map``, the CLI's name for it) ids and names are checked against it and its
    label spaces are added to the ``labels`` table.
    """
    path = Path(path)
    data, text = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("clips"), list):
        raise FormatError(path, 1, "expected a JSON object with a 'clips' list (Ego4D LTA annotation file)")
    fps = float(fps)
    taxonomy = taxonomy or label_map
    classes = dict(zip(("verb", "noun"), load_taxonomy(taxonomy), strict=True)) if taxonomy else None
    source = source or f"ground_truth:{dataset}"
    header = {k: v for k, v in data.items() if k != "clips"}
    split = header.get("split")
    entries: list[Any] = data["clips"]
    segs: list[dict[str, Any]] = []
    videos: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, int], int] = {}
    default_keys: list[str] | None = None
    lines = _entry_lines(text, len(entries))
    for i, e in enumerate(entries):
        where = f"clips[{i}]"
        if not isinstance(e, dict):
            raise FormatError(path, None, f"{where} must be a JSON object, got {type(e).__name__}")
        line = lines[i]
        missing = [k for k in _REQUIRED if k not in e]
        if missing:
            raise FormatError(path, line, f"{where}: missing field(s) {missing}")
        where = f"{where} (clip_uid={e['clip_uid']!r}, action_idx={e['action_idx']!r})"
        if not isinstance(e["clip_uid"], str) or not e["clip_uid"]:
            raise FormatError(path, line, f"{where}: clip_uid must be a non-empty string")
        if not _fits(e["action_idx"], "index"):
            raise FormatError(path, line, f"{where}: action_idx must be a non-negative integer")
        for k in ("action_clip_start_sec", "action_clip_end_sec"):
            if not _fits(e[k], "float"):
                raise FormatError(path, line, f"{where}: {k} must be a non-negative number, got {e[k]!r}")
        if e["action_clip_end_sec"] < e["action_clip_start_sec"]:
            raise FormatError(
                path,
                line,
                f"{where}: reversed segment, action_clip_end_sec "
                f"{e['action_clip_end_sec']} < action_clip_start_sec "
                f"{e['action_clip_start_sec']}",
            )
        f0, f1 = e.get("action_clip_start_frame"), e.get("action_clip_end_frame")
        if _fits(f0, "index") and _fits(f1, "index") and f1 < f0:  # type: ignore[operator]
            raise FormatError(
                path, line, f"{where}: action_clip_end_frame {f1} < action_clip_start_frame {f0}"
            )
        key = (e["clip_uid"], e["action_idx"])
        if key in seen:
            raise FormatError(
                path, line, f"{where}: duplicate (clip_uid, action_idx), first at clips[{seen[key]}]"
            )
        seen[key] = i
        keys = list(e)
        if default_keys is None:
            default_keys = keys
        if classes is not None:
            _check_classes(path, line, where, e, classes)
        row: dict[str, Any] = {
            "task": "recognition",
            "fps": fps,
            "score": 1.0,
            "source": source,
            "label_space": f"ego4d_lta_{version}" if classes else None,
        }
        attrs: dict[str, Any] = {}
        for k, v in e.items():
            col = _MAPPED.get(k)
            if col is not None and _fits(v, col[1]):
                row[col[0]] = v
            else:
                attrs[k] = v
        if keys != default_keys:
            attrs["_keys"] = keys  # this entry's own key order (absent keys stay absent)
        row["attrs"] = schema.dumps_attrs(attrs)
        segs.append(row)
        if e["clip_uid"] not in videos:
            clip_attrs = {k: e[k] for k in _CLIP_FIELDS if k in e}
            videos[e["clip_uid"]] = {
                "video_id": e["clip_uid"],
                "fps": fps,
                "dataset": dataset,
                "split": split if isinstance(split, str) else None,
                "seq": len(videos),
                "source": source,
                "attrs": schema.dumps_attrs(clip_attrs),
            }
    meta: dict[str, Any] = {
        "header": header,
        "top_keys": list(data),
        "entry_keys": default_keys or _DEFAULT_KEYS,
    }
    canonical = sorted(
        range(len(entries)), key=lambda j: (videos[entries[j]["clip_uid"]]["seq"], entries[j]["action_idx"])
    )
    if canonical != list(range(len(entries))):
        meta["order"] = [[entries[j]["clip_uid"], entries[j]["action_idx"]] for j in range(len(entries))]
    seg_df = pd.DataFrame(segs) if segs else schema.empty("segments")
    vid_df = pd.DataFrame(list(videos.values())) if videos else schema.empty("videos")
    labels = schema.empty("labels")
    if classes is not None:
        labels = pd.DataFrame(
            [
                {"label_space": _space(version, head), "id": i, "name": n}
                for head in ("verb", "noun")
                for i, n in enumerate(classes[head])
            ]
        )
    return Tables(segments=seg_df, videos=vid_df, labels=labels, meta={ANNOT_FMT: meta}).validated(
        where=str(path)
    )


def _check_classes(
    path: Path, line: int | None, where: str, e: Mapping[str, Any], classes: Mapping[str, list[str]]
) -> None:
    """Ids inside the taxonomy and names that agree with them (-1 / null / absent = unlabelled, allowed)."""
    for head, names in classes.items():
        idx, name = e.get(f"{head}_label"), e.get(head)
        if _is_int(idx) and idx >= len(names):
            raise FormatError(
                path, line, f"{where}: unknown {head}_label {idx}: the taxonomy has {len(names)} {head}s"
            )
        if name is not None and name not in names:
            raise FormatError(path, line, f"{where}: unknown {head} {name!r} (not in the taxonomy)")
        if _is_int(idx) and idx >= 0 and name is not None and names[idx] != name:
            raise FormatError(
                path,
                line,
                f"{where}: {head} {name!r} disagrees with {head}_label {idx} "
                f"({names[idx]!r} in the taxonomy)",
            )


def _entry(row: Mapping[str, Any], keys: list[str]) -> dict[str, Any]:
    """Rebuild one ``clips`` entry: column values, then attrs for what the columns could not hold."""
    attrs = schema.loads_attrs(row["attrs"])
    keys = list(attrs.pop("_keys", keys))
    keys += [k for k in attrs if k not in keys]
    out: dict[str, Any] = {}
    for k in keys:
        col = _MAPPED.get(k)
        value = _py(row[col[0]]) if col is not None else None
        if value is None and k in attrs:
            value = attrs[k]
        elif value is None and col is None:
            continue  # a clip-level key that this row never had
        out[k] = value
    return out


@register_exporter(ANNOT_FMT)
def export_ego4d_lta(tables: Tables, out: Path, *, indent: int | None = None) -> list[Path]:
    """Write the ``recognition`` segments back as an Ego4D LTA annotation json, entries in file order."""
    meta = dict(tables.meta.get(ANNOT_FMT, {}))
    segs = tables.segments[tables.segments["task"] == "recognition"].reset_index(drop=True)
    if segs["seq"].isna().any():
        row = int(segs.index[segs["seq"].isna()][0])
        raise schema.AnnotationError(
            f"{out}: segments row {row} has no seq (the action_idx), which the format needs"
        )
    rank: dict[str, int] = {}
    if len(tables.videos):
        for v in tables.videos.sort_values("seq", kind="stable", na_position="last")["video_id"]:
            rank.setdefault(str(v), len(rank))
    for v in segs["video_id"]:
        rank.setdefault(str(v), len(rank))
    keyed = {(str(r["video_id"]), int(r["seq"])): r for r in segs.to_dict("records")}
    if len(keyed) != len(segs):
        raise schema.AnnotationError(
            f"{out}: duplicate (video_id, seq) among the segments; each action of a clip "
            "needs its own action_idx"
        )
    if "order" in meta:
        order = [(str(c), int(a)) for c, a in meta["order"]]
        listed = set(order)
        order = [k for k in order if k in keyed] + [k for k in keyed if k not in listed]
    else:
        order = sorted(keyed, key=lambda k: (rank[k[0]], k[1]))
    keys = list(meta.get("entry_keys", _DEFAULT_KEYS))
    clips = [_entry(keyed[k], keys) for k in order]
    header = dict(meta.get("header", {}))
    if not header:
        splits = [s for s in tables.videos["split"].dropna().unique()] if len(tables.videos) else []
        header = {
            "version": None,
            "date": None,
            "description": "exported by videoact",
            "split": splits[0] if len(splits) == 1 else None,
        }
    data: dict[str, Any] = {}
    for k in meta.get("top_keys", [*header, "clips"]):
        data[k] = clips if k == "clips" else header.get(k)
    data.setdefault("clips", clips)
    atomic_write_text(out, json.dumps(data, indent=indent, ensure_ascii=False))
    return [out]


# ------------------------------------------------------------------------------------------------- submission


def _opt_int(value: int | str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise schema.AnnotationError(f"option {name} must be an integer, got {value!r}") from None


def split_key(key: str) -> tuple[str, int]:
    """``"<clip_uid>_<action_idx>"`` -> ``(clip_uid, action_idx)``, splitting on the *last* underscore."""
    clip, sep, idx = key.rpartition("_")
    if not sep or not clip or not idx.isdigit():
        raise ValueError(f"key {key!r} is not '<clip_uid>_<action_idx>'")
    return clip, int(idx)


@register_importer(SUBMIT_FMT)
def import_submission(
    path: Path,
    *,
    taxonomy: Path | None = None,
    label_map: Path | None = None,
    version: str = "v1",
    k: int | str | None = None,
    z: int | str | None = None,
    source: str | None = None,
) -> Tables:
    """K candidate sequences of Z (verb, noun) steps per anchor; checks shapes and id ranges while reading."""
    path = Path(path)
    taxonomy = taxonomy or label_map
    data, text = read_json(path)
    if not isinstance(data, dict):
        raise FormatError(
            path, 1, f"expected a JSON object keyed '<clip_uid>_<action_idx>', got {type(data).__name__}"
        )
    k_want, z_want = _opt_int(k, "k"), _opt_int(z, "z")
    verbs, nouns = load_taxonomy(taxonomy) if taxonomy else (None, None)
    source = source or f"predictions:{path.name}"
    label_space = f"ego4d_lta_{version}" if taxonomy else None
    cols: dict[str, list[Any]] = {
        c: []
        for c in ("video_id", "anchor_idx", "candidate", "step", "verb_id", "noun_id", "verb", "noun", "seq")
    }
    shapes: set[tuple[int, int]] = set()
    for pos, (key, value) in enumerate(data.items()):
        line = _line_of(text, json.dumps(key))
        try:
            clip, anchor = split_key(key)
        except ValueError as exc:
            raise FormatError(path, line, str(exc)) from None
        if not isinstance(value, dict) or set(value) != {"verb", "noun"}:
            got = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise FormatError(
                path,
                line,
                f"key {key!r}: value must be {{'verb': [[Z ints] x K], 'noun': [[Z ints] x K]}}, got {got}",
            )
        shape: dict[str, tuple[int, int]] = {}
        for head, names in (("verb", verbs), ("noun", nouns)):
            seqs = value[head]
            if not isinstance(seqs, list) or not seqs or not all(isinstance(s, list) for s in seqs):
                raise FormatError(path, line, f"key {key!r}: {head!r} must be a non-empty list of K lists")
            lens = [len(s) for s in seqs]
            if len(set(lens)) != 1 or lens[0] == 0:
                raise FormatError(
                    path,
                    line,
                    f"key {key!r}: {head!r} candidates have different or zero "
                    f"lengths {lens}; every candidate needs the same Z",
                )
            for c, s in enumerate(seqs):
                for j, v in enumerate(s):
                    if not _is_int(v) or v < 0:
                        raise FormatError(
                            path,
                            line,
                            f"key {key!r}: {head}[{c}][{j}] = {v!r} is not a non-negative integer id",
                        )
                    if names is not None and v >= len(names):
                        raise FormatError(
                            path,
                            line,
                            f"key {key!r}: {head}[{c}][{j}] = {v} is not in the "
                            f"taxonomy ({len(names)} {head}s)",
                        )
            shape[head] = (len(seqs), lens[0])
        if shape["verb"] != shape["noun"]:
            raise FormatError(
                path,
                line,
                f"key {key!r}: verb is {shape['verb'][0]}x{shape['verb'][1]} "
                f"(K x Z) but noun is {shape['noun'][0]}x{shape['noun'][1]}",
            )
        kk, zz = shape["verb"]
        if (k_want is not None and kk != k_want) or (z_want is not None and zz != z_want):
            raise FormatError(
                path,
                line,
                f"key {key!r}: {kk} candidates of {zz} steps, expected "
                f"K={k_want if k_want is not None else kk}, "
                f"Z={z_want if z_want is not None else zz}",
            )
        shapes.add((kk, zz))
        for c in range(kk):
            for j in range(zz):
                vi, ni = value["verb"][c][j], value["noun"][c][j]
                cols["video_id"].append(clip)
                cols["anchor_idx"].append(anchor)
                cols["candidate"].append(c + 1)
                cols["step"].append(j + 1)
                cols["verb_id"].append(vi)
                cols["noun_id"].append(ni)
                cols["verb"].append(verbs[vi] if verbs else None)
                cols["noun"].append(nouns[ni] if nouns else None)
                cols["seq"].append(pos)
    df = pd.DataFrame(cols)
    df["label_space"] = label_space
    df["source"] = source
    dup = df.duplicated(["video_id", "anchor_idx", "candidate", "step"])
    if dup.any():
        r = df[dup].iloc[0]
        raise FormatError(path, None, f"two keys name clip {r['video_id']!r} anchor {r['anchor_idx']}")
    meta: dict[str, Any] = {"version": version}
    if len(shapes) == 1:
        meta["k"], meta["z"] = next(iter(shapes))
    return Tables(forecasts=df, meta={SUBMIT_FMT: meta}).validated(where=str(path))


def _ids_from_names(df: pd.DataFrame, head: str, names: list[str] | None, out: Path) -> pd.Series:
    ids = df[f"{head}_id"].astype("Int64")
    need = ids.isna()
    if not need.any():
        return ids
    if names is None:
        row = int(need.to_numpy().nonzero()[0][0])
        raise schema.AnnotationError(
            f"{out}: forecasts row {row} has no {head}_id; pass taxonomy= to map the {head} names to ids"
        )
    index = {n: i for i, n in enumerate(names)}
    for row in need.to_numpy().nonzero()[0]:
        name = df[head].iloc[row]
        if name is None or name is pd.NA or name not in index:
            raise schema.AnnotationError(
                f"{out}: forecasts row {row}: {head} {name!r} is not in the taxonomy"
            )
        ids.iloc[row] = index[name]
    return ids


@register_exporter(SUBMIT_FMT)
def export_submission(
    tables: Tables,
    out: Path,
    *,
    k: int | str | None = None,
    z: int | str | None = None,
    source: str | None = None,
    taxonomy: Path | None = None,
) -> list[Path]:
    """Write ``outputs.json``; with ``k``/``z`` every anchor must have exactly K candidates of Z steps."""
    df = tables.forecasts.reset_index(drop=True)
    sources = list(dict.fromkeys(df["source"]))
    if source is not None:
        df = df[df["source"] == source].reset_index(drop=True)
        if not len(df):
            raise schema.AnnotationError(f"{out}: no forecasts from source {source!r}; have {sources}")
    elif len(sources) > 1:
        raise schema.AnnotationError(
            f"{out}: forecasts from several sources {sources}; pass source= to pick one"
        )
    if df["anchor_idx"].isna().any():
        row = int(df.index[df["anchor_idx"].isna()][0])
        raise schema.AnnotationError(f"{out}: forecasts row {row} has no anchor_idx (the key needs it)")
    verbs, nouns = load_taxonomy(taxonomy) if taxonomy else (None, None)
    df = df.assign(
        verb_id=_ids_from_names(df, "verb", verbs, out), noun_id=_ids_from_names(df, "noun", nouns, out)
    )
    k_want, z_want = _opt_int(k, "k"), _opt_int(z, "z")
    df["_pos"] = range(len(df))
    df = df.sort_values(["seq", "_pos"], kind="stable", na_position="last")
    data: dict[str, dict[str, list[list[int]]]] = {}
    for (vid, anchor), g in df.groupby(["video_id", "anchor_idx"], sort=False):
        key = f"{vid}_{int(anchor)}"
        if key in data:
            raise schema.AnnotationError(f"{out}: two (video_id, anchor_idx) pairs both make the key {key!r}")
        g = g.sort_values(["candidate", "step"], kind="stable")
        cands, counts = np.unique(g["candidate"].to_numpy(dtype=np.int64), return_counts=True)
        kk = k_want if k_want is not None else len(cands)
        if cands.tolist() != list(range(1, kk + 1)):
            raise schema.AnnotationError(f"{out}: {key}: candidates {cands.tolist()}, expected 1..{kk}")
        zz = z_want if z_want is not None else int(counts[0])
        steps = g["step"].to_numpy(dtype=np.int64).tolist()
        for c, n in zip(cands.tolist(), counts.tolist(), strict=True):
            got, steps = steps[:n], steps[n:]
            if got != list(range(1, zz + 1)):
                shown = got if len(got) <= 6 else [*got[:3], "...", *got[-2:]]
                raise schema.AnnotationError(
                    f"{out}: {key} candidate {c}: steps {shown} ({len(got)} steps), expected 1..{zz}"
                )
        data[key] = {
            "verb": g["verb_id"].to_numpy(dtype=np.int64).reshape(kk, zz).tolist(),
            "noun": g["noun_id"].to_numpy(dtype=np.int64).reshape(kk, zz).tolist(),
        }
    atomic_write_text(out, json.dumps(data))
    return [out]
