"""Memcached's ketama consistent hashing, as libmemcached builds it with
MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED and twemproxy with `distribution: ketama` (the
libketama-compatible continuum): 160 points per server at equal weights, four per MD5 digest of
"name-i", where the name is the host ("host:port" off the default port 11211) or, in twemproxy,
the server's configured name; a key goes to the first point at or after its hash, wrapping.
libmemcached hashes keys with MD5 (the digest's first word); twemproxy with its pool's `hash`,
fnv1a_64 by default, which is FNV-1a on 32 bits with the 64-bit constants truncated and the key's
bytes sign-extended (C chars are signed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from skewcheck.bytewise import fold_bytes
from skewcheck.errors import UsageError
from skewcheck.keytext import KeyText
from skewcheck.ring import Ring

POINTS_PER_SERVER = 160  # MEMCACHED_POINTS_PER_SERVER_KETAMA
POINTS_PER_DIGEST = 4  # one MD5 digest gives four 32-bit points
DEFAULT_PORT = 11211  # MEMCACHED_DEFAULT_PORT: its servers' points omit the port


FNV64_OFFSET32 = 0xCBF29CE484222325 & 0xFFFF_FFFF  # twemproxy's (uint32_t) FNV_64_INIT
FNV64_PRIME32 = 0x100000001B3 & 0xFFFF_FFFF  # and (uint32_t) FNV_64_PRIME
KEY_HASHES = ("md5", "fnv1a_64")


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    weight: int
    name: str | None = None  # twemproxy's "host:port:weight name": its points hash the name

    @property
    def point_name(self) -> str:
        if self.name is not None:
            return self.name
        return self.host if self.port == DEFAULT_PORT else f"{self.host}:{self.port}"


def parse_server(text: str, where: str) -> Server:
    """'host', 'host:port', 'host:port:weight' (as memcached_servers_parse reads them), or
    twemproxy's 'host:port:weight name'."""
    address, _, name = text.strip().partition(" ")
    server = _parse_address(address, text, where)
    name = name.strip()
    return Server(server.host, server.port, server.weight, name or None)


def _parse_address(text: str, full: str, where: str) -> Server:
    parts = text.rsplit(":", 2) if text.count(":") <= 2 else [text]
    host = parts[0]
    try:
        port = int(parts[1]) if len(parts) > 1 else DEFAULT_PORT
        weight = int(parts[2]) if len(parts) > 2 else 1
    except ValueError:
        raise UsageError(f"{where}: server {full!r} is not host[:port[:weight]] [name]") from None
    if not host or not 0 < port < 65536 or weight < 1:
        raise UsageError(f"{where}: server {full!r} needs a host, a port in 1-65535 and a "
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
        name = server.point_name
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


def twemproxy_fnv1a_64(data: bytes) -> int:
    """twemproxy's hash_fnv1a_64: 32-bit state, truncated 64-bit constants, signed bytes."""
    h = FNV64_OFFSET32
    for byte in data:
        h = ((h ^ (byte | 0xFFFF_FF00 if byte >= 0x80 else byte)) * FNV64_PRIME32) & 0xFFFF_FFFF
    return h


def twemproxy_fnv1a_64_text(text: KeyText) -> np.ndarray:
    """twemproxy_fnv1a_64 of every key of a KeyText (uint32), in the caller's key order."""
    prime = np.uint32(FNV64_PRIME32)

    def step(h: np.ndarray, byte: np.ndarray) -> np.ndarray:
        return (h ^ np.where(byte >= 0x80, byte | np.uint32(0xFFFF_FF00), byte)) * prime

    h = np.full(len(text), FNV64_OFFSET32, dtype=np.uint32)
    return text.restore(fold_bytes(text, h, step))
