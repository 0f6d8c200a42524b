"""Gate rules over a summary (plus the evidence the edges report) → a Verdict and its diagnosis.
No I/O. Every rule is a calibrated decision; its error rates are in the README ("How the gate
judges") and tested with seeded trials in tests/test_gate_statistics.py.

- max_shard_share: does the hottest shard carry more than the limit? From `min_requests` on, a
  one-sided Wilson test at level `alpha` (the hottest shard is picked by looking, so the level is
  shared by the shards that could sit at the limit: ⌈1/limit⌉ of them). At any N, a block that the
  anytime-valid evidence (a confidence sequence) already proves — the incident blocks within a few
  hundred requests. A share above the limit that isn't significant is inconclusive (run longer).
- stddev_ratio: is the spread more than a random hash of *these* key weights would give? Judged
  against the null model: blocks when the ratio's p-value is at most `null_alpha` and its excess
  over the null's (1 − null_alpha) quantile is above `stddev_excess_limit` (0.8, the seed's
  threshold, now an effect size). Few or hot keys widen the null; they are not a block.
- min_requests: fewer requests than this is inconclusive, never a pass.
- unreached_requests: more than `max_unreached_ratio` of the requests never reached the target
  (refused, reset): the counts judge a minority, inconclusive.
- routing_emulation: the target's X-Shard disagreed with the primary router: inconclusive.
- distinct_keys, shard_failures, shard_latency: findings shown with the verdict; they do not block.
- max_shard_p99_ratio (off unless set): a shard whose p99 latency is more than this many times the
  median shard's blocks — one shard slowing while the others don't is a saturated shard.
- sustained_share (`gate.sustained_s`, off unless set): a shard whose share of each time column lies
  significantly above `max_shard_share` (one-sided Wilson, level `alpha` shared by the contenders
  and the columns) for at least `sustained_s` seconds blocks: a hot spot that comes and goes.
The diagnosis (routing skew, key skew, balanced) comes from the same null model.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from skewcheck import stats
from skewcheck.latency import MIN_SHARD_SAMPLES, ms
from skewcheck.summary import REFERENCE_ROUTER, RouterSummary, Summary
from skewcheck.verdict import Check, Verdict, worst

DEFAULT_MAX_SHARE = 0.15  # the seed incident's rule: no shard above 15% of traffic
DEFAULT_EXCESS_LIMIT = 0.8  # the seed's stddev-ratio threshold, now an effect size over the null
DEFAULT_MIN_REQUESTS = 2000  # enough for a 20%-share shard to clear the 15% line in ≥ 99% of runs
DEFAULT_MAX_MISMATCH = 0.0  # any disagreement between predicted and observed shards is reported
DEFAULT_ALPHA = 0.01  # false blocks of the share rule, for a shard exactly at the limit
DEFAULT_NULL_ALPHA = 0.001  # a random hash of the same keys is this improbable: routing skew
DEFAULT_MAX_UNREACHED = 0.05  # more requests than this never reaching the target: no verdict
FEW_KEYS_PER_SHARD = 10  # fewer distinct keys than 10 per shard concentrate load by design

StopOn = Literal["never", "block", "decided"]


class GateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_shard_share: float = Field(DEFAULT_MAX_SHARE, gt=0, le=1)
    stddev_excess_limit: float = Field(DEFAULT_EXCESS_LIMIT, gt=0, allow_inf_nan=False)
    min_requests: int = Field(DEFAULT_MIN_REQUESTS, ge=1)
    max_mismatch_rate: float = Field(DEFAULT_MAX_MISMATCH, ge=0, le=1)
    alpha: float = Field(DEFAULT_ALPHA, gt=0, lt=0.5)
    null_alpha: float = Field(DEFAULT_NULL_ALPHA, gt=0, lt=0.5)
    max_unreached_ratio: float = Field(DEFAULT_MAX_UNREACHED, ge=0, le=1)
    stop_on: StopOn = "never"  # end a Locust run once its verdict is decided (block, or either)
    # off unless set: block when a shard's p99 is more than this many times the median shard's
    max_shard_p99_ratio: Optional[float] = Field(None, gt=1, allow_inf_nan=False)
    # off unless set: block when a shard stays above max_shard_share for this many seconds
    sustained_s: Optional[float] = Field(None, gt=0, allow_inf_nan=False)


@dataclass(frozen=True)
class Evidence:
    """What the edges that collected the counts know is missing from them."""

    unroutable: int = 0  # request keys no router could take
    unroutable_example: str | None = None
    key_type: str = "int"
    missing_workers: int = 0  # workers whose final counts never arrived
    final_wait_s: float = 0.0
    rejected_frames: int = 0  # worker frames that did not fit this tally
    resets: tuple[float, ...] = ()  # unix times the counts were reset (Locust's reset stats)


@dataclass(frozen=True)
class Diagnosis:
    kind: str  # balanced | routing_skew | key_skew | insufficient | no_data | unknown
    message: str
    fix: str = ""


@dataclass(frozen=True)
class RouterBalance:
    """The balance rules applied to one router: the primary's are the verdict, the others' say
    what the what-if routers would have got."""

    router: str
    status: str
    share_status: str
    interval: tuple[float, float]
    stddev_status: str
    null_quantile: float | None
    excess: float | None
    routing_p: float

    def to_json(self) -> dict:
        return {"router": self.router, "status": self.status, "share_status": self.share_status,
                "max_share_interval": list(self.interval), "stddev_status": self.stddev_status,
                "stddev_null_quantile": self.null_quantile, "stddev_excess": self.excess,
                "routing_p": self.routing_p}


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    diagnosis: Diagnosis
    routers: dict[str, RouterBalance]


def limit_text(limit: float) -> str:
    """A limit as it was given: 0.011 is 1.1%, not 1%."""
    return f"{limit * 100:.6g}%"


def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def limit_problem(shards: int, max_share: float) -> str | None:
    """Why a share limit cannot be met by any router over this many shards (or None)."""
    if shards * max_share < 1:
        return (f"with {shards} shards even a perfect router puts {1 / shards:.1%} on each shard, "
                f"above gate.max_shard_share {max_share:g}; raise the limit or the shard count")
    return None


# --- the rules ---------------------------------------------------------------------------------


def share_test(rs: RouterSummary, cfg: GateConfig) -> tuple[str, float, float, bool]:
    """(status, interval low, high, decided by the anytime-valid evidence) of the max-share rule."""
    limit, n = cfg.max_shard_share, rs.requests
    count = int(rs.counts[rs.hottest_shard]) if n else 0
    m = stats.contenders(rs.shards, limit)
    z = stats.one_sided_z(cfg.alpha, m)
    low, high = (float(x) for x in stats.wilson_interval(count, n, z))
    if n == 0:
        return "inconclusive", 0.0, 1.0, False
    anytime = float(stats.share_log_evidence(count, n, limit)) >= math.log(m / cfg.alpha)
    if anytime or (n >= cfg.min_requests and low > limit):
        return "block", low, high, anytime
    if rs.max_share > limit or n < cfg.min_requests:
        return "inconclusive", low, high, False
    return "pass", low, high, False


def share_check(rs: RouterSummary, cfg: GateConfig) -> Check:
    limit = cfg.max_shard_share
    s = rs.hottest_shard
    status, low, high, anytime = share_test(rs, cfg)
    details = {"interval": [low, high], "requests": int(rs.counts[s]) if rs.requests else 0,
               "total": rs.requests, "expected_max_share": rs.expected_max_share, "anytime": anytime,
               "alpha": cfg.alpha, "contenders": stats.contenders(rs.shards, limit)}
    if rs.requests == 0:
        return Check("max_shard_share", "inconclusive", f"{rs.router}: no requests counted",
                     rs.router, None, None, limit, details)
    value = rs.max_share
    interval = f"{1 - cfg.alpha:.0%} interval {pct(low)}–{pct(high)}"
    where = f"shard {s} carries {pct(value)} of requests under {rs.router} ({interval})"
    if status == "block":
        early = anytime and rs.requests < cfg.min_requests
        proof = f"; conclusive already after {rs.requests:,} requests" if early else ""
        msg = f"{where}, above the {limit_text(limit)} limit{proof}"
    elif rs.requests < cfg.min_requests:
        msg = f"{where} from only {rs.requests:,} requests; {cfg.min_requests:,} are needed to pass: run longer"
    elif status == "inconclusive":
        msg = f"{where}: above the {limit_text(limit)} limit but not significantly; run longer"
    else:
        msg = f"hottest shard {s} carries {pct(value)} under {rs.router} ({interval}), within the {limit_text(limit)} limit"
    return Check("max_shard_share", status, msg, rs.router, s, value, limit, details)


def stddev_check(rs: RouterSummary, cfg: GateConfig) -> Check:
    limit = cfg.stddev_excess_limit
    details: dict = {"stddev_ratio": rs.stddev_ratio, "floor": rs.floor}
    if rs.requests < cfg.min_requests:
        return Check("stddev_ratio", "inconclusive",
                     f"{rs.router}: too few requests to judge the stddev ratio against a random hash",
                     rs.router, None, None, limit, details)
    if rs.null is None:
        return Check("stddev_ratio", "inconclusive",
                     f"{rs.router}: the noise floor is unknown (the counts came without key buckets), "
                     "so the stddev ratio cannot be judged", rs.router, None, None, limit, details)
    q = rs.null.ratio_quantile(1 - cfg.null_alpha)
    p = rs.stddev_ratio_p
    excess = stats.excess_over(rs.stddev_ratio, q)
    details.update(null_quantile=q, null_level=1 - cfg.null_alpha, p=p, excess=excess)
    text = (f"stddev ratio {rs.stddev_ratio:.3f} under {rs.router}; a random hash of these keys gives "
            f"{rs.floor:.3f} on average and at most {q:.3f} in {1 - cfg.null_alpha:.1%} of draws ({_p(p)}): "
            f"excess {excess:.3f}")
    if p <= cfg.null_alpha and excess > limit:
        return Check("stddev_ratio", "block", f"{text} above the limit {limit:g}", rs.router,
                     rs.hottest_shard, excess, limit, details)
    return Check("stddev_ratio", "pass", f"{text} within the limit {limit:g}", rs.router, None,
                 excess, limit, details)


def _p(p: float) -> str:
    """A Monte Carlo p-value as text: at its resolution (1 or 2 in NULL_TRIALS + 1) it is a bound."""
    if math.isnan(p):
        return "p unknown"
    return f"p ≤ {p:.2g}" if p <= 2 / (stats.NULL_TRIALS + 1) + 1e-12 else f"p = {p:.2g}"


def min_requests_check(summary: Summary, minimum: int) -> Check:
    n = summary.requests
    if n >= minimum:
        return Check("min_requests", "pass", f"{n:,} requests counted (minimum {minimum:,})",
                     None, None, n, minimum)
    what = "no requests were counted" if n == 0 else f"only {n:,} requests counted"
    return Check("min_requests", "inconclusive", f"{what}; at least {minimum:,} are needed to judge",
                 None, None, n, minimum)


def mismatch_check(summary: Summary, max_rate: float) -> Check | None:
    if not summary.observed_requests:
        return None
    rate = summary.observed_mismatches / summary.observed_requests
    examples = "; ".join(f"key {k}: predicted {p}, target said {o}" for k, p, o in summary.mismatch_examples[:3])
    details = {"mismatches": summary.observed_mismatches, "observed": summary.observed_requests}
    if rate > max_rate:
        return Check("routing_emulation", "inconclusive",
                     f"{summary.primary} predicted a different shard than the target's X-Shard on "
                     f"{summary.observed_mismatches:,} of {summary.observed_requests:,} requests ({examples}): "
                     "the emulation or the config's routing/shards is wrong"
                     f"{_would_have_matched(summary)}",
                     summary.primary, None, rate, max_rate, details)
    return Check("routing_emulation", "pass",
                 f"the target's X-Shard agreed with {summary.primary} on all "
                 f"{summary.observed_requests:,} observed requests", summary.primary, None, rate, max_rate, details)


def unreached_check(summary: Summary, max_ratio: float) -> Check | None:
    unreached = summary.unreached_total
    if not unreached:
        return None
    sent = unreached + summary.requests
    ratio = unreached / sent
    details = {"unreached": unreached, "sent": sent}
    text = f"{unreached:,} of {sent:,} requests ({pct(ratio)}) never reached the target (refused, reset)"
    if ratio > max_ratio:
        return Check("unreached_requests", "inconclusive",
                     f"{text}: the counts would judge only the requests that got through; is the target up?",
                     None, None, ratio, max_ratio, details)
    return Check("unreached_requests", "pass", f"{text}, within {limit_text(max_ratio)}", None, None,
                 ratio, max_ratio, details)


_MATCHED: dict[tuple[Any, ...], str] = {}  # live views judge the same sample again and again


def _would_have_matched(summary: Summary) -> str:
    """The candidate router that routes the run's sampled (key, X-Shard) pairs, if one does."""
    from skewcheck.errors import InconclusiveError
    from skewcheck.infer import infer

    pairs = summary.observed_pairs
    if not pairs:
        return ""
    seen = (len(pairs), tuple(pairs[0]), tuple(pairs[-1]))
    if seen not in _MATCHED:
        try:
            found = infer([(str(k), s) for k, s in pairs]).match
        except InconclusiveError:
            text = ""
        else:
            text = ("; no router skewcheck knows fits the observed shards (skewcheck infer "
                    "ranks them)" if found is None else f"; {found.describe()} would have matched")
        _MATCHED.clear()
        _MATCHED[seen] = text
    return _MATCHED[seen]


def failures_check(summary: Summary) -> Check | None:
    """Where requests fail: one shard failing while the others don't is a saturated shard."""
    rows = summary.to_json()["shard_failures"] if summary.failed_total else []
    if not rows:
        return None
    load = summary.primary_summary.counts if summary.observed is None else summary.observed.counts
    total_rate = summary.failed_total / max(summary.requests, 1)
    worst_row = rows[0]
    others = summary.failed_total - worst_row["failed"]
    rest = max(int(load.sum()) - worst_row["requests"], 0)
    rest_rate = others / rest if rest else 0.0
    elsewhere = f"the other shards {pct(rest_rate)}" if rest else f"the other {summary.shards - 1} shards served none"
    msg = (f"{summary.failed_total:,} requests failed ({pct(total_rate)}); shard {worst_row['shard']}: "
           f"{latency_text(summary, worst_row['shard'])}"
           f"{pct(worst_row['failure_rate'])} of its {worst_row['requests']:,} requests failed, {elsewhere}")
    return Check("shard_failures", "pass", msg, summary.primary, worst_row["shard"],
                 worst_row["failure_rate"], None, {"shards": rows})


def latency_text(summary: Summary, shard: int) -> str:
    """"p99 412 ms vs 6 ms median shard, " — a shard's tail latency against the other shards'."""
    lat = summary.latency
    if lat is None or not lat.requests[shard]:
        return ""
    median = lat.median(shard)
    own = f"p99 {ms(lat.p99[shard])}"
    if median is None:
        if not (lat.load.sum() - lat.load[shard]):
            return f"{own} (no other shard served a request to compare with), "
        return f"{own} (no other shard served the {MIN_SHARD_SAMPLES} timed requests a comparison needs), "
    return f"{own} vs {ms(median['p99'])} median shard, "


def latency_check(summary: Summary, cfg: GateConfig) -> Check | None:
    """The hottest shard's latency against the median shard's; a rule with max_shard_p99_ratio."""
    lat = summary.latency
    if lat is None or not lat.any:
        return None
    rows = lat.hottest()
    hot = rows[0]
    ratio_limit = cfg.max_shard_p99_ratio
    details = {"shards": [lat.row(s) for s in rows], "median": lat.median(hot)}
    median = lat.median(hot)
    text = (f"shard {hot} (busiest): p50 {ms(lat.p50[hot])}, p95 {ms(lat.p95[hot])}, p99 {ms(lat.p99[hot])}, "
            f"{pct(lat.failure_rate[hot])} failed; ")
    text += (f"the median of the other {median['shards']} shards: p50 {ms(median['p50'])}, p95 "
             f"{ms(median['p95'])}, p99 {ms(median['p99'])}, {pct(median['failure_rate'])} failed" if median else
             f"no other shard served the {MIN_SHARD_SAMPLES} timed requests a comparison needs")
    if ratio_limit is None:
        return Check("shard_latency", "pass", text, summary.primary, hot, _num(lat.p99[hot]), None, details)
    qualified = lat.qualified()
    if len(qualified) < 2:
        return Check("max_shard_p99_ratio", "inconclusive",
                     f"{text}; fewer than two shards served {MIN_SHARD_SAMPLES} timed requests, so no shard's "
                     "p99 can be compared with the median shard's", summary.primary, hot, None, ratio_limit, details)
    slowest = int(qualified[np.nanargmax(lat.p99[qualified])])
    median = lat.median(slowest)
    ratio = float(lat.p99[slowest] / median["p99"]) if median and median["p99"] else math.inf
    details.update(slowest=slowest, ratio=ratio)
    where = (f"shard {slowest}: p99 {ms(lat.p99[slowest])} vs {ms(median['p99'] if median else None)} median "
             f"shard, {ratio:.1f}×")
    if ratio > ratio_limit:
        return Check("max_shard_p99_ratio", "block", f"{where}, above the {ratio_limit:g}× limit",
                     summary.primary, slowest, ratio, ratio_limit, details)
    return Check("max_shard_p99_ratio", "pass", f"{where}, within the {ratio_limit:g}× limit",
                 summary.primary, slowest, ratio, ratio_limit, details)


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def sustained_check(summary: Summary, cfg: GateConfig) -> Check | None:
    """A shard above max_shard_share for at least sustained_s seconds, column after column."""
    need = cfg.sustained_s
    if need is None:
        return None
    limit = cfg.max_shard_share
    timeline = summary.timeline
    counts = None if timeline is None else timeline.used_counts()
    if counts is None or not len(counts):
        return Check("sustained_share", "inconclusive", "no per-shard counts over time were recorded, so "
                     f"gate.sustained_s ({need:g} s) cannot be judged", summary.primary, None, None, need)
    totals = counts.sum(axis=1)
    z = stats.one_sided_z(cfg.alpha, stats.contenders(summary.shards, limit) * len(counts))
    above = np.zeros(counts.shape, dtype=bool)
    for c, total in enumerate(totals.tolist()):
        if total:
            above[c] = stats.wilson_interval(counts[c], int(total), z)[0] > limit
    width = timeline.column_s
    best_shard, best_s, best_start = None, 0.0, 0
    for shard in np.flatnonzero(above.any(axis=0)).tolist():
        run_s, start = 0.0, 0
        for c in range(len(counts)):
            if not totals[c]:
                continue  # a column without requests neither extends nor breaks a streak
            if above[c, shard]:
                if run_s == 0.0:
                    start = c
                run_s += width
                if run_s > best_s:
                    best_shard, best_s, best_start = shard, run_s, start
            else:
                run_s = 0.0
    details = {"column_s": width, "columns": len(counts), "longest_s": best_s, "start_column": best_start}
    if best_shard is not None and best_s >= need:
        return Check("sustained_share", "block",
                     f"shard {best_shard} stayed above the {limit_text(limit)} limit for {best_s:g} s "
                     f"(from {best_start * width:g} s into the run), at least the {need:g} s gate.sustained_s allows",
                     summary.primary, best_shard, best_s, need, details)
    longest = (f"; the longest was shard {best_shard}, {best_s:g} s" if best_shard is not None
               else "; no shard was significantly above it in any column")
    return Check("sustained_share", "pass", f"no shard stayed above the {limit_text(limit)} limit for "
                 f"{need:g} s{longest}", summary.primary, best_shard, best_s, need, details)


def distinct_check(summary: Summary, cfg: GateConfig) -> Check | None:
    d = summary.distinct_keys
    if d is None or summary.requests == 0 or d >= FEW_KEYS_PER_SHARD * summary.shards:
        return None
    rs = summary.primary_summary
    return Check("distinct_keys", "pass",
                 f"only {round(d):,} distinct keys over {summary.shards} shards: this test concentrates load by "
                 f"design; the hottest shard carries {pct(rs.max_share)} under {rs.router} "
                 f"(limit {limit_text(cfg.max_shard_share)})", None, None, round(d), None,
                 {"distinct_keys": round(d)})


def evidence_checks(evidence: Evidence) -> list[Check]:
    checks = []
    if evidence.resets:
        last = _dt.datetime.fromtimestamp(evidence.resets[-1], _dt.timezone.utc).strftime("%H:%M:%S UTC")
        checks.append(Check(
            "stats_reset", "pass",
            f"the counts were reset {len(evidence.resets)} time(s) during the run, last at {last} "
            "(Locust's reset stats); the verdict judges the requests since then",
            value=len(evidence.resets), details={"resets": list(evidence.resets)}))
    if evidence.missing_workers:
        checks.append(Check(
            "worker_final_reports", "inconclusive",
            f"{evidence.missing_workers} worker(s) did not send their final counts within "
            f"{evidence.final_wait_s:.0f} s of the end of the test; the totals may be short",
            value=evidence.missing_workers, limit=0))
    if evidence.rejected_frames:
        checks.append(Check(
            "worker_frames", "inconclusive",
            f"{evidence.rejected_frames} worker report(s) did not fit this master's routers or shard count and "
            "were not counted: run every worker with the same --skew-* options and scenario",
            value=evidence.rejected_frames, limit=0))
    if evidence.unroutable:
        example = f" (first: {evidence.unroutable_example})" if evidence.unroutable_example else ""
        checks.append(Check(
            "request_keys", "inconclusive",
            f"{evidence.unroutable} request key(s) could not be routed as {evidence.key_type} keys and were "
            f"not counted{example}: the locustfile must hand the plugin keys of the scenario's routing.key_type",
            value=evidence.unroutable, limit=0))
    return checks


# --- the verdict and its diagnosis ---------------------------------------------------------------


def judge(summary: Summary, cfg: GateConfig | None = None, extra: Iterable[Check] = (),
          evidence: Evidence | None = None) -> Judgement:
    """Apply every rule to the primary router (and to the observed shards when the target reports
    them); the balance rules to every router, for the what-if comparison."""
    cfg = cfg or GateConfig()
    balance = {name: (share_check(rs, cfg), stddev_check(rs, cfg)) for name, rs in summary.routers.items()}
    checks = [min_requests_check(summary, cfg.min_requests), *balance[summary.primary]]
    if summary.observed is not None:
        checks.append(share_check(summary.observed, cfg))
        checks.append(mismatch_check(summary, cfg.max_mismatch_rate))
    checks += [unreached_check(summary, cfg.max_unreached_ratio), failures_check(summary),
               latency_check(summary, cfg), sustained_check(summary, cfg), distinct_check(summary, cfg)]
    checks = [c for c in checks if c is not None]
    if evidence is not None:
        checks += evidence_checks(evidence)
    checks.extend(extra)
    routers = {name: _router_balance(summary.routers[name], share, stddev)
               for name, (share, stddev) in balance.items()}
    return Judgement(Verdict(tuple(checks)), diagnose(summary, cfg, checks), routers)


def _router_balance(rs: RouterSummary, share: Check, stddev: Check) -> RouterBalance:
    low, high = share.details.get("interval", [0.0, 1.0])
    return RouterBalance(rs.router, worst([share.status, stddev.status]), share.status, (low, high),
                         stddev.status, stddev.details.get("null_quantile"), stddev.details.get("excess"),
                         routing_p(rs))


def routing_p(rs: RouterSummary) -> float:
    """How probable this router's imbalance is for a random hash of the same keys (the smaller of
    the max-share and stddev-ratio p-values, Bonferroni for the two)."""
    if rs.null is None:
        return math.nan
    return min(1.0, 2 * min(rs.max_share_p, rs.stddev_ratio_p))


def diagnose(summary: Summary, cfg: GateConfig, checks: list[Check]) -> Diagnosis:
    """Routing skew, key skew or balanced — from the null model of a random hash of these keys."""
    if summary.requests == 0:
        return Diagnosis("no_data", "no requests were counted")
    rs = summary.primary_summary
    p = routing_p(rs)
    balance = [c for c in checks if c.rule in ("max_shard_share", "stddev_ratio") and c.router == rs.router]
    status = worst(c.status for c in balance)
    ref = summary.reference
    beside = (f" ({REFERENCE_ROUTER} gives {pct(ref.max_share)} on its hottest shard)"
              if ref is not None and ref.router != rs.router else "")
    if math.isnan(p):
        return Diagnosis("unknown", f"the key weights are unknown, so {rs.router}'s balance cannot be "
                         f"compared with a random hash{beside}")
    if p <= cfg.null_alpha:
        if rs.max_share_p <= rs.stddev_ratio_p:
            what = f"puts {pct(rs.max_share)} on shard {rs.hottest_shard}"
        else:
            what = (f"spreads its shards' loads with a stddev ratio of {rs.stddev_ratio:.2f} against "
                    f"{rs.floor:.2f} for a random hash (hottest shard {rs.hottest_shard} at {pct(rs.max_share)})")
        return Diagnosis(
            "routing_skew",
            f"routing skew: {rs.router} {what}; a random hash of these same keys is this unbalanced "
            f"with {_p(p)}{beside}",
            f"change the routing function (e.g. hash the key with {REFERENCE_ROUTER} before the modulo), "
            "or choose IDs that don't share a factor with the shard count")
    hot = _named_keys(summary, rs)
    if status != "pass" or rs.max_share > cfg.max_shard_share:
        if summary.requests < cfg.min_requests and status == "inconclusive" and rs.max_share <= cfg.max_shard_share:
            return Diagnosis("insufficient", f"too few requests yet to tell ({summary.requests:,} of "
                             f"{cfg.min_requests:,})")
        return Diagnosis(
            "key_skew",
            f"key skew: a random hash of these keys is as unbalanced as {rs.router} ({_p(p)}), so hot or "
            f"few keys are the cause{hot}",
            "cache or split the hot keys, or use more distinct keys (test accounts); no router fixes this")
    if summary.requests < cfg.min_requests:
        return Diagnosis("insufficient", f"too few requests yet to tell ({summary.requests:,} of "
                         f"{cfg.min_requests:,})")
    return Diagnosis("balanced", f"{rs.router} spreads these keys as a random hash would ({_p(p)}): "
                     f"hottest shard {rs.hottest_shard} at {pct(rs.max_share)}, within "
                     f"{limit_text(cfg.max_shard_share)}{hot if hot else ''}")


def _named_keys(summary: Summary, rs: RouterSummary) -> str:
    """The hot keys, and which of them share the hottest shard (a collision)."""
    if rs.hottest_keys and rs.hottest_keys[0][1] / max(summary.requests, 1) >= 0.01:
        on = ", ".join(f"{k} ({pct(summary.key_share(c))})" for k, c in rs.hottest_keys[:3])
        shared = "share" if len(rs.hottest_keys) > 1 else "is on"
        return f"; keys {on} {shared} shard {rs.hottest_shard}" if len(rs.hottest_keys) > 1 else \
            f"; key {on} {shared} shard {rs.hottest_shard}"
    top = [(k, c) for k, c in summary.top_keys[:3] if c / max(summary.requests, 1) >= 0.01]
    if top:
        return "; hottest keys: " + ", ".join(f"{k} ({pct(summary.key_share(c))})" for k, c in top)
    return ""


def decision(summary: Summary, judgement: Judgement, cfg: GateConfig) -> str | None:
    """What a live run may stop on, peeked at every second: a block the anytime-valid evidence
    proves (or, from min_requests on, a stddev block: the key weights are fixed, so later looks
    see the same assignment), or from min_requests on a pass. None while undecided."""
    checks = judgement.verdict.checks
    rs = summary.primary_summary
    for c in checks:
        if c.rule == "max_shard_share" and c.router == rs.router and c.status == "block" and c.details.get("anytime"):
            return "block"
        if c.rule == "stddev_ratio" and c.status == "block":
            return "block"
    if summary.requests >= cfg.min_requests and judgement.verdict.status == "pass":
        return "pass"
    return None


def row_status(max_share: float, max_share_low: float, excess: float | None, requests: int,
               cfg: GateConfig) -> str:
    """The balance verdict of one router's saved figures (a plan row) under these thresholds:
    the hottest shard's interval and the stddev ratio's excess over the null's quantile."""
    if requests == 0:
        return "inconclusive"
    if (requests >= cfg.min_requests and max_share_low > cfg.max_shard_share) or \
            (excess is not None and requests >= cfg.min_requests and excess > cfg.stddev_excess_limit):
        return "block"
    if requests < cfg.min_requests or max_share > cfg.max_shard_share:
        return "inconclusive"
    return "pass"
