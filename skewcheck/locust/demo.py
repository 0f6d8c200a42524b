"""With no --host, the embedded sharded demo target is started for the run and stopped after it."""

from __future__ import annotations

import atexit
from typing import Any

from locust import events
from locust.env import Environment

from skewcheck.locust.run import active, fail_usage

_process: Any = None  # the demo target's process, when the plugin started one


@events.init.add_listener
def _on_init(environment: Environment, **_kw: Any) -> None:
    run = active()
    if run is None or run.role == "worker" or environment.host:
        return
    from skewcheck.demo.process import start_subprocess

    global _process
    s = run.scenario
    try:
        _process, url = start_subprocess(shards=s.shards, routing=s.routing.primary, key_type=s.routing.key_type,
                                         pool_size=s.demo.pool_size, service_ms=s.demo.service_ms,
                                         wait_timeout_ms=s.demo.wait_timeout_ms)
    except Exception as exc:
        fail_usage(f"could not start the embedded demo target: {exc}")
        return
    environment.host = url
    print(f"skewcheck: no --host given; started the embedded demo target at {url} "
          f"({s.shards} shards routed by {s.routing.primary})", flush=True)
    atexit.register(stop)


def stop() -> None:
    global _process
    proc, _process = _process, None
    if proc is not None:
        from skewcheck.demo.process import stop_subprocess

        stop_subprocess(proc)
