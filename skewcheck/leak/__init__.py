"""Goroutine leak probe and gate for Go targets (reads net/http/pprof or go_goroutines, and
Go's goroutineleak profile when the target serves it).

    probe = LeakProbe(LeakConfig(pprof_url="http://127.0.0.1:6060/debug/pprof/goroutine"))
    probe.baseline()            # before the load
    ...                         # the load runs, then stops and closes its connections
    checks = probe.after_load() # probes held, drain, and GC-proven leaks when served
"""

from skewcheck.leak.cause import Cause
from skewcheck.leak.check import RULE_DRAIN, RULE_GC_PROVEN, RULE_PROBE_SURVIVAL
from skewcheck.leak.config import LeakConfig
from skewcheck.leak.finding import Finding, new_goroutines
from skewcheck.leak.hook import LeakHook, leak_hook
from skewcheck.leak.probe import LeakProbe
from skewcheck.leak.profile import (
    Profile,
    ProfileError,
    Stack,
    load_profile,
    parse_go_goroutines,
    parse_goroutine_profile,
)
from skewcheck.leak.report import render_check, render_findings
from skewcheck.leak.signature import Signature, signature_of
from skewcheck.leak.proof import GoroutineLeakView
from skewcheck.leak.source import LeakSourceError, ProfileNotServed

__all__ = [
    "Cause", "Finding", "GoroutineLeakView", "LeakConfig", "LeakHook", "LeakProbe",
    "LeakSourceError", "Profile", "ProfileError", "ProfileNotServed", "RULE_DRAIN",
    "RULE_GC_PROVEN", "RULE_PROBE_SURVIVAL", "Signature", "Stack", "leak_hook",
    "load_profile", "new_goroutines", "parse_go_goroutines", "parse_goroutine_profile",
    "render_check", "render_findings", "signature_of",
]
