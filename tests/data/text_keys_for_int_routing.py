"""An orders user whose every tenth key is text while the scenario routes int keys: the plugin
must count the good ones and not vouch for the run."""

from locust import FastHttpUser, task

from skewcheck import plugin


class OrdersUser(FastHttpUser):
    wait_time = plugin.wait_time
    sent = 0

    @task
    def read_orders(self) -> None:
        OrdersUser.sent += 1
        key = f"user-{OrdersUser.sent}" if OrdersUser.sent % 10 == 0 else plugin.next_key()
        self.client.get("/orders", params={"user_id": key}, name="/orders", context=plugin.context(key))
