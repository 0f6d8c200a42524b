"""The run: per-process state of the plugin, the keys a locustfile draws, and the per-request
listener — the hot path, which only hands each request's key to the tally.

Each Locust process (local runner, master, every worker) builds one `SkewRun` at `init` from the
`--skew-*` options. At `test_start` it is built again when the options changed (a worker gets the
master's with the first spawn message; the local runner and the master get the web form's) or when
the previous test of this process is over (a web UI can start another).
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner, WorkerRunner

try:
    from geventhttpclient.header import Headers as _FastHeaders
except ImportError:  # pragma: no cover - FastHttpUser's client is a Locust dependency
    _FastHeaders = None

from skewcheck.config import Scenario
from skewcheck.errors import EXIT_USAGE, SkewcheckError
from skewcheck.gate import Evidence, judge
from skewcheck.keys import KeySupply, ends
from skewcheck.locust.options import scenario_from_options
from skewcheck.report.escape import printable_lines
from skewcheck.summary import summarize
from skewcheck.tally import Tally
from skewcheck.verdict import Check

log = logging.getLogger("skewcheck")

CONTEXT_KEY = "skew_key"  # where a request's key travels in Locust's request context
SHARD_HEADER = "X-Shard"
_SHARD_HEADER_LOWER = SHARD_HEADER.lower()


@dataclass
class SkewRun:
    """Per-process state of the plugin."""

    environment: Environment
    scenario: Scenario
    tally: Tally
    distribution: Any
    role: str  # local | master | worker
    extra_checks: list[Check] = field(default_factory=list)  # from the leak probe, the producer…
    finished: bool = False
    reported: int = 0  # requests this worker has sent to the master so far
    rejected_frames: int = 0  # worker frames that did not fit this master's routers/shards
    final_pending: set[str] = field(default_factory=set)  # workers whose final frame is still due
    final_collected: bool = False  # the master has asked its workers for their final frames
    final_wait_s: float = 0.0  # how long the master waited for them
    decided: dict[str, Any] | None = None  # when the live verdict was first decided (stop_on)
    resets: list[float] = field(default_factory=list)  # when the counts were reset (Locust's reset stats)
    probe_goroutines: dict[str, int] = field(default_factory=dict)  # leak probe phase totals
    result_extra: dict[str, Any] = field(default_factory=dict)  # sections the edges add to result.json
    keys: KeySupply | None = None  # the scenario's keys, drawn a block at a time
    load_end: float | None = None  # when the test began to stop: the run's duration ends here
    doc: dict[str, Any] | None = None  # the result document once judged
    judged_checks: int = 0  # how many extra checks the judged document holds
    shown: bool = False  # the verdict block has been printed
    reports: str | None = None  # the report files written, as printed
    def __post_init__(self) -> None:
        if self.keys is None:
            self.keys = KeySupply(self.distribution, one_at_a_time=ends(list(self.scenario.keys)))

    def wait_seconds(self) -> float:
        load = self.scenario.load
        return random.uniform(load.wait_min_s, max(load.wait_min_s, load.wait_max_s))

    def evidence(self) -> Evidence:
        return Evidence(unroutable=self.tally.unroutable, unroutable_example=self.tally.unroutable_example,
                        key_type=self.tally.key_type, missing_workers=len(self.final_pending),
                        final_wait_s=self.final_wait_s, rejected_frames=self.rejected_frames,
                        resets=tuple(self.resets))

    def snapshot(self) -> tuple[Any, Any]:
        now = time.time()
        self.tally.advance_to(now)
        summary = summarize(self.tally, now=now)
        return summary, judge(summary, self.scenario.gate, self.extra_checks, self.evidence())


_run: SkewRun | None = None


def current() -> SkewRun:
    if _run is None:
        raise RuntimeError("the skewcheck plugin is not initialised (is this a Locust run?)")
    return _run


def active() -> SkewRun | None:
    """The run, or None outside a Locust run (listeners return early then)."""
    return _run


# --- what a locustfile uses ---------------------------------------------------------------------


def next_key() -> int | str:
    """The next key from the scenario's distribution."""
    run = _run
    if run is None:
        current()  # raises the explanation
    return run.keys.next()


def context(key: int | str) -> dict[str, Any]:
    """The request context that hands the key to the plugin's request listener."""
    return {CONTEXT_KEY: key}


def wait_time(user: Any) -> float:
    """A Locust `wait_time` drawing from the scenario's load section."""
    return current().wait_seconds()


# --- building the run ----------------------------------------------------------------------------


def role_of(environment: Environment) -> str:
    if isinstance(environment.runner, MasterRunner):
        return "master"
    if isinstance(environment.runner, WorkerRunner):
        return "worker"
    return "local"


def build(environment: Environment, scenario: Scenario) -> SkewRun:
    routers = [scenario.routing.router(name, scenario.shards) for name in scenario.routing.router_names]
    role = role_of(environment)
    # a master's counts arrive with the workers' reports, every few seconds: its heatmap columns
    # are that wide, so each holds a report of every worker
    timeline_s = WORKER_REPORT_INTERVAL if role == "master" else None
    seed = scenario.seed
    if role == "worker":  # each worker draws its own key stream from the same distribution
        seed = seed * 1_000_003 + int(getattr(environment.runner, "worker_index", 0) or 0) + 1
    distribution = scenario.model_copy(update={"seed": seed}).build_distribution()
    tally = Tally(routers, window_s=scenario.window_s, timeline_s=timeline_s)
    return SkewRun(environment, scenario, tally, distribution, role)


def fail_usage(message: str) -> None:
    sys.stderr.write(printable_lines(f"skewcheck: {message}") + "\n")
    sys.stderr.flush()
    os._exit(EXIT_USAGE)  # before any load: Locust's greenlets and web UI must not start


@events.init.add_listener
def _on_init(environment: Environment, **_kw: Any) -> None:
    global _run
    try:
        _run = build(environment, scenario_from_options(environment.parsed_options))
    except SkewcheckError as exc:
        fail_usage(str(exc))
        return
    scenario = _run.scenario
    log.info("skewcheck: %s shards, primary %s, compare %s", scenario.shards, scenario.routing.primary,
             ",".join(scenario.routing.router_names[1:]))


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kw: Any) -> None:
    """Rebuild the run when the options changed — a worker's from the master's first spawn
    message, the local runner's and the master's from the web UI's start form — or when the last
    test is over (listeners registered after this one see the rebuilt run)."""
    global _run
    run = _run
    if run is None:
        return
    try:
        scenario = scenario_from_options(environment.parsed_options)
    except SkewcheckError as exc:  # the web form is checked before the start; a worker logs it
        log.error("skewcheck: %s", exc)
        return
    if scenario != run.scenario or run.finished or (run.role != "worker" and run.load_end is not None):
        _run = build(environment, scenario)
        if run.role != "worker" and scenario != run.scenario:
            others = scenario.routing.router_names[1:]
            print(f"skewcheck: this test runs {scenario.name} over {scenario.shards} shards routed by "
                  f"{scenario.routing.primary}" + (f" (compare {', '.join(others)})" if others else ""), flush=True)


# --- the hot path ---------------------------------------------------------------------------------


@events.request.add_listener
def on_request(request_type: str = "", name: str = "", response_time: float = 0.0,
               response_length: int = 0, response: Any = None, context: dict | None = None,
               exception: Any = None, **_kw: Any) -> None:
    # Locust's own arguments are named so the call binds them instead of building a dict
    if not context or _run is None:
        return
    key = context.get(CONTEXT_KEY)
    if key is None:
        return
    if exception is not None and not getattr(response, "status_code", 0):
        _run.tally.add_unreached(key)  # no answer (refused, reset): it never reached a shard
        return
    _run.tally.add(key, observed_shard=shard_header(getattr(response, "headers", None)),
                   failed=exception is not None, latency_ms=response_time)


def shard_header(headers: Any) -> Any:
    """The X-Shard header's value, or None. FastHttpUser's headers (geventhttpclient's Headers)
    are a dict of lower-cased names to (name, value), read directly on this per-request path;
    the text is parsed with the batch."""
    if headers is None:
        return None
    if type(headers) is _FastHeaders:
        entry = dict.get(headers, _SHARD_HEADER_LOWER)
        if entry is None or type(entry) is tuple:
            return entry if entry is None else entry[1]
    return headers.get(SHARD_HEADER)


@events.reset_stats.add_listener
def _on_reset_stats(**_kw: Any) -> None:
    """Locust's "reset stats" (web UI, POST /stats/reset) resets the tally too, and the verdict
    says so: it judges the requests since the last reset."""
    if _run is not None:
        _run.tally.reset()
        _run.resets.append(time.time())
