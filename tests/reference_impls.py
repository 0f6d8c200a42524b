"""Session fixtures for the real implementations behind the routers: a PostgreSQL server, a
3-node Redis Cluster, libmemcached, and the Java/Go reference programs (scripts/reference-impls).
Each is started once per session; a missing part skips locally and fails under CI=true."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from postgres_server import server_bin_dir, start_postgres
from redis_cluster import start_redis_cluster
from twemproxy import start_twemproxy

REPO = Path(__file__).resolve().parent.parent
KETAMA_WEIGHTED = 16  # MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED in libmemcached-1.0/types/behavior.h


def _require(available: bool, what: str) -> None:
    from conftest import require_real_part

    require_real_part(available, what)


@pytest.fixture(scope="session")
def postgres():
    _require(server_bin_dir() is not None, "PostgreSQL server (Debian package postgresql)")
    # as root the server runs as the package's `postgres` user, through runuser (util-linux)
    _require(os.geteuid() != 0 or shutil.which("runuser") is not None, "`runuser`")
    yield from start_postgres()


@pytest.fixture(scope="session")
def redis_cluster():
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    _require(server is not None, "`redis-server` (Debian package redis-server)")
    _require(cli is not None, "`redis-cli` (Debian package redis-tools)")
    yield from start_redis_cluster(server, cli)  # type: ignore[arg-type]


TWEMPROXY_POOLS = {"md5pool": ("md5", False), "fnvpool": ("fnv1a_64", True)}


@pytest.fixture(scope="session")
def twemproxy():
    """nutcracker with a ketama pool hashing keys with md5 (servers unnamed) and one with its
    default fnv1a_64 (servers named mc-0, mc-1, ...), both over the same four memcached."""
    memcached = shutil.which("memcached")
    nutcracker = shutil.which("nutcracker") or shutil.which("/usr/sbin/nutcracker")
    _require(memcached is not None, "`memcached` (Debian package memcached)")
    _require(nutcracker is not None, "`nutcracker` (Debian package nutcracker: twemproxy)")
    yield from start_twemproxy(memcached, nutcracker, TWEMPROXY_POOLS)  # type: ignore[arg-type]


@dataclass
class Programs:
    """The Java and Go reference programs, run one answer per input line."""

    paths: dict[str, str]

    def run(self, cmd: list[str], stdin: str, timeout: float = 120) -> list[str]:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout,
                              encoding="utf-8")
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {proc.stderr.strip()[-2000:]}")
        return proc.stdout.splitlines()

    def java(self, classpath: str, main: str, *args: str, stdin: str) -> list[str]:
        flags = ["-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m"]
        return self.run([self.paths["java"], *flags, "-cp", self.paths[classpath], main, *args],
                        stdin)

    def go(self, program: str, *args: str, stdin: str) -> list[str]:
        return self.run([self.paths[program], *args], stdin)


@pytest.fixture(scope="session")
def reference_programs() -> Programs:
    for tool in ("java", "javac", "mvn", "go"):
        _require(shutil.which(tool) is not None, f"`{tool}`")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "reference-impls"), "paths"],
                          capture_output=True, text=True, timeout=1200)
    _require(proc.returncode == 0, f"the reference implementations ({proc.stderr.strip()[-500:]})")
    return Programs(json.loads(proc.stdout))


class Libmemcached:
    """libmemcached through ctypes: a client with weighted ketama, asked which server a key maps to
    (memcached_generate_hash needs no running memcached)."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        lib.memcached_create.restype = ctypes.c_void_p
        lib.memcached_create.argtypes = [ctypes.c_void_p]
        lib.memcached_free.argtypes = [ctypes.c_void_p]
        lib.memcached_behavior_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64]
        lib.memcached_server_add_with_weight.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                         ctypes.c_uint16, ctypes.c_uint32]
        lib.memcached_generate_hash.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.memcached_generate_hash.restype = ctypes.c_uint32
        self.lib = lib

    def servers_of(self, servers: list[tuple[str, int, int]], keys: list[bytes]) -> list[int]:
        memc = self.lib.memcached_create(None)
        try:
            assert self.lib.memcached_behavior_set(memc, KETAMA_WEIGHTED, 1) == 0
            for host, port, weight in servers:
                assert self.lib.memcached_server_add_with_weight(memc, host.encode(), port,
                                                                 weight) == 0
            return [self.lib.memcached_generate_hash(memc, k, len(k)) for k in keys]
        finally:
            self.lib.memcached_free(memc)


@pytest.fixture(scope="session")
def libmemcached() -> Libmemcached:
    path = ctypes.util.find_library("memcached")
    _require(path is not None, "libmemcached (Debian package libmemcached-dev)")
    return Libmemcached(path)  # type: ignore[arg-type]
