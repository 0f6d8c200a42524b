"""A real PostgreSQL server for the routing tests: Debian's server binaries, a cluster in a temp
dir, listening on 127.0.0.1 at a free port and on a unix socket in that dir; stopped at the end.

initdb and postgres refuse to run as root, so under root they run as the `postgres` system user
that Debian's package creates (through runuser), owning the temp dir.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

START_TIMEOUT_S = 60  # initdb plus first start on a loaded 2-core machine


def server_bin_dir() -> Path | None:
    """Newest /usr/lib/postgresql/<v>/bin with initdb and postgres, if the server is installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int
    as_user: str | None

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.as_user, "--", *args] if self.as_user else list(args)

    def psql(self, sql: str, timeout: float = 60) -> list[list[str]]:
        """Run SQL through psql; rows as lists of fields (tab-separated, unaligned)."""
        proc = subprocess.run(
            self._cmd(str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-F", "\t",
                      "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-p", str(self.port),
                      "-U", "postgres", "-d", "postgres"),
            input=sql, capture_output=True, text=True, timeout=timeout, encoding="utf-8")
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {proc.stderr.strip()}")
        return [line.split("\t") for line in proc.stdout.splitlines() if line]

    def copy_in(self, table: str, lines: list[str], timeout: float = 60) -> None:
        """COPY rows (text format, one value a line, already escaped) into a table."""
        proc = subprocess.run(
            self._cmd(str(self.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                      "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                      "-d", "postgres", "-c", f"COPY {table} FROM STDIN"),
            input="".join(line + "\n" for line in lines), capture_output=True, text=True,
            timeout=timeout, encoding="utf-8")
        if proc.returncode != 0:
            raise RuntimeError(f"COPY failed: {proc.stderr.strip()}")

    def stop(self) -> None:
        subprocess.run(self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"),
                                 "-m", "immediate", "-w", "stop"),
                       capture_output=True, timeout=60)


def start_postgres() -> Iterator[PostgresServer]:
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries (Debian package postgresql)")
    as_user = None
    root = Path(tempfile.mkdtemp(prefix="skewcheck-pg-"))
    if os.geteuid() == 0:
        as_user = "postgres"
        entry = pwd.getpwnam(as_user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(bin_dir, root, _free_port(), as_user)
    try:
        for sub in ("data", "socket"):
            (root / sub).mkdir()
            if as_user:
                os.chown(root / sub, entry.pw_uid, entry.pw_gid)
        subprocess.run(server._cmd(str(bin_dir / "initdb"), "-D", str(root / "data"),
                                   "-U", "postgres", "--no-sync", "-E", "UTF8",
                                   "--locale=C.UTF-8", "--auth=trust"),
                       check=True, capture_output=True, timeout=START_TIMEOUT_S)
        options = (f"-c listen_addresses=127.0.0.1 -c port={server.port} "
                   f"-c unix_socket_directories={server.socket_dir} -c fsync=off "
                   "-c shared_buffers=16MB -c max_connections=10")
        subprocess.run(server._cmd(str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-w",
                                   "-t", str(START_TIMEOUT_S), "-l", str(root / "server.log"),
                                   "-o", options, "start"),
                       check=True, capture_output=True, timeout=START_TIMEOUT_S + 10)
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def pg_literal_lines(keys) -> list[str]:
    """Keys in COPY's text format (backslash, tab, newline and CR escaped)."""
    def escape(k: str) -> str:
        return (k.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return [escape(k) if isinstance(k, str) else str(k) for k in keys]


def citus_shard(hash32: int, shards: int) -> int:
    """Citus' FindShardIntervalIndex for a uniform hash distribution, straight from its source."""
    increment = 2**32 // shards
    index = ((hash32 + 2**31) % 2**32) // increment  # (uint32) (hash - INT32_MIN)
    return shards - 1 if index == shards else index
