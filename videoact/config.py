"""Typed configuration: one frozen dataclass per stage, one YAML file, dotted overrides from the CLI.

No inheritance chains and no ``_base_``: a config file is the whole story, and what a run used is
saved as ``config.yaml`` in its directory. Unknown keys and wrong types are errors naming the key::

    cfg = load_config(RunConfig, "configs/default.yaml", ["decode.backend=pyav"])
    cfg.decode.backend  # 'pyav'
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key and the fix."""


def doc(text: str, *, names: str | None = None, fingerprint: bool | Literal["non_default"] = True,
        ge: float | None = None, gt: float | None = None, le: float | None = None, **kwargs: Any) -> Any:
    """A dataclass field with a one-line doc, shown by ``videoact config show``.

    ``names``: the value is a name from the registry of that kind (``"pose backend"``); the doc then says so, and
    ``videoact config show`` appends the names registered (this module imports no registry: the CLI passes them).
    ``fingerprint``: False for a key that says how to compute, not what (a batch size, a device): ``fingerprint``
    leaves it out; ``"non_default"``: counted only when set to another value than its default (a key added later
    that keeps old fingerprints, such as ``runner.precision``).
    ``ge`` / ``gt`` / ``le``: the range a number must lie in (checked when the config is built: a value outside is
    a ``ConfigError`` naming the key and the range, before any video).
    """
    meta: dict[str, Any] = {"doc": text}
    if names is not None:
        meta["names"] = names
    if (ge, gt, le) != (None, None, None):
        meta["range"] = (ge, gt, le)
    if fingerprint is not True:
        meta["fingerprint"] = fingerprint
    return field(metadata=meta, **kwargs)


# --------------------------------------------------------------------------------------------------
# Stage configs. Add a field only when the code reads it: every key here does something.


@dataclass(frozen=True)
class DecodeConfig:
    backend: Literal["auto", "decord", "pyav"] = doc(
        "video reader: auto tries decord and falls back to PyAV when decord cannot open the file",
        default="auto",
    )
    sha256: bool = doc("hash every video file into the videos table (slow on large archives)", default=False)
    max_bad_frames: int = doc("frames that do not decode (a damaged packet) replaced by the previous frame and "
                              "counted in videos.attrs bad_frames; one more fails the video", ge=0, default=10,
                              fingerprint="non_default")


@dataclass(frozen=True)
class PoseConfig:
    enabled: bool = doc("extract poses from RGB and write the skeletons table", default=True)
    backend: str = doc("pose backend; mediapipe (the default) runs BlazePose offline", names="pose backend",
                       default="mediapipe")
    every: int = doc("run the pose model on every n-th frame (1: every frame)", ge=1, default=1)
    max_frames: int | None = doc("only the first n frames of each video (null: all)", ge=1, default=None)
    options: dict[str, Any] = field(default_factory=dict, metadata={
        "doc": "keyword arguments of the backend (rtmpose: det_model, pose_model)"})


@dataclass(frozen=True)
class RecognitionConfig:
    enabled: bool = doc("classify actions from the poses and write recognition segments", default=True)
    model: str = doc("a model-zoo name (`videoact models list`: downloaded once into $VIDEOACT_HOME), builtin:NAME "
                     "(a skeleton model shipped with videoact), or a model.pt written by `videoact train`: a "
                     "skeleton model reads the pose stage, an RGB model reads the frames",
                     default="builtin:nw_ucla_stgcnpp")
    window_s: float = doc("seconds of poses per prediction (sliding window; an RGB model's window is its clip)",
                          gt=0, default=2.0)
    stride_s: float = doc("seconds between window starts", gt=0, default=1.0)
    top_k: int = doc("classes written per window (with their probabilities)", ge=1, default=5)
    min_pose_fraction: float = doc("skip windows where fewer than this fraction of frames have a pose",
                                   ge=0, le=1, default=0.5)
    batch_size: int = doc("windows per forward pass (RGB clips and skeleton windows; rows do not depend on it)",
                          ge=1, default=8, fingerprint=False)


@dataclass(frozen=True)
class TemporalConfig:
    enabled: bool = doc("temporal action segmentation or detection over the whole video from its poses: writes "
                        "segmentation or localization segments (needs pose)", default=False)
    model: str | None = doc("model.pt written by `videoact train configs/temporal/...` (needed when enabled)",
                            default=None)


@dataclass(frozen=True)
class DetectionConfig:
    enabled: bool = doc("AVA action detection: classify person boxes at keyframes, write detection boxes",
                        default=False)
    model: str | None = doc("model.pt written by `videoact train configs/detection/...` (needed when enabled)",
                            default=None)
    boxes: str = doc("person boxes: pose (the pose stage's keypoint boxes) or a file (mmaction2 proposals .pkl, "
                     "AVA .csv; timestamps in seconds of the video)", default="pose")
    hz: float = doc("keyframes per second, from t = 0 (AVA annotates 1 Hz)", gt=0, default=1.0)
    clip_len: int | None = doc("frames per clip around a keyframe (null: as the model was trained)", ge=1, default=None)
    frame_step: int | None = doc("frames between clip frames (null: as the model was trained)", ge=1, default=None)
    score_threshold: float = doc("lowest action score written", ge=0, le=1, default=0.002)
    top_k: int = doc("most actions written per person box", ge=1, default=5)
    box_gap_s: float = doc("a keyframe takes the boxes of the nearest time with boxes within this many seconds",
                           ge=0, default=0.25)
    min_box_score: float = doc("person boxes scored lower are not classified", ge=0, le=1, default=0.0)
    batch_size: int = doc("keyframe clips per forward pass (rows do not depend on it)", ge=1, default=4,
                          fingerprint=False)


@dataclass(frozen=True)
class PromptConfig:
    mode: Literal["bottom_up", "top_down"] = doc(
        "bottom_up: observed actions -> future actions; top_down (AntGPT): infer the goal first, then plan",
        default="bottom_up")
    n_examples: int = doc("in-context examples per prompt (0: zero-shot); needs examples_from", ge=0, default=4)
    examples_from: str | None = doc("text backends: training histories for in-context examples, an EPIC-55 folder "
                                    "or an Ego4D LTA json (null: zero-shot prompts)", default=None)
    max_examples: int = doc("histories indexed from examples_from (evenly spaced)", ge=1, default=2000)
    mmr_lambda: float = doc("Maximal Marginal Relevance trade-off: 1 = most similar, 0 = most diverse",
                            ge=0, le=1, default=0.7)
    mmr_pool: int = doc("nearest neighbours the MMR selection picks from", ge=1, default=32)


@dataclass(frozen=True)
class AnticipationConfig:
    """The anticipation head: recognised actions of a video -> ``forecasts`` rows (a stage of ``videoact run``,
    and the config of ``heads.anticipation.forecast_video``)."""

    enabled: bool = doc("forecast future actions from the recognition stage's actions and write the forecasts "
                        "table (needs recognition)", default=False)
    backend: Literal["action_lm", "transformers", "http", "llamacpp"] = doc(
        "who generates the candidates (the n-gram / most-frequent baselines are fitted in scripts/bench_lta.py)",
        default="action_lm")
    checkpoint: Path | None = field(default=None, metadata={"doc": "action_lm: checkpoint from train_action_lm"})
    model: str = doc("transformers: local path or id; llamacpp: .gguf path; http: the server's model name",
                     default="")
    url: str = doc("http: base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1", default="")
    http_constraint: Literal["json_schema", "json_object", "grammar", "regex", "none"] = doc(
        "http: how the vocabulary constraint is sent (json_object: llama-cpp-python; grammar: llama.cpp GBNF; "
        "regex: vLLM)", default="json_schema")
    timeout: float = doc("http: wall-clock seconds of one request attempt (connection, headers and body)",
                         gt=0, default=60.0, fingerprint=False)
    retries: int = doc("http: more tries after a network error, timeout, 5xx / 429 or malformed answer",
                       ge=0, default=3, fingerprint=False)
    video_timeout: float = doc("http: wall-clock seconds of one video's forecasts, every request and retry included",
                               gt=0, default=600.0, fingerprint=False)
    vocab: str = doc("label space prefix of the verb/noun ids in segments (epic55, ego4d_lta_v1, ...)",
                     default="epic55")
    n_observed: int = doc("observed actions per forecast (fewer are padded for the action LM)", ge=1, default=8)
    z: int = doc("future actions per candidate", ge=1, default=20)
    k: int = doc("candidates per forecast", ge=1, default=5)
    anchors: Literal["last", "all"] = doc("forecast after the last recognised action, or after every one",
                                          default="last")
    temperature: float = doc("sampling temperature of candidates 2..K (candidate 1 is greedy; "
                             "0.5 is best on EPIC-55 held-out, see docs/benchmarks.md)", ge=0, default=0.5)
    seed: int = doc("sampling seed", default=0)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    vocab_file: str | None = doc("the verb/noun vocabulary: an EPIC-55 folder (EPIC_verb_classes.csv, "
                                 "EPIC_noun_classes.csv) or an Ego4D fho_lta_taxonomy.json (null: the action LM "
                                 "checkpoint's own)", default=None)
    action_map: str | None = doc("csv with columns label,verb,noun: the verb/noun of each recognition class (an "
                                 "empty verb drops the class); null: recognition labels must read 'verb noun' in "
                                 "the vocabulary", default=None)
    min_score: float = doc("recognition windows whose top-1 score is lower are not observed actions", ge=0, le=1,
                           default=0.0)


@dataclass(frozen=True)
class RunnerConfig:
    """How videos are run, not what is computed: left out of the config fingerprint."""

    skip_done: bool = doc("skip videos whose outputs exist for the same config fingerprint", default=True)
    timeout_s: float | None = doc("seconds one video may take; a slower one fails with stage 'timeout' "
                                  "(null: no limit)", gt=0, default=None)
    cache_dir: str | None = doc("folder of cached per-video feature sequences (temporal stage; null: <run>/cache)",
                                default=None)
    hash_identity: bool = doc("know a video file by its sha256 instead of its size and modification time "
                              "(reads every file on every run)", default=False)
    device: str = doc("where the networks run: auto (cuda when available, else cpu), cpu, cuda or cuda:N",
                      default="auto")
    precision: Literal["fp32", "bf16", "fp16"] = doc(
        "autocast precision of the networks: fp32, bf16 or fp16 (CUDA only); bf16/fp16 change scores slightly, so "
        "they are part of the config fingerprint (fp32 and the device are not)", default="fp32",
        fingerprint="non_default")


@dataclass(frozen=True)
class RunConfig:
    """Everything ``videoact run`` reads, stage by stage in pipeline order."""

    decode: DecodeConfig = field(default_factory=DecodeConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    anticipation: AnticipationConfig = field(default_factory=AnticipationConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig, metadata={"fingerprint": False})


# --------------------------------------------------------------------------------------------------
# Loading


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against type ``tp`` and convert it (nested dataclasses, lists, optionals)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(repr(a) for a in args)}")
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:  # ``X | None``: X's own message (a range, a finite number) says more
            raise errors[0]
        raise ConfigError(f"{key}: {value!r} does not match {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return _build(tp, value, prefix=key + ".")
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        vt = args[1] if args else Any
        return {str(k): _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):  # nan compares false with every bound; inf is never a usable setting
            raise ConfigError(f"{key}: {value!r} is not a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{key}: expected a path, got {value!r}")
        return Path(value)
    raise ConfigError(f"{key}: unsupported config type {tp!r}")  # a bug in a dataclass, not in the file


def _build(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown config key {prefix + str(key)!r}{hint}; known keys here: {', '.join(names)}")
    kwargs = {k: _convert(v, hints[k], prefix + k) for k, v in data.items()}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if "range" in f.metadata and f.name in kwargs:
            _check_range(kwargs[f.name], f.metadata["range"], prefix + f.name)
    return cls(**kwargs)


def _check_range(value: Any, bounds: tuple[float | None, float | None, float | None], key: str) -> None:
    """``ConfigError`` naming ``key`` and the allowed range when ``value`` (a number or None) lies outside it."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    ge, gt, le = bounds
    if (ge is not None and value < ge) or (gt is not None and value <= gt) or (le is not None and value > le):
        parts = [f">= {ge:g}" if ge is not None else "", f"> {gt:g}" if gt is not None else "",
                 f"<= {le:g}" if le is not None else ""]
        raise ConfigError(f"{key}: {value!r} is out of range (allowed: {' and '.join(p for p in parts if p)})")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (["a", "b"], value parsed as YAML: ``true``, ``3``, ``[1, 2]``, strings as is)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _set_dotted(cls: type, data: dict[str, Any], path: list[str], value: Any, raw: str) -> None:
    node, tp = data, cls
    for i, part in enumerate(path):
        hints = typing.get_type_hints(tp) if dataclasses.is_dataclass(tp) else {}
        if part not in hints:
            dotted = ".".join(path[: i + 1])
            close = difflib.get_close_matches(part, list(hints), n=1)
            hint = f" (did you mean {'.'.join([*path[:i], close[0]])!r}?)" if close else ""
            raise ConfigError(f"unknown config key {dotted!r}{hint}")
        tp = hints[part]
        if (typing.get_origin(tp) is dict or tp is dict) and i < len(path) - 1:
            # free-form mapping (e.g. a builder's keyword arguments): start from its default, set the rest
            node = node.setdefault(part, dict(_default_of(cls, path[: i + 1])))
            for sub in path[i + 1:-1]:
                node = node.setdefault(sub, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{'.'.join(path)}: {sub} is not a mapping")
            node[path[-1]] = value
            return
        if i == len(path) - 1:
            # A string field keeps the text as typed ("name=007" stays "007").
            node[part] = raw if tp is str and not isinstance(value, str) else value
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{'.'.join(path[: i + 1])} is not a section")


def _default_of(cls: type, path: list[str]) -> Any:
    """The default value of the field at dotted ``path`` below the dataclass ``cls``."""
    tp: Any = cls
    value: Any = None
    for part in path:
        fld = next(f for f in dataclasses.fields(tp) if f.name == part)
        if fld.default is not dataclasses.MISSING:
            value = fld.default
        elif fld.default_factory is not dataclasses.MISSING:
            value = fld.default_factory()
        else:
            value = {}
        tp = typing.get_type_hints(tp)[part]
    return value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file (an empty file is an empty mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text (UTF-8) YAML file ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return loaded


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build config ``cls`` from defaults, then a YAML file, then ``key.sub=value`` overrides."""
    return build_config(cls, read_yaml(path) if path is not None else {}, overrides, where=path)


def build_config(cls: type[T], data: dict[str, Any], overrides: Sequence[str] = (),
                 where: str | Path | None = None) -> T:
    """Build config ``cls`` from a mapping (already read from YAML) and ``key.sub=value`` overrides."""
    data = dict(data)
    path = where
    for text in overrides:
        keys, value = parse_override(text)
        _set_dotted(cls, data, keys, value, text.split("=", 1)[1])
    try:
        return _build(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain, JSON/YAML-able dict of a config (Paths as strings, tuples as lists)."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v
    return plain(cfg)


def _fingerprinted(obj: Any, data: dict[str, Any], *, section_off: bool = False) -> dict[str, Any]:
    """``data`` (``to_dict(obj)``) without the keys ``fingerprint`` leaves out (see ``doc``)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        mark = f.metadata.get("fingerprint", not section_off)
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            sub = _fingerprinted(value, data[f.name], section_off=mark is False)
            if sub or mark is not False:
                out[f.name] = sub
        elif mark == "non_default":
            if value != f.default:
                out[f.name] = data[f.name]
        elif mark:
            out[f.name] = data[f.name]
    return out


def fingerprint(cfg: Any) -> str:
    """12 hex characters that change whenever a config value that shapes the outputs changes.

    Sections marked ``metadata={"fingerprint": False}`` (``runner``: timeouts, skipping, the device) and keys
    declared ``doc(..., fingerprint=False)`` (batch sizes) say how to run, not what to compute; changing them
    re-processes nothing. A key marked ``"non_default"`` (``runner.precision``) counts only when it is not its
    default, so a fp32 run keeps the fingerprint it had before the key existed.
    """
    data = to_dict(cfg)
    if dataclasses.is_dataclass(cfg):
        data = _fingerprinted(cfg, data)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def to_yaml(cfg: Any, *, comments: bool = True, names: Mapping[str, Sequence[str]] | None = None) -> str:
    """YAML of a config; with ``comments`` every key carries its doc, so the output is a template.

    ``names``: registered names by registry kind, listed after the doc of a key declared ``doc(..., names=kind)``.
    """
    if not comments:
        return yaml.safe_dump(to_dict(cfg), sort_keys=False)
    lines: list[str] = []

    def emit(obj: Any, indent: int) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            pad = "  " * indent
            text = f.metadata.get("doc")
            kind = f.metadata.get("names")
            if text and kind:
                listed = (names or {}).get(kind)
                text += f" (registered: {', '.join(listed)})" if listed else f" (a registered {kind} name)"
            if dataclasses.is_dataclass(value):
                lines.append(f"{pad}{f.name}:")
                emit(value, indent + 1)
                continue
            rendered = yaml.safe_dump({f.name: to_dict(value)}, default_flow_style=True, width=1000).strip()
            rendered = rendered[1:-1] if rendered.startswith("{") else rendered
            lines.append(f"{pad}{rendered}" + (f"  # {text}" if text else ""))

    emit(cfg, 0)
    return "\n".join(lines) + "\n"
