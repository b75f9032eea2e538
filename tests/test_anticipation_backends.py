"""Every language-model backend path, on tiny models built here (no download): constrained outputs are always
valid vocabulary ids. transformers: random Llama from a LlamaConfig; llama.cpp: a GGUF written with ``gguf``;
HTTP: llama-cpp-python's OpenAI-compatible server as a real process on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _tiny_lm import tiny_llama, train_tokenizer, write_tiny_gguf

from videoact.heads.anticipation.backends import build_backend
from videoact.heads.anticipation.data import ActionVocab, epic55_vocab
from videoact.llm.base import Prompt
from videoact.llm.constraint import ActionConstraint, ConstraintViolation

PROMPTS = [Prompt(observed=((0, 0),), text="Observed: take pan, put pan\nFuture:"),
           Prompt(observed=((1, 2),), text="Predict the next actions.\nObserved: wash plate\nFuture:")]


@pytest.fixture(scope="module")
def vocab(shared_data: Path) -> ActionVocab:
    return epic55_vocab(shared_data / "anticipation/epic_kitchens_55")


@pytest.fixture(scope="module")
def tokenizer(vocab: ActionVocab):
    pytest.importorskip("transformers")
    return train_tokenizer(list(vocab.verbs + vocab.nouns))


@pytest.fixture(scope="module")
def gguf_path(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf")
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", tokenizer)


def _check(out: list, constraint: ActionConstraint, n: int) -> None:
    assert len(out) == len(PROMPTS)
    for cands in out:
        assert len(cands) == n
        for c in cands:
            assert len(c.actions) == constraint.z
            assert all(0 <= v < constraint.vocab.n_verbs and 0 <= o < constraint.vocab.n_nouns for v, o in c.actions)
            assert constraint.parse(c.text) == list(c.actions)


def test_transformers_backend_from_a_local_directory(tokenizer, vocab: ActionVocab, tmp_path: Path) -> None:
    model = tiny_llama(tokenizer)
    model.save_pretrained(tmp_path / "tiny-llama")
    tokenizer.save_pretrained(tmp_path / "tiny-llama")
    backend = build_backend("transformers", model=tmp_path / "tiny-llama", seed=0)
    c = ActionConstraint(vocab, z=6)
    out = backend.generate(PROMPTS, 3, c)
    _check(out, c, 3)
    assert len({x.actions for x in out[0]}) > 1  # sampled, not three copies
    goal = backend.generate(PROMPTS[:1], 1, None)  # unconstrained: free text (the top-down goal step)
    assert isinstance(goal[0][0].text, str) and not goal[0][0].actions


def test_transformers_unconstrained_random_model_leaves_the_language(tokenizer, vocab: ActionVocab) -> None:
    # The same random model without the processor produces text the validator refuses: the constraint does the work.
    import torch

    c = ActionConstraint(vocab, z=6)
    enc = tokenizer([PROMPTS[0].text], return_tensors="pt")
    torch.manual_seed(0)
    gen = tiny_llama(tokenizer).generate(**enc, do_sample=True, max_new_tokens=40, pad_token_id=tokenizer.pad_token_id)
    text = tokenizer.decode(gen[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    with pytest.raises(ConstraintViolation):
        c.parse(text)


def test_llamacpp_backend_with_a_tiny_gguf(gguf_path: Path, vocab: ActionVocab) -> None:
    pytest.importorskip("llama_cpp")
    backend = build_backend("llamacpp", model=gguf_path, seed=0, n_ctx=2048)
    c = ActionConstraint(vocab, z=20)
    _check(backend.generate(PROMPTS, 2, c), c, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(gguf_path: Path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("uvicorn", reason="llama-cpp-python[server] is not installed")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode(errors="replace")[-2000:] if proc.poll() is not None else ""
                    pytest.fail(f"llama_cpp.server did not start: {out}")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("mode", ["grammar", "json_object"])
def test_http_backend_against_a_real_server(server: str, vocab: ActionVocab, mode: str) -> None:
    backend = build_backend("http", url=server, constraint_mode=mode, timeout=60, retries=1)
    c = ActionConstraint(vocab, z=4)
    out = backend.generate(PROMPTS, 2, c)
    for cands in out:
        for x in cands:
            assert len(x.actions) == 4 and all(0 <= v < vocab.n_verbs and 0 <= o < vocab.n_nouns for v, o in x.actions)
            assert x.meta["attempts"] == 1  # constrained by the server: valid at the first answer
            parsed = c.parse(x.text) if mode == "grammar" else c.parse_json(x.text)
            assert parsed == list(x.actions)


def test_http_backend_without_a_constraint_is_refused_by_the_validator(server: str, vocab: ActionVocab) -> None:
    backend = build_backend("http", url=server, constraint_mode="none", retries=1)
    with pytest.raises(ConstraintViolation, match="outside the vocabulary constraint"):
        backend.generate(PROMPTS[:1], 1, ActionConstraint(vocab, z=4))


def test_http_backend_names_an_unreachable_server() -> None:
    from videoact.llm.http import HTTPError

    backend = build_backend("http", url=f"http://127.0.0.1:{_free_port()}/v1", timeout=1, retries=1)
    backend.backoff = 0.01
    with pytest.raises(HTTPError, match="no answer after 2 tries"):
        backend.generate(PROMPTS[:1], 1, ActionConstraint(ActionVocab("t", ("take",), ("pan",)), z=2))


def test_transformers_backend_names_a_missing_or_wrong_model_directory(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    with pytest.raises(FileNotFoundError, match=r"nope: transformers model directory not found"):
        build_backend("transformers", model=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: cannot load a transformers causal LM"):
        build_backend("transformers", model=tmp_path / "empty")
