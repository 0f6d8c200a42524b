"""The run's other edges join it here, each subscribing to the Locust events it needs: the leak
probe (baseline at test start; probes and drain once the load has stopped, called by `finish`
before the verdict) and the Kafka producer (frames or events for the sidecar). Each adds its
checks to the run before the verdict is taken."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

from locust import events
from locust.env import Environment

from skewcheck.errors import SkewcheckError
from skewcheck.kafka import producer
from skewcheck.leak.hook import leak_hook
from skewcheck.locust.run import SkewRun, active, current, fail_usage

_leak: Any = None  # the leak probe hook, when the scenario has a leak section
_probe_due = False  # a test started since the probe last ran


@events.init.add_listener
def _on_init(environment: Environment, **_kw: Any) -> None:
    global _leak
    run = active()
    if run is None:
        return
    try:
        producer.attach(run, current)
        _leak = leak_hook(run)
    except SkewcheckError as exc:
        fail_usage(str(exc))
        return
    if _leak is not None:
        environment.events.test_start.add_listener(_on_test_start)


def _on_test_start(**_kw: Any) -> None:
    global _probe_due
    _probe_due = True
    _leak.start(current())


def after_load(run: SkewRun) -> None:
    """Probe for leaks once per test, after the load and before the verdict. Locust's stats
    printer is quiet meanwhile: it would repeat the same table every 2 s while the probe holds."""
    global _probe_due
    if _leak is None or not _probe_due:
        return
    _probe_due = False
    with quiet_stats():
        try:
            run.extra_checks.extend(_leak.stop(run))
        except SkewcheckError as exc:  # the probe's own failures are checks; anything else is a bug below
            run.extra_checks.append(_failed(_leak, exc))
        except Exception as exc:  # a probe must never cost the balance verdict
            run.extra_checks.append(_failed(_leak, exc))


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def quiet_stats() -> Iterator[None]:
    """Hold back Locust's periodic stats table (its `locust.stats_logger`) for a while."""
    logger, drop = logging.getLogger("locust.stats_logger"), _Drop()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _failed(leak: Any, exc: BaseException) -> Any:
    from skewcheck.verdict import Check

    return Check("hook", "inconclusive", f"{type(leak).__name__} failed: {exc}")
