"""Files that are not our checkpoints, at every entry point that reads one: one line naming the file and what it
is (rc 2), never a torch traceback, never the advice to pass ``weights_only=False``, and no code from them runs."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from videoact.annotations.store import CheckpointError, load_torch_file
from videoact.cli import main


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ckpt")
    out = {"marker": d / "PAYLOAD_RAN"}
    out["code"] = d / "code.pt"
    out["code"].write_bytes(pickle.dumps(_Payload(out["marker"])))
    out["module"] = d / "module.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, out["module"])  # a whole nn.Module pickled: a foreign .pt
    whole = out["module"].read_bytes()
    out["truncated"] = d / "truncated.pt"
    out["truncated"].write_bytes(whole[: len(whole) // 2])
    out["text"] = d / "text.pt"
    out["text"].write_text("not a checkpoint\n")
    out["empty"] = d / "empty.pt"
    out["empty"].write_bytes(b"")
    out["foreign"] = d / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, out["foreign"])  # plain data, but not a videoact format
    return out


WHAT = {"code": "a pickle that needs Python objects", "module": "needs Python objects (torch.nn.modules.linear.Linear)",
        "truncated": "truncated or damaged", "text": "not a torch file", "empty": "an empty file"}


@pytest.mark.parametrize("kind", sorted(WHAT))
def test_load_torch_file_says_what_a_file_is(files: dict[str, Path], kind: str) -> None:
    with pytest.raises(CheckpointError) as info:
        load_torch_file(files[kind], what="test checkpoint")
    text = str(info.value)
    assert text.startswith(f"{files[kind]}: not a test checkpoint: ") and WHAT[kind] in text
    assert "weights_only" not in text and "\n" not in text
    assert not files["marker"].exists()


ENTRY_POINTS = {
    "recognition": ["recognition.model={}"],
    "detection": ["detection.enabled=true", "detection.model={}"],
    "temporal": ["temporal.enabled=true", "temporal.model={}"],
    "anticipation": ["anticipation.enabled=true", "anticipation.checkpoint={}"],
}


@pytest.mark.parametrize("kind", ["code", "module", "truncated", "foreign"])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_run_entry_point_refuses_cleanly_before_any_video(files: dict[str, Path], entry: str, kind: str,
                                                                tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.format(files[kind]) for a in ENTRY_POINTS[entry]]
    rc = main(["run", "-q", "sample:carphone", "-o", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert str(files[kind]) in err and "Traceback" not in err and "weights_only" not in err, err
    if kind != "foreign":
        assert WHAT[kind] in err, err
    else:
        assert "not a videoact" in err, err
    assert not files["marker"].exists()
    assert not (tmp_path / "run" / "videos").exists()  # no video was processed


def test_a_damaged_last_pt_is_rc_2_naming_it(files: dict[str, Path], tmp_path: Path) -> None:
    from videoact.config import ConfigError
    from videoact.train.common import load_last

    for kind in ("code", "truncated"):
        with pytest.raises(ConfigError, match=rf"{files[kind]}: not a training checkpoint .* delete it or set resume"):
            load_last(files[kind])
    assert not files["marker"].exists()


def test_pretrained_weights_refused_without_weights_only_advice(files: dict[str, Path]) -> None:
    from videoact.features.vit.checkpoints import read_checkpoint

    with pytest.raises(CheckpointError) as info:
        read_checkpoint(files["module"])
    assert "torch.save(model.state_dict()" in str(info.value) and "weights_only" not in str(info.value)
