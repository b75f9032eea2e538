from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from videoact.config import (
    ConfigError,
    RunConfig,
    fingerprint,
    load_config,
    parse_override,
    to_dict,
    to_yaml,
)


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    names: list[str] = field(default_factory=list)
    mode: Literal["a", "b"] = "a"
    path: Path | None = None


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    steps: int = 3
    tag: str = "x"


def test_defaults_file_then_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("inner:\n  rate: 2\n  names: [p, q]\nsteps: 5\n")
    cfg = load_config(Outer, f, ["inner.mode=b", "steps=7", "tag=007", "inner.path=/tmp/x"])
    assert cfg.inner.rate == 2.0 and isinstance(cfg.inner.rate, float)
    assert cfg.inner.names == ["p", "q"]
    assert cfg.inner.mode == "b"
    assert cfg.steps == 7
    assert cfg.tag == "007"  # a string field keeps the text as typed
    assert cfg.inner.path == Path("/tmp/x")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["inner.rat=1"], "unknown config key 'inner.rat' (did you mean 'inner.rate'?)"),
        (["nope=1"], "unknown config key 'nope'"),
        (["steps=1.5"], "steps: expected an integer"),
        (["steps=true"], "steps: expected an integer"),
        (["inner.mode=c"], "inner.mode: 'c' is not one of 'a', 'b'"),
        (["inner.names=3"], "inner.names: expected a list"),
        (["inner=3"], "inner: expected a mapping"),
        (["steps"], "must look like key.sub=value"),
    ],
)
def test_bad_overrides_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as exc:
        load_config(Outer, None, overrides)
    assert message in str(exc.value)


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("inner:\n  rte: 1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(Outer, f)
    assert str(f) in str(exc.value) and "'inner.rte'" in str(exc.value) and "'inner.rate'" in str(exc.value)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("inner: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, f)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Outer, tmp_path / "missing.yaml")
    f.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(Outer, f)


def test_parse_override_types() -> None:
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=x=y") == (["a"], "x=y")


def test_fingerprint_changes_with_any_value_and_yaml_round_trips(tmp_path: Path) -> None:
    a = load_config(RunConfig)
    b = load_config(RunConfig, None, ["decode.backend=pyav"])
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a) == fingerprint(load_config(RunConfig))
    f = tmp_path / "saved.yaml"
    f.write_text(to_yaml(b))  # the commented template is itself a valid config
    assert to_dict(load_config(RunConfig, f)) == to_dict(b)


def test_shipped_configs_load() -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.glob("*.yaml"))
    assert files, "configs/ should ship at least the default run config"
    for f in files:
        load_config(RunConfig, f)


@pytest.mark.parametrize("override, message", [
    ("pose.every=0", "pose.every: 0 is out of range (allowed: >= 1)"),
    ("pose.max_frames=-5", "pose.max_frames: -5 is out of range (allowed: >= 1)"),
    ("runner.timeout_s=-1", "runner.timeout_s: -1.0 is out of range (allowed: > 0)"),
    ("runner.timeout_s=.inf", "runner.timeout_s: inf is not a finite number"),
    ("recognition.window_s=.nan", "recognition.window_s: nan is not a finite number"),
    ("recognition.top_k=0", "recognition.top_k: 0 is out of range (allowed: >= 1)"),
    ("recognition.min_pose_fraction=5", "recognition.min_pose_fraction: 5.0 is out of range (allowed: >= 0 and <= 1)"),
    ("anticipation.retries=-1", "anticipation.retries: -1 is out of range (allowed: >= 0)"),
])
def test_out_of_range_values_are_rc_2_naming_the_key_before_any_video(
        override: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from videoact.cli import main

    rc = main(["run", "sample:carphone", "-o", str(tmp_path / "run"), override])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_a_binary_config_file_is_rc_2_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from videoact.cli import main

    (tmp_path / "random.bin").write_bytes(bytes(range(256)) * 4)
    rc = main(["run", "sample:carphone", "-o", str(tmp_path / "run"), "-c", str(tmp_path / "random.bin")])
    err = capsys.readouterr().err
    assert rc == 2 and "random.bin: not a text (UTF-8) YAML file" in err and "Traceback" not in err, err
