"""`skewcheck demo-target` — the embedded sharded orders service (N shards, each a connection pool).

Prints `demo-target listening on http://HOST:PORT` once ready and serves until SIGTERM or SIGINT, then
exits 0. Shards, router and key type come from --config (shards, routing.primary, routing.key_type, demo:)
and the flags override them.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from types import FrameType
from typing import TypeVar

T = TypeVar("T")


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="run the embedded sharded orders service (a demo target for Locust)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="scenario whose shards, routing and demo: section give the defaults")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default 0)")
    p.add_argument("--shards", type=int, help="number of shards (default: the config's, else 100)")
    p.add_argument("--routing", help="router the service uses to pick a shard, e.g. mod, hash-mod, murmur3")
    p.add_argument("--key-type", choices=["int", "str"], help="how user_id is read (default: the config's)")
    p.add_argument("--pool-size", type=int, help="connection slots per shard")
    p.add_argument("--service-ms", type=float, help="time a query holds its slot, in ms")
    p.add_argument("--wait-timeout-ms", type=float, help="longest wait for a slot before answering 503, in ms")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="stop when the parent process goes away (used when started by the Locust plugin)")
    p.set_defaults(run=run)


def _pick(flag: T | None, default: T) -> T:
    return default if flag is None else flag


def run(args: argparse.Namespace) -> int:
    from skewcheck.config import load_scenario
    from skewcheck.demo.target import DemoTarget

    parent = os.getppid()  # taken first: a parent that dies while we start up is still noticed
    scenario = load_scenario(args.config)
    demo = scenario.demo
    target = DemoTarget(
        shards=_pick(args.shards, scenario.shards),
        routing=_pick(args.routing, scenario.routing.primary),
        key_type=_pick(args.key_type, scenario.routing.key_type),
        pool_size=_pick(args.pool_size, demo.pool_size),
        service_ms=_pick(args.service_ms, demo.service_ms),
        wait_timeout_ms=_pick(args.wait_timeout_ms, demo.wait_timeout_ms),
        host=args.host, port=args.port)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # handlers first, so a signal that arrives right after the ready line still exits cleanly
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    url = target.start()
    try:
        print(f"demo-target listening on {url}", flush=True)
        while not stop.wait(0.5):
            if args.exit_with_parent and os.getppid() != parent:
                break  # re-parented: whoever started us is gone, so nobody will ever stop us
    finally:
        target.stop()
    return 0
