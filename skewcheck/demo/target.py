"""The demo target's HTTP front (stdlib threading server, HTTP/1.1 keep-alive) and its in-process API."""

from __future__ import annotations

import socket
import socketserver
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from skewcheck.demo.app import OrdersApp, Response, error_response, json_response
from skewcheck.errors import UsageError

MAX_BODY_BYTES = 64 * 1024
IDLE_TIMEOUT_S = 120.0  # an idle keep-alive connection ends, so it cannot pin a thread forever


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "skewcheck-demo"
    disable_nagle_algorithm = True  # small answers must not wait on delayed ACKs
    timeout = IDLE_TIMEOUT_S
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        app = self.server.app
        if path == "/orders":
            self._send(app.get_orders(query))
        elif path == "/metrics":
            self._send(app.metrics())
        elif path == "/healthz":
            self._send(json_response(200, {"status": "ok", "shards": app.shards, "routing": app.routing}))
        else:
            self._send(error_response(404, f"no such path {path!r}"))

    def do_POST(self) -> None:
        path = self.path.partition("?")[0]
        body = self._read_body()
        if body is None:
            return
        if path == "/orders":
            self._send(self.server.app.post_order(body))
        elif path in ("/metrics", "/healthz"):
            self._send(error_response(405, f"{path} answers GET only"), [("Allow", "GET")])
        else:
            self._send(error_response(404, f"no such path {path!r}"))

    def _read_body(self) -> bytes | None:
        """The request body by Content-Length; None once an error answer has been sent."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # an unread chunked body would corrupt the next request
            self._send(error_response(411, "send the body with a Content-Length"))
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(error_response(413 if length > 0 else 400, "bad or too large Content-Length"))
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, resp: Response, extra: list[tuple[str, str]] | None = None) -> None:
        """Status line, headers and body in one write: one syscall per answer, correct Content-Length."""
        phrase = HTTPStatus(resp.status).phrase
        lines = [f"HTTP/1.1 {resp.status} {phrase}",
                 f"Content-Type: {resp.content_type}",
                 f"Content-Length: {len(resp.body)}"]
        lines += [f"{k}: {v}" for k, v in resp.headers + (extra or [])]
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")  # parse_request kept it open because the client asked
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + resp.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # thousands of requests a second: an access log would cost more than the answers


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # connection threads never keep the process alive
    block_on_close = False  # no list of threads: memory stays flat however many connections came and went
    request_queue_size = 256  # Locust opens a burst of connections at spawn time

    def __init__(self, address: tuple[str, int], app: OrdersApp) -> None:
        self.app = app
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's getfqdn(): a reverse DNS lookup can hang
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._conns_lock:
            if open_:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def close_connections(self) -> None:
        """Wake every keep-alive connection thread so a stop leaves nothing serving."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that resets its connection is normal under load, not worth a traceback


def format_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class DemoTarget:
    """The sharded orders service in this process: `with DemoTarget(...) as t: requests to t.url`."""

    def __init__(self, shards: int = 100, routing: str = "mod", key_type: str = "int", pool_size: int = 4,
                 service_ms: float = 5.0, wait_timeout_ms: float = 200.0,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise UsageError(f"--port must be 0..65535, got {port}")
        self.app = OrdersApp(shards, routing, key_type, pool_size, service_ms, wait_timeout_ms)
        self.host, self.port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_scenario(cls, scenario: Any, host: str = "127.0.0.1", port: int = 0) -> DemoTarget:
        """Shards, primary router, key type and the demo: section of a loaded Scenario."""
        demo = scenario.demo
        return cls(scenario.shards, scenario.routing.primary, scenario.routing.key_type, demo.pool_size,
                   demo.service_ms, demo.wait_timeout_ms, host, port)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("demo target not started")
        return format_url(self.host, self._server.server_port)

    def start(self) -> str:
        """Bind, serve in a background thread, and return the base URL (the real port when port=0)."""
        with self._lock:
            if self._server is not None:
                return self.url
            try:
                server = _Server((self.host, self.port), self.app)
            except OSError as exc:
                raise UsageError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
            self._server = server
            # a short poll interval: stop() waits up to one interval for the accept loop to notice
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="demo-target", daemon=True)
            self._thread.start()
            return self.url

    def stop(self) -> None:
        """Stop serving, release the port and end open connections; safe to call twice."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> DemoTarget:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
