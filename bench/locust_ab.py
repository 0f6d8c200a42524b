"""Bare and plugin blocks alternating inside one Locust run, for bench_plugin_overhead.py.

Every BENCH_AB_BLOCK_S seconds the users switch between the bare task (random key, the plugin's
request listener unhooked) and the plugin task (scenario key, listener hooked). Each block's
requests and CPU seconds go to BENCH_AB_FILE as one CSV line, so neighbouring blocks compare
under the same machine conditions. BENCH_AB_AA=1 keeps both halves bare (the A/A control).
"""

import os
import random
import time

import gevent
from locust import FastHttpUser, constant, events, task

from skewcheck import plugin
from skewcheck.locust import run as skew_run

BLOCK_S = float(os.environ.get("BENCH_AB_BLOCK_S", "0.5"))
state = {"plugin": False, "requests": 0}
AA = os.environ.get("BENCH_AB_AA") == "1"


class OrdersUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def read_orders(self) -> None:
        if state["plugin"] and not AA:
            key = plugin.next_key()
            self.client.get("/orders", params={"user_id": key}, name="/orders", context=plugin.context(key))
        else:
            key = random.randint(1, 10_000_000)
            self.client.get("/orders", params={"user_id": key}, name="/orders", context={"key": key})
        state["requests"] += 1


def _alternate(path: str) -> None:
    with open(path, "w") as out:
        out.write("mode,requests,cpu_s\n")
        requests, cpu = state["requests"], time.process_time()
        while True:
            gevent.sleep(BLOCK_S)
            now_requests, now_cpu = state["requests"], time.process_time()
            out.write(f"{'plugin' if state['plugin'] else 'bare'},{now_requests - requests},"
                      f"{now_cpu - cpu:.6f}\n")
            out.flush()
            requests, cpu = now_requests, now_cpu
            state["plugin"] = not state["plugin"]
            if not AA:
                (events.request.add_listener if state["plugin"] else events.request.remove_listener)(
                    skew_run.on_request)


@events.test_start.add_listener
def _start(**_kw) -> None:
    events.request.remove_listener(skew_run.on_request)  # the run starts with a bare block
    gevent.spawn(_alternate, os.environ["BENCH_AB_FILE"])
