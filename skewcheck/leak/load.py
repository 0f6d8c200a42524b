"""A little traffic of the probe's own, for runs without a load generator (the CLI, the bench)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass

from skewcheck.leak.connections import probe_tls_context

LOAD_TIMEOUT_S = 5.0  # a loopback request slower than this has failed


@dataclass(frozen=True)
class LoadResult:
    sent: int
    failed: int


def send_requests(host: str, port: int, paths: list[str], per_path: int,
                  tls: bool = False) -> LoadResult:
    """GET each path `per_path` times, one closed connection per request (nothing left open)."""
    sent = failed = 0
    context = probe_tls_context() if tls else None
    for path in paths:
        for _ in range(per_path):
            connection = (http.client.HTTPSConnection(host, port, timeout=LOAD_TIMEOUT_S,
                                                      context=context) if tls else
                          http.client.HTTPConnection(host, port, timeout=LOAD_TIMEOUT_S))
            try:
                connection.request("GET", path, headers={"Connection": "close"})
                response = connection.getresponse()
                response.read()
                failed += response.status >= 500
            except (OSError, http.client.HTTPException):
                failed += 1
            finally:
                connection.close()
            sent += 1
    return LoadResult(sent, failed)
