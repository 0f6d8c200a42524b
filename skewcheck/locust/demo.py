"""With no --host, the embedded sharded demo target is started for the run and stopped after it.

When a test starts with other shards or routing than the target serves (the web UI's start form
changed them), the target is restarted with the new ones, so its X-Shard answers keep matching.
"""

from __future__ import annotations

import atexit
from typing import Any

from locust import events
from locust.env import Environment

from skewcheck.locust.run import active, fail_usage

_process: Any = None  # the demo target's process, when the plugin started one
_url: str | None = None
_settings: tuple | None = None  # what it was started with


def _settings_of(scenario: Any) -> tuple:
    s = scenario
    return (s.shards, s.routing.primary, s.routing.key_type, s.demo.pool_size, s.demo.service_ms,
            s.demo.wait_timeout_ms)


def _start(scenario: Any) -> str:
    from skewcheck.demo.process import start_subprocess

    global _process, _url, _settings
    shards, routing, key_type, pool_size, service_ms, wait_timeout_ms = _settings_of(scenario)
    _process, _url = start_subprocess(shards=shards, routing=routing, key_type=key_type, pool_size=pool_size,
                                      service_ms=service_ms, wait_timeout_ms=wait_timeout_ms)
    _settings = _settings_of(scenario)
    return _url


@events.init.add_listener
def _on_init(environment: Environment, **_kw: Any) -> None:
    run = active()
    if run is None or run.role == "worker" or environment.host:
        return
    s = run.scenario
    try:
        url = _start(s)
    except Exception as exc:
        fail_usage(f"could not start the embedded demo target: {exc}")
        return
    environment.host = url
    print(f"skewcheck: no --host given; started the embedded demo target at {url} "
          f"({s.shards} shards routed by {s.routing.primary})", flush=True)
    atexit.register(stop)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kw: Any) -> None:
    run = active()
    if run is None or run.role == "worker" or _process is None or environment.host != _url:
        return  # no demo target of ours, or the form pointed the test at another host
    if _settings_of(run.scenario) == _settings:
        return
    stop()
    try:
        url = _start(run.scenario)
    except Exception as exc:  # the test goes on against nothing: every request unreached, exit 3
        print(f"skewcheck: could not restart the embedded demo target: {exc}", flush=True)
        return
    environment.host = url
    print(f"skewcheck: restarted the embedded demo target at {url} ({run.scenario.shards} shards routed by "
          f"{run.scenario.routing.primary})", flush=True)


def stop() -> None:
    global _process
    proc, _process = _process, None
    if proc is not None:
        from skewcheck.demo.process import stop_subprocess

        stop_subprocess(proc)
