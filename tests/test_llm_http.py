"""The HTTP language-model backend against a loopback server that misbehaves in every way we know of.

Each mode is a real HTTP exchange on 127.0.0.1 (a ``ThreadingHTTPServer`` started and stopped here): the backend
either returns valid vocabulary ids or raises one ``HTTPError`` naming the URL, the status and an excerpt, within
its time budget; never a KeyError / IndexError / TypeError / UnicodeDecodeError, never a hang.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from videoact.heads.anticipation.data import ActionVocab
from videoact.llm.base import Prompt
from videoact.llm.constraint import ActionConstraint
from videoact.llm.http import HTTPError, OpenAICompatibleBackend, answer_text

VOCAB = ActionVocab("t", ("take", "put"), ("pan", "cup"))
CONSTRAINT = ActionConstraint(VOCAB, z=2)
PROMPT = [Prompt(observed=((0, 0),), text="Observed: take pan\nFuture:")]
GOOD = json.dumps({"choices": [{"message": {"content": json.dumps(
    {"actions": [{"verb": "put", "noun": "cup"}, {"verb": "take", "noun": "pan"}]})}}]}).encode()


class _Handler(BaseHTTPRequestHandler):
    counts: ClassVar[Counter] = Counter()

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, *,
              length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # one branch per misbehaviour
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mode = self.path.strip("/").split("/")[0]
        n = self.counts[mode] = self.counts[mode] + 1
        if mode == "ok" or (mode.endswith("_then_ok") and n > 1):
            self._send(200, GOOD)
        elif mode == "drip":  # headers at once, then a byte every 0.3 s
            self.send_response(200)
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            for b in GOOD:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.3)
        elif mode == "drip_headers":  # the status line itself, a byte every 0.3 s
            for b in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 20:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.3)
        elif mode == "stall":
            time.sleep(8)
        elif mode in ("e500_then_ok", "e503"):
            self._send(int(mode[1:4]), b"<html><body>Service Unavailable: model loading</body></html>")
        elif mode == "e429_then_ok":
            self._send(429, b'{"error": "rate limited"}', {"Retry-After": "0.2"})
        elif mode == "e404":
            self._send(404, b'{"error": {"message": "model tiny not found"}}')
        elif mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
        elif mode == "truncated":
            self._send(200, GOOD[:10], length=len(GOOD))
        elif mode == "oversized":
            self._send(200, b"{}", length=50 << 20)
        elif mode == "oversized_stream":  # no Content-Length: read until the connection closes
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"x" * 65536)
        elif mode == "no_choices":
            self._send(200, b'{"error": {"message": "context length exceeded"}}')
        elif mode == "empty_choices":
            self._send(200, b'{"choices": []}')
        elif mode == "list_content":
            self._send(200, b'{"choices": [{"message": {"content": ["put", "cup"]}}]}')
        elif mode == "choice_string":
            self._send(200, b'{"choices": ["put cup"]}')
        elif mode == "bad_utf8":
            self._send(200, b'{"choices": [{"message": {"content": "\xff\xfe\xfd"}}]}')
        elif mode == "bad_json_then_ok":
            self._send(200, b"{'choices': not json")
        elif mode == "html200":
            self._send(200, b"<!DOCTYPE html><html><title>Login</title></html>")
        elif mode == "deep_json":
            self._send(200, b"[" * 100_000 + b"]" * 100_000)
        elif mode == "top_level_list":
            self._send(200, b'[{"choices": []}]')
        else:
            self._send(500, b"unknown mode")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _backend(server: str, mode: str, **kw: object) -> OpenAICompatibleBackend:
    _Handler.counts[mode] = 0
    opts = {"timeout": 1.0, "retries": 2, "backoff": 0.01, "video_timeout": 30.0, "max_bytes": 1 << 20, **kw}
    return OpenAICompatibleBackend(f"{server}/{mode}/v1", constraint_mode="json_schema", **opts)  # type: ignore


@pytest.mark.parametrize("mode, attempts", [("ok", 1), ("e500_then_ok", 2), ("e429_then_ok", 2),
                                            ("bad_json_then_ok", 2)])
def test_recoverable_answers_end_in_vocabulary_ids(server: str, mode: str, attempts: int) -> None:
    out = _backend(server, mode).generate(PROMPT, 1, CONSTRAINT)
    assert out[0][0].actions == ((1, 1), (0, 0))
    assert _Handler.counts[mode] == attempts


# mode, the text the error must hold, tries the server sees (retries=2: 3 for a retried failure)
FAILURES = [
    ("drip", "timeout", 3), ("drip_headers", "timeout", 3), ("stall", "timeout", 3),
    ("e503", "HTTP 503: '<html><body>Service Unavailable", 3), ("e404", "HTTP 404: '{\"error\"", 1),
    ("reset", "no answer after 3 tries", 3), ("truncated", "truncated answer: 10 of", 3),
    ("oversized", "over the 1048576-byte limit", 1), ("oversized_stream", "over the 1048576-byte limit", 1),
    ("no_choices", "no 'choices' list (error: '{\"message\": \"context length exceeded\"}')", 3),
    ("empty_choices", "'choices' list is empty", 3), ("list_content", "content is missing or not a string", 3),
    ("choice_string", "choices[0] is a str", 3), ("bad_utf8", "UnicodeDecodeError", 3),
    ("html200", "JSONDecodeError", 3), ("deep_json", "RecursionError", 3),
    ("top_level_list", "a JSON list, not an object", 3),
]


@pytest.mark.parametrize("mode, message, tries", FAILURES, ids=[f[0] for f in FAILURES])
def test_misbehaving_server_is_one_bounded_http_error(server: str, mode: str, message: str, tries: int) -> None:
    backend = _backend(server, mode)
    t0 = time.monotonic()
    with pytest.raises(HTTPError) as info:
        backend.generate(PROMPT, 1, CONSTRAINT)
    elapsed = time.monotonic() - t0
    text = str(info.value)
    assert message in text and f"{server}/{mode}/v1/chat/completions" in text and "\n" not in text
    assert _Handler.counts[mode] == tries
    assert elapsed < 3 * 1.0 + 1.5  # three 1 s attempts and their back-off, whatever the server does


def test_video_budget_bounds_all_retries(server: str) -> None:
    backend = _backend(server, "stall", retries=50, video_timeout=2.5)
    t0 = time.monotonic()
    with pytest.raises(HTTPError, match=r"the 2.5 s budget of this video ran out \(anticipation.video_timeout\)"):
        backend.generate(PROMPT, 1, CONSTRAINT)
    assert time.monotonic() - t0 < 3.5
    assert _Handler.counts["stall"] <= 3


def test_answer_shapes_are_checked_without_type_errors() -> None:
    assert answer_text({"choices": [{"text": "take pan"}]}, chat=False) == "take pan"
    for bad in (None, 3, "x", [], {"choices": None}, {"choices": [None]}, {"choices": [{"text": 5}]},
                {"choices": [{"message": "hi"}]}):
        with pytest.raises(ValueError):
            answer_text(bad, chat=not isinstance(bad, dict) or "message" in str(bad))


def test_bad_settings_are_refused_naming_the_key() -> None:
    for kw, key in (({"timeout": 0}, "timeout"), ({"timeout": float("inf")}, "timeout"),
                    ({"video_timeout": -1}, "video_timeout"), ({"retries": -1}, "retries")):
        with pytest.raises(ValueError, match=key):
            OpenAICompatibleBackend("http://127.0.0.1:1/v1", **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an http"):
        OpenAICompatibleBackend("127.0.0.1:8080/v1")


def test_run_records_a_failing_server_as_stage_anticipation(server: str, shared_data: Path, tmp_path: Path) -> None:
    """``videoact run`` with the http backend on a real clip: the server's 503 is the video's recorded failure
    (stage ``anticipation``, the status and an excerpt), not an ``internal`` traceback."""
    from videoact.cli import main

    repo = Path(__file__).resolve().parents[1]
    amap = pd.read_csv(repo / "configs/anticipation/nw_ucla_to_epic55.csv", dtype=str, keep_default_na=False)
    amap.loc[amap["verb"] == "", ["verb", "noun"]] = ["walk", "Nothing"]  # every class observed
    amap.to_csv(tmp_path / "map.csv", index=False)
    out = tmp_path / "run"
    _Handler.counts["e503"] = 0
    rc = main(["run", "-q", str(shared_data / "videos" / "demo_skeleton.mp4"), "-o", str(out), "pose.max_frames=96",
               "anticipation.enabled=true", "anticipation.backend=http", f"anticipation.url={server}/e503/v1",
               f"anticipation.vocab_file={shared_data / 'anticipation/epic_kitchens_55'}",
               f"anticipation.action_map={tmp_path / 'map.csv'}", "anticipation.timeout=2",
               "anticipation.retries=1", "anticipation.k=1", "anticipation.z=2"])
    manifest = json.loads((out / "manifest.json").read_text())
    (entry,) = manifest["videos"].values()
    assert rc == 1 and entry["status"] == "failed" and entry["stage"] == "anticipation", entry
    assert "HTTP 503" in entry["error"] and "Service Unavailable" in entry["error"]
    assert "Traceback" not in entry["error"] and _Handler.counts["e503"] == 2
