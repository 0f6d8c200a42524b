"""The plugin's own per-request cost inside a real run, for bench_plugin_overhead.py --per-request.

Times plugin.next_key() + plugin.context() in the task and the plugin's request listener (with
its share of the once-a-second batch) around each call; prints microseconds per request, which
include the timer's own cost (two perf_counter calls, ~0.1 µs each).
"""

import time

from locust import FastHttpUser, constant, events, task

from skewcheck import plugin
from skewcheck.locust import run as skew_run

spent = {"draw": 0.0, "listener": 0.0, "requests": 0}

events.request.remove_listener(skew_run.on_request)


@events.request.add_listener
def _timed_listener(**kw) -> None:
    t0 = time.perf_counter()
    skew_run.on_request(**kw)
    spent["listener"] += time.perf_counter() - t0
    spent["requests"] += 1


class OrdersUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def read_orders(self) -> None:
        t0 = time.perf_counter()
        key = plugin.next_key()
        context = plugin.context(key)
        spent["draw"] += time.perf_counter() - t0
        self.client.get("/orders", params={"user_id": key}, name="/orders", context=context)


@events.quitting.add_listener
def _report(**_kw) -> None:
    n = max(spent["requests"], 1)
    print(f"per request: draw {spent['draw'] / n * 1e6:.2f} us, listener {spent['listener'] / n * 1e6:.2f} us, "
          f"Locust process CPU {time.process_time() / n * 1e6:.0f} us ({spent['requests']} requests)", flush=True)
