"""GC-proven leaks: Go's goroutineleak profile, read beside the probe.

Go 1.26 built with GOEXPERIMENT=goroutineleakprofile (and Go 1.27 on) serves
`/debug/pprof/goroutineleak`. Every request runs a GC cycle that marks the goroutines blocked
on channels or sync primitives no runnable goroutine can reach as leaked; `?debug=2` then
writes every goroutine, the leaked ones with `(leaked)` after their state. It never marks a
goroutine waiting on network I/O — a silent connection's reader is a normal wait to it — which
is what the probe's connections find. A binary without the profile answers 404.
"""

from __future__ import annotations

from typing import Any, Literal

from skewcheck.leak.config import LeakConfig
from skewcheck.leak.finding import Finding, new_goroutines
from skewcheck.leak.profile import Profile, ProfileError
from skewcheck.leak.source import (
    GOROUTINE_LEAK_PROFILE,
    GoroutineSource,
    LeakSourceError,
    PprofSource,
    ProfileNotServed,
    goroutineleak_profile_url,
)

Phase = Literal["baseline", "after_load", "after_drain"]


def leaked_only(profile: Profile) -> Profile:
    """The goroutines the last leak-detection GC marked leaked (debug=1 lists only those)."""
    if profile.format == "debug=1":
        return profile
    stacks = tuple(stack for stack in profile.stacks if stack.leaked)
    return Profile(profile.format, sum(s.count for s in stacks), stacks, profile.truncated)


class GoroutineLeakView:
    """Snapshots of the goroutineleak profile at the baseline, after the load, after the drain.

    Availability is settled by the first read: a 404 means the binary has no such profile,
    which is no error — the probe judges as without it and says so. Any other failure is kept
    per phase, for the `leak_gc_proven` rule to be inconclusive about.
    """

    def __init__(self, source: GoroutineSource | None, *, url: str | None = None,
                 reason: str | None = None) -> None:
        self.source = source
        self.url = url or getattr(source, "url", None)
        self.snapshots: dict[Phase, Profile] = {}
        self.errors: dict[Phase, str] = {}
        # None: unknown until the first read answers; False with `reason` when it is off
        self.available: bool | None = None if source is not None else False
        self.reason = reason

    @classmethod
    def for_config(cls, config: LeakConfig) -> GoroutineLeakView:
        """The profile beside the configured pprof URL, unless it is off or cannot be placed."""
        if not config.goroutineleak:
            return cls(None, reason="not read (leak.goroutineleak is off)")
        if not config.pprof_url:
            return cls(None, reason="not read: go_goroutines has no stacks")
        url = goroutineleak_profile_url(config.pprof_url)
        if url is None:
            return cls(None, reason=f"not read: {config.pprof_url} is not a net/http/pprof path "
                                    "to find it beside")
        source = PprofSource(url, config.fetch_timeout_s, profile=GOROUTINE_LEAK_PROFILE)
        return cls(source, url=source.url)

    @property
    def description(self) -> str:
        return f"{GOROUTINE_LEAK_PROFILE} profile {self.url}" if self.url else GOROUTINE_LEAK_PROFILE

    def read(self, phase: Phase) -> Profile | None:
        """Take the phase's snapshot (the leaked goroutines only); None when there is none."""
        if self.source is None or self.available is False:
            return None
        try:
            profile = self.source.snapshot()
        except ProfileNotServed as exc:
            if self.available is None:
                self.available, self.reason = False, f"not served by the target ({exc})"
            else:
                self.errors[phase] = str(exc)
            return None
        except (LeakSourceError, ProfileError) as exc:
            self.errors[phase] = str(exc)
            return None
        self.available = True
        self.snapshots[phase] = leaked_only(profile)
        return self.snapshots[phase]

    def proven(self, phase: Phase) -> list[Finding]:
        """Stacks with more goroutines leaked at `phase` than at the baseline, grouped."""
        base, now = self.snapshots.get("baseline"), self.snapshots.get(phase)
        return [] if base is None or now is None else new_goroutines(base, now)

    def proven_count(self, phase: Phase) -> int:
        return sum(f.count for f in self.proven(phase))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"available": bool(self.available), "url": self.url}
        if self.reason:
            data["reason"] = self.reason
        if self.snapshots:
            data["leaked"] = {phase: p.total for phase, p in self.snapshots.items()}
        if self.errors:
            data["errors"] = dict(self.errors)
        return data

    @property
    def summary(self) -> str:
        """One line for the console: whether GC-proven leaks are looked for."""
        if self.available:
            return f"{self.description}: served, GC-proven leaks are looked for"
        if self.available is None:
            return f"{self.description}: not read yet"
        return f"{GOROUTINE_LEAK_PROFILE} profile {self.reason}; GC-proven leaks are not looked for"
