"""The search: per router, the smallest shard count that carries the target with the headroom,
robustly.

A count carries the target when its first-saturating shard is at most (1 − headroom) busy at the
target and no shard is above the gate's max share. It passes *robustly* when, in addition, every
count from it up to 5% above it (at least the next two) carries the target too, and it still does
in each of RESAMPLES resampled key sets (each key's count drawn Poisson around the one seen): a
count that passes only because these exact keys happen not to collide there is luck, not
capacity.

Over an exact key model this is decided exactly. Over a sampled model the search finds its
candidate on the model, then asks for exact per-shard counts of every key (one more pass over
the keys) for the counts from 2% below the candidate to the top of its neighbourhood, and
decides on those; counts further below were judged on the model only (`exact_from`). A
candidate the exact counts refute sends the search on, up to MAX_EXACT_PASSES passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from skewcheck.plan.capacity import CapacityModel, Load
from skewcheck.plan.curve import Evaluator, thinned
from skewcheck.plan.placement import routable

ROBUST_SPAN = 0.05  # neighbours: every count up to 5% above a count must carry the target too
ROBUST_MIN_SPAN = 2  # and at least the next two
RESAMPLES = 8  # resampled key sets a robust count must carry the target in, every one
# key placements a router's resampling checks may cost before the search gives up (a few s)
RESAMPLE_BUDGET = 300_000_000
_CALL_COST = 2_000  # a numpy call's overhead, in key placements
# a sampled model's candidate is checked on exact counts from 2% below it (at least 2 counts:
# the model is close, and each count checked costs a remainder and a bincount per key)
EXACT_SLACK = 0.02
EXACT_MIN_SLACK = 2
MAX_EXACT_PASSES = 3  # exact passes over the keys per plan when the key model is sampled
_KEY_SHOWN = 40  # characters of a key shown in a message


def neighbours(n: int) -> list[int]:
    """The counts a robust count must carry the target at: itself and up to 5% above it."""
    return list(range(n, n + max(ROBUST_MIN_SPAN, math.ceil(ROBUST_SPAN * n)) + 1))


def shown_key(key: object) -> str:
    """A key as a message may show it: control and invisible characters escaped, cut short."""
    text = str(key)
    out = "".join(c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 0x100
                                              else f"\\u{ord(c):04x}") for c in text)
    return out if len(out) <= _KEY_SHOWN else out[:_KEY_SHOWN - 1] + "…"


def busy(utilisation: float | None) -> str:
    """How busy a shard is, readably: 81% of capacity, or 40× its capacity."""
    if utilisation is None:
        return "unknown"
    if math.isinf(utilisation):
        return "beyond any capacity"
    if utilisation >= 2:
        return f"{utilisation:,.0f}× its capacity" if utilisation >= 10 else \
            f"{utilisation:.1f}× its capacity"
    return f"{utilisation:.0%} of capacity"


@dataclass
class Finding:
    """What the search found for one router."""

    router: str
    shards: int | None = None  # the smallest robust count
    exact: bool = True  # decided on exact per-shard counts (else on the sampled model)
    exact_from: int | None = None  # counts below this were judged on the sampled model only
    first_pass: int | None = None  # the smallest count that carries the target at all
    resamples: int = 0  # resampled key sets the count carried the target in
    reason: str = ""  # why there is no robust count (or what made the first passes luck)
    rejected: list[str] = field(default_factory=list)  # counts that passed, and why not robustly

    def to_json(self) -> dict[str, object]:
        return {"router": self.router, "shards": self.shards, "exact": self.exact,
                "exact_from": self.exact_from, "first_pass": self.first_pass,
                "resamples": self.resamples, "resamples_of": RESAMPLES,
                "neighbours": None if self.shards is None else
                [self.shards, neighbours(self.shards)[-1]],
                "reason": self.reason, "rejected": self.rejected[:5]}


ExactPass = Callable[[dict[str, list[int]]], dict[str, dict[int, Load]]]


class Search:
    def __init__(self, evaluators: dict[str, Evaluator], capacity: CapacityModel,
                 share_limit: float, counts: Sequence[int], seed: int) -> None:
        self.evaluators = evaluators
        self.capacity = capacity
        self.share_limit = share_limit
        self.counts = sorted(counts)
        self.seed = seed
        self.min_shards = capacity.min_shards(max(self.counts[-1], 1)) or self.counts[-1] + 1
        self.exact: dict[str, dict[int, Load]] = {r: {} for r in evaluators}  # on every key
        self._thinned: dict[str, list[int]] = {}

    def carries(self, load: Load) -> bool:
        return bool(self.capacity.carries(load)) and load.max_share <= self.share_limit + 1e-12

    def why_not(self, n: int, load: Load) -> str:
        if not self.capacity.carries(load):
            return (f"at {n} shards shard {load.hottest_shard} is at {busy(load.utilisation)} "
                    f"at the target")
        return f"at {n} shards shard {load.hottest_shard} carries {load.max_share:.1%} of requests"

    def curve_counts(self, router: str) -> list[int]:
        """The counts a router's curve is drawn at: every searched count when that costs about one
        routing, else a thinned set of the counts the router can be built over at all."""
        ev = self.evaluators[router]
        if ev.placement.exact_every_count:
            return self.counts
        if router not in self._thinned:
            self._thinned[router] = [n for n in thinned(self.counts)
                                     if routable(ev.placement, n)]
        return self._thinned[router]

    # ------------------------------------------------------------------ on the key model

    def _resamples_carry(self, ev: Evaluator, counts: list[int]) -> tuple[int, str, int]:
        """How many resampled key sets carry the target at every one of `counts`, why one did
        not, and the largest count one failed at (0: none). The resampled sets are the same at
        every call (one seed), so any window holding that count fails too."""
        passed, failure, last_failed = 0, "", 0
        for model in ev.resampled(self.seed, RESAMPLES):
            figures = ev.resampled_figures(counts, model)
            bad = [n for n in counts if not self.carries(figures[n])]
            if not bad:
                passed += 1
                continue
            last_failed = max(last_failed, bad[-1])
            if not failure:
                failure = self.why_not(bad[0], figures[bad[0]])
        return passed, failure, last_failed

    def _on_model(self, router: str, finding: Finding, above: int = 0) -> int | None:
        """The smallest count above `above` that passes robustly on the key model."""
        ev = self.evaluators[router]
        curve = ev.figures(self.curve_counts(router))
        spent = 0
        keys = len(ev.model.listed) + len(ev.model.sampled) + _CALL_COST
        skip_to = above
        for n in self.curve_counts(router):
            if n <= skip_to or n < self.min_shards or not self.carries(curve[n]):
                continue
            finding.first_pass = finding.first_pass or n
            near = neighbours(n)
            figures = ev.figures(near)
            bad = next((m for m in near if not self.carries(figures[m])), None)
            if bad is not None:
                self._reject(finding, f"{n} shards carry the target but not {bad}: "
                             + self.why_not(bad, figures[bad]))
                continue
            cost = RESAMPLES * len(near) * keys
            if spent + cost > RESAMPLE_BUDGET:
                finding.reason = (f"no count up to {n} shards passed with its neighbours in every "
                                  "resampled key set (the search stopped there)")
                return None
            spent += cost
            passed, failure, last_failed = self._resamples_carry(ev, near)
            if passed == RESAMPLES:
                finding.resamples = passed
                return n
            self._reject(finding, f"{n} shards carry these keys but not {RESAMPLES - passed} of "
                         f"{RESAMPLES} resampled key sets ({failure})")
            skip_to = last_failed  # every window up to there holds a count that failed
        return None

    @staticmethod
    def _reject(finding: Finding, why: str) -> None:
        if len(finding.rejected) < 5:
            finding.rejected.append(why)

    def _none_found(self, router: str, finding: Finding) -> None:
        ev = self.evaluators[router]
        curve = ev.figures(self.curve_counts(router))
        lo, hi = self.counts[0], self.counts[-1]
        span = f"{lo}–{hi} shards" if len(self.counts) == hi - lo + 1 else "the searched counts"
        if finding.first_pass is None:
            best = max(curve, key=lambda n: (curve[n].saturation_qps or 0.0, -n))
            finding.reason = (f"never carries the target with the headroom in {span}: at best "
                              f"({best} shards) shard {curve[best].hottest_shard} is at "
                              f"{busy(curve[best].utilisation)} at the target")
        elif not finding.reason:
            finding.reason = (f"carries the target at {finding.first_pass} shards but no count in "
                              f"{span} passes with every count up to 5% above it and in every "
                              f"resampled key set")
            if finding.rejected:
                finding.reason += f" ({finding.rejected[0]})"
        if not ev.exact and not finding.exact_from:
            finding.reason += " (judged on the sampled key model)"

    # ------------------------------------------------------------------ the whole search

    def run(self, exact_pass: ExactPass | None) -> dict[str, Finding]:
        findings = {r: Finding(r, exact=ev.exact) for r, ev in self.evaluators.items()}
        candidates: dict[str, int] = {}
        for router, ev in self.evaluators.items():
            found = self._on_model(router, findings[router])
            if found is None:
                self._none_found(router, findings[router])
            elif ev.exact:
                findings[router].shards = found
            else:
                candidates[router] = found
        passes = 0
        while candidates and exact_pass is not None and passes < MAX_EXACT_PASSES:
            spans = {r: self._exact_span(n) for r, n in candidates.items()}
            got = exact_pass({r: [m for m in s if m not in self.exact[r]]
                              for r, s in spans.items()})
            passes += 1
            for router in list(candidates):
                self.exact[router].update(got.get(router, {}))
                finding = findings[router]
                finding.exact_from = spans[router][0]
                confirmed = self._confirm(router, spans[router], candidates[router], finding)
                if confirmed is not None:
                    finding.shards, finding.exact = confirmed, True
                    del candidates[router]
                    continue
                top = neighbours(candidates[router])[-1]
                following = self._on_model(router, finding, above=top)
                if following is None:
                    finding.exact = True
                    self._none_found(router, finding)
                    finding.reason = ("every count the key model proposed failed on exact counts; "
                                      + finding.reason)
                    del candidates[router]
                else:
                    candidates[router] = following
        for router, n in candidates.items():  # not confirmed within the passes: approximate
            findings[router].shards, findings[router].exact = n, False
        return findings

    def _exact_span(self, candidate: int) -> list[int]:
        top = neighbours(candidate)[-1]
        below = max(EXACT_MIN_SLACK, math.ceil(EXACT_SLACK * candidate))
        low = max(self.min_shards, candidate - below, 1)
        return list(range(low, top + 1))

    def _confirm(self, router: str, span: list[int], candidate: int,
                 finding: Finding) -> int | None:
        exact = self.exact[router]
        ev = self.evaluators[router]
        skip_to = 0
        for n in span:
            if n > candidate:
                break
            near = neighbours(n)
            if n <= skip_to or any(m not in exact or not self.carries(exact[m]) for m in near):
                continue
            passed, failure, last_failed = self._resamples_carry(ev, near)
            if passed == RESAMPLES:
                finding.resamples = passed
                finding.first_pass = min(finding.first_pass or n, n)
                return n
            self._reject(finding, f"{n} shards carry these keys but not {RESAMPLES - passed} of "
                         f"{RESAMPLES} resampled key sets ({failure})")
            skip_to = last_failed
        return None
