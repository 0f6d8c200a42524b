"""`skewcheck gate RESULT.json [--config CONFIG]` — re-judge a saved run result.
`skewcheck gate --sidecar URL [--sidecar URL ...]` — judge what running sidecars have counted.

With several --sidecar URLs (the instances of one consumer group), their counts are added before
judging. Unreachable sidecars, no data, or partitions that none of them consumes: exit 3.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import ValidationError

from skewcheck.commands import seconds
from skewcheck.config import load_scenario
from skewcheck.errors import SkewcheckError, UsageError, validation_message
from skewcheck.gate import GateConfig, Judgement, judge, limit_problem
from skewcheck.keytext import parse_key
from skewcheck.latency import LatencySummary
from skewcheck.report import terminal, write_reports
from skewcheck.result import ResultDocument, build_result, load_result
from skewcheck.routing import make_router
from skewcheck.summary import Summary, from_counts, summarize_counts
from skewcheck.timeline import timeline_of
from skewcheck.verdict import Check

REPORT_FORMATS = ["json", "junit", "markdown", "html"]


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="judge a saved result (or a running sidecar) and exit 0/1/3",
                       description=__doc__)
    p.add_argument("result", nargs="?", help="result.json written by a run, plan or sidecar")
    p.add_argument("--sidecar", action="append", metavar="URL",
                   help="judge a running sidecar (e.g. http://127.0.0.1:9464); repeat for every instance "
                        "of the consumer group")
    p.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                   help="per-sidecar HTTP timeout (default %(default)g)")
    p.add_argument("--config", help="scenario whose gate thresholds to apply (default: those in force at the run)")
    p.add_argument("--out", help="write the re-judged reports here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.sidecar and args.result:
        raise UsageError("give either a result file or --sidecar URLs, not both")
    if args.sidecar:
        return _run_sidecars(args)
    if not args.result:
        raise UsageError("give a result file to re-judge, or --sidecar URL")
    raw, doc = load_result(args.result)
    if args.config:
        gate_cfg = load_scenario(args.config).gate
        problem = limit_problem(doc.shards, gate_cfg.max_shard_share)  # the result's shards, not the config's
        if problem:
            raise UsageError(f"{args.config}: {problem}")
    else:
        gate_cfg = saved_gate(raw, args.result)
    summary, judgement = rejudge(doc, gate_cfg, _key_type(raw))
    keep = {k: raw[k] for k in ("plan", "leak", "producer", "sidecar", "sidecars", "scenario", "kind", "locust")
            if raw.get(k) is not None}
    if "plan" in keep and args.config:
        from skewcheck.plan import rejudge_plan

        keep["plan"] = rejudge_plan(keep["plan"], gate_cfg)  # each row under the new thresholds
    out = build_result(raw.get("kind", "run"), summary, judgement, raw.get("scenario"), keep)
    return _report(out, args, judgement.verdict.exit_code)


def saved_gate(raw: dict, source: str) -> GateConfig:
    """The gate thresholds a result was judged under (an invalid saved section is exit 2)."""
    scenario = raw.get("scenario") or {}
    try:
        return GateConfig.model_validate((scenario.get("gate") if isinstance(scenario, dict) else None) or {})
    except ValidationError as exc:
        raise UsageError(f"{source}: scenario.gate: {validation_message(exc, separator='; ')}") from None


def _key_type(raw: dict) -> str:
    scenario = raw.get("scenario")
    routing = scenario.get("routing") if isinstance(scenario, dict) else None
    key_type = routing.get("key_type") if isinstance(routing, dict) else None
    return key_type if key_type in ("int", "str") else "int"


def _run_sidecars(args: argparse.Namespace) -> int:
    from skewcheck.gate import judge
    from skewcheck.sidecar.remote import fetch_state, state_url
    from skewcheck.sidecar.state import coverage_check, gate_config, merge_states
    from skewcheck.summary import summarize

    urls = list(dict.fromkeys(args.sidecar))  # the same URL twice would add its counts twice
    for url in urls:
        state_url(url)  # a malformed URL is a usage error before any request is made
    docs = [fetch_state(url, args.timeout) for url in urls]
    tally = merge_states(docs, urls)
    gate_cfg = load_scenario(args.config).gate if args.config else gate_config(docs[0])
    counts = [d.partitions.count for d in docs if d.partitions.count]
    lag = {f"{i}:{p}": v for i, d in enumerate(docs) for p, v in d.partitions.lag.items()}
    coverage = coverage_check(docs[0].topic, max(counts) if counts else None,
                              [d.partitions.assigned for d in docs], lag, instances=len(docs))
    summary = summarize(tally)
    judgement = judge(summary, gate_cfg, [coverage])
    sidecars = [{"url": url, "instance": d.instance, "consumed": d.consumed, "malformed":
                 {r: c for r, c in d.malformed.items() if c}, "assigned": d.partitions.assigned,
                 "requests": int(d.frame.get("requests", 0))} for url, d in zip(urls, docs)]
    scenario = dict(docs[0].scenario or {})
    out = build_result("sidecar", summary, judgement, scenario, {"sidecars": sidecars})
    return _report(out, args, judgement.verdict.exit_code)


def _report(doc: dict, args: argparse.Namespace, code: int) -> int:
    print(terminal.render(doc))
    if args.out:
        write_reports(doc, args.out, REPORT_FORMATS)
    return code


# --- re-judging a saved result ---------------------------------------------------------------------

# recomputed from the counts; every other recorded check is carried as it was
BALANCE_RULES = {"min_requests", "max_shard_share", "stddev_ratio", "routing_emulation",
                 "unreached_requests", "shard_failures", "distinct_keys", "shard_latency",
                 "max_shard_p99_ratio", "sustained_share"}


def summary_from_result(doc: ResultDocument, key_type: str = "int") -> Summary:
    """Rebuild the summary from saved counts, so a result can be judged under other thresholds."""
    def per_shard(values: list[int] | None) -> np.ndarray | None:
        return None if values is None else np.array(values, dtype=np.int64)

    def router_of(name: str, shards: int) -> Any:
        try:
            return make_router(name, shards, key_type)
        except SkewcheckError:
            return None  # a router this version doesn't know: its keys go unnamed

    failures, unreached = per_shard(doc.failures), per_shard(doc.unreached)
    load = np.array(doc.routers[doc.primary].counts, dtype=np.int64)
    if doc.observed is not None and doc.observed.requests:
        load = np.array(doc.observed.counts, dtype=np.int64)
    latency = None
    if doc.latency is not None:
        lat = doc.latency
        latency = LatencySummary.from_arrays(lat.requests, lat.p50, lat.p95, lat.p99, load, failures, unreached)
    summary = from_counts(
        doc.primary, {name: np.array(rc.counts, dtype=np.int64) for name, rc in doc.routers.items()},
        key_f2=math.nan if doc.key_f2 is None else doc.key_f2, requests=doc.requests,
        duration_s=doc.duration_s, window_s=doc.window_s,
        top_keys=[(_typed(t.key, key_type), t.requests) for t in doc.top_keys],
        top_keys_error=doc.top_keys_error, distinct_keys=doc.distinct_keys,
        failures=failures, unreached=unreached, router_of=router_of, latency=latency,
        timeline=None if doc.heatmap is None else timeline_of(doc.heatmap.model_dump()))
    obs = doc.observed
    if obs is None or not obs.requests:
        return summary
    return replace(
        summary,
        observed=summarize_counts("observed", np.array(obs.counts, dtype=np.int64), key_f2=summary.key_f2,
                                  duration_s=doc.duration_s, run_requests=doc.requests),
        observed_requests=obs.requests,
        observed_mismatches=obs.mismatches,
        mismatch_examples=[(e.key, e.predicted, e.observed) for e in obs.mismatch_examples],
        observed_pairs=[(str(k), s) for k, s in obs.pairs or ()],
    )


def _typed(key: str | int, key_type: str) -> int | str:
    if key_type == "int" and isinstance(key, str):
        try:
            return parse_key(key, "int")
        except UsageError:
            return key  # shown as given, routed by nothing
    return key


def rejudge(doc: ResultDocument, gate: GateConfig | None = None, key_type: str = "int") -> tuple[Summary, Judgement]:
    """Recompute the balance rules; carry the other checks (leak, producer) as they were recorded."""
    summary = summary_from_result(doc, key_type)
    carried = [Check(c.rule, c.status, c.message, c.router, c.shard, c.value, c.limit, c.details)
               for c in doc.verdict.checks if c.rule not in BALANCE_RULES]
    return summary, judge(summary, gate, carried)
