"""The anticipation head: a video's recognised actions (``segments`` with verb/noun ids) -> ``forecasts`` rows.

Pure: tables and a config in, tables out. The backend (built from the config, or passed in) generates K
candidates of Z actions after the last N observed actions; every row records the backend, the prompt hash and
``source = <backend>@<config fingerprint>``; ``score`` is the candidate's per-step geometric-mean probability
when the backend reports a log-probability.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from videoact.annotations import schema
from videoact.annotations.tables import Tables
from videoact.config import fingerprint
from videoact.heads.anticipation.backends import build_backend
from videoact.heads.anticipation.config import AnticipationConfig
from videoact.heads.anticipation.data import ActionVocab, LTASamples
from videoact.heads.anticipation.prompting import ExampleBank, build_prompts
from videoact.llm.base import LLMBackend, Prompt
from videoact.llm.constraint import ActionConstraint


def backend_from_config(cfg: AnticipationConfig) -> LLMBackend:
    """The configured backend (``action_lm`` loads its checkpoint; the others their model or server)."""
    if cfg.backend == "action_lm":
        return build_backend("action_lm", checkpoint=cfg.checkpoint, temperature=cfg.temperature, seed=cfg.seed)
    if cfg.backend == "transformers":
        return build_backend("transformers", model=cfg.model, temperature=cfg.temperature, seed=cfg.seed)
    if cfg.backend == "llamacpp":
        return build_backend("llamacpp", model=Path(cfg.model), temperature=cfg.temperature, seed=cfg.seed)
    return build_backend("http", url=cfg.url, model=cfg.model, constraint_mode=cfg.http_constraint,
                         temperature=cfg.temperature, seed=cfg.seed, timeout=cfg.timeout, retries=cfg.retries,
                         video_timeout=cfg.video_timeout)


def _observed_actions(tables: Tables, video_id: str) -> pd.DataFrame:
    seg = tables.segments
    seg = seg[(seg["video_id"] == video_id) & seg["verb_id"].notna() & seg["noun_id"].notna() & seg["flag"].isna()]
    seg = seg.assign(_pos=np.arange(len(seg))).sort_values(["t_start_s", "t_end_s", "_pos"], kind="stable")
    return seg.reset_index(drop=True)


def read_action_map(path: str | Path) -> dict[str, tuple[str, str] | None]:
    """``label,verb,noun`` csv -> {recognition label: (verb, noun)}, None for a class with an empty verb."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: action map not found (a csv with columns label,verb,noun)")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"label", "verb", "noun"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: action map needs columns label,verb,noun; missing {sorted(missing)}")
    out: dict[str, tuple[str, str] | None] = {}
    for line, (label, verb, noun) in enumerate(df[["label", "verb", "noun"]].itertuples(index=False), start=2):
        if label in out:
            raise ValueError(f"{path}:{line}: label {label!r} is mapped twice")
        if bool(verb.strip()) != bool(noun.strip()):
            raise ValueError(f"{path}:{line}: give both verb and noun for {label!r}, or neither to drop the class")
        out[label] = (verb.strip(), noun.strip()) if verb.strip() else None
    return out


def _lookup(names: tuple[str, ...], name: str, what: str, where: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        close = difflib.get_close_matches(name, names, n=3)
        raise ValueError(f"{where}: {what} {name!r} is not in the vocabulary"
                         + (f" (close: {', '.join(close)})" if close else "")) from None


def observed_actions(segments: pd.DataFrame, vocab: ActionVocab, *,
                     action_map: dict[str, tuple[str, str] | None] | None = None,
                     min_score: float = 0.0, where: str = "recognition") -> pd.DataFrame:
    """Recognition windows -> the observed actions of the anticipation head, in time order.

    Rows that already carry ``verb_id`` / ``noun_id`` are used as they are. Otherwise each window's top-1 label
    (windows below ``min_score`` skipped) is mapped to a (verb, noun) pair (``action_map``, or labels that read
    ``"verb noun"`` in ``vocab``), and consecutive windows of one action merge into one action: a person who
    keeps doing the same thing did one action, not one per window.
    """
    seg = segments[(segments["task"] == "recognition") & segments["flag"].isna()]
    if seg["verb_id"].notna().any():
        return seg[seg["verb_id"].notna() & seg["noun_id"].notna()].reset_index(drop=True)
    if not len(seg):
        return seg.reset_index(drop=True)
    top = (seg.sort_values(["t_start_s", "t_end_s", "score"], ascending=[True, True, False], kind="stable")
           .drop_duplicates(["video_id", "t_start_s", "t_end_s"]))
    top = top[top["score"] >= min_score]
    pairs: list[tuple[int, int] | None] = []
    unknown: list[str] = []
    for label in top["label"].astype(str):
        if action_map is not None:
            if label not in action_map:
                unknown.append(label)
                pairs.append(None)
                continue
            vn = action_map[label]
        else:
            parts = label.split()
            if len(parts) != 2 or parts[0] not in vocab.verbs or parts[1] not in vocab.nouns:
                unknown.append(label)
                pairs.append(None)
                continue
            vn = (parts[0], parts[1])
        pairs.append(None if vn is None else (_lookup(vocab.verbs, vn[0], "verb", where),
                                              _lookup(vocab.nouns, vn[1], "noun", where)))
    if unknown:
        names = ", ".join(repr(u) for u in sorted(set(unknown))[:5])
        raise ValueError(f"{where}: recognition labels {names} have no verb/noun in vocabulary {vocab.name!r}; give "
                         "anticipation.action_map=<csv with label,verb,noun> (an empty verb drops a class)")
    rows: list[dict] = []
    for rec, pair in zip(top.to_dict("records"), pairs, strict=True):
        if pair is None:
            continue
        last = rows[-1] if rows else None
        if last is not None and (last["verb_id"], last["noun_id"]) == pair and rec["t_start_s"] <= last["t_end_s"]:
            last["t_end_s"] = max(last["t_end_s"], rec["t_end_s"])
            last["frame_end"] = rec["frame_end"]
            last["score"] = max(last["score"], rec["score"])
            continue
        rows.append({**rec, "verb_id": pair[0], "noun_id": pair[1], "verb": vocab.verbs[pair[0]],
                     "noun": vocab.nouns[pair[1]]})
    return pd.DataFrame(rows, columns=seg.columns) if rows else seg.iloc[:0].reset_index(drop=True)


def forecast_video(tables: Tables, cfg: AnticipationConfig, *, backend: LLMBackend | None = None,
                   vocab: ActionVocab | None = None, bank: ExampleBank | None = None) -> Tables:
    """Forecast rows for every video in ``tables`` (usually one) from its recognised verb/noun segments.

    Args:
        tables: at least ``segments`` with ``verb_id``/``noun_id`` (a recognition head's output or ground truth);
            ``labels`` with the ``<cfg.vocab>_verb`` / ``_noun`` spaces when ``vocab`` is not given.
        cfg: the head's config (backend, N, Z, K, anchors, prompting).
        backend: a ready backend (default: built from ``cfg``, so a run can share one across videos).
        vocab: the verb/noun vocabulary (default: from ``tables.labels``, else the action LM's own).
        bank: in-context examples for text backends (default: zero-shot prompts).

    Returns:
        ``Tables`` with ``forecasts`` (K x Z rows per anchor) and nothing else.
    """
    backend = backend or backend_from_config(cfg)
    if vocab is None:
        spaces = set(tables.labels["label_space"])
        if f"{cfg.vocab}_verb" in spaces:
            vocab = ActionVocab.from_labels(tables.labels, cfg.vocab)
        elif getattr(backend, "vocab", None) is not None:
            vocab = backend.vocab  # type: ignore[attr-defined]
        else:
            raise schema.AnnotationError(f"no vocabulary: labels has no {cfg.vocab}_verb/_noun spaces (have "
                                         f"{sorted(spaces)}); set anticipation.vocab or pass vocab=")
    constraint = ActionConstraint(vocab, z=cfg.z)
    source = f"{backend.name}@{fingerprint(cfg)}"
    rows: list[dict] = []
    for video_id in tables.video_ids:
        acts = _observed_actions(tables, video_id)
        if not len(acts):
            continue
        last = len(acts) - 1
        anchors = [last] if cfg.anchors == "last" else list(range(min(cfg.n_observed - 1, last), len(acts)))
        v, n = acts["verb_id"].to_numpy(np.int64), acts["noun_id"].to_numpy(np.int64)
        width = min(cfg.n_observed, min(anchors) + 1)
        samples = LTASamples(
            keys=[f"{video_id}_{a}" for a in anchors], video_ids=[video_id] * len(anchors),
            groups=[video_id] * len(anchors), goals=[None] * len(anchors), anchor_idx=np.asarray(anchors),
            anchor_t_s=acts["t_end_s"].to_numpy(float)[anchors],
            obs_verb=np.stack([v[a + 1 - width:a + 1] for a in anchors]),
            obs_noun=np.stack([n[a + 1 - width:a + 1] for a in anchors]),
            fut_verb=np.zeros((len(anchors), 0), np.int64), fut_noun=np.zeros((len(anchors), 0), np.int64))
        if backend.name in ("action_lm", "ngram", "most_frequent"):  # id models read up to N actions each
            prompts = [Prompt(observed=tuple(zip(v[max(0, a + 1 - cfg.n_observed):a + 1].tolist(),
                                                 n[max(0, a + 1 - cfg.n_observed):a + 1].tolist(), strict=True)))
                       for a in anchors]
        else:
            pc = cfg.prompt
            prompts = build_prompts(samples, constraint, bank=bank, n_examples=pc.n_examples if bank else 0,
                                    lam=pc.mmr_lambda, pool=pc.mmr_pool, mode=pc.mode, backend=backend)
        out = backend.generate(prompts, cfg.k, constraint)
        for a, t, prompt, cands in zip(anchors, samples.anchor_t_s, prompts, out, strict=True):
            for ci, cand in enumerate(cands, start=1):
                score = math.exp(cand.score / cfg.z) if cand.score is not None else None
                for step, (vi, ni) in enumerate(cand.actions, start=1):
                    rows.append({"video_id": video_id, "anchor_idx": a, "anchor_t_s": float(t), "candidate": ci,
                                 "step": step, "verb": vocab.verbs[vi], "noun": vocab.nouns[ni], "verb_id": vi,
                                 "noun_id": ni, "label_space": vocab.name, "score": score, "backend": backend.name,
                                 "prompt_hash": prompt.hash, "source": source})
    return Tables(forecasts=pd.DataFrame(rows) if rows else schema.empty("forecasts")).validated(
        where="anticipation head")
