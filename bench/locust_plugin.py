"""The same orders user with the skewcheck plugin (keys from the scenario, tallied per request)."""

import cpu_meter  # noqa: F401  (CPU seconds during the test)
from locust import FastHttpUser, constant, task

from skewcheck import plugin


class OrdersUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def read_orders(self) -> None:
        key = plugin.next_key()
        self.client.get("/orders", params={"user_id": key}, name="/orders", context=plugin.context(key))
