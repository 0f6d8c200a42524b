"""Real servers the router tests start on 127.0.0.1 (a Redis Cluster, twemproxy in front of
memcached): free ports for them, their end, and one CRLF-framed connection as the Redis (RESP)
and memcached text protocols both speak — read a line, read exactly n bytes and the CRLF."""

from __future__ import annotations

import signal
import socket
import subprocess


def free_ports(n: int, bus_offset: int | None = None) -> list[int]:
    """n distinct free ports; with `bus_offset`, port + bus_offset free too, below 65536 (a Redis
    Cluster node also listens on its port + 10000, the cluster bus)."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in ports:
            continue
        if bus_offset is not None:
            if port + bus_offset >= 65536:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + bus_offset))
                except OSError:
                    continue
        ports.append(port)
    return ports


def kill_all(procs: list[subprocess.Popen]) -> None:
    """SIGKILL every server still running, then wait for each (bounded)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


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
