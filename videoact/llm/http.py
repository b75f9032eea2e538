"""OpenAI-compatible HTTP backend: vLLM, llama.cpp's ``llama-server`` / ``llama_cpp.server``, Ollama, OpenAI.

The constraint goes to the server in the form the server understands (``constraint_mode``):

=============== ==================== ===================================================================
mode            endpoint             request field (servers)
=============== ==================== ===================================================================
``json_schema`` ``/chat/completions`` ``response_format: {type: json_schema, json_schema: {schema}}``
                                     (OpenAI, vLLM, Ollama, llama-server)
``json_object`` ``/chat/completions`` ``response_format: {type: json_object, schema}`` (llama-cpp-python)
``grammar``     ``/completions``     ``grammar: <GBNF>`` (llama-server, llama-cpp-python)
``regex``       ``/completions``     ``structured_outputs: {regex}`` (vLLM >= 0.12; ``guided_*`` before)
``none``        ``/completions``     nothing: the validator rejects, the request is retried
=============== ==================== ===================================================================

Every answer goes through the validator (``parse`` / ``parse_json``), so ids are always vocabulary ids; a
server that ignores the constraint gets ``retries`` more tries, then a :class:`ConstraintViolation` naming the
output. Network errors and 5xx / 429 answers are retried with exponential back-off; ``timeout`` bounds each
request. Only the standard library is used (no ``openai`` package needed).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from videoact.llm.base import Candidate, Prompt, register_backend
from videoact.llm.constraint import ActionConstraint, ConstraintViolation

MODES = ("json_schema", "json_object", "grammar", "regex", "none")
JSON_INSTRUCTION = ('\nAnswer with JSON only: {{"actions": [{{"verb": ..., "noun": ...}}, ...]}} with exactly {z} '
                    "future actions.")


class HTTPError(RuntimeError):
    """The server could not be reached or kept failing; the message names the URL and the last error."""


class OpenAICompatibleBackend:
    name = "http"

    def __init__(self, url: str, *, model: str = "", constraint_mode: str = "json_schema", api_key: str = "",
                 temperature: float = 1.0, top_p: float = 1.0, goal_tokens: int = 32, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 0.5, seed: int = 0, greedy_first: bool = True) -> None:
        if constraint_mode not in MODES:
            raise ValueError(f"constraint_mode must be one of {MODES}, got {constraint_mode!r}")
        if not url:
            raise ValueError("backend http needs the server URL, e.g. http://127.0.0.1:8080/v1")
        self.url, self.model, self.mode, self.api_key = url.rstrip("/"), model, constraint_mode, api_key
        self.temperature, self.top_p, self.goal_tokens = temperature, top_p, goal_tokens
        self.timeout, self.retries, self.backoff, self.seed = timeout, retries, backoff, seed
        self.greedy_first = greedy_first

    # ------------------------------------------------------------------ transport

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.url}/{path}"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode()
        last = ""
        for attempt in range(self.retries + 1):
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode())
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"
                if exc.code < 500 and exc.code != 429:
                    raise HTTPError(f"{url}: {last}") from None  # a bad request does not get better by retrying
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt < self.retries:
                time.sleep(self.backoff * 2 ** attempt)
        raise HTTPError(f"{url}: no answer after {self.retries + 1} tries ({last})")

    def _request(self, prompt: str, constraint: ActionConstraint | None, seed: int, *, greedy: bool = False) -> str:
        body: dict[str, Any] = {"temperature": 0.0 if greedy else self.temperature, "top_p": self.top_p, "seed": seed}
        if self.model:
            body["model"] = self.model
        if constraint is None:
            body.update(prompt=prompt, max_tokens=self.goal_tokens, stop=["\n"])
            return self._post("completions", body)["choices"][0]["text"]
        longest = max(map(len, constraint.vocab.verbs)) + max(map(len, constraint.vocab.nouns)) + 3
        if self.mode in ("json_schema", "json_object"):
            schema = constraint.json_schema()
            fmt = ({"type": "json_schema", "json_schema": {"name": "action_forecast", "strict": True, "schema": schema}}
                   if self.mode == "json_schema" else {"type": "json_object", "schema": schema})
            body.update(messages=[{"role": "user", "content": prompt + JSON_INSTRUCTION.format(z=constraint.z)}],
                        response_format=fmt, max_tokens=constraint.z * (longest + 24) + 16)
            return self._post("chat/completions", body)["choices"][0]["message"]["content"]
        body.update(prompt=prompt, max_tokens=constraint.z * longest + 1)
        if self.mode == "grammar":
            body["grammar"] = constraint.gbnf()
        elif self.mode == "regex":
            body["structured_outputs"] = {"regex": constraint.regex()}
        return self._post("completions", body)["choices"][0]["text"]

    # ------------------------------------------------------------------ protocol

    def generate(self, prompts: Sequence[Prompt], n: int, constraint: ActionConstraint | None) -> list[list[Candidate]]:
        out: list[list[Candidate]] = []
        for i, prompt in enumerate(prompts):
            cands = []
            for k in range(n):
                seed = self.seed + 1000 * i + k
                if constraint is None:
                    cands.append(Candidate(text=self._request(prompt.text, None, seed)))
                    continue
                error = None
                for attempt in range(self.retries + 1):
                    # a greedy answer outside the constraint would repeat: retries sample
                    greedy = k == 0 and self.greedy_first and attempt == 0
                    text = self._request(prompt.text, constraint, seed + 7919 * attempt, greedy=greedy)
                    try:
                        acts = (constraint.parse_json(text) if self.mode.startswith("json")
                                else constraint.parse(text))
                    except ConstraintViolation as exc:
                        error = exc
                        continue
                    cands.append(Candidate(actions=tuple(acts), text=text, meta={"attempts": attempt + 1}))
                    break
                else:
                    raise ConstraintViolation(f"{self.url}: {self.retries + 1} answers outside the vocabulary "
                                              f"constraint (mode {self.mode}); last: {error}")
            out.append(cands)
        return out


@register_backend("http")
def build_http_backend(*, url: str, model: str = "", constraint_mode: str = "json_schema", api_key: str = "",
                       temperature: float = 1.0, timeout: float = 60.0, retries: int = 3,
                       seed: int = 0, greedy_first: bool = True) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(url, model=model, constraint_mode=constraint_mode, api_key=api_key,
                                   temperature=temperature, timeout=timeout, retries=retries, seed=seed,
                                   greedy_first=greedy_first)
