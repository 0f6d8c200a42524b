"""Running real `skewcheck sidecar` processes the way users do, and feeding their topic fast."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.locust_runs import free_port, wait_for


class Sidecar:
    """One sidecar process; its HTTP port is chosen up front so tests can reach it."""

    def __init__(self, workdir: Path, bootstrap: str, topic: str, group: str, *extra: str,
                 port: int | None = None, env: dict[str, str] | None = None, name: str = "sidecar") -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{name}-{self.port}.log"
        self.args = ["sidecar", "--bootstrap-servers", bootstrap, "--topic", topic, "--group", group,
                     "--metrics-port", str(self.port), "--connect-timeout", "15", *extra]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self) -> Sidecar:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "skewcheck", *self.args], cwd=REPO, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                                     start_new_session=True)
        out.close()
        return self

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def json(self, path: str) -> dict[str, Any]:
        status, body = self.get(path)
        assert status == 200, f"{path}: HTTP {status}\n{self.output[-2000:]}"
        return json.loads(body)

    def state(self) -> dict[str, Any]:
        return self.json("/state")

    def metrics(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200, self.output[-2000:]
        return body.decode()

    def wait_ready(self, timeout: float = 45.0) -> Sidecar:
        ok = wait_for(lambda: self.get("/readyz")[0] == 200 or self.exited(), timeout)
        assert ok and not self.exited(), f"sidecar not ready:\n{self.output[-3000:]}"
        return self

    def wait_counted(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        """Poll /state until `predicate(state)` holds; the last state either way."""
        last: dict[str, Any] = {}

        def check() -> bool:
            nonlocal last
            status, body = self.get("/state")
            if status == 200:
                last = json.loads(body)
                return predicate(last)
            return False

        wait_for(check, timeout, interval=0.3)
        return last

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as Kubernetes or CI would; the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the whole process group (finalizers and crash tests)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


class Sidecars:
    """Starts sidecars (on one Kafka client, `--client`) for a test and kills whatever is left of
    them afterwards."""

    def __init__(self, workdir: Path, client: str = "kafka-python") -> None:
        self.workdir = workdir
        self.client = client
        self.started: list[Sidecar] = []

    def start(self, bootstrap: str, topic: str, group: str, *extra: str, client: str | None = None,
              **kw: Any) -> Sidecar:
        extra = (*extra, "--client", client or self.client)
        sidecar = Sidecar(self.workdir, bootstrap, topic, group, *extra, **kw).start()
        self.started.append(sidecar)
        return sidecar

    def close(self) -> None:
        for sidecar in self.started:
            sidecar.kill()


def produce(bootstrap: str, topic: str, values: Iterable[bytes | None], *, key: bytes | None = None,
            partition: int | None = None) -> int:
    """Publish `values` in large batches and wait until all are acknowledged; the count sent."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, acks=1,
                             enable_idempotence=False, max_request_size=4 << 20)
    sent = 0
    try:
        for value in values:
            producer.send(topic, value=value, key=key if value is not None else (key or b"tombstone"),
                          partition=partition)
            sent += 1
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return sent


def skewcheck(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skewcheck", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, by name and exact labels."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series == name and not labels:
            return float(value)
        if series.startswith(name + "{"):
            got = ",".join(sorted(series[len(name) + 1:-1].split(",")))
            if got == want:
                return float(value)
    return None

