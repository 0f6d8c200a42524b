"""Orders load test with per-shard balance gating.

    locust -f locustfiles/orders.py --headless -u 50 -r 25 -t 20s
    locust -f locustfiles/orders.py --skew-config configs/incident-2020.yaml   # web UI: see the Shards tab

Keys come from the scenario (--skew-config); the plugin routes each one to its shard, shows the
balance live and gates the release at the end. With no --host, an embedded sharded demo
service is started for the run.
"""

from locust import FastHttpUser, task

from skewcheck import plugin  # registers the --skew-* options, the listeners and the Shards tab


class OrdersUser(FastHttpUser):
    wait_time = plugin.wait_time  # from the scenario's `load:` section

    @task(4)
    def read_orders(self) -> None:
        key = plugin.next_key()
        self.client.get("/orders", params={"user_id": key}, name="/orders", context=plugin.context(key))

    @task(1)
    def create_order(self) -> None:
        key = plugin.next_key()
        self.client.post("/orders", json={"user_id": key, "item": "book", "qty": 1}, name="/orders [POST]",
                         context=plugin.context(key))
