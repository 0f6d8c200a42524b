"""Shared fixtures. A test whose real part (broker, Go, Chromium, promtool) is missing
skips on a developer machine and fails when CI=true."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Real Kafka broker (scripts/kafka-broker): the session fixture `kafka_broker`.
from kafka_broker import kafka_broker  # noqa: F401,E402

# Real PostgreSQL, Redis Cluster, libmemcached and Java/Go reference programs for the routers.
from reference_impls import (  # noqa: F401,E402
    libmemcached,
    postgres,
    redis_cluster,
    reference_programs,
    twemproxy,
)

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_real_part(available: bool, what: str) -> None:
    """Skip locally, fail in CI, when a real part a test needs is missing."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing; CI=true requires it (install it with `make deps`)")
    pytest.skip(f"{what} is missing")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require_real_part(path is not None, f"`{name}`")
    return path  # type: ignore[return-value]


def run_skewcheck(*args: str, input: str | None = None, timeout: float = 120,
                  cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the CLI the way a user does: a separate process, exit code and both streams kept."""
    return subprocess.run(
        [sys.executable, "-m", "skewcheck", *args],
        input=input, capture_output=True, text=True, timeout=timeout,
        cwd=cwd or REPO, env={**os.environ, **(env or {})},
    )


@pytest.fixture
def repo() -> Path:
    return REPO


# kafka.client: every sidecar test on the real broker runs on each
KAFKA_CLIENTS = ("kafka-python", "confluent")


def require_kafka_client(name: str) -> None:
    if name == "confluent":
        require_real_part(importlib.util.find_spec("confluent_kafka") is not None,
                          "confluent-kafka (pip install 'skewcheck[kafka-fast]')")


@pytest.fixture(params=KAFKA_CLIENTS)
def client(request) -> str:
    """The Kafka client a test's sidecars run on (`--client`)."""
    require_kafka_client(request.param)
    return request.param


def pytest_collection_finish(session: pytest.Session) -> None:
    """Locust monkey-patches sockets and threads with gevent on import; in the test process that
    turns kafka-python's network thread into a greenlet that blocks everything. Locust runs in
    subprocesses here (tests/locust_runs.py); the plugin's logic is tested through core modules."""
    if "locust" in sys.modules:
        raise pytest.UsageError("a test module imported locust (gevent monkey-patching) into the pytest "
                                "process; run Locust in a subprocess instead")
