"""The leak probe: connections that hold a server's goroutines, and the run that judges them.

Silent connections send nothing; partial ones send half a request line; stalled ones send
headers declaring a body that never comes. A server without ReadHeaderTimeout/ReadTimeout
keeps one goroutine per connection for as long as the peer stays quiet.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable

from skewcheck.errors import UsageError
from skewcheck.leak.check import (
    RULE_DRAIN,
    RULE_PROBE_SURVIVAL,
    drain,
    inconclusive,
    probe_survival,
    settle,
)
from skewcheck.leak.config import LeakConfig
from skewcheck.leak.finding import counted_total
from skewcheck.leak.profile import Profile, ProfileError
from skewcheck.leak.source import GoroutineSource, LeakSourceError, MetricsSource, PprofSource
from skewcheck.verdict import Check

PROBE_KINDS = ("silent", "partial", "stalled")
CONNECT_TIMEOUT_S = 2.0  # loopback connects in microseconds; slower means a dead or drowning target
STALLED_BODY_BYTES = 4096  # declared, never sent; small enough for any server's body limit
VISIBLE_AFTER_S = 0.3  # well under any server timeout, long enough for accept and the first read
USER_AGENT = "skewcheck-leak-probe"


def resolve_target(host: str, port: int, allow_remote: bool) -> tuple[str, int]:
    """Refuse a target that is not this machine unless remote probing was asked for."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"leak probe target {host}:{port} does not resolve: "
                         f"{exc.strerror}") from None
    addresses = [info[4][0] for info in infos]
    if not allow_remote and not all(ipaddress.ip_address(a.split("%")[0]).is_loopback
                                    for a in addresses):
        raise UsageError(f"leak probe target {host}:{port} is not a loopback address; "
                         "set allow_remote (--allow-remote) to probe another machine")
    return host, port


class ProbeConnections:
    """The probe's sockets: opened together, held, and always closed together."""

    def __init__(self, host: str, port: int, counts: dict[str, int], path: str) -> None:
        self.host, self.port = host, port
        self.counts = {kind: counts.get(kind, 0) for kind in PROBE_KINDS}
        self.path = path
        self.sockets: list[socket.socket] = []
        self.opened = {kind: 0 for kind in PROBE_KINDS}

    def __enter__(self) -> ProbeConnections:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        for kind in PROBE_KINDS:
            opening = self._opening_bytes(kind)
            for _ in range(self.counts[kind]):
                sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
                self.sockets.append(sock)
                if opening:
                    sock.sendall(opening)
                self.opened[kind] += 1

    def closed_by_server(self) -> int:
        """Connections the server has closed (or answered, e.g. 408) by now."""
        closed = 0
        for sock in self.sockets:
            try:
                sock.settimeout(0)  # a peek must not wait: a silent open socket answers at once
                sock.recv(1, socket.MSG_PEEK)
                closed += 1  # end of stream, or a response such as 408
            except BlockingIOError:
                pass  # still open and silent
            except OSError:
                closed += 1  # reset by the server
        return closed

    def close(self) -> None:
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass
        self.sockets.clear()

    def _opening_bytes(self, kind: str) -> bytes:
        if kind == "partial":
            return f"GET {self.path} HTTP/1.1".encode()  # no CRLF: the request line never ends
        if kind == "stalled":
            return (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    f"User-Agent: {USER_AGENT}\r\nContent-Type: application/octet-stream\r\n"
                    f"Content-Length: {STALLED_BODY_BYTES}\r\n\r\n").encode()
        return b""


class LeakProbe:
    """Baseline → (load) → probes held → drain; each rule comes back as a `Check`.

    Source and probe failures never raise: they come back as inconclusive checks, so a
    Locust listener can call these methods without guarding them.
    """

    def __init__(self, config: LeakConfig, *, source: GoroutineSource | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not config.enabled:
            raise UsageError("the leak probe is disabled (leak.enabled: false)")
        if source is None and not config.active:
            raise UsageError("leak probe: set leak.pprof_url (or leak.metrics_url)")
        self.config = config
        self.source = source or _source_for(config)
        host, port = config.probe_target
        self.target = resolve_target(host, port, config.allow_remote)
        self._clock, self._sleep = clock, sleep
        self._baseline: Profile | None = None
        self._baseline_error: str | None = None

    def baseline(self) -> Profile | None:
        """Snapshot before the load; None (and inconclusive checks later) when unreadable."""
        try:
            self._baseline = self.source.snapshot()
            self._baseline_error = None
        except (LeakSourceError, ProfileError) as exc:
            self._baseline, self._baseline_error = None, str(exc)
        return self._baseline

    def run_probes(self) -> Check:
        """Open the probe connections, hold them, and judge whether their goroutines survive."""
        config = self.config
        counts = {"silent": config.silent, "partial": config.partial, "stalled": config.stalled}
        try:
            before = self.source.snapshot()
            if self._baseline is None and self._baseline_error is None:
                self._baseline = before
            with ProbeConnections(*self.target, counts, config.probe_path) as probes:
                opened_at = self._clock()
                visible = None
                if probes.sockets:  # nothing to see or hold when every count is 0
                    self._sleep(VISIBLE_AFTER_S)
                    visible = self.source.snapshot()
                    self._sleep(max(0.0, opened_at + config.hold_s - self._clock()))
                after = self.source.snapshot()
                closed = probes.closed_by_server()
        except (LeakSourceError, ProfileError) as exc:
            return inconclusive(RULE_PROBE_SURVIVAL, str(exc))
        except OSError as exc:
            host, port = self.target
            return inconclusive(RULE_PROBE_SURVIVAL,
                                f"could not hold probe connections to {host}:{port}: "
                                f"{exc.strerror or exc}")
        return probe_survival(before, visible, after, probes=counts, tolerance=config.tolerance,
                              hold_s=config.hold_s, closed_by_server=closed)

    def drain_check(self) -> Check:
        """After load and probes stop: the total must settle back to baseline ± tolerance."""
        if self._baseline is None:
            return inconclusive(RULE_DRAIN, self._baseline_error
                                or "no baseline: call baseline() before the load starts")
        limit = counted_total(self._baseline) + self.config.tolerance
        try:
            settling = settle(self.source.snapshot, limit=limit,
                              timeout_s=self.config.settle_timeout_s,
                              clock=self._clock, sleep=self._sleep)
        except (LeakSourceError, ProfileError) as exc:
            return inconclusive(RULE_DRAIN, str(exc))
        return drain(self._baseline, settling, tolerance=self.config.tolerance,
                     timeout_s=self.config.settle_timeout_s)

    def run(self, load: Callable[[], object] | None = None) -> list[Check]:
        """The whole probe: baseline, the caller's load (if any), probes, drain."""
        self.baseline()
        if load is not None:
            load()
        return [self.run_probes(), self.drain_check()]


def _source_for(config: LeakConfig) -> GoroutineSource:
    if config.pprof_url:
        return PprofSource(config.pprof_url, config.fetch_timeout_s)
    return MetricsSource(config.metrics_url or "", config.fetch_timeout_s)
