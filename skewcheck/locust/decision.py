"""The live verdict, watched once a second: it records when the verdict was decided, and with
`gate.stop_on` (`--skew-stop-on`) ends the run there, like k6's abortOnFail but on a decision whose
error rates are stated (a block must be proven by the anytime-valid evidence; a pass waits for
`min_requests`)."""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment

from skewcheck.gate import decision
from skewcheck.locust.run import active

log = logging.getLogger("skewcheck")

WATCH_EVERY_S = 1.0  # as often as the live view refreshes; one summary per second

_watcher: Any = None
_started: float | None = None


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kw: Any) -> None:
    global _watcher, _started
    run = active()
    if run is None or run.role == "worker" or run.scenario.gate.stop_on == "never" or _watcher is not None:
        return
    _started = time.time()
    _watcher = gevent.spawn(_watch, environment)


@events.test_stop.add_listener
def _on_test_stop(**_kw: Any) -> None:
    global _watcher
    watcher, _watcher = _watcher, None
    if watcher is not None and watcher is not gevent.getcurrent():
        watcher.kill(block=False)


def _watch(environment: Environment) -> None:
    while True:
        gevent.sleep(WATCH_EVERY_S)
        run = active()
        if run is None or run.finished:
            return
        summary, judgement = run.snapshot()
        decided = decision(summary, judgement, run.scenario.gate)
        if decided is None:
            continue
        if run.decided is None or run.decided["status"] != decided:  # a pass may still turn into a block
            run.decided = {"status": decided, "elapsed_s": round(time.time() - (_started or time.time()), 1),
                           "requests": summary.requests, "stop_on": run.scenario.gate.stop_on}
        stop_on = run.scenario.gate.stop_on
        if stop_on == "decided" or (stop_on == "block" and decided == "block"):
            print(f"skewcheck: the verdict is decided ({decided.upper()}) after {summary.requests:,} requests "
                  f"in {run.decided['elapsed_s']:g} s; stopping the run (gate.stop_on: {stop_on})", flush=True)
            gevent.spawn(environment.runner.quit)
            return
