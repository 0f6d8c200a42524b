"""The scenario file: pydantic models at the boundary, YAML errors that name the field and line."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from skewcheck.errors import UsageError, read_text, validation_message
from skewcheck.gate import GateConfig, limit_problem
from skewcheck.keys import KINDS as _KINDS
from skewcheck.keys import KeySpec
from skewcheck.leak.config import LeakConfig
from skewcheck.limits import MAX_CONFIG_NODES, MAX_SCENARIO_SHARDS, MAX_TALLY_CELLS, MAX_WINDOW_S
from skewcheck.router_params import FILE_PARAMS, RoutingParams
from skewcheck.routing import MAX_SHARDS, ROUTER_NAMES, Router, make_router
from skewcheck.summary import REFERENCE_ROUTER

REPORT_FORMATS = ("json", "junit", "markdown", "html")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_router(name: str) -> str:
    if name not in ROUTER_NAMES:
        raise ValueError(f"unknown router {name!r}; choose one of {', '.join(ROUTER_NAMES)}")
    return name


class RoutingConfig(_Model):
    primary: str = "mod"  # what the system under test does
    compare: list[str] = Field(default_factory=lambda: [REFERENCE_ROUTER])  # what-if routers
    key_type: Literal["int", "str"] = "int"
    # each router's parameters under its name (ring files, slot maps, split points, seeds, ...)
    params: RoutingParams = Field(default_factory=RoutingParams)

    @field_validator("primary")
    @classmethod
    def _primary(cls, v: str) -> str:
        return _check_router(v)

    @field_validator("compare")
    @classmethod
    def _compare(cls, v: list[str]) -> list[str]:
        return [_check_router(x) for x in v]

    @model_validator(mode="after")
    def _mod_needs_int(self) -> "RoutingConfig":
        if self.key_type == "str" and "mod" in [self.primary, *self.compare]:
            raise ValueError("router mod needs int keys (key_type: int)")
        return self

    def router(self, name: str, shards: int) -> Router:
        """Router `name` over `shards` shards, with this section's key type and its parameters."""
        params = self.params.of(name)
        return make_router(name, shards, self.key_type, params)

    @property
    def router_names(self) -> list[str]:
        """Primary first, then compare routers, then murmur3 as the reference if not already there."""
        names = [self.primary] + [c for c in self.compare if c != self.primary]
        names = list(dict.fromkeys(names))
        if REFERENCE_ROUTER not in names:
            names.append(REFERENCE_ROUTER)
        return names


class ReportConfig(_Model):
    dir: Optional[str] = None  # a Locust run writes its reports here (or to --skew-report-dir)
    formats: list[Literal["json", "junit", "markdown", "html"]] = Field(default_factory=lambda: list(REPORT_FORMATS))


DEFAULT_PLAN_REQUESTS = 1_000_000  # enough that sampling noise moves a 100-shard max share < 1%
# a pool kept busier than ~80% queues sharply (waits grow as 1/(1 - busy)): keep a fifth free
DEFAULT_HEADROOM = 0.2
MAX_SEARCH_SHARDS = 65_536  # the curve costs distinct keys × counts; beyond, state search.counts
_HORIZON = re.compile(
    r"\+?\s*(\d+(?:\.\d+)?)\s*(seconds?|s|minutes?|min|hours?|h|days?|d|weeks?|w)")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "min": 60, "minute": 60,
                 "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400,
                 "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}


class PoolCapacity(_Model):
    """One shard's capacity from its connection pool: `size` connections, each busy `service_ms`
    per query, so the shard sustains size / service_ms × 1000 queries per second."""

    size: int = Field(ge=1)
    service_ms: float = Field(gt=0, allow_inf_nan=False)

    @property
    def qps(self) -> float:
        return self.size * 1000.0 / self.service_ms


class SearchConfig(_Model):
    """Which shard counts the planner searches for the smallest one that carries the target."""

    min_shards: int = Field(2, ge=1)
    max_shards: int = Field(4096, ge=1, le=MAX_SEARCH_SHARDS)
    counts: Optional[list[Annotated[int, Field(ge=1, le=MAX_SEARCH_SHARDS)]]] = None  # a grid

    @model_validator(mode="after")
    def _range(self) -> "SearchConfig":
        if self.min_shards > self.max_shards:
            raise ValueError(f"min_shards ({self.min_shards}) exceeds max_shards "
                             f"({self.max_shards})")
        return self

    def shard_counts(self) -> list[int]:
        if self.counts:
            return sorted(set(self.counts))
        return list(range(self.min_shards, self.max_shards + 1))


class ReshardConfig(_Model):
    """Going from one shard count to another: `{from: 100, to: 128}`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    before: int = Field(alias="from", ge=1, le=MAX_SHARDS)
    after: int = Field(alias="to", ge=1, le=MAX_SHARDS)

    @model_validator(mode="after")
    def _differ(self) -> "ReshardConfig":
        if self.before == self.after:
            raise ValueError(f"from and to are both {self.before} shards")
        return self


class PlanConfig(_Model):
    requests: Optional[int] = Field(None, ge=1)  # default 10^6; one replay: each of its keys once
    shard_sweep: list[int] = Field(default_factory=list)  # shard counts shown beside the configured
    routers: Optional[list[str]] = None  # default: the routing section's routers
    target_qps: Optional[float] = Field(None, gt=0, allow_inf_nan=False)  # the load to carry
    shard_capacity_qps: Optional[float] = Field(None, gt=0, allow_inf_nan=False)  # one shard's
    pool: Optional[PoolCapacity] = None  # or one shard's capacity from its connection pool
    # capacity of shard i relative to the rest (2: twice the hardware); shards past the list: 1
    shard_weights: Optional[list[Annotated[float, Field(gt=0, allow_inf_nan=False)]]] = None
    headroom: float = Field(DEFAULT_HEADROOM, ge=0, lt=1)  # capacity kept free at the target
    search: SearchConfig = Field(default_factory=SearchConfig)
    reshard: Optional[ReshardConfig] = None  # what moves going from N to M shards
    horizon: Optional[str] = None  # "+90 days": plan the keys issued that much later

    @field_validator("shard_sweep")
    @classmethod
    def _sweep(cls, v: list[int]) -> list[int]:
        if any(n <= 0 for n in v):
            raise ValueError("shard counts must be > 0")
        return v

    @field_validator("routers")
    @classmethod
    def _routers(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        return None if v is None else [_check_router(x) for x in v]

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            horizon_seconds(v)
        return v

    @model_validator(mode="after")
    def _capacity(self) -> "PlanConfig":
        if self.shard_capacity_qps is not None and self.pool is not None:
            raise ValueError("give one shard's capacity once: shard_capacity_qps or pool, not both")
        if self.target_qps is not None and self.capacity_qps is None:
            raise ValueError("target_qps needs a per-shard capacity to plan against: set "
                             "shard_capacity_qps, or pool (size, service_ms)")
        return self

    @property
    def capacity_qps(self) -> Optional[float]:
        """What one shard (of weight 1) sustains, from shard_capacity_qps or the pool."""
        return self.pool.qps if self.pool is not None else self.shard_capacity_qps

    @property
    def horizon_s(self) -> Optional[float]:
        return None if self.horizon is None else horizon_seconds(self.horizon)


def horizon_seconds(text: str) -> float:
    """`+90 days`, `12h`, `2 weeks` as seconds (ValueError with the reason otherwise)."""
    match = _HORIZON.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"horizon {text!r} is not a duration such as '+90 days', '12 hours', '2w'")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"horizon {text!r} must be later than now")
    return seconds


class KafkaConfig(_Model):
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "skewcheck.requests"
    group_id: str = "skewcheck-sidecar"
    # the sidecar's consumer library; confluent (librdkafka) needs `pip install 'skewcheck[kafka-fast]'`
    client: Literal["kafka-python", "confluent"] = "kafka-python"
    produce: Literal["off", "frames", "events"] = "off"  # what Locust workers publish
    frame_interval_s: float = Field(1.0, gt=0)
    key_field: str = "key"  # external producers: the JSON field holding the key
    shard_field: Optional[str] = "shard"  # and the observed shard, if any
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Optional[Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]] = None
    sasl_username_env: str = "SKEWCHECK_KAFKA_USERNAME"  # credentials come from the environment, never the file
    sasl_password_env: str = "SKEWCHECK_KAFKA_PASSWORD"
    ssl_cafile: Optional[str] = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, le=65535)


class MetricsConfig(_Model):
    """Prometheus exposition (Locust master and sidecar)."""

    # per router; past it only the hottest shards get series (10^4 shards × 3 routers is 90k series)
    shard_series_limit: int = Field(1024, ge=1)
    # per-shard latency and failure series: the busiest shards only (each is 3 quantiles + 1 ratio)
    latency_series_limit: int = Field(10, ge=0, le=1024)


class DemoConfig(_Model):
    """The embedded sharded orders service: each shard a connection pool with a service time."""

    pool_size: int = Field(4, ge=1)
    service_ms: float = Field(5.0, ge=0)
    wait_timeout_ms: float = Field(200.0, ge=0)


class LoadConfig(_Model):
    """What each Locust user does between keys."""

    wait_min_s: float = Field(0.05, ge=0)
    wait_max_s: float = Field(0.15, ge=0)


def _default_keys() -> list[Any]:
    return [{"kind": "uniform", "low": 1, "high": 10_000_000}]


class Scenario(_Model):
    name: str = "default"
    description: str = ""
    seed: int = Field(2020, ge=0)
    shards: int = Field(100, ge=1, le=MAX_SCENARIO_SHARDS)
    window_s: float = Field(10.0, gt=0, le=MAX_WINDOW_S)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    keys: list[KeySpec] = Field(default_factory=_default_keys, min_length=1, validate_default=True)
    gate: GateConfig = Field(default_factory=GateConfig)
    leak: Optional[LeakConfig] = None
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    plan: PlanConfig = Field(default_factory=PlanConfig)
    demo: DemoConfig = Field(default_factory=DemoConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    load: LoadConfig = Field(default_factory=LoadConfig)

    @model_validator(mode="after")
    def _routers_build(self) -> "Scenario":
        # a ring, slot map or split list must agree with `shards`; files must be readable
        for name in self.routing.router_names:
            try:
                self.routing.router(name, self.shards)
            except UsageError as exc:
                raise ValueError(f"routing: router {name}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _limit_reachable(self) -> "Scenario":
        problem = limit_problem(self.shards, self.gate.max_shard_share)
        if problem:
            raise ValueError(problem)
        cells = len(self.routing.router_names) * self.shards * math.ceil(self.window_s)
        if cells > MAX_TALLY_CELLS:
            raise ValueError(f"{len(self.routing.router_names)} routers × {self.shards:,} shards × "
                             f"{math.ceil(self.window_s)} window slots is {cells:,} counters, more than the "
                             f"{MAX_TALLY_CELLS:,} a tally may hold; lower shards or window_s")
        return self

    def build_distribution(self) -> Any:
        from skewcheck.keys import build_distribution

        return build_distribution(list(self.keys), self.seed, self.routing.key_type)


# --- loading --------------------------------------------------------------------------------


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the deepest YAML node on a pydantic error path."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        elif isinstance(node, yaml.SequenceNode):
            continue  # a discriminated-union tag such as 'strided' sits between index and field
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _describe(exc: ValidationError, root: yaml.Node | None, source: str) -> str:
    return validation_message(exc, source=source, skip=_KINDS,
                              line_of=None if root is None else lambda loc: _line_of(root, loc))


def _anchor_replay_paths(node: Any, base: Path) -> None:
    """Replay files named relative to the scenario file are found next to it, wherever you run."""
    if isinstance(node, dict):
        path = node.get("path")
        if node.get("kind") == "replay" and isinstance(path, str) and not Path(path).is_absolute():
            node["path"] = str(base / path)
        for value in node.values():
            _anchor_replay_paths(value, base)
    elif isinstance(node, list):
        for item in node:
            _anchor_replay_paths(item, base)


def _anchor_router_files(routing: Any, base: Path) -> None:
    """Ring files, slot maps and split files named relative to the scenario file are found next
    to it, wherever you run."""
    params = routing.get("params") if isinstance(routing, dict) else None
    if not isinstance(params, dict):
        return
    for options in params.values():
        if not isinstance(options, dict):
            continue
        for key in FILE_PARAMS:
            path = options.get(key)
            if isinstance(path, str) and not Path(path).is_absolute():
                options[key] = str(base / path)


def _load_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its data, composed once: duplicate keys
    and alias expansions past MAX_CONFIG_NODES values are refused before anything is built."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_nodes(root, source)
        return root, loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise UsageError(f"{where}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Refuse duplicate keys, recursive aliases and alias bombs (a few hundred bytes of nested
    aliases can stand for billions of values): sizes are counted over shared nodes once."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        ident = id(node)
        if done:
            active.discard(ident)
            sizes[ident] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[ident] > MAX_CONFIG_NODES:
                raise UsageError(f"{source}:{node.start_mark.line + 1}: the YAML expands to more than "
                                 f"{MAX_CONFIG_NODES:,} values (aliases); a scenario is far smaller")
            continue
        if ident in sizes:
            continue
        if ident in active:
            raise UsageError(f"{source}:{node.start_mark.line + 1}: a YAML alias refers to itself")
        active.add(ident)
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise UsageError(f"{source}:{line}: duplicate key {key.value!r} (first on line "
                                         f"{seen[key.value]})")
                    seen[key.value] = line
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def parse_scenario(text: str, source: str = "<config>", base_dir: Path | None = None) -> Scenario:
    root, data = _load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{source}: a scenario is a YAML mapping (shards:, routing:, keys:, ...)")
    if base_dir is not None:
        _anchor_replay_paths(data.get("keys"), base_dir)
        _anchor_router_files(data.get("routing"), base_dir)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_describe(exc, root, source)) from None


def load_scenario(path: str | Path | None) -> Scenario:
    """Load a scenario file; None gives the built-in default scenario."""
    if path is None:
        return Scenario()
    p = Path(path)
    return parse_scenario(read_text(p, "config"), str(p), p.parent)


def with_overrides(
    scenario: Scenario,
    *,
    shards: int | None = None,
    primary: str | None = None,
    compare: list[str] | None = None,
    key_type: str | None = None,
    max_share: float | None = None,
    min_requests: int | None = None,
    stop_on: str | None = None,
    report_dir: str | None = None,
    source: str = "command line",
) -> Scenario:
    """The scenario with command-line/environment overrides applied and validated again."""
    data = scenario.model_dump(mode="json")
    if shards is not None:
        data["shards"] = shards
    if primary:
        data["routing"]["primary"] = primary
    if compare is not None:
        data["routing"]["compare"] = compare
    if key_type:
        data["routing"]["key_type"] = key_type
    if max_share is not None:
        data["gate"]["max_shard_share"] = max_share
    if min_requests is not None:
        data["gate"]["min_requests"] = min_requests
    if stop_on is not None:
        data["gate"]["stop_on"] = stop_on
    if report_dir:
        data["report"]["dir"] = report_dir
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_describe(exc, None, source)) from None
