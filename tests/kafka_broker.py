"""A real Kafka broker for tests: `KafkaBroker` and the session fixture `kafka_broker`.

`KafkaBroker` drives scripts/kafka-broker (single-node KRaft broker on 127.0.0.1,
jars fetched once from Maven Central and cached). The `kafka_broker` fixture starts
one broker for the whole test session and stops it at the end, even when tests
fail; a watchdog also stops it if the pytest process is killed outright.

    def test_sidecar_counts(kafka_broker):
        topic = unique_name("skewcheck.requests")
        kafka_broker.create_topic(topic, partitions=4)
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        ...
        with kafka_broker.stopped():      # broker down; back up (same port, same data) after
            ...
        kafka_broker.kill(); kafka_broker.start()   # a crash instead of a clean stop

Tests that stop or kill the session broker must start it again (`stopped()`
does), since later tests share it. Topics and groups persist for the session:
give them unique names (`unique_name()`).

When the broker cannot be had (no Java or Maven, fetch or start failure), the
fixture skips locally and fails under CI=true, like every other real part.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "kafka-broker"

# Readiness timeout of one start (a start takes a few seconds; generous for a
# loaded machine). A start that must first fetch the jars with Maven and build
# the class-data archive gets FETCH_TIMEOUT_S more.
START_TIMEOUT_S = float(os.environ.get("SKEWCHECK_KAFKA_START_TIMEOUT", "90"))
FETCH_TIMEOUT_S = 600.0


class BrokerUnavailable(RuntimeError):
    """The broker could not be fetched or started; the message has the script's output."""


def unique_name(prefix: str) -> str:
    """A topic or group name no other test (or earlier run on the same broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _run_script(*args: str, timeout: float) -> subprocess.CompletedProcess:
    # sys.executable is the test interpreter, which has kafka-python, so the
    # script's readiness check runs without re-executing itself.
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


class KafkaBroker:
    """One broker dir driven by scripts/kafka-broker; restartable on the same port and data."""

    def __init__(self, directory: Path | str, port: int | None = None, *,
                 stop_with_this_process: bool = True, owner_pid: int | None = None) -> None:
        self.directory = Path(directory).resolve()
        self._port = port
        # The script's watchdog stops the JVM when its owner exits (this process
        # unless told otherwise), so a test run killed by a timeout or a signal
        # still leaves no broker behind.
        if owner_pid is None and stop_with_this_process:
            owner_pid = os.getpid()
        self._owner_pid = owner_pid
        self.bootstrap: str | None = None

    # ----------------------------------------------------------------- lifecycle

    @staticmethod
    def fetch() -> Path:
        """Fetch the broker jars (no-op when cached); returns the jar dir."""
        try:
            proc = _run_script("fetch", timeout=FETCH_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerUnavailable(f"scripts/kafka-broker fetch: {exc}") from exc
        if proc.returncode != 0:
            raise BrokerUnavailable(proc.stderr.strip() or f"fetch exited {proc.returncode}")
        return Path(proc.stdout.strip().splitlines()[-1])

    @classmethod
    def classpath(cls) -> str:
        """The broker's Java classpath (`<jar dir>/*`), e.g. to run Kafka's own classes."""
        return f"{cls.fetch()}/*"

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        """Start (or restart) the broker, wait until it answers, return host:port."""
        args = ["start", "--dir", str(self.directory), "--timeout", str(timeout)]
        if self._port is not None:
            args += ["--port", str(self._port)]
        if self._owner_pid is not None:
            args += ["--owner-pid", str(self._owner_pid)]
        try:
            proc = _run_script(*args, timeout=timeout + FETCH_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.stop()  # a timed-out script may have left its JVM starting
            raise BrokerUnavailable(f"scripts/kafka-broker start: {exc}") from exc
        if proc.returncode != 0:
            raise BrokerUnavailable(proc.stderr.strip() or f"start exited {proc.returncode}")
        self.bootstrap = proc.stdout.strip().splitlines()[-1]
        self._port = int(self.bootstrap.rsplit(":", 1)[1])
        return self.bootstrap

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker (clean shutdown, SIGKILL after timeout); no-op when stopped."""
        proc = _run_script("stop", "--dir", str(self.directory), "--timeout", str(timeout),
                           timeout=timeout + 30)
        if proc.returncode != 0:
            raise RuntimeError(f"scripts/kafka-broker stop failed: {proc.stderr.strip()}")

    def restart(self) -> str:
        """Stop and start again: same dir, same port, same topics and committed offsets."""
        self.stop()
        before = self.bootstrap
        after = self.start()
        assert before is None or before == after, f"restart moved the broker: {before} -> {after}"
        return after

    def kill(self) -> None:
        """Crash the broker (SIGKILL, no clean shutdown); `start()` recovers it.

        For tests of what clients do when the broker dies mid-stream. A restart
        after a crash takes a few seconds longer than after `stop()`: the
        controller first times out the dead broker's session."""
        pid = self.pid
        if pid is None or not self.is_running():
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.is_running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"broker pid {pid} survived SIGKILL")
            time.sleep(0.1)

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Stop the broker for the body of a `with`; always start it again afterwards."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def is_running(self) -> bool:
        return _run_script("status", "--dir", str(self.directory), timeout=30).returncode == 0

    @property
    def pid(self) -> int | None:
        """The broker JVM's pid while it runs (read from the dir's pid file)."""
        try:
            return int((self.directory / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def port(self) -> int | None:
        return self._port

    def log_tail(self, lines: int = 40) -> str:
        """The end of the broker's log, for assertion messages."""
        path = self.directory / "server.log"
        if not path.exists():
            return f"(no {path})"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> "KafkaBroker":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaBroker(dir={str(self.directory)!r}, bootstrap={self.bootstrap!r})"

    # ----------------------------------------------------------------- topics

    def admin(self, **configs):
        """A KafkaAdminClient for this broker; the caller closes it."""
        from kafka import KafkaAdminClient

        return KafkaAdminClient(bootstrap_servers=self.bootstrap,
                                client_id="skewcheck-tests-admin", **configs)

    def create_topic(self, name: str, partitions: int = 4, *,
                     configs: dict[str, str] | None = None, exist_ok: bool = False,
                     timeout_s: float = 30.0) -> None:
        """Create a topic and wait until every partition has a leader.

        Waiting matters: CreateTopics returns before the new partitions have
        leaders, and a producer that sends at once can get its first batches
        refused or see fewer partitions than asked for."""
        from kafka.errors import TopicAlreadyExistsError

        admin = self.admin()
        try:
            try:
                admin.create_topics(
                    {name: {"num_partitions": partitions, "replication_factor": 1,
                            "configs": configs or {}}},
                    timeout_ms=int(timeout_s * 1000),
                )
            except TopicAlreadyExistsError:
                if not exist_ok:
                    raise
            admin.wait_for_topics([name], timeout_ms=int(timeout_s * 1000))
        finally:
            admin.close()

    def partitions_for(self, topic: str) -> int:
        admin = self.admin()
        try:
            (info,) = admin.describe_topics([topic])
            return len(info["partitions"])
        finally:
            admin.close()


# --------------------------------------------------------------------- fixture
#
# The same fixture function may be registered twice (conftest.py for the whole
# suite, and a test module that imports it so it also runs on its own). Each
# registration is its own pytest fixture, so the session broker lives here,
# shared and reference-counted: one JVM per session however it is registered,
# stopped when the last registration is torn down.

_session: dict = {"broker": None, "error": None, "users": 0}


def _require_real_part(available: bool, what: str) -> None:
    """tests/conftest.py's policy: skip locally, fail under CI=true."""
    for name in ("conftest", "tests.conftest"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "require_real_part"):
            return module.require_real_part(available, what)
    try:
        from conftest import require_real_part
    except ImportError:
        from conftest import require_real_part
    return require_real_part(available, what)


def broker_unavailable(error: str) -> None:
    """Skip (locally) or fail (CI=true) a test that cannot have its broker.

    The full script output (Maven's errors, the broker's log tail) goes to
    stderr, which pytest shows with a failure; the skip/fail reason keeps to
    the script's one-line verdict."""
    print(f"Kafka broker unavailable:\n{error}", file=sys.stderr)
    lines = error.splitlines() or ["?"]
    verdict = next((line for line in lines if line.startswith("kafka-broker:")), lines[-1])
    _require_real_part(False, f"a Kafka broker ({verdict.rstrip(':')})")


def require_broker_jars() -> Path:
    """Fetch the broker jars for a test that runs its own broker; skip/fail if impossible."""
    try:
        return KafkaBroker.fetch()
    except BrokerUnavailable as exc:
        broker_unavailable(str(exc))
        raise  # not reached: the line above skips or fails


def _acquire_session_broker(tmp_path_factory: pytest.TempPathFactory) -> KafkaBroker:
    if _session["broker"] is None and _session["error"] is None:
        if importlib.util.find_spec("kafka") is None:
            _session["error"] = "kafka-python is not installed"
        else:
            broker = KafkaBroker(tmp_path_factory.mktemp("kafka-broker"))
            try:
                broker.start()
                _session["broker"] = broker
            except BrokerUnavailable as exc:
                _session["error"] = str(exc)
    if _session["error"] is not None:
        broker_unavailable(_session["error"])
    _session["users"] += 1
    return _session["broker"]


def _release_session_broker() -> None:
    _session["users"] -= 1
    if _session["users"] == 0 and _session["broker"] is not None:
        broker, _session["broker"] = _session["broker"], None
        broker.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One real Kafka broker for the test session (bootstrap: `kafka_broker.bootstrap`)."""
    broker = _acquire_session_broker(tmp_path_factory)
    try:
        yield broker
    finally:
        _release_session_broker()
