"""Memcached's ketama consistent hashing, as libmemcached builds it with
MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (the libketama-compatible continuum that twemproxy and most
clients share): 160 points per server at equal weights, four per MD5 digest of "host-i" (or
"host:port-i" off the default port); a key goes to the first point at or after the first word of
its MD5, wrapping.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from skewcheck.errors import UsageError
from skewcheck.ring import Ring

POINTS_PER_SERVER = 160  # MEMCACHED_POINTS_PER_SERVER_KETAMA
POINTS_PER_DIGEST = 4  # one MD5 digest gives four 32-bit points
DEFAULT_PORT = 11211  # MEMCACHED_DEFAULT_PORT: its servers' points omit the port


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    weight: int


def parse_server(text: str, where: str) -> Server:
    """'host', 'host:port' or 'host:port:weight' (as memcached_servers_parse reads them)."""
    parts = text.rsplit(":", 2) if text.count(":") <= 2 else [text]
    host = parts[0]
    try:
        port = int(parts[1]) if len(parts) > 1 else DEFAULT_PORT
        weight = int(parts[2]) if len(parts) > 2 else 1
    except ValueError:
        raise UsageError(f"{where}: server {text!r} is not host[:port[:weight]]") from None
    if not host or not 0 < port < 65536 or weight < 1:
        raise UsageError(f"{where}: server {text!r} needs a host, a port in 1-65535 and a "
                         "weight >= 1")
    return Server(host, port, weight)


def _points_of(weight: int, total: int, servers: int) -> int:
    # libmemcached computes this in float: (floor(pct * 160 / 4 * n + 1e-10f)) * 4
    f32 = np.float32
    pct = f32(weight) / f32(total)
    share = pct * f32(POINTS_PER_SERVER) / f32(4) * f32(servers) + f32(1e-10)
    return int(np.floor(share)) * POINTS_PER_DIGEST


def continuum(servers: list[Server]) -> Ring:
    total = sum(s.weight for s in servers)
    points: dict[str, list[int]] = {}
    for index, server in enumerate(servers):
        name = (server.host if server.port == DEFAULT_PORT else f"{server.host}:{server.port}")
        values = points.setdefault(f"{index}:{server.host}:{server.port}", [])
        for i in range(_points_of(server.weight, total, len(servers)) // POINTS_PER_DIGEST):
            digest = hashlib.md5(f"{name}-{i}".encode()).digest()
            values.extend(int.from_bytes(digest[4 * x:4 * x + 4], "little")
                          for x in range(POINTS_PER_DIGEST))
    return _sorted_continuum(points)


def _sorted_continuum(points: dict[str, list[int]]) -> Ring:
    # equal points are ordered by server index (libmemcached's qsort comparator), never rejected
    nodes = tuple(points)
    values = np.array([p for ps in points.values() for p in ps], dtype=np.uint32)
    owners = np.array([i for i, ps in enumerate(points.values()) for _ in ps], dtype=np.int64)
    order = np.lexsort((owners, values))
    return Ring(values[order], owners[order], nodes)
