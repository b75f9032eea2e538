"""HF transformers causal LM backend, with decoding constrained to the verb/noun vocabulary.

The constraint is compiled into a logits processor: every vocabulary token's text (decoded in context, so
SentencePiece ``▁`` and byte-level ``Ġ`` spaces come out right) goes into a character trie, and at each step the
allowed tokens are found by walking that trie jointly with the constraint's character automaton; everything else
gets ``-inf``. EOS is allowed exactly when Z actions are complete. Unlike a trie of whole "verb noun" strings
(facebookresearch/genre#51) nothing can run out of the trie: sampling and greedy decoding only ever produce text
of the language, which the validator maps back to ids.

    backend = build_backend("transformers", model="path/to/local/model")   # or a hub id when online
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from videoact.llm.base import Candidate, Prompt, register_backend
from videoact.llm.constraint import ActionConstraint, ConstraintViolation, State

_IDS = "\0ids"  # trie key for the token ids that end at a node (no token text contains NUL)


def token_texts(tokenizer: Any) -> list[str | None]:
    """The text each token id adds after some context (None for special and partial-UTF-8 tokens)."""
    anchor = tokenizer.encode("a", add_special_tokens=False)[-1]
    base = tokenizer.decode([anchor])
    special = set(tokenizer.all_special_ids)
    out: list[str | None] = []
    for i in range(len(tokenizer)):
        if i in special:
            out.append(None)
            continue
        s = tokenizer.decode([anchor, i])
        out.append(s[len(base):] if s.startswith(base) and "\ufffd" not in s and len(s) > len(base) else None)
    return out


def _token_trie(texts: list[str | None]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for i, t in enumerate(texts):
        if not t:
            continue
        node = root
        for ch in t:
            node = node.setdefault(ch, {})
        node.setdefault(_IDS, []).append(i)
    return root


class VocabLogitsProcessor:
    """Masks every token that would leave the action language (a ``transformers`` ``LogitsProcessor``)."""

    def __init__(self, constraint: ActionConstraint, texts: list[str | None], trie: dict[str, Any],
                 prompt_len: int, eos_id: int) -> None:
        self.c, self.texts, self.trie, self.prompt_len, self.eos_id = constraint, texts, trie, prompt_len, eos_id
        self._states: dict[tuple[int, ...], State | None] = {(): constraint.start()}
        self._allowed: dict[Any, list[int]] = {}

    def state_of(self, gen: tuple[int, ...]) -> State | None:
        if gen not in self._states:
            prev = self.state_of(gen[:-1])
            tok = gen[-1]
            done = prev is None or tok == self.eos_id
            self._states[gen] = None if done else self.c.advance(prev, self.texts[tok] or "")
        return self._states[gen]

    def allowed(self, state: State) -> list[int]:
        key = (state[0], state[1], id(state[2]), state[3])
        if key not in self._allowed:
            ids: list[int] = []
            stack = [(self.trie, state)]
            while stack:
                node, st = stack.pop()
                for ch, child in node.items():
                    if ch == _IDS:
                        continue
                    nxt = self.c._step(st, ch)
                    if nxt is not None:
                        ids.extend(child.get(_IDS, ()))
                        stack.append((child, nxt))
            if self.c.is_final(state):
                ids.append(self.eos_id)
            self._allowed[key] = ids
        return self._allowed[key]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        mask = torch.full_like(scores, float("-inf"))
        for b in range(input_ids.shape[0]):
            gen = tuple(input_ids[b, self.prompt_len:].tolist())
            state = self.state_of(gen)
            if state is None:  # finished row (EOS emitted): keep it padding with EOS
                mask[b, self.eos_id] = 0
                continue
            ids = self.allowed(state)
            if not ids:
                raise ConstraintViolation("no token of this tokenizer continues the action language after "
                                          f"generated ids {gen[-8:]!r}")
            mask[b, ids] = 0
        return scores + mask


class TransformersBackend:
    """A local ``AutoModelForCausalLM`` (or any model + tokenizer pair) behind the backend protocol.

    Candidate 1 is greedy (``greedy_first``) and the others are sampled, as the action LM does; with
    ``greedy_first=False`` all ``n`` are sampled."""

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any, *, temperature: float = 1.0, top_p: float = 1.0,
                 goal_tokens: int = 32, seed: int = 0, batch_size: int = 8, greedy_first: bool = True) -> None:
        self.model, self.tok = model.eval(), tokenizer
        self.greedy_first = greedy_first
        self.temperature, self.top_p, self.goal_tokens, self.seed = temperature, top_p, goal_tokens, seed
        self.batch_size = batch_size
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.tok.padding_side = "left"
        self._texts: list[str | None] | None = None
        self._trie: dict[str, Any] | None = None

    def _compiled(self) -> tuple[list[str | None], dict[str, Any]]:
        if self._texts is None:
            self._texts = token_texts(self.tok)
            self._trie = _token_trie(self._texts)
        return self._texts, self._trie  # type: ignore[return-value]

    def _sequences(self, enc: Any, n: int, constraint: ActionConstraint | None, *, sample: bool) -> Any:
        """(B * n, new tokens) generated ids of one batch of prompts."""
        import torch
        from transformers import LogitsProcessorList

        kwargs: dict[str, Any] = {"num_return_sequences": n, "pad_token_id": self.tok.pad_token_id,
                                  "eos_token_id": self.tok.eos_token_id}
        kwargs.update({"do_sample": True, "temperature": self.temperature, "top_p": self.top_p} if sample
                      else {"do_sample": False})
        if constraint is not None:
            texts, trie = self._compiled()
            longest = max(map(len, constraint.vocab.verbs)) + max(map(len, constraint.vocab.nouns)) + 3
            proc = VocabLogitsProcessor(constraint, texts, trie, enc["input_ids"].shape[1], self.tok.eos_token_id)
            kwargs.update(logits_processor=LogitsProcessorList([proc]), max_new_tokens=constraint.z * longest + 1)
        else:
            kwargs.update(max_new_tokens=self.goal_tokens)
        with torch.no_grad():
            seqs = self.model.generate(**enc, **kwargs)  # (B * n, prompt + new)
        return seqs[:, enc["input_ids"].shape[1]:]

    def generate(self, prompts: Sequence[Prompt], n: int, constraint: ActionConstraint | None) -> list[list[Candidate]]:
        import torch

        eos = self.tok.eos_token_id
        if eos is None:
            raise ValueError("the tokenizer has no EOS token: constrained decoding needs one to stop")
        out: list[list[Candidate]] = []
        for i in range(0, len(prompts), self.batch_size):
            chunk = [p.text for p in prompts[i:i + self.batch_size]]
            enc = self.tok(chunk, return_tensors="pt", padding=True)
            torch.manual_seed(self.seed + i)
            greedy = 1 if self.greedy_first and n > 0 else 0
            rows: list[list[list[int]]] = [[] for _ in chunk]
            for m, sample in ((greedy, False), (n - greedy, True)):
                if m:
                    new = self._sequences(enc, m, constraint, sample=sample)
                    for j in range(len(chunk)):
                        rows[j] += [new[j * m + k].tolist() for k in range(m)]
            for cand_ids in rows:
                cands = []
                for seq in cand_ids:
                    ids = [t for t in seq if t not in (eos, self.tok.pad_token_id)]
                    if constraint is None:
                        cands.append(Candidate(text=self.tok.decode(ids, skip_special_tokens=True)))
                    else:
                        text = "".join(self._texts[t] or "" for t in ids)  # type: ignore[index]
                        cands.append(Candidate(actions=tuple(constraint.parse(text)), text=text))
                out.append(cands)
        return out


@register_backend("transformers")
def build_transformers_backend(*, model: str | Path | Any, tokenizer: Any = None, temperature: float = 1.0,
                               top_p: float = 1.0, seed: int = 0, device: str = "cpu",
                               greedy_first: bool = True, batch_size: int = 8) -> TransformersBackend:
    """From a local directory (or hub id when a hub is reachable), or from in-memory model and tokenizer."""
    if isinstance(model, (str, Path)):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = str(model)
        local = Path(path).expanduser()
        if (local.is_absolute() or path.startswith((".", "~")) or local.exists()) and not local.is_dir():
            raise FileNotFoundError(f"{path}: transformers model directory not found (a local causal LM, e.g. the "
                                    "one `videoact train configs/anticipation/text_lm_epic55.yaml` writes)")
        try:
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path).to(device)
        except (OSError, ValueError) as exc:  # not a model directory, or a hub id that cannot be fetched
            raise ValueError(f"{path}: cannot load a transformers causal LM from it ({exc})") from None
    if tokenizer is None:
        raise ValueError("backend transformers: pass the tokenizer with an in-memory model")
    return TransformersBackend(model, tokenizer, temperature=temperature, top_p=top_p, seed=seed,
                               greedy_first=greedy_first, batch_size=batch_size)
