"""A real 3-primary Redis Cluster for the routing tests: Debian's redis-server on 127.0.0.1 at free
ports, data in a temp dir, joined by `redis-cli --cluster create`; killed at the end. Commands
go over a plain RESP connection, so keys are sent as bytes, whatever they hold."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from loopback_servers import LineSocket, free_ports, kill_all

NODES = 3
READY_TIMEOUT_S = 30  # cluster create and slot propagation on a loaded 2-core machine


def _encode(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class Resp(LineSocket):
    """A minimal RESP2 client: pipelined commands, integer / bulk / array replies."""

    def __init__(self, port: int) -> None:
        super().__init__(port, "redis")

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            return None if int(rest) < 0 else self._exact(int(rest))
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected RESP reply {line!r}")

    def pipeline(self, commands: list[tuple[bytes, ...]], batch: int = 2000) -> list:
        out = []
        for lo in range(0, len(commands), batch):
            part = commands[lo:lo + batch]
            self.sock.sendall(b"".join(_encode(*c) for c in part))
            out.extend(self.reply() for _ in part)
        return out


@dataclass
class RedisCluster:
    root: Path
    ports: list[int]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def client(self, node: int = 0) -> Resp:
        return Resp(self.ports[node])

    def cli(self, *args: str) -> str:
        proc = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.ports[0]), *args],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def stop(self) -> None:
        kill_all(self.procs)


def start_redis_cluster(server: str, cli: str) -> Iterator[RedisCluster]:
    root = Path(tempfile.mkdtemp(prefix="skewcheck-redis-"))
    cluster = RedisCluster(root, free_ports(NODES, bus_offset=10000))
    try:
        for port in cluster.ports:
            node_dir = root / str(port)
            node_dir.mkdir()
            cluster.procs.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--dir", str(node_dir),
                 "--save", "", "--appendonly", "no", "--protected-mode", "yes",
                 "--logfile", str(node_dir / "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + READY_TIMEOUT_S
        for port in cluster.ports:
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"redis-server on port {port} did not start")
                    time.sleep(0.05)
        subprocess.run([cli, "--cluster", "create",
                        *(f"127.0.0.1:{p}" for p in cluster.ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=READY_TIMEOUT_S)
        while "cluster_state:ok" not in cluster.cli("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
