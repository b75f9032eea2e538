"""A loopback HTTP server for the model-zoo tests: serves files written locally, with the faults real hosts have.

Nothing leaves 127.0.0.1; the server runs in a thread for the duration of a ``with`` block::

    with LoopbackServer(tmp_path / "www") as srv:
        url = srv.url("weights.pth")          # http://127.0.0.1:PORT/weights.pth
        srv.faults["weights.pth"] = "drop"    # the next request for it is cut after half the body

Faults (per file name, consumed by one request each unless the value ends with ``!``, which makes it stick):
``404``, ``500`` (a server error, worth a retry), ``html`` (a 200 with an HTML error page, as a captive portal or
a hub's login wall sends), ``html-octet`` (the same page labelled ``application/octet-stream``), ``truncate``
(``Content-Length`` promises the whole file, half of it is sent, then the connection closes), ``drop`` (the same,
meant to be retried: the next request gets the whole file).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class LoopbackServer:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.faults: dict[str, str] = {}
        self.requests: list[str] = []  # paths requested, in order
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, name: str) -> str:
        assert self._httpd is not None, "start the server first (with LoopbackServer(...) as srv)"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/{name}"

    def __enter__(self) -> LoopbackServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # http.server's name
                name = self.path.lstrip("/").split("?", 1)[0]
                server.requests.append(name)
                fault = server.faults.get(name, "")
                if fault and not fault.endswith("!"):
                    del server.faults[name]
                fault = fault.rstrip("!")
                path = server.root / name
                if fault == "404" or not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                if fault == "500":
                    self.send_error(500, "Internal Server Error")
                    return
                if fault in ("html", "html-octet"):
                    body = b"<!DOCTYPE html><html><body><h1>Sign in to continue</h1></body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8" if fault == "html"
                                     else "application/octet-stream")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if fault in ("truncate", "drop"):
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)  # a quick shutdown at the end of the block
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
