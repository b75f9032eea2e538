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
output.

Bounded, whatever the server does (``anticipation.timeout`` / ``retries`` / ``video_timeout``):

* ``timeout``: wall-clock seconds of one attempt, connection + headers + body (a watchdog shuts the socket at
  the deadline: a server that drips a byte every half second cannot hold a request longer);
* ``video_timeout``: wall-clock seconds of one ``generate`` call (one video's forecasts), retries included;
* ``max_bytes``: an answer body larger than this is refused (never read whole into memory);
* retried with exponential back-off (``Retry-After`` honoured, up to 30 s): network errors, timeouts, 5xx, 429,
  and malformed answers (not UTF-8, not JSON, no ``choices``, a list where a string belongs); other 4xx and an
  oversized body fail at once;
* every failure is an :class:`HTTPError` (the stage records it as stage ``anticipation``) naming the URL, the
  status and a short excerpt of the body.

Only the standard library is used (``http.client``; no ``openai`` package needed). Proxies from the environment
are not used: point ``url`` at the server.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import threading
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

from videoact.llm.base import Candidate, Prompt, register_backend
from videoact.llm.constraint import ActionConstraint, ConstraintViolation

MODES = ("json_schema", "json_object", "grammar", "regex", "none")
JSON_INSTRUCTION = ('\nAnswer with JSON only: {{"actions": [{{"verb": ..., "noun": ...}}, ...]}} with exactly {z} '
                    "future actions.")


class HTTPError(RuntimeError):
    """The server could not be reached or kept failing; the message names the URL, the status and an excerpt."""


class _Retry(Exception):
    """One attempt failed in a way another attempt may not (network, timeout, 5xx, 429, malformed answer)."""

    def __init__(self, message: str, wait: float = 0.0) -> None:
        super().__init__(message)
        self.wait = wait


def excerpt(body: bytes | str, n: int = 160) -> str:
    """The first ``n`` characters of a body, on one line (undecodable bytes replaced)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return repr(text[:n] + ("..." if len(text) > n else ""))


def answer_text(answer: Any, *, chat: bool) -> str:
    """The generated text of an OpenAI-style answer, its shape checked: ``ValueError`` saying what is wrong."""
    if not isinstance(answer, dict):
        raise ValueError(f"the answer is a JSON {type(answer).__name__}, not an object")
    choices = answer.get("choices")
    if not isinstance(choices, list):
        raise ValueError("the answer has no 'choices' list"
                         + (f" (error: {excerpt(json.dumps(answer['error']))})" if "error" in answer else ""))
    if not choices:
        raise ValueError("the answer's 'choices' list is empty")
    first = choices[0]
    if not isinstance(first, dict):
        raise ValueError(f"choices[0] is a {type(first).__name__}, not an object")
    if chat:
        message = first.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise ValueError("choices[0].message.content is missing or not a string")
        return message["content"]
    if not isinstance(first.get("text"), str):
        raise ValueError("choices[0].text is missing or not a string")
    return first["text"]


def _retry_after(value: str | None) -> float:
    try:
        wait = float(value) if value is not None else 0.0
    except ValueError:
        return 0.0
    return min(max(wait, 0.0), 30.0) if math.isfinite(wait) else 0.0


class OpenAICompatibleBackend:
    name = "http"

    def __init__(self, url: str, *, model: str = "", constraint_mode: str = "json_schema", api_key: str = "",
                 temperature: float = 1.0, top_p: float = 1.0, goal_tokens: int = 32, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 0.5, seed: int = 0, greedy_first: bool = True,
                 video_timeout: float = 600.0, max_bytes: int = 4 << 20) -> None:
        if constraint_mode not in MODES:
            raise ValueError(f"constraint_mode must be one of {MODES}, got {constraint_mode!r}")
        if not url:
            raise ValueError("backend http needs the server URL, e.g. http://127.0.0.1:8080/v1")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"backend http: {url!r} is not an http(s) URL, e.g. http://127.0.0.1:8080/v1")
        for key, value in (("timeout", timeout), ("video_timeout", video_timeout)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"backend http: {key} must be a positive number of seconds, got {value!r}")
        if not (isinstance(retries, int) and retries >= 0):
            raise ValueError(f"backend http: retries must be an integer >= 0, got {retries!r}")
        self.url, self.model, self.mode, self.api_key = url.rstrip("/"), model, constraint_mode, api_key
        self.temperature, self.top_p, self.goal_tokens = temperature, top_p, goal_tokens
        self.timeout, self.retries, self.backoff, self.seed = float(timeout), retries, backoff, seed
        self.video_timeout, self.max_bytes = float(video_timeout), int(max_bytes)
        self.greedy_first = greedy_first
        self._video_deadline = math.inf

    # ------------------------------------------------------------------ transport

    def _attempt(self, url: str, data: bytes, headers: dict[str, str], deadline: float) -> bytes:
        """One POST, bounded by ``deadline`` (``time.monotonic()``) as a whole; the body of a 2xx answer."""
        parts = urllib.parse.urlsplit(url)
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Retry("no time left")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=left)
        fired = threading.Event()
        held: list[socket.socket] = []  # the socket, kept here: http.client drops conn.sock for a closing answer

        def watchdog() -> None:  # unblocks a read that a dripping server keeps alive past the deadline
            fired.set()
            for sock in held:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(left, watchdog)
        timer.daemon = True
        timer.start()
        try:
            conn.connect()
            held.append(conn.sock)
            if fired.is_set():  # the deadline passed while connecting
                raise TimeoutError
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request("POST", path, body=data, headers=headers)
            resp = conn.getresponse()
            size = int(resp.headers.get("Content-Length") or 0)
            if size > self.max_bytes:
                raise HTTPError(f"{url}: HTTP {resp.status}: answer of {size} bytes, over the {self.max_bytes}-byte "
                                "limit")
            body = bytearray()
            while chunk := resp.read1(65536):
                body += chunk
                if len(body) > self.max_bytes:
                    raise HTTPError(f"{url}: HTTP {resp.status}: answer over the {self.max_bytes}-byte limit "
                                    f"(starts {excerpt(bytes(body[:200]))})")
            if fired.is_set():
                raise TimeoutError
            if size and len(body) < size:
                raise _Retry(f"truncated answer: {len(body)} of {size} bytes (HTTP {resp.status})")
        except (HTTPError, _Retry):
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if fired.is_set() or isinstance(exc, TimeoutError):
                raise _Retry(f"no complete answer within the {self.timeout:g} s timeout") from None
            raise _Retry(f"{type(exc).__name__}: {exc}") from None
        finally:
            timer.cancel()
            conn.close()
        if resp.status == 429 or resp.status >= 500:
            wait = _retry_after(resp.headers.get("Retry-After"))
            raise _Retry(f"HTTP {resp.status}: {excerpt(bytes(body))}", wait=wait)
        if not 200 <= resp.status < 300:  # a bad request does not get better by retrying
            raise HTTPError(f"{url}: HTTP {resp.status}: {excerpt(bytes(body))}")
        return bytes(body)

    def _post(self, path: str, body: dict[str, Any]) -> str:
        """The generated text of one request: tries until a well-formed answer, or ``HTTPError``."""
        url = f"{self.url}/{path}"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode()
        last = ""
        for attempt in range(self.retries + 1):
            now = time.monotonic()
            if now >= self._video_deadline:
                raise HTTPError(f"{url}: the {self.video_timeout:g} s budget of this video ran out "
                                f"(anticipation.video_timeout){f'; last: {last}' if last else ''}")
            wait = 0.0
            try:
                raw = self._attempt(url, data, headers, min(now + self.timeout, self._video_deadline))
                try:
                    return answer_text(json.loads(raw.decode("utf-8")), chat=path.startswith("chat"))
                except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
                    raise _Retry(f"malformed answer ({type(exc).__name__}: {exc}): {excerpt(raw)}") from None
            except _Retry as exc:
                last, wait = str(exc), exc.wait
            if attempt < self.retries:
                pause = max(wait, self.backoff * 2 ** attempt)
                time.sleep(max(0.0, min(pause, self._video_deadline - time.monotonic())))
        raise HTTPError(f"{url}: no answer after {self.retries + 1} tries (last: {last})")

    def _request(self, prompt: str, constraint: ActionConstraint | None, seed: int, *, greedy: bool = False) -> str:
        body: dict[str, Any] = {"temperature": 0.0 if greedy else self.temperature, "top_p": self.top_p, "seed": seed}
        if self.model:
            body["model"] = self.model
        if constraint is None:
            body.update(prompt=prompt, max_tokens=self.goal_tokens, stop=["\n"])
            return self._post("completions", body)
        longest = max(map(len, constraint.vocab.verbs)) + max(map(len, constraint.vocab.nouns)) + 3
        if self.mode in ("json_schema", "json_object"):
            schema = constraint.json_schema()
            fmt = ({"type": "json_schema", "json_schema": {"name": "action_forecast", "strict": True, "schema": schema}}
                   if self.mode == "json_schema" else {"type": "json_object", "schema": schema})
            body.update(messages=[{"role": "user", "content": prompt + JSON_INSTRUCTION.format(z=constraint.z)}],
                        response_format=fmt, max_tokens=constraint.z * (longest + 24) + 16)
            return self._post("chat/completions", body)
        body.update(prompt=prompt, max_tokens=constraint.z * longest + 1)
        if self.mode == "grammar":
            body["grammar"] = constraint.gbnf()
        elif self.mode == "regex":
            body["structured_outputs"] = {"regex": constraint.regex()}
        return self._post("completions", body)

    # ------------------------------------------------------------------ protocol

    def generate(self, prompts: Sequence[Prompt], n: int, constraint: ActionConstraint | None) -> list[list[Candidate]]:
        """``n`` candidates per prompt; all of it within ``video_timeout`` seconds (one video's forecasts)."""
        self._video_deadline = time.monotonic() + self.video_timeout
        try:
            return self._generate(prompts, n, constraint)
        finally:
            self._video_deadline = math.inf

    def _generate(self, prompts: Sequence[Prompt], n: int, constraint: ActionConstraint | None
                  ) -> list[list[Candidate]]:
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
                       seed: int = 0, greedy_first: bool = True, video_timeout: float = 600.0,
                       max_bytes: int = 4 << 20) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(url, model=model, constraint_mode=constraint_mode, api_key=api_key,
                                   temperature=temperature, timeout=timeout, retries=retries, seed=seed,
                                   greedy_first=greedy_first, video_timeout=video_timeout, max_bytes=max_bytes)
