"""locustfiles/orders.py whose workers take 1.5 s to stop: longer than the 0.5 s Locust's master
waits for the workers' last stats reports after telling them to quit."""

import sys
from pathlib import Path

import gevent
from locust import events
from locust.runners import WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "locustfiles"))

from orders import OrdersUser  # noqa: E402,F401  (the user class Locust runs)


@events.test_stop.add_listener
def _slow_stop(environment, **_kw) -> None:
    if isinstance(environment.runner, WorkerRunner):
        gevent.sleep(1.5)
