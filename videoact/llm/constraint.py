"""One output constraint, built once from the verb/noun vocabulary and compiled per backend.

The language is exactly ``Z`` actions, ``"verb noun"`` each, joined by ``", "`` (an optional leading space is
allowed, for prompts that end in ``":"``)::

    take pan, put pan, wash pan, ...            # Z actions, names from ActionVocab (no spaces or commas)

Compiled forms, all of the same language:

* :meth:`ActionConstraint.gbnf` - a llama.cpp GBNF grammar (llama-cpp-python, llama-server ``grammar``);
* :meth:`ActionConstraint.regex` - for servers with regex-guided decoding (vLLM ``structured_outputs.regex``);
* :meth:`ActionConstraint.json_schema` - the JSON form ``{"actions": [{"verb", "noun"} x Z]}`` with enums and
  ``minItems = maxItems = Z`` (OpenAI / vLLM / Ollama ``response_format``);
* :meth:`ActionConstraint.advance` - a character automaton that a token-trie logits processor walks (HF).

:meth:`ActionConstraint.parse` and :meth:`ActionConstraint.parse_json` are validators: they map an output of the
language back to ``(verb_id, noun_id)`` pairs and raise :class:`ConstraintViolation` for anything else. Nothing is
split on ``", "`` and guessed: AntGPT's "fail to parse" path does not exist here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from videoact.annotations.vocab import ActionVocab

SEP = ", "
JOIN = " "


class ConstraintViolation(ValueError):
    """An output that is not in the constrained language (a backend ignored the constraint)."""


def _trie(words: tuple[str, ...]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for i, w in enumerate(words):
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node["$"] = i  # "$" cannot clash: names hold no "$"-only keys of length 1 other than this end mark
    return root


# Automaton state: (n_done, phase, node, verb_id). phase: "lead" | "verb" | "noun" | "sep" | "done".
State = tuple[int, str, Any, int]


@dataclass(frozen=True)
class ActionConstraint:
    """Exactly ``z`` actions from ``vocab``; the one constraint every backend compiles.

    Example:
        >>> from videoact.annotations.vocab import ActionVocab
        >>> c = ActionConstraint(ActionVocab("toy", ("take", "put"), ("pan", "lid")), z=2)
        >>> c.parse(" take pan, put lid")
        [(0, 0), (1, 1)]
    """

    vocab: ActionVocab
    z: int = 20
    _verb_trie: dict[str, Any] = field(init=False, repr=False, compare=False)
    _noun_trie: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in (*self.vocab.verbs, *self.vocab.nouns):
            if not name or any(c in name for c in " ,\n\"$") or name != name.strip():
                raise ValueError(f"vocabulary name {name!r} must be non-empty without spaces, commas or quotes")
        object.__setattr__(self, "_verb_trie", _trie(self.vocab.verbs))
        object.__setattr__(self, "_noun_trie", _trie(self.vocab.nouns))

    # ------------------------------------------------------------------ the text language

    def format(self, actions: list[tuple[int, int]]) -> str:
        """Ids -> text of the language (for in-context examples and tests)."""
        return SEP.join(f"{self.vocab.verbs[v]}{JOIN}{self.vocab.nouns[n]}" for v, n in actions)

    def start(self) -> State:
        return (0, "lead", None, -1)

    def advance(self, state: State | None, text: str) -> State | None:
        """The state after reading ``text``, or None when ``text`` leaves the language."""
        for ch in text:
            if state is None:
                return None
            state = self._step(state, ch)
        return state

    def _step(self, state: State, ch: str) -> State | None:
        done, phase, node, verb = state
        if phase == "lead":
            if ch == " ":
                return (done, "verb", self._verb_trie, -1)
            phase, node = "verb", self._verb_trie
        if phase == "verb":
            if ch == JOIN and "$" in node:
                return (done, "noun", self._noun_trie, node["$"])
            nxt = node.get(ch) if ch != "$" else None
            return (done, "verb", nxt, -1) if nxt is not None else None
        if phase == "noun":
            if ch == SEP[0] and "$" in node and done + 1 < self.z:
                return (done + 1, "sep", None, -1)
            nxt = node.get(ch) if ch != "$" else None
            return (done, "noun", nxt, verb) if nxt is not None else None
        if phase == "sep":
            return (done, "verb", self._verb_trie, -1) if ch == SEP[1] else None
        return None  # "done" accepts nothing more

    def is_final(self, state: State | None) -> bool:
        """Whether the text read so far is a complete output (``z`` actions)."""
        return state is not None and state[1] == "noun" and "$" in state[2] and state[0] + 1 == self.z

    def parse(self, text: str) -> list[tuple[int, int]]:
        """Validator: text of the language -> ``z`` ``(verb_id, noun_id)`` pairs; anything else raises."""
        state: State | None = self.start()
        out: list[tuple[int, int]] = []
        for pos, ch in enumerate(text):
            prev = state
            state = self._step(state, ch) if state is not None else None
            if state is None:
                raise ConstraintViolation(f"output leaves the action language at character {pos} "
                                          f"({text[max(0, pos - 20):pos]!r} + {ch!r}): {text[:200]!r}")
            if prev[1] == "noun" and state[1] == "sep":
                out.append((prev[3], prev[2]["$"]))
        if not self.is_final(state):
            raise ConstraintViolation(f"output is incomplete ({len(out)} of {self.z} actions): {text[:200]!r}")
        out.append((state[3], state[2]["$"]))
        return out

    # ------------------------------------------------------------------ compiled forms

    def gbnf(self) -> str:
        """llama.cpp GBNF grammar of the language (``x{m}`` repetition, which llama.cpp compiles fast)."""
        def alts(names: tuple[str, ...]) -> str:
            return " | ".join(json.dumps(n) for n in names)

        rep = f' ({json.dumps(SEP)} action){{{self.z - 1}}}' if self.z > 1 else ""
        return (f'root ::= " "? action{rep}\n'
                f'action ::= verb {json.dumps(JOIN)} noun\n'
                f"verb ::= {alts(self.vocab.verbs)}\n"
                f"noun ::= {alts(self.vocab.nouns)}\n")

    def regex(self) -> str:
        import re

        def alts(names: tuple[str, ...]) -> str:
            return "(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + ")"

        action = f"{alts(self.vocab.verbs)}{re.escape(JOIN)}{alts(self.vocab.nouns)}"
        return f" ?{action}({re.escape(SEP)}{action}){{{self.z - 1}}}"

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of ``{"actions": [{"verb": enum, "noun": enum}] * z}``."""
        item = {"type": "object",
                "properties": {"verb": {"type": "string", "enum": list(self.vocab.verbs)},
                               "noun": {"type": "string", "enum": list(self.vocab.nouns)}},
                "required": ["verb", "noun"], "additionalProperties": False}
        return {"type": "object",
                "properties": {"actions": {"type": "array", "items": item, "minItems": self.z, "maxItems": self.z}},
                "required": ["actions"], "additionalProperties": False}

    def parse_json(self, text: str | dict[str, Any]) -> list[tuple[int, int]]:
        """Validator for the JSON form: enum names -> ids; wrong shape, length or name raises."""
        try:
            obj = json.loads(text) if isinstance(text, str) else text
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ConstraintViolation(f"output is not JSON ({type(exc).__name__}: {exc}): {str(text)[:200]!r}"
                                      ) from None
        acts = obj.get("actions") if isinstance(obj, dict) else None
        if not isinstance(acts, list) or len(acts) != self.z:
            raise ConstraintViolation(f"expected {{'actions': [{self.z} items]}}, got {str(text)[:200]!r}")
        vi = {n: i for i, n in enumerate(self.vocab.verbs)}
        ni = {n: i for i, n in enumerate(self.vocab.nouns)}
        out = []
        for j, a in enumerate(acts):
            if not isinstance(a, dict) or a.get("verb") not in vi or a.get("noun") not in ni:
                raise ConstraintViolation(f"actions[{j}] = {a!r} is not a vocabulary verb/noun pair")
            out.append((vi[a["verb"]], ni[a["noun"]]))
        return out
