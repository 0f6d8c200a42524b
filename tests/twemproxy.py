"""A real twemproxy (Debian's nutcracker) in front of real memcached servers, all on 127.0.0.1 at
free ports: keys set through a ketama pool land on the memcached its continuum picks, and each
memcached is then asked which keys it holds. Killed at the end."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from loopback_servers import LineSocket, free_ports, kill_all

MEMCACHED = 4
READY_TIMEOUT_S = 20
GET_BATCH = 100  # keys per multi-get


def _wait_listening(port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")
            time.sleep(0.05)


class _Text(LineSocket):
    """The memcached text protocol over one connection."""

    def set_all(self, keys: list[bytes]) -> None:
        self.sock.sendall(b"".join(b"set %s 0 0 1\r\nx\r\n" % k for k in keys))
        for key in keys:
            reply = self._line()
            if reply != b"STORED":
                raise RuntimeError(f"set {key!r}: {reply!r}")

    def flush(self) -> None:
        self.sock.sendall(b"flush_all\r\n")
        if self._line() != b"OK":
            raise RuntimeError("flush_all failed")

    def held(self, keys: list[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        for lo in range(0, len(keys), GET_BATCH):
            self.sock.sendall(b"get " + b" ".join(keys[lo:lo + GET_BATCH]) + b"\r\n")
            while True:
                line = self._line()
                if line == b"END":
                    break
                if not line.startswith(b"VALUE "):
                    raise RuntimeError(f"get: {line!r}")
                found.add(line.split(b" ")[1])
                self._line()  # the value
        return found


@dataclass
class Twemproxy:
    root: Path
    memcached_ports: list[int]
    pools: dict[str, int]  # pool name -> listen port
    procs: list[subprocess.Popen] = field(default_factory=list)

    def servers_of(self, pool: str, keys: list[bytes]) -> list[int]:
        """Set every key through the pool; the index of the memcached that holds each (the
        servers are emptied first: another pool may have put the same key elsewhere)."""
        for port in self.memcached_ports:
            server = _Text(port)
            try:
                server.flush()
            finally:
                server.close()
        proxy = _Text(self.pools[pool])
        try:
            proxy.set_all(keys)
        finally:
            proxy.close()
        where: dict[bytes, int] = {}
        for index, port in enumerate(self.memcached_ports):
            server = _Text(port)
            try:
                for key in server.held(keys):
                    where[key] = index
            finally:
                server.close()
        return [where[k] for k in keys]

    def stop(self) -> None:
        kill_all(self.procs)


def start_twemproxy(memcached: str, nutcracker: str,
                    pools: dict[str, tuple[str, bool]]) -> Iterator[Twemproxy]:
    """`pools`: name -> (key hash, whether servers carry a name); each pool spans every
    memcached, weight 1."""
    root = Path(tempfile.mkdtemp(prefix="skewcheck-twemproxy-"))
    ports = free_ports(MEMCACHED + len(pools) + 1)
    proxy = Twemproxy(root, ports[:MEMCACHED], dict(zip(pools, ports[MEMCACHED:-1])))
    try:
        for port in proxy.memcached_ports:
            proxy.procs.append(subprocess.Popen(
                [memcached, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16",
                 "-u", pwd.getpwuid(os.geteuid()).pw_name],  # memcached asks, as root
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        config = []
        for name, (key_hash, named) in pools.items():
            config += [f"{name}:", f"  listen: 127.0.0.1:{proxy.pools[name]}",
                       f"  hash: {key_hash}", "  distribution: ketama",
                       "  auto_eject_hosts: false", "  timeout: 5000", "  servers:"]
            config += [f"   - 127.0.0.1:{port}:1" + (f" mc-{i}" if named else "")
                       for i, port in enumerate(proxy.memcached_ports)]
        (root / "nutcracker.yml").write_text("\n".join(config) + "\n")
        proxy.procs.append(subprocess.Popen(
            [nutcracker, "-c", str(root / "nutcracker.yml"), "-o", str(root / "nutcracker.log"),
             "-a", "127.0.0.1", "-s", str(ports[-1]), "-v", "4"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + READY_TIMEOUT_S
        for port in [*proxy.memcached_ports, *proxy.pools.values()]:
            _wait_listening(port, deadline)
        yield proxy
    finally:
        proxy.stop()
        shutil.rmtree(root, ignore_errors=True)
