"""Distributed mode: workers send frames with their stats reports, the master adds them up.

At the end of the test the master asks every worker for what it has not reported yet (a custom
message: the worker stops its users and sends its final frame) and waits for all of them, bounded,
before Locust tells the workers to quit: Locust itself waits only 0.5 s for the workers' last
stats reports, which a worker slow to stop misses.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import STATE_MISSING

from skewcheck.frame import Frame, FrameError
from skewcheck.locust.run import SkewRun, active
from skewcheck.report.escape import printable

log = logging.getLogger("skewcheck")

FRAME_KEY = "skewcheck"  # where a worker's frame travels in its report to the master
FINAL_REQUEST = "skewcheck_final"  # master -> workers at the end of the test: stop, send the rest
FINAL_FRAME = "skewcheck_final_frame"  # worker -> master: everything not reported yet
FINAL_WAIT_S = 15.0  # how long the master waits for every worker's final frame


@events.init.add_listener
def _on_init(environment: Environment, **_kw: Any) -> None:
    run = active()
    if run is None:
        return
    if run.role == "master":
        environment.runner.register_message(FINAL_FRAME, _on_final_frame)
    elif run.role == "worker":
        environment.runner.register_message(FINAL_REQUEST, _on_final_request)


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict, **_kw: Any) -> None:
    run = active()
    if run is not None:
        data[FRAME_KEY] = _drain(run, str(client_id))


def _drain(run: SkewRun, source: str) -> dict[str, Any] | None:
    """A worker's counts since its last report as a frame, or None when there is nothing to send."""
    if not run.tally.has_counts():  # keys that turned out unroutable must reach the master too
        return None
    frame = run.tally.drain_frame(source)
    run.reported += frame.requests
    return frame.to_json()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict, **_kw: Any) -> None:
    run = active()
    raw = data.get(FRAME_KEY)
    if run is None or not raw:
        return
    try:
        frame = Frame.parse(raw, run.tally.rules)
    except FrameError as exc:
        run.rejected_frames += 1  # the verdict can't vouch for counts it didn't get
        log.error("skewcheck: rejected a frame from worker %s: %s", printable(client_id), printable(exc))
        return
    run.tally.add_frame(frame)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kw: Any) -> None:
    """Master: before Locust tells the workers to quit, collect what they have not reported yet."""
    run = active()
    if run is not None and run.role == "master":
        collect_final_frames(run, environment)


def collect_final_frames(run: SkewRun, environment: Environment) -> None:
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
    run.final_wait_s = wait_s
    deadline = time.monotonic() + wait_s
    while run.final_pending and time.monotonic() < deadline:
        gevent.sleep(0.05)
    if run.final_pending:
        log.error("skewcheck: no final counts from worker(s) %s within %.0f s", ", ".join(sorted(run.final_pending)),
                  wait_s)


def _on_final_request(environment: Environment, msg: Any, **_kw: Any) -> None:
    """Worker: stop the users (the test is over), then send everything not yet reported."""
    run = active()
    runner = environment.runner
    runner.stop()  # no request may complete after the frame; Locust's own quit finds this done
    frame = _drain(run, str(runner.client_id)) if run is not None else None
    runner.send_message(FINAL_FRAME, {FRAME_KEY: frame})


def _on_final_frame(environment: Environment, msg: Any, **_kw: Any) -> None:
    run = active()
    if run is None:
        return
    _on_worker_report(msg.node_id, msg.data or {})
    run.final_pending.discard(msg.node_id)
