"""The run's other edges join it here, each subscribing to the Locust events it needs: the leak
probe (baseline at test start, probes and drain at the end) and the Kafka producer (frames or
events for the sidecar). Each adds its checks to the run before the verdict is taken."""

from __future__ import annotations

from typing import Any

from locust import events
from locust.env import Environment

from skewcheck.errors import SkewcheckError
from skewcheck.kafka import producer
from skewcheck.leak.hook import leak_hook
from skewcheck.locust.run import active, current, fail_usage


@events.init.add_listener
def _on_init(environment: Environment, **_kw: Any) -> None:
    run = active()
    if run is None:
        return
    try:
        producer.attach(run, current)
        leak = leak_hook(run)
    except SkewcheckError as exc:
        fail_usage(str(exc))
        return
    if leak is not None:
        environment.events.test_start.add_listener(lambda **_: leak.start(current()))
        environment.events.quitting.add_listener(lambda **_: _leak_checks(leak))


def _leak_checks(leak: Any) -> None:
    run = current()
    try:
        run.extra_checks.extend(leak.stop(run))
    except SkewcheckError as exc:  # the probe's own failures are checks; anything else is a bug below
        run.extra_checks.append(_failed(leak, exc))
    except Exception as exc:  # a probe must never cost the balance verdict
        run.extra_checks.append(_failed(leak, exc))


def _failed(leak: Any, exc: BaseException) -> Any:
    from skewcheck.verdict import Check

    return Check("hook", "inconclusive", f"{type(leak).__name__} failed: {exc}")
