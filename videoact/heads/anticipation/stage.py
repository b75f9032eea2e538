"""The ``anticipation`` stage of ``videoact run``: the recognition stage's windows (top-1, merged into actions)
-> observed actions -> K x Z future actions as ``forecasts`` rows."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videoact.annotations import schema
from videoact.config import AnticipationConfig, ConfigError
from videoact.pipeline import VideoContext, stage_errors

if TYPE_CHECKING:
    import pandas as pd

    from videoact.annotations.tables import Tables
    from videoact.config import RunConfig


@functools.lru_cache(maxsize=2)
def forecast_vocab(ac: AnticipationConfig) -> Any:
    """The verb/noun vocabulary forecasts are written in: ``vocab_file``, else the action LM checkpoint's own."""
    from videoact.heads.anticipation.data import ego4d_vocab, epic55_vocab

    if ac.vocab_file is not None:
        path = Path(ac.vocab_file)
        return ego4d_vocab(path) if path.suffix == ".json" else epic55_vocab(path)
    if ac.backend == "action_lm" and ac.checkpoint is not None:
        from videoact.heads.anticipation.action_lm import load_action_lm

        return load_action_lm(ac.checkpoint)[1]
    raise ValueError(f"backend {ac.backend} has no vocabulary of its own: set anticipation.vocab_file (an EPIC-55 "
                     "folder or an Ego4D fho_lta_taxonomy.json)")


@functools.lru_cache(maxsize=2)
def _forecaster(ac: AnticipationConfig) -> tuple[Any, Any, Any]:
    """(backend, action map, in-context example bank) of an anticipation config, loaded once per process."""
    from videoact.heads.anticipation.head import backend_from_config, read_action_map
    from videoact.heads.anticipation.prompting import example_bank_from_file

    pc = ac.prompt
    bank = None
    if ac.backend != "action_lm" and pc.examples_from is not None and pc.n_examples > 0:
        bank = example_bank_from_file(pc.examples_from, forecast_vocab(ac), n_observed=ac.n_observed, z=ac.z,
                                      max_examples=pc.max_examples, taxonomy=ac.vocab_file)
    amap = None if ac.action_map is None else read_action_map(ac.action_map)
    return backend_from_config(ac), amap, bank


class AnticipationStage:
    name = "anticipation"

    def enabled(self, cfg: RunConfig) -> bool:
        return cfg.anticipation.enabled

    def needs(self, cfg: RunConfig) -> dict[str, str]:
        return {"recognition": "anticipation reads the recognition stage's actions: enable recognition "
                               "(recognition.enabled=true, and pose.enabled=true for a skeleton model)"}

    def check(self, cfg: RunConfig) -> None:
        ac = cfg.anticipation
        if ac.backend == "action_lm" and ac.checkpoint is None:
            raise ConfigError("anticipation.checkpoint is not set: give the action_lm.pt written by "
                              "`videoact train configs/anticipation/action_lm_epic55.yaml`")
        if ac.backend == "http":  # (timeout / retries ranges: checked when the config is built)
            if not ac.url.startswith(("http://", "https://")):
                raise ConfigError(f"anticipation.url: {ac.url!r} is not an http(s) URL (backend http needs the "
                                  "server's base URL, e.g. http://127.0.0.1:8080/v1)")

    def labels(self, cfg: RunConfig) -> pd.DataFrame | None:
        with stage_errors(self.name, ImportError):
            return forecast_vocab(cfg.anticipation).labels()

    def run(self, ctx: VideoContext) -> Tables:
        from videoact.annotations.tables import Tables
        from videoact.heads.anticipation.head import forecast_video, observed_actions
        from videoact.llm.http import HTTPError

        ac, where = ctx.cfg.anticipation, str(ctx.path)
        with stage_errors(self.name, ImportError, schema.AnnotationError, HTTPError):
            vocab = forecast_vocab(ac)
            backend, action_map, bank = _forecaster(ac)
            segments = Tables(segments=ctx.tables.segments).validated(where=where).segments
            seen = observed_actions(segments, vocab, action_map=action_map, min_score=ac.min_score, where=where)
            return Tables(forecasts=forecast_video(Tables(segments=seen), ac, backend=backend, vocab=vocab,
                                                   bank=bank).forecasts)
