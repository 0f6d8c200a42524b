"""The leak probe as a run hook: `start` before the load, `stop` after it (no Locust import).

The plugin prints only each check's one-line message, so the hook itself says on the console
what the probe does while it holds and settles, and then its findings with stacks and fixes.
"""

from __future__ import annotations

from typing import Any

from skewcheck.leak.config import LeakConfig
from skewcheck.leak.probe import LeakProbe
from skewcheck.leak.report import render_check
from skewcheck.report.findings import printable
from skewcheck.verdict import Check

CONSOLE_PREFIX = "skewcheck leak probe: "


def console(message: str) -> None:
    print(CONSOLE_PREFIX + printable(message), flush=True)


class LeakHook:
    """Baseline when the run starts; probes, drain and GC-proven leaks when it stops."""

    def __init__(self, config: LeakConfig) -> None:
        self.probe = LeakProbe(config, progress=console)

    def start(self, run: Any) -> None:
        self.probe.baseline()

    def stop(self, run: Any) -> list[Check]:
        checks = self.probe.after_load()
        console("done")
        print("\n".join(render_check(check) for check in checks), flush=True)
        return checks


def leak_hook(run: Any) -> LeakHook | None:
    """Hook factory for the plugin: only where the run is judged, only with a leak source set."""
    config: LeakConfig | None = getattr(run.scenario, "leak", None)
    if config is None or not config.active or getattr(run, "role", "local") == "worker":
        return None
    return LeakHook(config)
