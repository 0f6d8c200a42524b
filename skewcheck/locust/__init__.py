"""The Locust plugin: `from skewcheck import plugin` in a locustfile (or `import skewcheck.locust`).

A set of listeners on Locust's events, in the style of Locust's own extensions:
- options   the `--skew-*` options and the scenario they select
- run       the per-process run, the keys a locustfile draws, the per-request listener (the hot
            path: it only hands each request's key to the tally)
- distributed  workers' frames to the master, and the final frames at the end of the test
- edges     the leak probe and the Kafka producer join the run (a bad setting stops it here)
- demo      with no --host, the embedded sharded demo target for the run
- webui     the Shards tab and the /skew pages in Locust's web UI
- decision  the live verdict watched once a second; `gate.stop_on` ends the run when it is decided
- finish    summary, verdict, reports and exit code at the end

Locust calls the listeners of an event in the order they subscribed, so the modules are imported
in this order: the run is built before the edges join it, and the edges add their checks before
`finish` takes the verdict.
"""

from skewcheck.locust import options, run, distributed, edges, demo, webui, decision, finish  # noqa: F401,I001
from skewcheck.locust.run import context, current, next_key, wait_time

__all__ = ["context", "current", "next_key", "wait_time"]
