"""llama.cpp backend (``llama-cpp-python``, extra ``llm``): a local GGUF model, decoding under a GBNF grammar.

The grammar is the constraint's :meth:`~videoact.llm.constraint.ActionConstraint.gbnf` (Z actions from the verb
and noun vocabularies, ``x{m}`` repetition), compiled once per constraint; llama.cpp masks every token the grammar
does not allow, so the output is always in the language and the validator maps it back to ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from videoact.llm.base import Candidate, Prompt, register_backend
from videoact.llm.constraint import ActionConstraint


class LlamaCppBackend:
    """A ``llama_cpp.Llama`` behind the backend protocol; candidate 1 is greedy (``greedy_first``), the others
    sampled."""

    name = "llamacpp"

    def __init__(self, llm: Any, *, temperature: float = 1.0, top_p: float = 1.0, goal_tokens: int = 32,
                 seed: int = 0, greedy_first: bool = True) -> None:
        self.llm, self.temperature, self.top_p, self.goal_tokens, self.seed = llm, temperature, top_p, goal_tokens, seed
        self.greedy_first = greedy_first
        self._grammars: dict[int, Any] = {}

    def _grammar(self, constraint: ActionConstraint) -> Any:
        from llama_cpp import LlamaGrammar

        key = id(constraint)
        if key not in self._grammars:
            self._grammars[key] = (constraint, LlamaGrammar.from_string(constraint.gbnf(), verbose=False))
        return self._grammars[key][1]

    def generate(self, prompts: Sequence[Prompt], n: int, constraint: ActionConstraint | None) -> list[list[Candidate]]:
        out: list[list[Candidate]] = []
        for i, prompt in enumerate(prompts):
            cands = []
            for k in range(n):
                self.llm.set_seed(self.seed + 1000 * i + k)
                self.llm.reset()
                if constraint is None:
                    r = self.llm.create_completion(prompt.text, max_tokens=self.goal_tokens,
                                                   temperature=self.temperature, top_p=self.top_p, stop=["\n"])
                    cands.append(Candidate(text=r["choices"][0]["text"]))
                    continue
                longest = max(map(len, constraint.vocab.verbs)) + max(map(len, constraint.vocab.nouns)) + 3
                greedy = k == 0 and self.greedy_first
                r = self.llm.create_completion(prompt.text, max_tokens=constraint.z * longest + 1,
                                               temperature=0.0 if greedy else self.temperature, top_p=self.top_p,
                                               grammar=self._grammar(constraint))
                text = r["choices"][0]["text"]
                cands.append(Candidate(actions=tuple(constraint.parse(text)), text=text))
            out.append(cands)
        return out


@register_backend("llamacpp")
def build_llamacpp_backend(*, model: str | Path | Any, n_ctx: int = 4096, temperature: float = 1.0,
                           top_p: float = 1.0, seed: int = 0, n_threads: int | None = None,
                           greedy_first: bool = True) -> LlamaCppBackend:
    """From a ``.gguf`` path, or an in-memory ``llama_cpp.Llama``."""
    if isinstance(model, (str, Path)):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ImportError("backend llamacpp needs llama-cpp-python: pip install 'videoact[llm]' "
                              "(builds llama.cpp from source, ~7 min on 2 cores)") from None
        if not Path(model).is_file():
            raise FileNotFoundError(f"{model}: GGUF model not found")
        model = Llama(model_path=str(model), n_ctx=n_ctx, seed=seed, n_threads=n_threads, verbose=False)
    return LlamaCppBackend(model, temperature=temperature, top_p=top_p, seed=seed, greedy_first=greedy_first)
