"""The embedded sharded orders service: a demo target whose shards saturate the way real ones do.

    from skewcheck.demo import DemoTarget, start_subprocess, stop_subprocess

    with DemoTarget(shards=100, routing="hash-mod", pool_size=2, service_ms=20) as target:
        ...  # send traffic to target.url

    proc, url = start_subprocess(config="configs/incident-2020.yaml")
    try: ...
    finally: stop_subprocess(proc)

Importing this package needs prometheus-client (the `prometheus` extra); the core never imports it.
"""

from __future__ import annotations

from skewcheck.demo.process import start_subprocess, stop_subprocess
from skewcheck.demo.target import DemoTarget

__all__ = ["DemoTarget", "start_subprocess", "stop_subprocess"]
