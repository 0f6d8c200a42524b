"""Goroutine leak probe and gate for Go targets (reads net/http/pprof or go_goroutines, and
Go's goroutineleak profile when the target serves it).

    probe = LeakProbe(LeakConfig(pprof_url="http://127.0.0.1:6060/debug/pprof/goroutine"))
    probe.baseline()            # before the load
    ...                         # the load runs, then stops and closes its connections
    checks = probe.after_load() # probes held, drain, and GC-proven leaks when served

Names are exported lazily: the scenario file imports `skewcheck.leak.config`, and that must not
load the probe's sockets or the pprof source's HTTP client into the core.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Cause": "cause", "Finding": "finding", "new_goroutines": "finding",
    "RULE_DRAIN": "check", "RULE_GC_PROVEN": "check", "RULE_PROBE_SURVIVAL": "check",
    "LeakConfig": "config", "LeakHook": "hook", "leak_hook": "hook", "LeakProbe": "probe",
    "Profile": "profile", "ProfileError": "profile", "Stack": "profile", "load_profile": "profile",
    "parse_go_goroutines": "profile", "parse_goroutine_profile": "profile",
    "render_check": "report", "render_findings": "report", "Signature": "signature",
    "signature_of": "signature", "GoroutineLeakView": "proof", "LeakSourceError": "source",
    "ProfileNotServed": "source",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return __all__
