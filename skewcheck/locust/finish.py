"""The end of the run: summarise, judge, print the shard table and the verdict, write the reports,
and set the exit code when the verdict is not a pass (on the master or the local runner)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from locust import events
from locust.env import Environment

from skewcheck.errors import SkewcheckError
from skewcheck.leak.check import goroutine_phases
from skewcheck.locust import demo
from skewcheck.locust.distributed import collect_final_frames
from skewcheck.locust.run import SkewRun, active
from skewcheck.report import terminal, write_reports
from skewcheck.result import build_result

log = logging.getLogger("skewcheck")


def finish(run: SkewRun) -> dict[str, Any]:
    """Summarise, judge, print, write reports; set the exit code unless the verdict is a pass."""
    run.tally.flush()
    summary, judgement = run.snapshot()
    run.probe_goroutines = goroutine_phases(run.extra_checks)
    extra = {"locust": _locust_counts(run.environment)}
    if run.probe_goroutines:
        extra["leak"] = {"goroutines": run.probe_goroutines}
    if run.decided is not None:
        extra["decision"] = run.decided
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
    run = active()
    if run is None:
        return
    try:
        if run.role == "worker":
            # the final report to the master follows this event; say what it will add up to
            total = run.reported + run.tally.requests
            print(f"skewcheck: worker {environment.runner.client_id} counted {total} requests", flush=True)
        elif not run.finished:
            if run.role == "master" and not run.final_collected:
                collect_final_frames(run, environment)  # Locust quit without stopping the test first
            finish(run)
    finally:
        demo.stop()
