"""The text LM (AntGPT's fine-tuned LLM, here a small Llama trained from scratch offline): it learns on real
EPIC-55 action text, and its two exports - a transformers directory and a GGUF file - give the same model in
both runtimes (equal logits, equal greedy forecasts), always as valid vocabulary ids."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from videoact.heads.anticipation.backends import build_backend
from videoact.heads.anticipation.prompting import build_prompts
from videoact.llm.constraint import ActionConstraint
from videoact.train import load_train_config
from videoact.train.anticipation import epic55_split_samples

pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs/anticipation/text_lm_epic55.yaml"


@pytest.fixture(scope="module")
def epic(shared_data: Path):
    _, cfg = load_train_config(CONFIG, [f"data.root={shared_data / 'anticipation/epic_kitchens_55'}"])
    vocab, _, _, val = epic55_split_samples(cfg.data)
    return cfg, vocab, val


@pytest.fixture(scope="module")
def text_lm(epic, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama trained for 60 steps on every 8th training window (~15 s on one thread)."""
    from videoact.train.anticipation import train_text_lm

    cfg = epic[0]
    _, cfg = load_train_config(CONFIG, [f"data.root={cfg.data.root}", "data.stride=8", "model.vocab_size=600",
                                        "model.hidden_size=48", "model.intermediate_size=96", "optim.steps=60",
                                        "optim.batch_size=16", "optim.warmup=10", "optim.log_every=10",
                                        "optim.val_samples=40", "optim.lr=0.004", "optim.threads=1"])
    return train_text_lm(replace(cfg, output=tmp_path_factory.mktemp("tlm") / "text_lm"))


def test_training_loss_falls_and_both_exports_are_written(text_lm: Path) -> None:
    meta = json.loads((text_lm / "videoact_text_lm.json").read_text())
    losses = meta["train_losses"]
    assert len(losses) == 6 and losses[-1] < 0.6 * losses[0], losses
    assert meta["val_loss"] < losses[0] and meta["split"]["val_participants"][0] == "P02"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "model.gguf"):
        assert (text_lm / name).is_file(), name


def test_gguf_export_gives_the_same_logits_in_llama_cpp(text_lm: Path, epic) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, vocab, val = epic
    text = build_prompts(val[:1], ActionConstraint(vocab, z=20), n_examples=0)[0].text + " take pan, put"
    tok = AutoTokenizer.from_pretrained(text_lm)
    ids = tok.encode(text, add_special_tokens=False)
    llm = llama_cpp.Llama(model_path=str(text_lm / "model.gguf"), n_ctx=512, logits_all=True, verbose=False)
    assert llm.tokenize(text.encode(), add_bos=False) == ids  # the same BPE vocabulary and merges
    llm.eval(ids)
    cpp = np.asarray(llm.scores[:len(ids)])
    with torch.no_grad():
        ref = AutoModelForCausalLM.from_pretrained(text_lm)(torch.tensor([ids])).logits[0].numpy()
    assert np.abs(cpp - ref).max() < 2e-3 * np.abs(ref).max(), np.abs(cpp - ref).max()


def test_both_runtimes_forecast_valid_ids_and_agree_on_the_greedy_candidate(text_lm: Path, epic) -> None:
    pytest.importorskip("llama_cpp")
    _, vocab, val = epic
    c = ActionConstraint(vocab, z=20)
    prompts = build_prompts(val[np.array([0, 500, 1500])], c, n_examples=0)
    hf = build_backend("transformers", model=text_lm, seed=0, temperature=0.7).generate(prompts, 3, c)
    cpp = build_backend("llamacpp", model=text_lm / "model.gguf", seed=0, temperature=0.7,
                        n_threads=1).generate(prompts, 3, c)
    for out in (hf, cpp):
        for cands in out:
            assert len(cands) == 3
            for cand in cands:
                assert len(cand.actions) == 20 and c.parse(cand.text) == list(cand.actions)
                assert all(0 <= v < vocab.n_verbs and 0 <= n < vocab.n_nouns for v, n in cand.actions)
    # candidate 1 is the greedy forecast: the same model in both runtimes writes (nearly) the same one. Float
    # differences (logits agree to ~1e-5) can flip a near-tie of this briefly trained model at some step, and the
    # sequences may part from there, so: the first action always, and most steps, agree.
    assert [x[0].actions[0] for x in hf] == [x[0].actions[0] for x in cpp]
    pairs = [(a, b) for x, y in zip(hf, cpp, strict=True) for a, b in zip(x[0].actions, y[0].actions, strict=True)]
    same = np.mean([a == b for a, b in pairs])
    assert same >= 0.75, same


def test_main_job_forecasts_with_the_text_lm_and_mmr_examples(text_lm: Path, shared_data: Path,
                                                              tmp_path: Path) -> None:
    """``videoact run`` with a text backend: the transformers runtime, EPIC-55's vocabulary, and in-context
    examples from EPIC-55 training histories picked by MMR; the recognised NW-UCLA classes are mapped by a csv."""
    import subprocess
    import sys

    import pandas as pd

    import videoact

    amap = pd.read_csv(REPO / "configs/anticipation/nw_ucla_to_epic55.csv", dtype=str, keep_default_na=False)
    amap.loc[amap["verb"] == "", ["verb", "noun"]] = ["walk", "Nothing"]  # every class is an observed action
    amap.to_csv(tmp_path / "map.csv", index=False)
    epic = shared_data / "anticipation/epic_kitchens_55"
    proc = subprocess.run([
        sys.executable, "-m", "videoact.cli", "run", str(shared_data / "videos/demo_skeleton.mp4"), "-o",
        str(tmp_path / "run"), "pose.max_frames=64", "anticipation.enabled=true", "anticipation.backend=transformers",
        f"anticipation.model={text_lm}", f"anticipation.vocab_file={epic}", "anticipation.k=3", "anticipation.z=20",
        f"anticipation.action_map={tmp_path / 'map.csv'}", f"anticipation.prompt.examples_from={epic}",
        "anticipation.prompt.n_examples=2", "anticipation.prompt.max_examples=60"],
        capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    fc = videoact.load(tmp_path / "run").forecasts
    assert len(fc) == 3 * 20 and set(fc["backend"]) == {"transformers"} and set(fc["label_space"]) == {"epic55"}
    assert fc["verb_id"].between(0, 124).all() and fc["noun_id"].between(0, 351).all()
