"""The leak gate's rules, judged from goroutine snapshots: probe survival, drain, and the
goroutines Go's GC proved leaked."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from skewcheck.leak.finding import Finding, counted_total, new_goroutines
from skewcheck.leak.profile import Profile
from skewcheck.verdict import Check

RULE_PROBE_SURVIVAL = "leak_probe_survival"
RULE_DRAIN = "leak_drain"
RULE_GC_PROVEN = "leak_gc_proven"
GC_PROVEN_LIMIT = 0  # a proof is no sample: one goroutine the GC proved unreachable is a leak

# goleak retries 20 times at most 100 ms apart because a test's goroutines end within
# milliseconds; a server's end on its own timeouts (seconds), so back off further, up to a deadline
SETTLE_FIRST_WAIT_S = 0.02  # a closed connection's goroutine usually exits within a scheduler tick
SETTLE_BACKOFF = 2.0  # exponential, as goleak does
SETTLE_MAX_WAIT_S = 1.0  # one look a second is enough against timeouts measured in seconds


@dataclass(frozen=True)
class Settling:
    """The last snapshot of a settle loop and how it ended."""

    profile: Profile
    settled: bool
    attempts: int
    elapsed_s: float
    done_early: bool = False  # `done` said the rest of the wait could not change the verdict


def settle(snapshot: Callable[[], Profile], *, limit: int, timeout_s: float,
           clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep,
           done: Callable[[Profile], bool] | None = None) -> Settling:
    """Snapshot until at most `limit` goroutines count (backing off exponentially), `done` says
    waiting longer is pointless, or time is up."""
    start = clock()
    wait = SETTLE_FIRST_WAIT_S
    attempts = 0
    while True:
        profile = snapshot()
        attempts += 1
        elapsed = clock() - start
        if counted_total(profile) <= limit:
            return Settling(profile, True, attempts, elapsed)
        if done is not None and done(profile):
            return Settling(profile, False, attempts, elapsed, done_early=True)
        remaining = timeout_s - elapsed
        if remaining <= 0:
            return Settling(profile, False, attempts, elapsed)
        sleep(min(wait, remaining))
        wait = min(wait * SETTLE_BACKOFF, SETTLE_MAX_WAIT_S)


def probe_goroutines(before: Profile, after: Profile, opened: int) -> tuple[int, list[Finding]]:
    """Goroutines the probe's connections hold in `after`: growth under (*conn).serve, one each."""
    if "go_goroutines" in (before.format, after.format):  # a total is all there is
        return min(max(0, after.total - before.total), opened), []
    findings = [f for f in new_goroutines(before, after) if f.signature.under_conn_serve]
    return min(sum(f.count for f in findings), opened), findings


def probe_survival(before: Profile, visible: Profile | None, after: Profile, *,
                   probes: dict[str, int], tolerance: int, hold_s: float,
                   closed_by_server: int, held_s: float | None = None,
                   tls: bool = False) -> Check:
    """Block when goroutines of probe connections are still there after the hold (`held_s`,
    shorter than `hold_s` when the server closed every probe connection before it ended)."""
    opened = sum(probes.values())
    held_for = hold_s if held_s is None else held_s
    details: dict[str, Any] = {
        "probes": dict(probes), "opened": opened, "hold_s": hold_s, "held_s": round(held_for, 3),
        "tls": tls, "closed_by_server": closed_by_server, "before_total": before.total,
        "after_total": after.total, "profile_format": after.format,
    }
    if opened == 0:
        return Check(RULE_PROBE_SURVIVAL, "pass", "no probe connections configured",
                     details=details)
    if visible is not None:
        seen, _ = probe_goroutines(before, visible, opened)
        details["visible"] = seen
        if seen == 0 and closed_by_server < opened:
            return Check(RULE_PROBE_SURVIVAL, "inconclusive",
                         f"none of the {opened} probe connections showed up in the goroutine "
                         "profile: is the probe target the process serving the profile?",
                         details=details)
    survivors, findings = probe_goroutines(before, after, opened)
    details["findings"] = [f.to_json() for f in findings]
    over = " TLS" if tls else ""
    held = (f"{survivors} of {opened}{over} probe connections still hold a goroutine after "
            f"{held_for:.3g} s (tolerance {tolerance}); the server closed {closed_by_server}")
    if survivors > tolerance:
        causes = sorted({f.cause.name for f in findings})
        why = f"; likely {', '.join(causes)}" if causes else ""
        return Check(RULE_PROBE_SURVIVAL, "block", held + why,
                     value=survivors, limit=tolerance, details=details)
    return Check(RULE_PROBE_SURVIVAL, "pass", held, value=survivors, limit=tolerance,
                 details=details)


def drain(baseline: Profile, settling: Settling, *, tolerance: int, timeout_s: float,
          blocked_by: str | None = None) -> Check:
    """Block when the goroutine total did not settle back to baseline + tolerance.

    `blocked_by` names the rule whose block was already certain when the wait was cut short:
    the total is then judged as it stood, not after the whole settle timeout.
    """
    base = counted_total(baseline)
    final = counted_total(settling.profile)
    excess = final - base
    findings = new_goroutines(baseline, settling.profile) if excess > 0 else []
    details: dict[str, Any] = {
        "baseline_total": base, "final_total": final, "settled": settling.settled,
        "attempts": settling.attempts, "elapsed_s": round(settling.elapsed_s, 3),
        "settle_timeout_s": timeout_s, "profile_format": settling.profile.format,
        "findings": [f.to_json() for f in findings],
    }
    if blocked_by:
        details["blocked_by"] = blocked_by
    if excess > tolerance:
        waited = (f"{settling.elapsed_s:.1f} s after load and probes stopped (not waiting out "
                  f"{timeout_s:g} s: {blocked_by} already blocks)" if blocked_by
                  else f"{timeout_s:g} s after load and probes stopped")
        return Check(RULE_DRAIN, "block",
                     f"{final} goroutines {waited}, "
                     f"{excess} above the baseline of {base} (tolerance {tolerance})",
                     value=excess, limit=tolerance, details=details)
    return Check(RULE_DRAIN, "pass",
                 f"goroutines back to {final} (baseline {base}, tolerance {tolerance}) "
                 f"after {settling.elapsed_s:.1f} s",
                 value=max(excess, 0), limit=tolerance, details=details)


def gc_proven(baseline: Profile, latest: Profile | None, *, view: dict[str, Any],
              error: str | None = None) -> Check:
    """Block on goroutines Go's GC proved leaked since the baseline (leaked-only snapshots).

    `latest` is the last snapshot read (after the drain, else after the load); `error` the
    reason a later one is missing: a leak already proven still blocks, no proof is no pass.
    """
    details: dict[str, Any] = {"goroutineleak": view, "baseline_leaked": baseline.total,
                               "findings": []}
    if latest is None:
        return Check(RULE_GC_PROVEN, "inconclusive",
                     f"the goroutineleak profile could not be read after the load or the drain: "
                     f"{error}", details=details)
    findings = new_goroutines(baseline, latest)
    proven = sum(f.count for f in findings)
    details.update(after_leaked=latest.total, findings=[f.to_json() for f in findings])
    if proven > GC_PROVEN_LIMIT:
        causes = sorted({f.cause.name for f in findings})
        return Check(RULE_GC_PROVEN, "block",
                     f"{proven} goroutine(s) proven leaked by Go's GC (goroutineleak profile): "
                     f"blocked on channels or locks no running goroutine can reach; "
                     f"likely {', '.join(causes)}",
                     value=proven, limit=GC_PROVEN_LIMIT, details=details)
    if error:
        return Check(RULE_GC_PROVEN, "inconclusive",
                     f"no goroutine proven leaked after the load, but the goroutineleak profile "
                     f"could not be read after the drain: {error}", details=details)
    return Check(RULE_GC_PROVEN, "pass",
                 f"no goroutine proven leaked by Go's GC after the load and the drain "
                 f"({baseline.total} leaked before the load); it does not look at goroutines "
                 "waiting on network I/O, which the probe connections cover",
                 value=0, limit=GC_PROVEN_LIMIT, details=details)


def inconclusive(rule: str, message: str, **details: Any) -> Check:
    return Check(rule, "inconclusive", message, details=details)


def goroutine_phases(checks: Iterable[Check]) -> dict[str, int]:
    """Goroutine totals at each probe phase, for the `skewcheck_probe_goroutines{phase}` gauge."""
    phases: dict[str, int] = {}
    for check in checks:
        d = check.details or {}
        if check.rule == RULE_PROBE_SURVIVAL and "after_total" in d:
            phases.update(before_probes=d["before_total"], probes_held=d["after_total"])
        elif check.rule == RULE_DRAIN and "final_total" in d:
            phases.update(baseline=d["baseline_total"], after_drain=d["final_total"])
    return phases
