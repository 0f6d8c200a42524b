"""The probe's connections: opened together, held silent, and always closed together.

Silent connections send nothing; partial ones send half a request line; stalled ones send
headers declaring a body that never comes. Against a TLS server, partial and stalled ones
complete the handshake first and stall inside it, silent ones never send a ClientHello, and
stalled handshakes send a ClientHello and nothing after it. A server without
ReadHeaderTimeout/ReadTimeout keeps one goroutine per connection for as long as the peer
stays quiet.
"""

from __future__ import annotations

import socket
import ssl

from skewcheck.leak.config import PROBE_KINDS

CONNECT_TIMEOUT_S = 2.0  # loopback connects in microseconds; slower means a dead or drowning target
STALLED_BODY_BYTES = 4096  # declared, never sent; small enough for any server's body limit
USER_AGENT = "skewcheck-leak-probe"
# what a server may send a stalled handshake before it waits (its hello, certificate, tickets);
# past this much a peer is streaming, and the connection counts as open
_HANDSHAKE_READ_LIMIT = 1 << 20
_READ_CHUNK = 1 << 16
_IN_SESSION_KINDS = ("partial", "stalled")  # over TLS these stall after a completed handshake


def probe_tls_context() -> ssl.SSLContext:
    """The probe's TLS client: it sends nothing secret and must reach self-signed test servers,
    so it verifies nothing; HTTP/1.1 only, so each probe holds one server connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


def client_hello(context: ssl.SSLContext) -> bytes:
    """The first flight of a real handshake, to be sent and then never followed up."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    session = context.wrap_bio(incoming, outgoing)
    try:
        session.do_handshake()
    except ssl.SSLWantReadError:
        pass  # it now waits for the server's answer, which it will never read
    return outgoing.read()


class ProbeConnections:
    """The probe's sockets: opened together, held, and always closed together."""

    def __init__(self, host: str, port: int, counts: dict[str, int], path: str,
                 tls: bool = False) -> None:
        self.host, self.port = host, port
        self.counts = {kind: counts[kind] for kind in PROBE_KINDS if kind in counts}
        self.path = path
        self.tls = tls
        self.sockets: list[socket.socket] = []
        self.kinds: list[str] = []  # the kind of each socket, in the same order
        self.opened = {kind: 0 for kind in self.counts}
        self._context = probe_tls_context()

    def __enter__(self) -> ProbeConnections:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        for kind, count in self.counts.items():
            for _ in range(count):
                sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
                self.sockets.append(sock)  # listed first, so close() reaches it whatever fails next
                self.kinds.append(kind)
                if self.tls and kind in _IN_SESSION_KINDS:
                    sock = self.sockets[-1] = self._context.wrap_socket(sock)
                opening = self._opening_bytes(kind)
                if opening:
                    sock.sendall(opening)
                self.opened[kind] += 1

    def closed_by_server(self) -> int:
        """Connections the server has closed (or answered, e.g. 408) by now."""
        return sum(_closed(sock, kind) for sock, kind in zip(self.sockets, self.kinds))

    @property
    def all_closed_by_server(self) -> bool:
        return bool(self.sockets) and self.closed_by_server() == len(self.sockets)

    def close(self) -> None:
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass
        self.sockets.clear()
        self.kinds.clear()

    def _opening_bytes(self, kind: str) -> bytes:
        if kind == "handshake":
            return client_hello(self._context)
        if kind == "partial":
            return f"GET {self.path} HTTP/1.1".encode()  # no CRLF: the request line never ends
        if kind == "stalled":
            return (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    f"User-Agent: {USER_AGENT}\r\nContent-Type: application/octet-stream\r\n"
                    f"Content-Length: {STALLED_BODY_BYTES}\r\n\r\n").encode()
        return b""


def _closed(sock: socket.socket, kind: str) -> bool:
    if isinstance(sock, ssl.SSLSocket):
        return _session_closed(sock)
    if kind == "handshake":
        return _stream_closed(sock)
    try:
        sock.settimeout(0)  # a peek must not wait: a silent open socket answers at once
        sock.recv(1, socket.MSG_PEEK)
        return True  # end of stream, or a response such as 408
    except BlockingIOError:
        return False  # still open and silent
    except OSError:
        return True  # reset by the server


def _stream_closed(sock: socket.socket) -> bool:
    """A stalled handshake's server has answered our hello: only end of stream or reset is a close."""
    sock.settimeout(0)
    read = 0
    try:
        while read < _HANDSHAKE_READ_LIMIT:
            chunk = sock.recv(_READ_CHUNK)
            if not chunk:
                return True
            read += len(chunk)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return False


def _session_closed(sock: ssl.SSLSocket) -> bool:
    """A TLS session: post-handshake tickets are no answer; a close, an alert or a response is."""
    sock.settimeout(0)
    try:
        sock.recv(1)
        return True  # a response (e.g. 400/408), or b"" at the end
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return False
    except OSError:  # ssl.SSLError included: an alert, a reset
        return True
