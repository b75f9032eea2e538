"""mmaction2 / pyskl skeleton pickles, NTU RGB+D label maps, and NTU sample names and benchmark splits.

Formats (mmaction2 ``tools/data/skeleton/README.md``, pyskl ``tools/data/README.md``; see
``../shared/specs/evaluation.md`` §2):

``skeleton-pickle``  ``{"split": {name: [frame_dir, ...]}, "annotations": [ann, ...]}``, a bare list of
    ``ann``, or one ``ann`` (PaddleVideo's example file). ``ann`` = ``{frame_dir, label, total_frames,
    keypoint (M,T,V,C), [keypoint_score (M,T,V), img_shape (H,W), original_shape (H,W), ...]}``. Read with
    ``safe_pickle_load`` only (a pickle that needs any class beyond numpy arrays and plain containers is
    refused, never executed).

    * ``segments``: one ``recognition`` row per sample: ``video_id=frame_dir``, ``label_id=label`` (0-based;
      NTU label = A - 1), ``label`` named from option ``label_map`` (one name per line, id = line - 1),
      ``frame_start=0``, ``frame_end=total_frames`` (exclusive), times = frames / ``fps``. The pickle has no
      frame rate: option ``fps`` defaults to 30.0, which is right for NTU RGB+D (Kinect v2, 30 fps); pass 25
      for UCF101.
    * ``videos``: ``n_frames=total_frames``, ``height, width = img_shape`` (the pickle stores **(H, W)**),
      ``split`` = the comma-joined names of the splits the sample is listed in (``"xsub_train,xview_train"``).
    * ``skeletons`` (option ``keypoints``, default True): one row per (person ``m``, frame ``t``) of the
      ``keypoint`` array, ``person_id=m``, ``frame=t``, keypoints flattened joint-major (``V*C``), ``scores``
      from ``keypoint_score``. ``dims=C``; ``coord_space`` is ``image_px`` for 2D (pixels of ``img_shape``)
      and ``world_m`` for 3D (Kinect camera space, metres). ``layout`` (option) defaults to ``coco17`` for
      V=17, C=2, ``ntu25`` for V=25, C=3, else ``unknown<V>``. All-zero rows (padding persons, frames without
      a body) are **kept**: the arrays are stored exactly as they are. ``seq`` of every row is the sample's
      position in the annotation list, so ``store.load`` restores the sample order.
    * Every other key of ``ann`` (``original_shape``, ``modality``, ``start_index``, pyskl's ``box_score``
      ...) goes into the videos row's ``attrs``, together with the key order and the arrays' dtype and shape
      (``_keys``, ``_keypoint``, ``_keypoint_score``, ``_types``); tuples, numpy arrays and numpy scalars are
      tagged so that they come back as the same Python/numpy types.

    Round trip: **value-identical** (same container, same keys in the same order, equal values of the same
    types; arrays equal with the same dtype and shape), not byte-identical (pickle bytes depend on the
    writer). Exact for ``float16``/``float32`` keypoints; ``float64`` keypoints are rounded to ``float32``,
    the table's type. The format cannot hold several labels per sample, scores of a label, or a source; our
    ``source`` and ``score`` columns are not written.

``ntu-labelmap``  NTU label map text (``label_map_ntu60.txt``, ``label_map_nturgbd_120.txt``): one class name
    per line, id = line - 1. Label space ``ntu60`` / ``ntu120`` from the line count (else the file stem), or
    option ``label_space``. Round trip: **byte-identical** (line ending and final newline are recorded in
    meta).

NTU helpers: ``parse_ntu_name`` (``SsssCcccPpppRrrrAaaa``), ``ntu_split`` (X-Sub/X-View for NTU60, X-Sub/X-Set
for NTU120, the mmaction2/pyskl subject lists) and ``ntu_split_dict`` (the pickle's ``split`` dict).
"""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videoact.annotations import schema
from videoact.annotations.formats._common import (
    FormatError,
    register_exporter,
    register_importer,
    safe_pickle_load,
)
from videoact.annotations.store import atomic_write_bytes, atomic_write_text
from videoact.annotations.tables import Tables

PICKLE_FMT = "skeleton-pickle"
LABELMAP_FMT = "ntu-labelmap"
NTU_FPS = 30.0

# ----------------------------------------------------------------------------------------- NTU names / splits

NTU60_XSUB_TRAIN: frozenset[int] = frozenset(
    [1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38]
)
NTU120_XSUB_TRAIN: frozenset[int] = NTU60_XSUB_TRAIN | frozenset(
    [
        45,
        46,
        47,
        49,
        50,
        52,
        53,
        54,
        55,
        56,
        57,
        58,
        59,
        70,
        74,
        78,
        80,
        81,
        82,
        83,
        84,
        85,
        86,
        89,
        91,
        92,
        93,
        94,
        95,
        97,
        98,
        100,
        103,
    ]
)
NTU60_XVIEW_TRAIN_CAMERAS: frozenset[int] = frozenset([2, 3])
BENCHMARKS = ("xsub60", "xview60", "xsub120", "xset120")
_NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


def parse_ntu_name(name: str) -> dict[str, int]:
    """``"S001C002P003R002A013"`` (or a file name starting with it) -> setup, camera, performer, replication,
    action.

    Raises:
        ValueError: when the name does not start with ``SsssCcccPpppRrrrAaaa``.
    """
    stem = Path(str(name)).name
    m = _NTU_NAME.match(stem)
    if m is None:
        raise ValueError(f"{name!r} is not an NTU RGB+D sample name (SsssCcccPpppRrrrAaaa)")
    s, c, p, r, a = (int(g) for g in m.groups())
    return {"setup": s, "camera": c, "performer": p, "replication": r, "action": a}


def ntu_split(name: str, benchmark: str) -> str:
    """``"train"`` or ``"val"`` of a sample under ``xsub60``, ``xview60``, ``xsub120`` or ``xset120``.

    NTU60 benchmarks refuse NTU120-only samples (setup > 17 or action > 60): they are not part of NTU60.
    """
    f = parse_ntu_name(name)
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown NTU benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}")
    if benchmark.endswith("60") and (f["setup"] > 17 or f["action"] > 60):
        raise ValueError(f"{name!r} is not an NTU60 sample (NTU60 has S001-S017, A001-A060)")
    if benchmark == "xsub60":
        train = f["performer"] in NTU60_XSUB_TRAIN
    elif benchmark == "xview60":
        train = f["camera"] in NTU60_XVIEW_TRAIN_CAMERAS
    elif benchmark == "xsub120":
        train = f["performer"] in NTU120_XSUB_TRAIN
    else:
        train = f["setup"] % 2 == 0
    return "train" if train else "val"


def ntu_split_dict(names: Iterable[str], dataset: str = "ntu60") -> dict[str, list[str]]:
    """The pickle's ``split`` dict: ``xsub_train/xsub_val`` and ``xview_*`` (ntu60) or ``xset_*`` (ntu120)."""
    if dataset not in ("ntu60", "ntu120"):
        raise ValueError(f"dataset must be 'ntu60' or 'ntu120', got {dataset!r}")
    n = dataset[3:]
    names = list(names)
    out: dict[str, list[str]] = {}
    for bench in ("xsub", "xview" if n == "60" else "xset"):
        halves = [ntu_split(name, bench + n) for name in names]
        for half in ("train", "val"):
            out[f"{bench}_{half}"] = [name for name, h in zip(names, halves, strict=True) if h == half]
    return out


# ------------------------------------------------------------------------------------------------- label maps


def read_label_map(path: str | Path) -> tuple[list[str], dict[str, Any]]:
    """Class names (id = line - 1) and the text layout (line ending, final newline) of a label map."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a BOM is not part of the first name
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(path, None, f"cannot read the label map as UTF-8 text ({exc})") from None
    eol = "\r\n" if "\r\n" in text else "\n"
    final = text.endswith(eol)
    body = text[: -len(eol)] if final else text
    names = body.split(eol) if body else []
    for i, name in enumerate(names):
        if not name.strip():
            raise FormatError(path, i + 1, "empty class name (one class name per line, no blank lines)")
        if "\r" in name or "\n" in name:
            raise FormatError(path, i + 1, "mixed line endings")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise FormatError(path, i + 1, f"duplicate class name {name!r} (first on line {seen[name] + 1})")
        seen[name] = i
    if not names:
        raise FormatError(path, 1, "empty label map")
    return names, {"eol": eol, "final_newline": final}


def _infer_space(names: list[str], path: Path) -> str:
    return {60: "ntu60", 120: "ntu120"}.get(len(names), path.stem)


@register_importer(LABELMAP_FMT)
def import_ntu_labelmap(path: Path, *, label_space: str | None = None) -> Tables:
    """Class names as a label space, so recognition rows can be named and checked."""
    path = Path(path)
    names, layout = read_label_map(path)
    space = label_space or _infer_space(names, path)
    labels = pd.DataFrame({"label_space": space, "id": range(len(names)), "name": names})
    return Tables(labels=labels, meta={LABELMAP_FMT: {"label_space": space, **layout}}).validated(
        where=str(path)
    )


@register_exporter(LABELMAP_FMT)
def export_ntu_labelmap(tables: Tables, out: Path, *, label_space: str | None = None) -> list[Path]:
    """Write one label space as one name per line (ids must be 0..n-1: the line number is the id)."""
    meta = dict(tables.meta.get(LABELMAP_FMT, {}))
    spaces = list(dict.fromkeys(tables.labels["label_space"]))
    space = label_space or meta.get("label_space") or (spaces[0] if len(spaces) == 1 else None)
    if space is None or space not in spaces:
        raise schema.AnnotationError(f"{out}: pick a label space with label_space= (have {spaces})")
    sub = tables.labels[tables.labels["label_space"] == space].sort_values("id")
    ids = [int(i) for i in sub["id"]]
    if ids != list(range(len(ids))):
        raise schema.AnnotationError(
            f"{out}: label space {space!r} ids must be 0..{len(ids) - 1} without gaps"
        )
    eol = meta.get("eol", "\n") if meta.get("label_space", space) == space else "\n"
    final = bool(meta.get("final_newline", True)) if meta.get("label_space", space) == space else True
    atomic_write_text(out, eol.join(str(n) for n in sub["name"]) + (eol if final else ""))
    return [out]


# ---------------------------------------------------------------------------------------------- value tagging

_FIXED = ("frame_dir", "label", "total_frames", "keypoint", "keypoint_score")


def _encode(v: Any) -> Any:
    """A JSON-able form of a pickled value that ``_decode`` turns back into the same types."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.ndarray):
        return {"__ndarray__": _encode(v.tolist()), "dtype": v.dtype.str, "shape": list(v.shape)}
    if isinstance(v, np.generic):
        return {"__npscalar__": _encode(v.item()), "dtype": v.dtype.str}
    if isinstance(v, tuple):
        return {"__tuple__": [_encode(x) for x in v]}
    if isinstance(v, list):
        return [_encode(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return {"__set__": [_encode(x) for x in v], "frozen": isinstance(v, frozenset)}
    if isinstance(v, complex):
        return {"__complex__": [v.real, v.imag]}
    if isinstance(v, bytes):
        return {"__bytes__": v.hex()}
    if isinstance(v, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in v):
            return {k: _encode(x) for k, x in v.items()}
        return {"__dict__": [[_encode(k), _encode(x)] for k, x in v.items()]}
    raise TypeError(f"cannot keep a value of type {type(v).__name__}")


def _decode(v: Any) -> Any:
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "__ndarray__" in v:
        return np.asarray(_decode(v["__ndarray__"]), dtype=np.dtype(v["dtype"])).reshape(v["shape"])
    if "__npscalar__" in v:
        return np.dtype(v["dtype"]).type(v["__npscalar__"])
    if "__tuple__" in v:
        return tuple(_decode(x) for x in v["__tuple__"])
    if "__set__" in v:
        items = [_freeze(_decode(x)) for x in v["__set__"]]
        return frozenset(items) if v.get("frozen") else set(items)
    if "__complex__" in v:
        return complex(*v["__complex__"])
    if "__bytes__" in v:
        return bytes.fromhex(v["__bytes__"])
    if "__dict__" in v:
        return {_freeze(_decode(k)): _decode(x) for k, x in v["__dict__"]}
    return {k: _decode(x) for k, x in v.items()}


def _freeze(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _int_value(v: Any) -> int | None:
    """An int from a Python or numpy integer (not bool), else None."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return int(v)
    return None


# ---------------------------------------------------------------------------------------------- pickle import


def _default_layout(v: int, c: int) -> str:
    return {(17, 2): "coco17", (25, 3): "ntu25"}.get((v, c), f"unknown{v}")


def _as_bool(value: bool | str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise schema.AnnotationError(f"option {name} must be true or false, got {value!r}")


def _container(data: Any, path: Path) -> tuple[str, list[Any], dict[str, Any], dict[str, Any]]:
    """(kind, annotations, split dict, other top-level keys) of the three accepted layouts."""
    if isinstance(data, list):
        return "list", data, {}, {}
    if isinstance(data, dict) and "annotations" in data:
        anns = data["annotations"]
        if not isinstance(anns, list):
            raise FormatError(path, None, f"'annotations' must be a list, got {type(anns).__name__}")
        split = data.get("split", {})
        if not isinstance(split, dict) or not all(
            isinstance(k, str) and isinstance(v, (list, tuple)) for k, v in split.items()
        ):
            raise FormatError(path, None, "'split' must map split names to lists of frame_dir names")
        other = {k: v for k, v in data.items() if k not in ("split", "annotations")}
        return "full", anns, split, other
    if isinstance(data, dict) and ("frame_dir" in data or "keypoint" in data):
        return "single", [data], {}, {}
    raise FormatError(
        path,
        None,
        "expected {'split', 'annotations'}, a list of annotations, or one annotation "
        f"dict with 'frame_dir'; got {type(data).__name__}",
    )


@register_importer(PICKLE_FMT)
def import_skeleton_pickle(
    path: Path,
    *,
    label_map: Path | None = None,
    label_space: str | None = None,
    fps: float | str = NTU_FPS,
    keypoints: bool | str = True,
    layout: str | None = None,
    dataset: str | None = None,
    source: str | None = None,
) -> Tables:
    """Samples, labels, splits and (optionally) every keypoint of an mmaction2 / pyskl pickle."""
    path = Path(path)
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise schema.AnnotationError(f"option fps must be a positive number, got {fps}")
    with_kp = _as_bool(keypoints, "keypoints")
    dataset = dataset or path.stem
    source = source or f"ground_truth:{dataset}"
    data = safe_pickle_load(path)
    kind, anns, split, other = _container(data, path)
    names: list[str] | None = None
    labels_df = schema.empty("labels")
    if label_map is not None:
        names, _ = read_label_map(label_map)
        label_space = label_space or _infer_space(names, Path(label_map))
        labels_df = pd.DataFrame({"label_space": label_space, "id": range(len(names)), "name": names})

    split_names = list(split)
    membership: dict[str, list[str]] = {}
    for sname, members in split.items():
        for j, fd in enumerate(members):
            if not isinstance(fd, str):
                raise FormatError(path, None, f"split[{sname!r}][{j}] must be a frame_dir string, got {fd!r}")
            membership.setdefault(fd, []).append(sname)

    videos: list[dict[str, Any]] = []
    segs: list[dict[str, Any]] = []
    sk: dict[str, list[Any]] = {
        c: []
        for c in (
            "video_id",
            "frame",
            "t_s",
            "person_id",
            "layout",
            "dims",
            "coord_space",
            "keypoints",
            "scores",
            "seq",
        )
    }
    seen: dict[str, int] = {}
    for i, ann in enumerate(anns):
        where = f"annotations[{i}]" if kind != "single" else "annotation"
        if not isinstance(ann, dict):
            raise FormatError(path, None, f"{where} must be a dict, got {type(ann).__name__}")
        fd = ann.get("frame_dir")
        if not isinstance(fd, str) or not fd:
            raise FormatError(path, None, f"{where}: missing or non-string 'frame_dir' ({fd!r})")
        where = f"{where} (frame_dir={fd!r})"
        if fd in seen:
            raise FormatError(path, None, f"{where}: duplicate frame_dir, first at annotations[{seen[fd]}]")
        seen[fd] = i
        for key in ("label", "total_frames"):
            if key not in ann:
                raise FormatError(path, None, f"{where}: missing {key!r}")
        label, total = _int_value(ann["label"]), _int_value(ann["total_frames"])
        if label is None:
            raise FormatError(path, None, f"{where}: 'label' must be an integer, got {ann['label']!r}")
        if total is None or total < 0:
            raise FormatError(
                path,
                None,
                f"{where}: 'total_frames' must be a non-negative integer, got {ann['total_frames']!r}",
            )
        if names is not None and not 0 <= label < len(names):
            raise FormatError(
                path,
                None,
                f"{where}: unknown label {label}: the label map {label_map} has ids 0..{len(names) - 1}",
            )
        attrs: dict[str, Any] = {"_keys": list(ann)}
        types = {k: ann[k].dtype.str for k in ("label", "total_frames") if isinstance(ann[k], np.generic)}
        if types:
            attrs["_types"] = types
        kp, score = ann.get("keypoint"), ann.get("keypoint_score")
        if kp is not None:
            kp, score = _check_arrays(path, where, kp, score)
            attrs["_keypoint"] = {"dtype": kp.dtype.str, "shape": list(kp.shape)}
            if score is not None:
                attrs["_keypoint_score"] = {"dtype": score.dtype.str, "shape": list(score.shape)}
        elif score is not None:
            raise FormatError(path, None, f"{where}: 'keypoint_score' without 'keypoint'")
        for k, v in ann.items():
            if k not in _FIXED:
                try:
                    attrs[k] = _encode(v)
                except TypeError as exc:
                    raise FormatError(path, None, f"{where}: key {k!r}: {exc}") from None
        height = width = None
        shape = ann.get("img_shape")
        if (
            isinstance(shape, (tuple, list))
            and len(shape) == 2
            and all(_int_value(x) is not None for x in shape)
        ):
            height, width = (int(x) for x in shape)
        videos.append(
            {
                "video_id": fd,
                "fps": fps,
                "n_frames": total,
                "duration_s": total / fps,
                "width": width,
                "height": height,
                "dataset": dataset,
                "split": ",".join(membership.get(fd, [])) or None,
                "seq": i,
                "source": source,
                "attrs": schema.dumps_attrs(attrs),
            }
        )
        segs.append(
            {
                "video_id": fd,
                "task": "recognition",
                "t_start_s": 0.0,
                "t_end_s": total / fps,
                "fps": fps,
                "frame_start": 0,
                "frame_end": total,
                "label_id": label,
                "label": names[label] if names is not None else None,
                "label_space": label_space,
                "score": 1.0,
                "seq": i,
                "source": source,
            }
        )
        if with_kp and kp is not None:
            _add_skeleton_rows(sk, fd, i, kp, score, fps, layout)

    meta: dict[str, Any] = {"container": kind, "top_keys": list(data) if kind == "full" else []}
    if kind == "full":
        meta["splits"] = split_names
        order = {fd: j for j, fd in enumerate(seen)}
        explicit = {}
        for sname, members in split.items():
            rebuilt = sorted((fd for fd in members if fd in order), key=order.__getitem__)
            if list(members) != rebuilt or "," in sname or isinstance(members, tuple):
                explicit[sname] = _encode(members)
        if explicit:
            meta["split_lists"] = explicit
        if other:
            meta["other"] = _encode(other)
    skel_df = pd.DataFrame(sk)
    if len(skel_df):
        skel_df["fps"] = fps
        skel_df["source"] = source
    else:
        skel_df = schema.empty("skeletons")
    tables = Tables(
        videos=pd.DataFrame(videos) if videos else schema.empty("videos"),
        segments=pd.DataFrame(segs) if segs else schema.empty("segments"),
        skeletons=skel_df,
        labels=labels_df,
        meta={PICKLE_FMT: meta},
    )
    return tables.validated(where=str(path))


def _check_arrays(path: Path, where: str, kp: Any, score: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``keypoint`` must be (M,T,V,C) with C 2 or 3, ``keypoint_score`` (M,T,V), both real numbers."""
    if not isinstance(kp, np.ndarray) or kp.ndim != 4 or kp.shape[3] not in (2, 3):
        got = getattr(kp, "shape", type(kp).__name__)
        raise FormatError(
            path, None, f"{where}: 'keypoint' must be a numpy array (M, T, V, C) with C 2 or 3, got {got}"
        )
    if not np.issubdtype(kp.dtype, np.floating) and not np.issubdtype(kp.dtype, np.integer):
        raise FormatError(path, None, f"{where}: 'keypoint' must hold real numbers, got dtype {kp.dtype}")
    if score is not None:
        if not isinstance(score, np.ndarray) or score.shape != kp.shape[:3]:
            got = getattr(score, "shape", type(score).__name__)
            raise FormatError(
                path, None, f"{where}: 'keypoint_score' must have shape (M, T, V) = {kp.shape[:3]}, got {got}"
            )
        if not np.issubdtype(score.dtype, np.floating) and not np.issubdtype(score.dtype, np.integer):
            raise FormatError(
                path, None, f"{where}: 'keypoint_score' must hold real numbers, got {score.dtype}"
            )
    return kp, score


def _add_skeleton_rows(
    sk: dict[str, list[Any]],
    fd: str,
    seq: int,
    kp: np.ndarray,
    score: np.ndarray | None,
    fps: float,
    layout: str | None,
) -> None:
    m, t, v, c = kp.shape
    n = m * t
    flat = kp.reshape(n, v * c).astype(np.float32)
    sk["video_id"] += [fd] * n
    sk["frame"] += np.tile(np.arange(t), m).tolist()
    sk["t_s"] += (np.tile(np.arange(t), m) / fps).tolist()
    sk["person_id"] += np.repeat(np.arange(m), t).tolist()
    sk["layout"] += [layout or _default_layout(v, c)] * n
    sk["dims"] += [c] * n
    sk["coord_space"] += ["image_px" if c == 2 else "world_m"] * n
    sk["keypoints"] += list(flat)
    sk["scores"] += list(score.reshape(n, v).astype(np.float32)) if score is not None else [None] * n
    sk["seq"] += [seq] * n


# ---------------------------------------------------------------------------------------------- pickle export


def _py(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def _arrays(
    out: Path, vid: str, rows: pd.DataFrame, attrs: Mapping[str, Any], total: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rebuild ``keypoint`` (M,T,V,C) and ``keypoint_score`` (M,T,V) from a video's skeleton rows."""
    dims = {int(d) for d in rows["dims"]}
    lens = {len(k) for k in rows["keypoints"]}
    if len(dims) != 1 or len(lens) != 1:
        raise schema.AnnotationError(
            f"{out}: video {vid!r}: skeleton rows mix dims {sorted(dims)} or joint counts; "
            "a pickle holds one (M, T, V, C) array per sample"
        )
    c = dims.pop()
    v = lens.pop() // c
    person = rows["person_id"].to_numpy(dtype=np.int64)
    frame = rows["frame"].to_numpy(dtype=np.int64)
    info = attrs.get("_keypoint") or {}
    m_n, t_n = int(person.max()) + 1, int(frame.max()) + 1
    shape = info.get("shape") or [m_n, max(t_n, total or 0), v, c]
    if person.min() < 0 or frame.min() < 0 or m_n > shape[0] or t_n > shape[1] or list(shape[2:]) != [v, c]:
        raise schema.AnnotationError(
            f"{out}: video {vid!r}: skeleton rows (persons {m_n}, frames {t_n}, V={v}, "
            f"C={c}) do not fit the recorded keypoint shape {shape}"
        )
    kp = np.zeros(shape, dtype=np.dtype(info.get("dtype", "<f4")))
    kp[person, frame] = np.stack(list(rows["keypoints"])).reshape(-1, v, c)
    has_scores = rows["scores"].map(lambda s: s is not None)
    sinfo = attrs.get("_keypoint_score")
    if not has_scores.any() and not sinfo:
        return kp, None
    score = np.zeros(shape[:3], dtype=np.dtype((sinfo or {}).get("dtype", "<f4")))
    if has_scores.any():
        sel = has_scores.to_numpy()
        score[person[sel], frame[sel]] = np.stack(list(rows["scores"][sel])).reshape(-1, v)
    return kp, score


def _ordered_ids(tables: Tables) -> list[str]:
    """Samples in file order: by ``videos.seq``, then ``segments.seq``, then first appearance."""
    rank: dict[str, tuple[int, float]] = {}
    for name in ("videos", "segments"):
        df = getattr(tables, name)
        for vid, seq in zip(df["video_id"], df["seq"], strict=True):
            if vid not in rank and not pd.isna(seq):
                rank[vid] = (0 if name == "videos" else 1, float(seq))
    first = {v: i for i, v in enumerate(tables.video_ids)}
    return sorted(first, key=lambda v: (*rank.get(v, (2, 0.0)), first[v]))


@register_exporter(PICKLE_FMT)
def export_skeleton_pickle(tables: Tables, out: Path, *, protocol: int | str = 4) -> list[Path]:
    """Write the samples back as an mmaction2 / pyskl pickle in the container the import came from."""
    meta = dict(tables.meta.get(PICKLE_FMT, {}))
    kind = meta.get("container", "full")
    videos = {str(r["video_id"]): r for r in tables.videos.to_dict("records")}
    segs = tables.segments[(tables.segments["task"] == "recognition") & tables.segments["label_id"].notna()]
    labels_of: dict[str, list[int]] = {}
    for vid, lab in zip(segs["video_id"], segs["label_id"], strict=True):
        labels_of.setdefault(str(vid), []).append(int(lab))
    skel_groups = {str(k): g for k, g in tables.skeletons.groupby("video_id", sort=False)}
    anns: list[dict[str, Any]] = []
    for vid in _ordered_ids(tables):
        vrow = videos.get(vid, {})
        attrs = schema.loads_attrs(vrow.get("attrs"))
        keys = list(
            attrs.pop(
                "_keys",
                [
                    "frame_dir",
                    "label",
                    "img_shape",
                    "original_shape",
                    "total_frames",
                    "keypoint",
                    "keypoint_score",
                ],
            )
        )
        types = attrs.pop("_types", {})
        values: dict[str, Any] = {"frame_dir": vid}
        labels = labels_of.get(vid, [])
        if len(labels) > 1:
            raise schema.AnnotationError(
                f"{out}: video {vid!r} has {len(labels)} labelled recognition segments; "
                "a skeleton pickle holds one label per sample"
            )
        if labels:
            values["label"] = labels[0]
        total = _py(vrow.get("n_frames"))
        g = skel_groups.get(vid)
        if g is not None:
            values["keypoint"], score = _arrays(out, vid, g, attrs, total)
            if score is not None:
                values["keypoint_score"] = score
        if total is None and "keypoint" in values:
            total = values["keypoint"].shape[1]
        if total is not None:
            values["total_frames"] = int(total)
        for k in ("label", "total_frames"):
            if k in types and k in values:
                values[k] = np.dtype(types[k]).type(values[k])
        info_keys = ("_keypoint", "_keypoint_score")
        for k, v in attrs.items():
            if k not in info_keys:
                values[k] = _decode(v)
        h, w = _py(vrow.get("height")), _py(vrow.get("width"))
        if h is not None and w is not None:
            old = values.get("img_shape")
            if not (isinstance(old, (tuple, list)) and len(old) == 2 and tuple(old) == (h, w)):
                values["img_shape"] = (int(h), int(w))
        keys += [k for k in values if k not in keys]
        anns.append({k: values[k] for k in keys if k in values})
    if kind == "single":
        if len(anns) != 1:
            raise schema.AnnotationError(
                f"{out}: the source held one annotation, these tables hold {len(anns)}"
            )
        data: Any = anns[0]
    elif kind == "list":
        data = anns
    else:
        data = {}
        for k in meta.get("top_keys") or ["split", "annotations"]:
            if k == "split":
                data[k] = _split_dict(tables, meta, [a["frame_dir"] for a in anns])
            elif k == "annotations":
                data[k] = anns
            else:
                data[k] = _decode(meta.get("other", {}).get(k))
    atomic_write_bytes(out, pickle.dumps(data, protocol=int(protocol)))
    return [out]


def _split_dict(tables: Tables, meta: Mapping[str, Any], order: list[str]) -> dict[str, Any]:
    """The ``split`` dict: explicit lists recorded at import, else rebuilt from ``videos.split``."""
    member: dict[str, list[str]] = {}
    for vid, split in zip(tables.videos["video_id"], tables.videos["split"], strict=True):
        if split is not None and split is not pd.NA:
            member[str(vid)] = str(split).split(",")
    names = list(meta.get("splits") or dict.fromkeys(s for vid in order for s in member.get(vid, [])))
    explicit = meta.get("split_lists", {})
    out: dict[str, Any] = {}
    for name in names:
        if name in explicit:
            out[name] = _decode(explicit[name])
        else:
            out[name] = [vid for vid in order if name in member.get(vid, [])]
    return out
