"""The leak probe as a run hook: `start` before the load, `stop` after it (no Locust import)."""

from __future__ import annotations

from typing import Any

from skewcheck.leak.config import LeakConfig
from skewcheck.leak.probe import LeakProbe
from skewcheck.verdict import Check


class LeakHook:
    """Baseline when the run starts; probes and drain when it stops."""

    def __init__(self, config: LeakConfig) -> None:
        self.probe = LeakProbe(config)

    def start(self, run: Any) -> None:
        self.probe.baseline()

    def stop(self, run: Any) -> list[Check]:
        return [self.probe.run_probes(), self.probe.drain_check()]


def leak_hook(run: Any) -> LeakHook | None:
    """Hook factory for the plugin: only where the run is judged, only with a leak source set."""
    config: LeakConfig | None = getattr(run.scenario, "leak", None)
    if config is None or not config.active or getattr(run, "role", "local") == "worker":
        return None
    return LeakHook(config)
