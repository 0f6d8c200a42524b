"""One CRLF-framed connection to a server on 127.0.0.1, as the Redis (RESP) and memcached text
protocols both speak: read a line, read exactly n bytes and the CRLF after them."""

from __future__ import annotations

import socket


class LineSocket:
    def __init__(self, port: int, peer: str = "the server") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.peer = peer
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError(f"{self.peer} closed the connection")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data
