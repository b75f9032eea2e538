"""Long-term anticipation data: vocabularies, EPIC-KITCHENS-55 csv readers, and Ego4D-style samples.

Everything goes through the shared tables: a reader returns ``Tables`` (``segments`` with ``verb_id`` /
``noun_id``, ``videos``, ``labels``), and :func:`make_samples` turns the segments of any dataset into Ego4D LTA
samples (``ptv_dataset_helper.clip_forecasting_dataset``): per video, actions in order, and for every
``i in range(len - N - Z + 1)`` the observed actions ``[i, i+N)`` and the next ``Z`` as targets; the sample key is
``f"{video_id}_{anchor_idx}"`` with ``anchor_idx`` the index of the last observed action.

Ego4D annotation files are read by the ``ego4d-lta`` importer (``videoact.annotations.formats.ego4d_lta``);
:func:`read_ego4d_lta` only adds the vocabulary. EPIC-55 has labels for its training set only, so the local
protocol holds participants out (:func:`participant_split`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from videoact.annotations import schema
from videoact.annotations.formats._common import FormatError
from videoact.annotations.tables import Tables
from videoact.annotations.vocab import ActionVocab

EPIC55_DATASET = "epic_kitchens_55"
EPIC55_SPACE = "epic55"
EPIC55_FRAME_FPS = 60.0  # EPIC-55 start/stop frames index frames extracted at 60 fps (its README)


# ---------------------------------------------------------------------------------------------- EPIC-55


def _hms(text: str, path: Path, line: int) -> float:
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", str(text).strip())
    if not m:
        raise FormatError(path, line, f"timestamp {text!r} is not HH:MM:SS.sss")
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def _read_csv(path: Path, required: Iterable[str]) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (EPIC-55 annotations: github.com/epic-kitchens/"
                                "epic-kitchens-55-annotations)")
    df = pd.read_csv(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise FormatError(path, 1, f"missing column(s) {missing}; have {list(df.columns)}")
    return df


def epic55_vocab(root: str | Path) -> ActionVocab:
    """125 verb and 352 noun classes from ``EPIC_{verb,noun}_classes.csv`` (``class_key``)."""
    root = Path(root)
    names = []
    for head in ("verb", "noun"):
        path = root / f"EPIC_{head}_classes.csv"
        df = _read_csv(path, [f"{head}_id", "class_key"])
        ids = df[f"{head}_id"].astype(int).tolist()
        if ids != list(range(len(ids))):
            raise FormatError(path, 2, f"{head}_id must be 0..n-1 in order")
        names.append(df["class_key"].astype(str).tolist())
    return ActionVocab.from_names(EPIC55_SPACE, names[0], names[1])


def read_epic55(root: str | Path, *, source: str = f"ground_truth:{EPIC55_DATASET}") -> Tables:
    """EPIC-55 training labels as shared tables: one ``segments`` row per action, one ``videos`` row per video.

    Times come from the ``HH:MM:SS.ss`` timestamps; frames are the file's 60 fps frame numbers
    (``frame_end = stop_frame + 1``, exclusive); rows are in time order and ``seq`` is the action index within
    the video (Ego4D's ``action_idx``); ``uid``, participant and narration go into ``attrs``.
    The video's own fps, size and duration come from ``EPIC_video_info.csv``.
    """
    root = Path(root)
    vocab = epic55_vocab(root)
    path = root / "EPIC_train_action_labels.csv"
    df = _read_csv(path, ["uid", "participant_id", "video_id", "narration", "start_timestamp", "stop_timestamp",
                          "start_frame", "stop_frame", "verb", "verb_class", "noun", "noun_class"])
    for head, n in (("verb", vocab.n_verbs), ("noun", vocab.n_nouns)):
        bad = ~df[f"{head}_class"].between(0, n - 1)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise FormatError(path, i + 2, f"{head}_class {df[f'{head}_class'].iloc[i]} outside 0..{n - 1}")
    # Action index = position in time order within the video ("ordered by start_frame per video_id"), so
    # ``seq`` plays Ego4D's action_idx and ``videoact eval lta`` finds the targets of an anchor.
    df = df.sort_values(["video_id", "start_frame", "stop_frame", "uid"], kind="stable").reset_index(drop=True)
    t0 = [_hms(t, path, i + 2) for i, t in enumerate(df["start_timestamp"])]
    t1 = [_hms(t, path, i + 2) for i, t in enumerate(df["stop_timestamp"])]
    attrs = [schema.dumps_attrs({"uid": int(u), "participant_id": p, "narration": n, "verb_name": v, "noun_name": o})
             for u, p, n, v, o in zip(df["uid"], df["participant_id"], df["narration"], df["verb"], df["noun"],
                                      strict=True)]
    segments = pd.DataFrame({
        "video_id": df["video_id"], "task": "recognition", "t_start_s": t0, "t_end_s": np.maximum(t0, t1),
        "fps": EPIC55_FRAME_FPS, "frame_start": df["start_frame"], "frame_end": df["stop_frame"] + 1,
        "label": [f"{vocab.verbs[v]} {vocab.nouns[n]}" for v, n in zip(df["verb_class"], df["noun_class"],
                                                                         strict=True)],
        "label_space": EPIC55_SPACE, "score": 1.0,
        "verb": [vocab.verbs[v] for v in df["verb_class"]], "noun": [vocab.nouns[n] for n in df["noun_class"]],
        "verb_id": df["verb_class"], "noun_id": df["noun_class"], "seq": df.groupby("video_id").cumcount(),
        "source": source,
        "attrs": attrs,
    })
    participants = df.groupby("video_id", sort=False)["participant_id"].first()
    info = _read_csv(root / "EPIC_video_info.csv", ["video", "resolution", "duration", "fps"]).set_index("video")
    desc_path = root / "EPIC_descriptions.csv"
    desc = pd.read_csv(desc_path).set_index("video_id")["description"] if desc_path.is_file() else pd.Series()
    rows = []
    for i, (vid, pid) in enumerate(participants.items()):
        row = {"video_id": vid, "dataset": EPIC55_DATASET, "split": "train", "seq": i, "source": source}
        if vid in info.index:
            w, h = (int(x) for x in str(info.loc[vid, "resolution"]).split("x"))
            row.update(fps=float(info.loc[vid, "fps"]), duration_s=float(info.loc[vid, "duration"]), width=w,
                       height=h)
        row["attrs"] = schema.dumps_attrs({"participant_id": pid, "description": desc.get(vid)})
        rows.append(row)
    return Tables(segments=segments, videos=pd.DataFrame(rows), labels=vocab.labels()).validated(where=str(path))


def read_ego4d_lta(annotations: str | Path, taxonomy: str | Path, *, version: str = "v1") -> Tables:
    """An Ego4D LTA annotation json through the ``ego4d-lta`` importer, with its taxonomy as label spaces."""
    from videoact.annotations.formats import import_annotations

    return import_annotations("ego4d-lta", annotations, taxonomy=Path(taxonomy), version=version)


def ego4d_vocab(taxonomy: str | Path, *, version: str = "v1") -> ActionVocab:
    from videoact.annotations.formats.ego4d_lta import load_taxonomy

    verbs, nouns = load_taxonomy(taxonomy)
    return ActionVocab.from_names(f"ego4d_lta_{version}", verbs, nouns)


# ---------------------------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class ActionSequence:
    """The labelled actions of one video, in order. Arrays are (L,)."""

    video_id: str
    verb: np.ndarray
    noun: np.ndarray
    index: np.ndarray  # anchor index of each action: Ego4D action_idx, or the position in time order
    t_end_s: np.ndarray
    group: str  # participant (EPIC) or video uid (Ego4D): the unit a held-out split keeps apart
    goal: str | None = None  # video description (EPIC_descriptions.csv): AntGPT's top-down goal


def action_sequences(tables: Tables, *, order: Literal["time", "seq"] = "seq") -> list[ActionSequence]:
    """Per-video action sequences from ``segments`` rows that have both ids (unlabelled rows are dropped).

    ``order="seq"`` sorts by and keeps the table's action index (Ego4D ``action_idx``; EPIC-55 from
    :func:`read_epic55`); ``order="time"`` sorts by start time and indexes actions by position (a run's
    recognition segments).
    """
    seg = tables.segments
    seg = seg[seg["verb_id"].notna() & seg["noun_id"].notna()]
    keys = ["t_start_s", "seq"] if order == "time" else ["seq", "t_start_s"]
    seg = seg.assign(_pos=np.arange(len(seg))).sort_values(["video_id", *keys, "_pos"], kind="stable")
    videos = tables.videos.set_index("video_id") if len(tables.videos) else None
    out = []
    for vid, g in seg.groupby("video_id", sort=False):
        attrs = schema.loads_attrs(videos.loc[vid, "attrs"]) if videos is not None and vid in videos.index else {}
        first = schema.loads_attrs(g["attrs"].iloc[0])
        group = attrs.get("participant_id") or first.get("participant_id") or attrs.get("video_uid") or vid
        index = np.arange(len(g)) if order == "time" else g["seq"].to_numpy(dtype=np.int64)
        out.append(ActionSequence(
            video_id=str(vid), verb=g["verb_id"].to_numpy(dtype=np.int64), noun=g["noun_id"].to_numpy(dtype=np.int64),
            index=index, t_end_s=g["t_end_s"].to_numpy(dtype=float), group=str(group),
            goal=attrs.get("description")))
    return out


@dataclass
class LTASamples:
    """Ego4D LTA samples as parallel arrays: S samples, N observed, Z future actions."""

    keys: list[str]
    video_ids: list[str]
    groups: list[str]
    goals: list[str | None]
    anchor_idx: np.ndarray  # (S,)
    anchor_t_s: np.ndarray  # (S,) end time of the last observed action
    obs_verb: np.ndarray  # (S, N)
    obs_noun: np.ndarray  # (S, N)
    fut_verb: np.ndarray  # (S, Z)
    fut_noun: np.ndarray  # (S, Z)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, mask: np.ndarray | slice) -> LTASamples:
        idx = np.arange(len(self))[mask]
        return LTASamples(
            keys=[self.keys[i] for i in idx], video_ids=[self.video_ids[i] for i in idx],
            groups=[self.groups[i] for i in idx], goals=[self.goals[i] for i in idx],
            anchor_idx=self.anchor_idx[idx], anchor_t_s=self.anchor_t_s[idx], obs_verb=self.obs_verb[idx],
            obs_noun=self.obs_noun[idx], fut_verb=self.fut_verb[idx], fut_noun=self.fut_noun[idx])


def make_samples(seqs: Iterable[ActionSequence], *, n_observed: int = 8, z: int = 20, stride: int = 1) -> LTASamples:
    """Sliding windows as in Ego4D: inputs ``[i, i+N)``, targets ``[i+N, i+N+Z)``, every ``stride`` actions."""
    cols: dict[str, list] = {k: [] for k in ("keys", "video_ids", "groups", "goals", "anchor_idx", "anchor_t_s",
                                             "obs_verb", "obs_noun", "fut_verb", "fut_noun")}
    for s in seqs:
        for i in range(0, len(s.verb) - n_observed - z + 1, stride):
            a = i + n_observed - 1
            cols["keys"].append(f"{s.video_id}_{int(s.index[a])}")
            cols["video_ids"].append(s.video_id)
            cols["groups"].append(s.group)
            cols["goals"].append(s.goal)
            cols["anchor_idx"].append(int(s.index[a]))
            cols["anchor_t_s"].append(float(s.t_end_s[a]))
            cols["obs_verb"].append(s.verb[i:a + 1])
            cols["obs_noun"].append(s.noun[i:a + 1])
            cols["fut_verb"].append(s.verb[a + 1:a + 1 + z])
            cols["fut_noun"].append(s.noun[a + 1:a + 1 + z])

    def arr(name: str, width: int) -> np.ndarray:
        return np.asarray(cols[name], dtype=np.int64).reshape(-1, width)

    return LTASamples(
        keys=cols["keys"], video_ids=cols["video_ids"], groups=cols["groups"], goals=cols["goals"],
        anchor_idx=np.asarray(cols["anchor_idx"], dtype=np.int64), anchor_t_s=np.asarray(cols["anchor_t_s"]),
        obs_verb=arr("obs_verb", n_observed), obs_noun=arr("obs_noun", n_observed),
        fut_verb=arr("fut_verb", z), fut_noun=arr("fut_noun", z))


def participant_split(groups: Iterable[str], *, val_fraction: float = 0.2,
                      seed: int = 0) -> tuple[list[str], list[str]]:
    """Hold out whole participants: ``round(val_fraction * n)`` of the sorted groups, drawn with ``seed``.

    For EPIC-55 (28 labelled participants, ``seed=0``, 0.2) the held-out participants are
    P02, P08, P10, P15, P19, P23 (pinned by a test, listed in docs/benchmarks.md).
    """
    uniq = sorted(set(groups))
    n_val = max(1, round(val_fraction * len(uniq)))
    rng = np.random.default_rng(seed)
    val = sorted(uniq[i] for i in rng.choice(len(uniq), size=n_val, replace=False))
    return [g for g in uniq if g not in val], val


def split_samples(samples: LTASamples, val_groups: Iterable[str]) -> tuple[LTASamples, LTASamples]:
    val = np.isin(np.asarray(samples.groups), list(val_groups))
    return samples[~val], samples[val]
