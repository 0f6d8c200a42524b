"""The sidecar's HTTP endpoints (stdlib server, one thread per request, read-only views).

    GET /metrics   Prometheus text: the design's skewcheck_* metrics for this instance
    GET /verdict   the result document (summary + verdict) of what this instance counted
    GET /state     whole-run counts as a frame, plus partitions and offsets (what the gate adds up)
    GET /healthz   200 while the consumer loop turns (liveness)
    GET /readyz    200 once partitions are assigned and consumed from (readiness)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from skewcheck.errors import UsageError
from skewcheck.metrics import exposition
from skewcheck.sidecar.state import SidecarState

ENDPOINTS = ("/metrics", "/verdict", "/state", "/healthz", "/readyz")


class SidecarServer:
    def __init__(self, host: str, port: int, state: SidecarState) -> None:
        handler = type("SidecarHandler", (_Handler,), {"state": state})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="skewcheck-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SidecarServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    state: SidecarState
    server_version = "skewcheck-sidecar"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        state = self.state
        if path == "/metrics":
            body = exposition(state.metrics_snapshot, state.scenario.metrics.shard_series_limit,
                              state.scenario.metrics.latency_series_limit)
            self._send(200, body, CONTENT_TYPE_LATEST)
        elif path == "/verdict":
            self._json(state.result())
        elif path == "/state":
            self._json(state.state_document())
        elif path == "/healthz":
            with state.lock:
                alive = state.alive()
            self._text(200 if alive else 503, "ok" if alive else "the consumer loop has stalled")
        elif path == "/readyz":
            with state.lock:
                ready, error = state.ready, state.kafka_error
            reason = "not consuming yet: no partition assigned" + (f" ({error})" if error else "")
            self._text(200 if ready else 503, "ready" if ready else reason)
        else:
            self._text(404, f"not found; endpoints: {' '.join(ENDPOINTS)}")

    def _json(self, doc: dict[str, Any]) -> None:
        body = json.dumps(doc, allow_nan=False).encode()  # documents are plain JSON already
        self._send(200, body, "application/json")

    def _text(self, status: int, text: str) -> None:
        self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would drown the sidecar's own lines
