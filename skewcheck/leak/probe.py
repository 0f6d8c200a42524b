"""The leak probe run: baseline → (load) → probe connections held → drain, each rule a `Check`.

Beside the probe's own view (goroutines of connections that stay silent) it reads Go's
goroutineleak profile when the target serves it (see proof.py): the two see different
leaks. A block that is already certain — goroutines of probe connections surviving the
hold, or goroutines the GC proved leaked — ends the drain as soon as the probe's own
connections are gone; the settle wait is kept only for totals that are merely not back yet.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable

from skewcheck.errors import UsageError
from skewcheck.leak.check import (
    RULE_DRAIN,
    RULE_GC_PROVEN,
    RULE_PROBE_SURVIVAL,
    SETTLE_BACKOFF,
    SETTLE_FIRST_WAIT_S,
    SETTLE_MAX_WAIT_S,
    drain,
    gc_proven,
    inconclusive,
    probe_goroutines,
    probe_survival,
    settle,
)
from skewcheck.leak.config import LeakConfig
from skewcheck.leak.connections import ProbeConnections
from skewcheck.leak.finding import counted_total
from skewcheck.leak.profile import Profile, ProfileError
from skewcheck.leak.proof import GoroutineLeakView
from skewcheck.leak.source import GoroutineSource, LeakSourceError, MetricsSource, PprofSource
from skewcheck.verdict import Check

VISIBLE_AFTER_S = 0.3  # well under any server timeout, long enough for accept and the first read
HOLD_POLL_S = 0.25  # how often the hold peeks whether the server closed every probe (microseconds each)
# the probe's own connections, closed by us, end within a scheduler tick; this bounds the wait
# for them on a busy 2-core machine once a block is already certain
DRAIN_GRACE_S = 2.0

Progress = Callable[[str], None]


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


class LeakProbe:
    """Baseline → (load) → probes held → drain; each rule comes back as a `Check`.

    Source and probe failures never raise: they come back as inconclusive checks, so a
    Locust listener can call these methods without guarding them. `progress`, when given,
    hears one line per step ("holding 60 probe connections…").
    """

    def __init__(self, config: LeakConfig, *, source: GoroutineSource | None = None,
                 leak_source: GoroutineSource | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 progress: Progress | None = None) -> None:
        if not config.enabled:
            raise UsageError("the leak probe is disabled (leak.enabled: false)")
        if source is None and not config.active:
            raise UsageError("leak probe: set leak.pprof_url (or leak.metrics_url)")
        self.config = config
        self.source = source or _source_for(config)
        if leak_source is not None or source is not None:
            self.leak_view = GoroutineLeakView(
                leak_source, reason="not read: the snapshots come from the caller's source")
        else:
            self.leak_view = GoroutineLeakView.for_config(config)
        host, port = config.probe_target
        self.target = resolve_target(host, port, config.allow_remote)
        self._clock, self._sleep = clock, sleep
        self._progress = progress or (lambda message: None)
        self._baseline: Profile | None = None
        self._baseline_error: str | None = None
        self._survival: Check | None = None
        self._before_probes: Profile | None = None
        self._opened = 0

    def baseline(self) -> Profile | None:
        """Snapshot before the load; None (and inconclusive checks later) when unreadable."""
        try:
            self._baseline = self.source.snapshot()
            self._baseline_error = None
        except (LeakSourceError, ProfileError) as exc:
            self._baseline, self._baseline_error = None, str(exc)
            self._progress(f"baseline: {exc}")
            return None
        self._progress(f"baseline: {counted_total(self._baseline)} goroutines "
                       f"({self.source.description})")
        self.leak_view.read("baseline")
        self._progress(self.leak_view.summary)
        return self._baseline

    def run_probes(self) -> Check:
        """Open the probe connections, hold them, and judge whether their goroutines survive."""
        config = self.config
        counts = config.probe_counts
        opened = sum(counts.values())
        try:
            before = self.source.snapshot()
            if self._baseline is None and self._baseline_error is None:
                self._baseline = before
            self._read_leaks_after_load()
            host, port = self.target
            if opened:
                self._progress(f"holding {opened} {'TLS ' if config.probe_tls else ''}probe "
                               f"connections ({_kinds(counts)}) to {host}:{port} "
                               f"for up to {config.hold_s:g} s…")
            with ProbeConnections(host, port, counts, config.probe_path,
                                  tls=config.probe_tls) as probes:
                opened_at = self._clock()
                visible = None
                ended_early = False
                if probes.sockets:  # nothing to see or hold when every count is 0
                    self._sleep(VISIBLE_AFTER_S)
                    visible = self.source.snapshot()
                    after, ended_early = self._hold(probes, before, opened_at)
                else:
                    after = self.source.snapshot()
                held_s = self._clock() - opened_at
                closed = probes.closed_by_server()
        except (LeakSourceError, ProfileError) as exc:
            self._survival = inconclusive(RULE_PROBE_SURVIVAL, str(exc))
            return self._survival
        except OSError as exc:
            host, port = self.target
            self._survival = inconclusive(RULE_PROBE_SURVIVAL,
                                          f"could not hold probe connections to {host}:{port}: "
                                          f"{exc.strerror or exc}")
            return self._survival
        if opened:
            self._progress(f"the server closed all {opened} probe connections after {held_s:.1f} s"
                           if ended_early else
                           f"held {held_s:.1f} s: the server closed {closed} of {opened}")
        self._before_probes, self._opened = before, opened
        self._survival = probe_survival(
            before, visible, after, probes=counts, tolerance=config.tolerance,
            hold_s=config.hold_s, closed_by_server=closed, held_s=held_s, tls=config.probe_tls)
        return self._survival

    def drain_check(self) -> Check:
        """After load and probes stop: the total must settle back to baseline ± tolerance."""
        if self._baseline is None:
            return inconclusive(RULE_DRAIN, self._baseline_error
                                or "no baseline: call baseline() before the load starts")
        config = self.config
        base = counted_total(self._baseline)
        limit = base + config.tolerance
        blocked_by = self.certain_block()
        if blocked_by:
            timeout_s = min(config.settle_timeout_s, DRAIN_GRACE_S)
            self._progress(f"settling: {blocked_by} already blocks, so only the probe's own "
                           f"connections are waited for (up to {timeout_s:g} s)…")
        else:
            timeout_s = config.settle_timeout_s
            self._progress(f"settling: up to {timeout_s:g} s for goroutines to return to the "
                           f"baseline of {base} (tolerance {config.tolerance})…")
        try:
            settling = settle(self.source.snapshot, limit=limit, timeout_s=timeout_s,
                              clock=self._clock, sleep=self._sleep,
                              done=self._probe_connections_gone if blocked_by else None)
        except (LeakSourceError, ProfileError) as exc:
            return inconclusive(RULE_DRAIN, str(exc))
        final = counted_total(settling.profile)
        self._progress(f"settled: {final} goroutines after {settling.elapsed_s:.1f} s"
                       if settling.settled else
                       f"not settled: {final} goroutines, {final - base} above the baseline, "
                       f"after {settling.elapsed_s:.1f} s")
        if self.leak_view.read("after_drain") is not None:
            self._progress(f"goroutineleak after the drain: "
                           f"{self.leak_view.proven_count('after_drain')} goroutine(s) "
                           "proven leaked since the baseline")
        check = drain(self._baseline, settling, tolerance=config.tolerance,
                      timeout_s=config.settle_timeout_s,
                      blocked_by=None if settling.settled else blocked_by)
        check.details["goroutineleak"] = self.leak_view.to_json()
        return check

    def gc_proven_check(self) -> Check | None:
        """Goroutines Go's GC proved leaked; None when the target does not serve the profile."""
        view = self.leak_view
        if not view.available:
            return None
        baseline = view.snapshots.get("baseline")
        if baseline is None:
            return inconclusive(RULE_GC_PROVEN, "the goroutineleak profile could not be read "
                                f"before the load: {view.errors.get('baseline')}",
                                goroutineleak=view.to_json())
        if "after_drain" in view.snapshots:
            return gc_proven(baseline, view.snapshots["after_drain"], view=view.to_json())
        error = (view.errors.get("after_drain") or view.errors.get("after_load")
                 or "it was not read after the drain")
        return gc_proven(baseline, view.snapshots.get("after_load"), view=view.to_json(),
                         error=error)

    def certain_block(self) -> str | None:
        """The rule whose block no further waiting can undo, if any (with early verdicts on)."""
        if not self.config.early_verdict:
            return None
        if self._survival is not None and self._survival.status == "block":
            return RULE_PROBE_SURVIVAL
        if self.leak_view.proven_count("after_load"):
            return RULE_GC_PROVEN
        return None

    def after_load(self) -> list[Check]:
        """Everything after the load: probes held, drain, and GC-proven leaks when served."""
        checks = [self.run_probes(), self.drain_check()]
        proven = self.gc_proven_check()
        if proven is not None:
            checks.append(proven)
        return checks

    def run(self, load: Callable[[], object] | None = None) -> list[Check]:
        """The whole probe: baseline, the caller's load (if any), probes, drain, GC proof."""
        self.baseline()
        if load is not None:
            load()
        return self.after_load()

    def _read_leaks_after_load(self) -> None:
        view = self.leak_view
        if view.available is None and "baseline" not in view.snapshots:
            view.read("baseline")  # no baseline() before the load: this is the earliest look
            self._progress(view.summary)
        elif view.read("after_load") is not None:
            self._progress(f"goroutineleak after the load: {view.proven_count('after_load')} "
                           "goroutine(s) proven leaked since the baseline")

    def _hold(self, probes: ProbeConnections, before: Profile,
              opened_at: float) -> tuple[Profile, bool]:
        """Hold to the end of hold_s — or, with early verdicts, until the server has closed every
        probe connection and their goroutines are gone: nothing can survive after that."""
        config = self.config
        deadline = opened_at + config.hold_s
        wait = SETTLE_FIRST_WAIT_S
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return self.source.snapshot(), False
            if config.early_verdict and probes.all_closed_by_server:
                profile = self.source.snapshot()
                survivors, _ = probe_goroutines(before, profile, len(probes.sockets))
                if survivors <= config.tolerance:
                    return profile, True
                pause = wait  # closed but not yet exited: back off as the settle loop does
                wait = min(wait * SETTLE_BACKOFF, SETTLE_MAX_WAIT_S)
            else:
                pause = HOLD_POLL_S
            self._sleep(min(pause, remaining))

    def _probe_connections_gone(self, profile: Profile) -> bool:
        """The goroutines of the probe's connections (closed by us now) have exited."""
        if self._before_probes is None or not self._opened:
            return True
        survivors, _ = probe_goroutines(self._before_probes, profile, self._opened)
        return survivors <= self.config.tolerance


def _kinds(counts: dict[str, int]) -> str:
    names = {"silent": "silent", "partial": "partial", "stalled": "stalled",
             "handshake": "stalled handshakes"}
    return ", ".join(f"{n} {names[kind]}" for kind, n in counts.items() if n)


def _source_for(config: LeakConfig) -> GoroutineSource:
    if config.pprof_url:
        return PprofSource(config.pprof_url, config.fetch_timeout_s)
    return MetricsSource(config.metrics_url or "", config.fetch_timeout_s)
