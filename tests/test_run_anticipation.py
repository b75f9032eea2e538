"""The anticipation stage of ``videoact run``: recognised actions of a real video -> ``forecasts``.

A real run over ``videos/demo_skeleton.mp4`` (BlazePose -> the shipped ST-GCN++ -> recognition windows), its
NW-UCLA classes mapped to EPIC-55 verbs and nouns by a csv, forecast by an action LM trained in the session on
real EPIC-55 sequences; then the Ego4D submission export reads the table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import videoact
from videoact.datasets.skeleton import NW_UCLA_CLASSES
from videoact.heads.anticipation.data import ActionVocab
from videoact.heads.anticipation.head import observed_actions, read_action_map

REPO = Path(__file__).resolve().parents[1]
SHIPPED_MAP = REPO / "configs/anticipation/nw_ucla_to_epic55.csv"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "videoact.cli", *args], capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def every_class_map(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped map with the classes it drops (walk around, sit down, stand up) mapped too, so that the short
    demo clip has observed actions whatever the model says about it."""
    m = pd.read_csv(SHIPPED_MAP, dtype=str, keep_default_na=False)
    m.loc[m["verb"] == "", ["verb", "noun"]] = ["walk", "Nothing"]
    path = tmp_path_factory.mktemp("map") / "map.csv"
    m.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def forecast_run(shared_data: Path, action_lm_checkpoint: Path, every_class_map: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    proc = _cli("run", str(shared_data / "videos" / "demo_skeleton.mp4"), "-o", str(out), "pose.max_frames=96",
                "anticipation.enabled=true", f"anticipation.checkpoint={action_lm_checkpoint}",
                f"anticipation.action_map={every_class_map}", "anticipation.k=5", "anticipation.z=20")
    assert proc.returncode == 0, proc.stderr
    return out


def test_run_writes_k_by_z_forecasts_after_the_last_recognised_action(forecast_run: Path) -> None:
    t = videoact.load(forecast_run)
    assert json.loads((forecast_run / "manifest.json").read_text())["stages"] == [
        "decode", "pose", "recognition", "anticipation"]
    fc = t.forecasts
    assert len(fc) == 5 * 20 and fc["anchor_idx"].nunique() == 1
    assert sorted(fc["candidate"].unique()) == [1, 2, 3, 4, 5] and sorted(fc["step"].unique()) == list(range(1, 21))
    vocab = ActionVocab.from_labels(t.labels, "epic55")
    assert fc["verb_id"].between(0, vocab.n_verbs - 1).all() and fc["noun_id"].between(0, vocab.n_nouns - 1).all()
    assert (fc["verb"] == [vocab.verbs[i] for i in fc["verb_id"]]).all()
    assert set(fc["backend"]) == {"action_lm"} and fc["score"].between(0, 1).all()
    # the forecast is made when the last observed action ends: the end of a recognition window
    rec = t.segments[t.segments["task"] == "recognition"]
    assert fc["anchor_t_s"].iloc[0] in set(rec["t_end_s"])
    # the run's labels hold the recognition classes and the forecast vocabulary
    assert {"nw_ucla_xview", "epic55_verb", "epic55_noun"} <= set(t.labels["label_space"])


def test_forecasts_export_as_an_ego4d_submission(forecast_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "outputs.json"
    proc = _cli("export", str(forecast_run), "--format", "ego4d-lta-submission", "-o", str(out),
                "--option", "k=5", "--option", "z=20")
    assert proc.returncode == 0, proc.stderr
    sub = json.loads(out.read_text())
    (key, entry), = sub.items()
    assert key.startswith("demo_skeleton_")
    assert len(entry["verb"]) == len(entry["noun"]) == 5 and all(len(c) == 20 for c in entry["verb"])


def _windows(labels: list[tuple[float, str, float]]) -> pd.DataFrame:
    """Recognition rows: (start, top-1 label, score) windows of 2 s, each with a runner-up at a lower score."""
    rows = []
    for t0, label, score in labels:
        for name, s in ((label, score), ("carry", score / 4)):
            rows.append({"video_id": "v", "task": "recognition", "t_start_s": t0, "t_end_s": t0 + 2.0, "fps": 30.0,
                         "frame_start": round(t0 * 30), "frame_end": round((t0 + 2) * 30), "label": name,
                         "score": s, "source": "test"})
    return videoact.Tables(segments=pd.DataFrame(rows)).validated().segments


def test_observed_actions_merge_windows_map_labels_and_drop_classes() -> None:
    vocab = ActionVocab.from_names("toy", ["take", "throw", "walk"], ["box", "rubbish", "Nothing"])
    amap = {"pick up with one hand": ("take", "box"), "drop trash": ("throw", "rubbish"), "walk around": None,
            "carry": ("take", "box")}
    seg = _windows([(0, "pick up with one hand", 0.9), (1, "pick up with one hand", 0.8), (2, "walk around", 0.9),
                    (3, "drop trash", 0.7), (4, "drop trash", 0.2), (5, "pick up with one hand", 0.9)])
    seen = observed_actions(seg, vocab, action_map=amap)
    # two windows of one action are one action; the dropped class leaves a gap; runner-ups never count
    assert list(zip(seen["verb"], seen["noun"], strict=True)) == [("take", "box"), ("throw", "rubbish"),
                                                                    ("take", "box")]
    assert list(seen["t_start_s"]) == [0.0, 3.0, 5.0] and list(seen["t_end_s"]) == [3.0, 6.0, 7.0]
    # a low-confidence window is not an observation: the throw then ends with its one confident window
    assert list(observed_actions(seg, vocab, action_map=amap, min_score=0.5)["t_end_s"]) == [3.0, 5.0, 7.0]
    # labels that read "verb noun" in the vocabulary need no map
    plain = _windows([(0, "take box", 0.9), (2, "walk Nothing", 0.9)])
    assert list(observed_actions(plain, vocab)["verb_id"]) == [0, 2]
    # rows that carry verb/noun ids already (e.g. ground truth) are read as they are
    direct = plain.assign(verb_id=[1, 1, 0, 0], noun_id=[1, 1, 2, 2])
    assert len(observed_actions(direct, vocab)) == 4


def test_unmapped_labels_and_bad_maps_name_the_fix(tmp_path: Path) -> None:
    vocab = ActionVocab.from_names("toy", ["take"], ["box"])
    with pytest.raises(ValueError, match=r"anticipation\.action_map"):
        observed_actions(_windows([(0, "sit down", 0.9)]), vocab)
    with pytest.raises(ValueError, match=r"verb 'tak' is not in the vocabulary \(close: take\)"):
        observed_actions(_windows([(0, "sit down", 0.9)]), vocab, action_map={"sit down": ("tak", "box")})
    bad = tmp_path / "map.csv"
    bad.write_text("label,verb,noun\nsit down,take,\n")
    with pytest.raises(ValueError, match=r"map\.csv:2: give both verb and noun"):
        read_action_map(bad)
    shipped = read_action_map(SHIPPED_MAP)
    assert set(shipped) == set(NW_UCLA_CLASSES)


def test_anticipation_without_recognition_fails_the_video_with_the_fix(shared_data: Path, tmp_path: Path,
                                                                       action_lm_checkpoint: Path) -> None:
    proc = _cli("run", str(shared_data / "videos" / "demo_skeleton.mp4"), "-o", str(tmp_path / "r"),
                "pose.max_frames=8", "recognition.enabled=false", "anticipation.enabled=true",
                f"anticipation.checkpoint={action_lm_checkpoint}")
    assert proc.returncode != 0
    assert "anticipation" in proc.stderr and "enable recognition" in proc.stderr
