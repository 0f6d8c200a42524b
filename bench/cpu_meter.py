"""CPU seconds the Locust process spends during the test (start → stop), for the overhead bench.

Wall-clock requests/s swings with whatever else the machine runs; requests per CPU-second of
the load generator is what the plugin's per-request cost changes.
"""

import os
import time

from locust import events

_started: list[float] = []


@events.test_start.add_listener
def _start(**_kw) -> None:
    _started.append(time.process_time())


@events.test_stop.add_listener
def _stop(**_kw) -> None:
    path = os.environ.get("BENCH_CPU_FILE")
    if path and _started:
        with open(path, "w") as f:
            f.write(f"{time.process_time() - _started[0]:.6f}\n")
