"""The Locust plugin: `from skewcheck import plugin` in a locustfile.

A set of listeners on Locust's events (options, init, request, worker reports, quitting), in
the style of Locust's own extensions:
- every request's key is tallied under the primary and compare routers (cheap, per request);
- a target answering `X-Shard` is tallied too and checked against the primary router's prediction;
- workers drain their tallies into frames sent to the master, which merges them by addition;
- at the end of the run the master (or the local runner) summarises, judges, prints the shard
  table and the verdict, writes the reports and sets the exit code when the verdict is not a pass;
- with no --host, the embedded sharded demo target is started for the run and stopped after it.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

try:
    from geventhttpclient.header import Headers as _FastHeaders
except ImportError:  # pragma: no cover - FastHttpUser's client is a Locust dependency
    _FastHeaders = None

from skewcheck.config import Scenario, load_scenario, with_overrides
from skewcheck.errors import EXIT_USAGE, SkewcheckError
from skewcheck.gate import judge
from skewcheck.kafka_producer import kafka_producer_hook
from skewcheck.keys import KeySupply, ends
from skewcheck.leak import leak_hook
from skewcheck.leak.check import goroutine_phases
from skewcheck.report import terminal, write_reports
from skewcheck.result import build_result
from skewcheck.routing import make_router
from skewcheck.summary import summarize
from skewcheck.tally import Tally, shard_number
from skewcheck.verdict import Check

log = logging.getLogger("skewcheck")

CONTEXT_KEY = "skew_key"  # where a request's key travels in Locust's request context
FRAME_KEY = "skewcheck"  # where a worker's frame travels in its report to the master
FINAL_REQUEST = "skewcheck_final"  # master -> workers at the end of the test: stop, send the rest
FINAL_FRAME = "skewcheck_final_frame"  # worker -> master: everything not reported yet
FINAL_WAIT_S = 15.0  # how long the master waits for every worker's final frame
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
    demo: Any = None  # the demo target's process, when the plugin started one
    extra_checks: list[Check] = field(default_factory=list)  # from the leak probe, the producer…
    hooks: list[Any] = field(default_factory=list)  # objects with start(run)/stop(run) -> list[Check]
    # per-request callables (key, observed, name, ok, latency_ms) that hooks add in start(run)
    key_listeners: list[Any] = field(default_factory=list)
    finished: bool = False
    reported: int = 0  # requests this worker has sent to the master so far
    rejected_frames: int = 0  # worker frames that did not fit this master's routers/shards
    final_pending: set[str] = field(default_factory=set)  # workers whose final frame is still due
    probe_goroutines: dict[str, int] = field(default_factory=dict)  # leak probe phase totals
    result_extra: dict[str, Any] = field(default_factory=dict)  # sections hooks add to result.json
    keys: KeySupply | None = None  # the scenario's keys, drawn a block at a time
    final_collected: bool = False  # the master has asked its workers for their final frames

    def __post_init__(self) -> None:
        if self.keys is None:
            self.keys = KeySupply(self.distribution, one_at_a_time=ends(list(self.scenario.keys)))

    def wait_seconds(self) -> float:
        load = self.scenario.load
        return random.uniform(load.wait_min_s, max(load.wait_min_s, load.wait_max_s))

    def snapshot(self) -> tuple[Any, Any]:
        now = time.time()
        self.tally.advance_to(now)
        summary = summarize(self.tally, now=now)
        return summary, judge(summary, self.scenario.gate, self.extra_checks)


_run: SkewRun | None = None


def current() -> SkewRun:
    if _run is None:
        raise RuntimeError("the skewcheck plugin is not initialised (is this a Locust run?)")
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


# --- options ------------------------------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kw: Any) -> None:
    group = parser.add_argument_group("skewcheck", "Per-shard balance and the release gate")
    group.add_argument("--skew-config", env_var="LOCUST_SKEW_CONFIG", default="",
                       help="Scenario YAML (keys, routing, gate); default: the built-in scenario")
    group.add_argument("--skew-shards", env_var="LOCUST_SKEW_SHARDS", type=int, default=None,
                       help="Number of shards (overrides the scenario)")
    group.add_argument("--skew-routing", env_var="LOCUST_SKEW_ROUTING", default="",
                       help="Primary router: mod, hash-mod, murmur3, kafka, jump, redis")
    group.add_argument("--skew-compare", env_var="LOCUST_SKEW_COMPARE", default="",
                       help="Comma-separated what-if routers counted side by side")
    group.add_argument("--skew-max-share", env_var="LOCUST_SKEW_MAX_SHARE", type=float, default=None,
                       help="Block when a shard carries more than this share (default 0.15)")
    group.add_argument("--skew-min-requests", env_var="LOCUST_SKEW_MIN_REQUESTS", type=int, default=None,
                       help="Fewer counted requests than this is inconclusive (exit 3)")
    group.add_argument("--skew-report-dir", env_var="LOCUST_SKEW_REPORT_DIR", default="",
                       help="Write result.json, junit.xml, summary.md and report.html here")
    group.add_argument("--skew-kafka-bootstrap", env_var="LOCUST_SKEW_KAFKA_BOOTSTRAP", default="",
                       help="Publish to this Kafka (host:port,...) for the sidecar; frames unless the "
                            "scenario says kafka.produce: events")


def scenario_from_options(options: Any) -> Scenario:
    scenario = load_scenario(getattr(options, "skew_config", "") or None)
    compare = getattr(options, "skew_compare", "")
    bootstrap = getattr(options, "skew_kafka_bootstrap", "")
    if bootstrap:
        kafka = scenario.kafka.model_copy(update={
            "bootstrap_servers": bootstrap,
            "produce": "frames" if scenario.kafka.produce == "off" else scenario.kafka.produce})
        scenario = scenario.model_copy(update={"kafka": kafka})
    return with_overrides(
        scenario,
        shards=getattr(options, "skew_shards", None),
        primary=getattr(options, "skew_routing", "") or None,
        compare=[c.strip() for c in compare.split(",") if c.strip()] if compare else None,
        max_share=getattr(options, "skew_max_share", None),
        min_requests=getattr(options, "skew_min_requests", None),
        report_dir=getattr(options, "skew_report_dir", "") or None,
        source="--skew-* options",
    )


def _role(environment: Environment) -> str:
    if isinstance(environment.runner, MasterRunner):
        return "master"
    if isinstance(environment.runner, WorkerRunner):
        return "worker"
    return "local"


def _build(environment: Environment, scenario: Scenario) -> SkewRun:
    routers = [make_router(name, scenario.shards, scenario.routing.key_type) for name in scenario.routing.router_names]
    role = _role(environment)
    seed = scenario.seed
    if role == "worker":  # each worker draws its own key stream from the same distribution
        seed = seed * 1_000_003 + int(getattr(environment.runner, "worker_index", 0) or 0) + 1
    distribution = scenario.model_copy(update={"seed": seed}).build_distribution()
    return SkewRun(environment, scenario, Tally(routers, window_s=scenario.window_s), distribution, role)


def _fail_usage(message: str) -> None:
    sys.stderr.write(f"skewcheck: {message}\n")
    sys.stderr.flush()
    os._exit(EXIT_USAGE)  # before any load: Locust's greenlets and web UI must not start


@events.init.add_listener
def _on_init(environment: Environment, **_kw: Any) -> None:
    global _run
    try:
        scenario = scenario_from_options(environment.parsed_options)
        _run = _build(environment, scenario)
    except SkewcheckError as exc:
        _fail_usage(str(exc))
        return
    run = _run
    try:
        _attach_hooks(run)
    except SkewcheckError as exc:
        _fail_usage(str(exc))
        return
    if run.role != "worker" and not environment.host:
        _start_demo_target(run)
    if run.role == "master":
        environment.runner.register_message(FINAL_FRAME, _on_final_frame)
    elif run.role == "worker":
        environment.runner.register_message(FINAL_REQUEST, _on_final_request)
    if environment.web_ui is not None and run.role != "worker":
        from skewcheck import webui

        webui.install(environment.web_ui, current)
    log.info("skewcheck: %s shards, primary %s, compare %s", scenario.shards, scenario.routing.primary,
             ",".join(scenario.routing.router_names[1:]))


# Extension point for edges that join the run (leak probe, Kafka producer): a callable taking the
# SkewRun and returning an object with start(run) and stop(run) -> list[Check], or None.
_hook_factories: list[Any] = []


def register_hook(factory: Any) -> None:
    _hook_factories.append(factory)


def _attach_hooks(run: SkewRun) -> None:
    for factory in _hook_factories:
        hook = factory(run)
        if hook is not None:
            run.hooks.append(hook)


register_hook(leak_hook)  # baseline at test start; probes and the drain check at the end
register_hook(kafka_producer_hook)  # frames or events to Kafka for the sidecar, when the scenario asks


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kw: Any) -> None:
    global _run
    run = _run
    if run is None:
        return
    if run.role == "worker":
        # the master's --skew-* values arrive with the first spawn message: rebuild if they differ
        try:
            scenario = scenario_from_options(environment.parsed_options)
        except SkewcheckError as exc:
            log.error("skewcheck: %s", exc)
            return
        if scenario != run.scenario:
            _run = run = _build(environment, scenario)
            try:
                _attach_hooks(run)  # the hooks of the rebuilt run follow the master's scenario
            except SkewcheckError as exc:
                log.error("skewcheck: %s", exc)
    for hook in run.hooks:
        hook.start(run)


# --- the hot path ---------------------------------------------------------------------------------


@events.request.add_listener
def _on_request(request_type: str = "", name: str = "", response_time: float = 0.0,
                response_length: int = 0, response: Any = None, context: dict | None = None,
                exception: Any = None, **_kw: Any) -> None:
    # Locust's own arguments are named so the call binds them instead of building a dict
    if not context or _run is None:
        return
    key = context.get(CONTEXT_KEY)
    if key is None:
        return
    if exception is not None and not getattr(response, "status_code", 0):
        return  # no answer (connection refused/reset): the request never reached a shard
    raw = shard_header(getattr(response, "headers", None))
    run = _run
    run.tally.add(key, observed_shard=raw)  # the header's text is parsed with the batch
    if run.key_listeners:
        observed = None if raw is None else shard_number(raw)
        for listener in run.key_listeners:
            listener(key, observed, name, exception is None, response_time)


def shard_header(headers: Any) -> Any:
    """The X-Shard header's value, or None. FastHttpUser's headers (geventhttpclient's Headers)
    are a dict of lower-cased names to (name, value), read directly on this per-request path."""
    if headers is None:
        return None
    if type(headers) is _FastHeaders:
        entry = dict.get(headers, _SHARD_HEADER_LOWER)
        if entry is None or type(entry) is tuple:
            return entry if entry is None else entry[1]
    return headers.get(SHARD_HEADER)


# --- distributed mode ----------------------------------------------------------------------------


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict, **_kw: Any) -> None:
    if _run is not None:
        data[FRAME_KEY] = _drain(_run, str(client_id))


def _drain(run: SkewRun, source: str) -> dict[str, Any] | None:
    """A worker's counts since its last report as a frame, or None when there is nothing to send."""
    if not run.tally.has_counts():  # keys that turned out unroutable must reach the master too
        return None
    frame = run.tally.drain_frame(source)
    run.reported += frame["requests"]
    return frame


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict, **_kw: Any) -> None:
    frame = data.get(FRAME_KEY)
    if _run is None or not frame:
        return
    try:
        _run.tally.add_frame(frame)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        _run.rejected_frames += 1  # the verdict can't vouch for counts it didn't get
        log.error("skewcheck: rejected a frame from worker %s: %s", client_id, exc)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kw: Any) -> None:
    """Master: before Locust tells the workers to quit, collect what they have not reported yet.

    Locust gives the workers' final stats reports 0.5 s after its quit message; a worker busy
    stopping its users can miss that. So the master asks every worker for its final frame and
    waits for all of them (at most FINAL_WAIT_S) while its message loop keeps running.
    """
    if _run is not None and _run.role == "master":
        _collect_final_frames(_run, environment)


def _collect_final_frames(run: SkewRun, environment: Environment) -> None:
    """Ask every connected worker for its final frame and wait for them all, bounded.

    Called at test stop, or at quitting when Locust quits without stopping first (Ctrl-C,
    SIGTERM). The master's message loop keeps running while this waits; when the loop itself
    stopped the test (its last worker quit), no worker is left to ask.
    """
    run.final_collected = True
    runner = environment.runner
    workers = {client.id for client in runner.clients.all if client.state != STATE_MISSING}
    if not workers:
        return
    run.final_pending = set(workers)
    for worker in workers:
        runner.send_message(FINAL_REQUEST, None, worker)
    wait_s = FINAL_WAIT_S + float(getattr(environment, "stop_timeout", 0) or 0)  # workers stop their users first
    deadline = time.monotonic() + wait_s
    while run.final_pending and time.monotonic() < deadline:
        gevent.sleep(0.05)
    if run.final_pending:
        log.error("skewcheck: no final counts from worker(s) %s within %.0f s", ", ".join(sorted(run.final_pending)),
                  wait_s)


def _on_final_request(environment: Environment, msg: Any, **_kw: Any) -> None:
    """Worker: stop the users (the test is over), then send everything not yet reported."""
    run = _run
    runner = environment.runner
    runner.stop()  # no request may complete after the frame; Locust's own quit finds this done
    frame = _drain(run, str(runner.client_id)) if run is not None else None
    runner.send_message(FINAL_FRAME, {FRAME_KEY: frame})


def _on_final_frame(environment: Environment, msg: Any, **_kw: Any) -> None:
    run = _run
    if run is None:
        return
    _on_worker_report(msg.node_id, msg.data or {})
    run.final_pending.discard(msg.node_id)


@events.reset_stats.add_listener
def _on_reset_stats(**_kw: Any) -> None:
    if _run is not None:
        _run.tally.reset()


# --- the end of the run ---------------------------------------------------------------------------


def finish(run: SkewRun) -> dict[str, Any]:
    """Summarise, judge, print, write reports; set the exit code unless the verdict is a pass."""
    for hook in run.hooks:
        try:
            run.extra_checks.extend(hook.stop(run))
        except Exception as exc:  # a hook must never cost the balance verdict
            log.exception("skewcheck: a run hook failed")
            run.extra_checks.append(Check("hook", "inconclusive", f"{type(hook).__name__} failed: {exc}"))
    if run.final_pending:  # workers that never answered (Locust's own last report may still carry them)
        run.extra_checks.append(Check(
            "worker_final_reports", "inconclusive",
            f"{len(run.final_pending)} worker(s) did not send their final counts within {FINAL_WAIT_S:.0f} s "
            "of the end of the test; the totals may be short", value=len(run.final_pending), limit=0))
    if run.rejected_frames:
        run.extra_checks.append(Check(
            "worker_frames", "inconclusive",
            f"{run.rejected_frames} worker report(s) did not fit this master's routers or shard count and "
            "were not counted: run every worker with the same --skew-* options and scenario",
            value=run.rejected_frames, limit=0))
    run.tally.flush()
    if run.tally.unroutable:
        example = f" (first: {run.tally.unroutable_example})" if run.tally.unroutable_example else ""
        run.extra_checks.append(Check(
            "request_keys", "inconclusive",
            f"{run.tally.unroutable} request key(s) could not be routed as {run.tally.key_type} keys and were "
            f"not counted{example}: the locustfile must hand the plugin keys of the scenario's routing.key_type",
            value=run.tally.unroutable, limit=0))
    summary, judgement = run.snapshot()
    run.probe_goroutines = goroutine_phases(run.extra_checks)
    extra = {"locust": _locust_counts(run.environment)}
    if run.probe_goroutines:
        extra["leak"] = {"goroutines": run.probe_goroutines}
    extra.update(run.result_extra)
    doc = build_result("run", summary, judgement, run.scenario.model_dump(mode="json"), extra)
    print("\n" + terminal.render(doc), flush=True)
    if judgement.verdict.status != "pass":  # set first: a report that can't be written must not hide it
        run.environment.process_exit_code = judgement.verdict.exit_code
    run.finished = True
    if run.scenario.report.dir:
        try:
            written = write_reports(doc, run.scenario.report.dir, run.scenario.report.formats)
        except SkewcheckError as exc:
            print(f"skewcheck: {exc}", file=sys.stderr, flush=True)
            if run.environment.process_exit_code is None:
                run.environment.process_exit_code = exc.exit_code
        else:
            print("skewcheck reports: " + ", ".join(str(p) for p in written.values()), flush=True)
    return doc


def _locust_counts(environment: Environment) -> dict[str, int]:
    stats = environment.runner.stats.total if environment.runner else None
    if stats is None:
        return {}
    return {"requests": int(stats.num_requests), "failures": int(stats.num_failures)}


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kw: Any) -> None:
    run = _run
    if run is None:
        return
    try:
        if run.role == "worker":
            # the final report to the master follows this event; say what it will add up to
            total = run.reported + run.tally.requests
            print(f"skewcheck: worker {environment.runner.client_id} counted {total} requests", flush=True)
        elif not run.finished:
            if run.role == "master" and not run.final_collected:
                _collect_final_frames(run, environment)  # Locust quit without stopping the test first
            finish(run)
    finally:
        _stop_demo_target(run)


# --- the embedded demo target ----------------------------------------------------------------------


def _start_demo_target(run: SkewRun) -> None:
    from skewcheck.demo.process import start_subprocess

    s = run.scenario
    try:
        proc, url = start_subprocess(shards=s.shards, routing=s.routing.primary, key_type=s.routing.key_type,
                                     pool_size=s.demo.pool_size, service_ms=s.demo.service_ms,
                                     wait_timeout_ms=s.demo.wait_timeout_ms)
    except Exception as exc:
        _fail_usage(f"could not start the embedded demo target: {exc}")
        return
    run.demo = proc
    run.environment.host = url
    print(f"skewcheck: no --host given; started the embedded demo target at {url} "
          f"({s.shards} shards routed by {s.routing.primary})", flush=True)
    import atexit

    atexit.register(_stop_demo_target, run)


def _stop_demo_target(run: SkewRun) -> None:
    proc, run.demo = run.demo, None
    if proc is not None:
        from skewcheck.demo.process import stop_subprocess

        stop_subprocess(proc)
