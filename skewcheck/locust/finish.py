"""The end of the run: summarise, judge, print the shard table and the verdict, write the reports,
and set the exit code when the verdict is not a pass (on the master or the local runner).

When the test stops — its run time is up, the web UI's Stop, `gate.stop_on` — the master first
collects its workers' final frames (skewcheck.locust.distributed), then the leak probe runs
(skewcheck.locust.edges) and the run is judged over the load alone: its duration ends when the
stop began, so the probe and any idle time after it don't dilute the QPS. A web UI stop prints the
verdict there and then; a headless run prints it at Locust's `quit` event, after Locust's own
final tables, so it is the last thing on the console. Checks that edges add at `quitting` (the
Kafka producer's) and the workers' last Locust stats (sent when Locust tells them to quit) are
judged again before the exit code is read.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment

from skewcheck.errors import SkewcheckError
from skewcheck.gate import judge
from skewcheck.leak.check import goroutine_phases
from skewcheck.locust import demo, edges
from skewcheck.locust.distributed import collect_final_frames
from skewcheck.locust.run import SkewRun, active
from skewcheck.report import github, terminal, write_reports
from skewcheck.result import build_result
from skewcheck.summary import summarize

log = logging.getLogger("skewcheck")

_after_stop: Any = None  # the greenlet judging a web UI stop


def finish(run: SkewRun) -> dict[str, Any]:
    """Summarise, judge and write reports; set the exit code unless the verdict is a pass. The
    verdict block is kept in `run.doc` for `show`."""
    run.tally.flush()
    end = run.load_end or time.time()
    run.tally.advance_to(end)
    summary = summarize(run.tally, now=end)
    judgement = judge(summary, run.scenario.gate, run.extra_checks, run.evidence())
    run.probe_goroutines = goroutine_phases(run.extra_checks)
    extra = {"locust": _locust_counts(run.environment)}
    if run.probe_goroutines:
        extra["leak"] = {"goroutines": run.probe_goroutines}
    if run.decided is not None:
        extra["decision"] = run.decided
    extra.update(run.result_extra)
    doc = build_result("run", summary, judgement, run.scenario.model_dump(mode="json"), extra)
    run.doc, run.judged_checks = doc, len(run.extra_checks)
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
            run.reports = None
        else:
            run.reports = ", ".join(str(p) for p in written.values())
    return doc


def show(run: SkewRun, verdict_only: bool = False) -> None:
    """Print the verdict block (the shard tables, latency, diagnosis, keys, verdict) and where the
    reports are; in a GitHub Actions job, an `::error` annotation per rule that did not pass."""
    doc = run.doc
    if doc is None:
        return
    text = terminal.render(doc)
    if verdict_only:
        text = text[text.rindex("\nverdict: ") + 1:]
    out = ["", text]
    if run.reports:
        out.append("skewcheck reports: " + run.reports)
    if os.environ.get("GITHUB_ACTIONS") == "true" and doc["verdict"]["reasons"]:
        out.insert(0, github.annotations(doc))
    print("\n".join(out), flush=True)
    run.shown = True


def _locust_counts(environment: Environment) -> dict[str, int]:
    stats = environment.runner.stats.total if environment.runner else None
    if stats is None:
        return {}
    return {"requests": int(stats.num_requests), "failures": int(stats.num_failures)}


def _headless(environment: Environment) -> bool:
    return bool(getattr(environment.parsed_options, "headless", False))


def _on_test_stopping(**_kw: Any) -> None:
    run = active()
    if run is not None and run.role != "worker" and run.load_end is None:
        run.load_end = time.time()  # the load ends here; stopping users and probing are not load


@events.init.add_listener
def _on_init(environment: Environment, **_kw: Any) -> None:
    # subscribed at init, after the edges: the leak probe's listeners precede this one
    stopping = getattr(environment.events, "test_stopping", None)
    if stopping is not None:
        stopping.add_listener(_on_test_stopping)
    environment.events.test_stop.add_listener(_on_test_stop)
    quit_event = getattr(environment.events, "quit", None)
    if quit_event is not None:
        quit_event.add_listener(_on_quit)
    else:  # an older Locust without the quit event: at exit, which is after its tables too
        atexit.register(_on_quit)


def _on_test_stop(environment: Environment, **_kw: Any) -> None:
    global _after_stop
    run = active()
    if run is None or run.role == "worker" or run.finished:
        return
    if run.load_end is None:
        run.load_end = time.time()
    if _headless(environment):
        _judge_stopped(run, show_now=False)
    else:  # the web UI's Stop: judge outside its request, print as soon as it is known
        _after_stop = gevent.spawn(_judge_stopped, run, True)


def _judge_stopped(run: SkewRun, show_now: bool) -> None:
    try:
        edges.after_load(run)
        finish(run)
        if show_now:
            show(run)
    except Exception:  # in a greenlet of its own: say so rather than lose the verdict silently
        log.exception("skewcheck: judging the stopped test failed")


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kw: Any) -> None:
    run = active()
    if run is None:
        return
    try:
        if run.role == "worker":
            # the final report to the master follows this event; say what it will add up to
            total = run.reported + run.tally.requests
            print(f"skewcheck: worker {environment.runner.client_id} counted {total} requests", flush=True)
            return
        if _after_stop is not None:
            _after_stop.join()
        if not run.finished:  # Locust quits without stopping the test first (Ctrl-C, SIGTERM)
            if run.load_end is None:
                run.load_end = time.time()
            if run.role == "master" and not run.final_collected:
                collect_final_frames(run, environment)
            edges.after_load(run)
            finish(run)
        elif len(run.extra_checks) != run.judged_checks or run.doc["locust"] != _locust_counts(environment):
            finish(run)  # checks added at quitting (the producer's), or the workers' last Locust stats
    finally:
        demo.stop()


def _on_quit(**_kw: Any) -> None:
    """After Locust's final tables: the verdict is the last thing on the console."""
    run = active()
    if run is None or run.role == "worker" or run.doc is None:
        return
    show(run, verdict_only=run.shown)
