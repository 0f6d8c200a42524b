"""Gate rules over a summary (plus leak findings) → a Verdict. No I/O.

- max_shard_share: the hottest shard's share is above the limit when its 95% Wilson interval —
  simultaneous over the k shards, since the hottest is picked by looking — lies wholly above
  it (block); a point estimate above the limit whose interval still reaches below it, or any
  from fewer than min_requests, is not evidence either way (inconclusive: run longer).
- stddev_ratio: the excess of the stddev ratio over its noise floor, sqrt(ratio² − floor²),
  above the limit blocks. Judged only from min_requests on: below it the floor itself is noisy.
- min_requests: fewer requests than this is inconclusive, never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field

from skewcheck.summary import Diagnosis, RouterSummary, Summary, diagnose
from skewcheck.verdict import Check, Verdict, worst

DEFAULT_MAX_SHARE = 0.15  # the seed incident's rule: no shard above 15% of traffic
DEFAULT_EXCESS_LIMIT = 0.8  # the seed's stddev-ratio threshold, now applied to the excess over the floor
DEFAULT_MIN_REQUESTS = 2000  # enough for a 20%-share shard to clear the 15% line in ≥ 99% of runs
DEFAULT_MAX_MISMATCH = 0.0  # any disagreement between predicted and observed shards is reported


class GateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_shard_share: float = Field(DEFAULT_MAX_SHARE, gt=0, le=1)
    stddev_excess_limit: float = Field(DEFAULT_EXCESS_LIMIT, gt=0)
    min_requests: int = Field(DEFAULT_MIN_REQUESTS, ge=1)
    max_mismatch_rate: float = Field(DEFAULT_MAX_MISMATCH, ge=0, le=1)


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    diagnosis: Diagnosis


def share_status(value: float, low: float, limit: float, enough: bool = True) -> str:
    """The max-share rule on the hottest shard's share and the low end of its interval."""
    if low > limit and enough:
        return "block"
    return "inconclusive" if value > limit else "pass"


def excess_status(excess: float, floor: float, limit: float, enough: bool) -> str:
    """The stddev rule on the excess over the noise floor."""
    if not enough or math.isnan(floor):
        return "inconclusive"
    return "block" if excess > limit else "pass"


def row_status(max_share: float, max_share_low: float, excess: float, floor: float, requests: int,
               cfg: GateConfig) -> str:
    """The balance verdict of one router's figures (a plan row) under these thresholds."""
    enough = requests >= cfg.min_requests
    statuses = ["pass" if enough else "inconclusive",
                share_status(max_share, max_share_low, cfg.max_shard_share, enough) if requests else "inconclusive",
                excess_status(excess, floor, cfg.stddev_excess_limit, enough)]
    return worst(statuses)


def share_check(rs: RouterSummary, limit: float, enough: bool = True) -> Check:
    s = rs.hottest_shard
    value, low, high = rs.max_share, rs.max_share_low, rs.max_share_high
    details = {"interval": [low, high], "requests": int(rs.counts[s]) if rs.requests else 0,
               "total": rs.requests, "expected_max_share": rs.expected_max_share}
    interval = f"95% CI {low:.1%}–{high:.1%}"
    if rs.requests == 0:
        return Check("max_shard_share", "inconclusive", f"{rs.router}: no requests counted",
                     rs.router, None, None, limit, details)
    status = share_status(value, low, limit, enough)
    if status == "block":
        msg = f"shard {s} carries {value:.1%} of requests under {rs.router} ({interval}), above the {limit:.0%} limit"
    elif status == "inconclusive" and not enough:
        msg = (f"shard {s} carries {value:.1%} under {rs.router} ({interval}) but from too few requests to "
               "judge; run longer")
    elif status == "inconclusive":
        msg = (f"shard {s} carries {value:.1%} under {rs.router} ({interval}): above the {limit:.0%} limit "
               "but not significantly; run longer")
    else:
        msg = f"hottest shard {s} carries {value:.1%} under {rs.router} ({interval}), within the {limit:.0%} limit"
    return Check("max_shard_share", status, msg, rs.router, s, value, limit, details)


def stddev_check(rs: RouterSummary, limit: float, enough: bool) -> Check:
    details = {"stddev_ratio": rs.stddev_ratio, "floor": rs.floor, "excess": rs.excess}
    if not enough:
        return Check("stddev_ratio", "inconclusive",
                     f"{rs.router}: too few requests to judge the stddev ratio against its floor",
                     rs.router, None, rs.excess, limit, details)
    if math.isnan(rs.floor):
        return Check("stddev_ratio", "inconclusive",
                     f"{rs.router}: the noise floor is unknown (the counts came without key buckets), "
                     "so the stddev ratio cannot be judged", rs.router, None, None, limit, details)
    text = (f"stddev ratio {rs.stddev_ratio:.3f} under {rs.router} vs noise floor {rs.floor:.3f}: "
            f"excess {rs.excess:.3f}")
    if excess_status(rs.excess, rs.floor, limit, enough) == "block":
        return Check("stddev_ratio", "block", f"{text} above the limit {limit}", rs.router,
                     rs.hottest_shard, rs.excess, limit, details)
    return Check("stddev_ratio", "pass", f"{text} within the limit {limit}", rs.router, None,
                 rs.excess, limit, details)


def min_requests_check(summary: Summary, minimum: int) -> Check:
    n = summary.requests
    if n >= minimum:
        return Check("min_requests", "pass", f"{n} requests counted (minimum {minimum})",
                     None, None, n, minimum)
    what = "no requests were counted" if n == 0 else f"only {n} requests counted"
    return Check("min_requests", "inconclusive", f"{what}; at least {minimum} are needed to judge",
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
                     f"{summary.observed_mismatches} of {summary.observed_requests} requests ({examples}): "
                     "the emulation or the config's routing/shards is wrong"
                     f"{_would_have_matched(summary)}",
                     summary.primary, None, rate, max_rate, details)
    return Check("routing_emulation", "pass",
                 f"the target's X-Shard agreed with {summary.primary} on all "
                 f"{summary.observed_requests} observed requests", summary.primary, None, rate, max_rate, details)


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


def _router_unhealthy(rs: RouterSummary, cfg: GateConfig) -> bool:
    excess_bad = not math.isnan(rs.excess) and rs.excess > cfg.stddev_excess_limit
    return share_check(rs, cfg.max_shard_share).status == "block" or excess_bad


def judge(summary: Summary, cfg: GateConfig | None = None, extra: Iterable[Check] = ()) -> Judgement:
    """Apply every rule to the primary router (and to the observed shards when the target reports them)."""
    cfg = cfg or GateConfig()
    enough = summary.requests >= cfg.min_requests
    primary = summary.primary_summary
    checks = [min_requests_check(summary, cfg.min_requests),
              share_check(primary, cfg.max_shard_share, enough),
              stddev_check(primary, cfg.stddev_excess_limit, enough)]
    if summary.observed is not None:
        checks.append(share_check(summary.observed, cfg.max_shard_share, enough))
        mismatch = mismatch_check(summary, cfg.max_mismatch_rate)
        if mismatch is not None:
            checks.append(mismatch)
    checks.extend(extra)
    unhealthy = {name: _router_unhealthy(rs, cfg) for name, rs in summary.routers.items()}
    return Judgement(Verdict(tuple(checks)), diagnose(summary, unhealthy))
