"""The orders user without the skewcheck plugin: the baseline of bench_plugin_overhead.py."""

import random

import cpu_meter  # noqa: F401  (CPU seconds during the test)
from locust import FastHttpUser, constant, task


class OrdersUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def read_orders(self) -> None:
        key = random.randint(1, 10_000_000)
        self.client.get("/orders", params={"user_id": key}, name="/orders", context={"key": key})
