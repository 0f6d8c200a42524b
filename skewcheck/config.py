"""The scenario file: pydantic models at the boundary, YAML errors that name the field and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from skewcheck.errors import UsageError, validation_message
from skewcheck.gate import GateConfig, limit_problem
from skewcheck.keys import KINDS as _KINDS, KeySpec
from skewcheck.leak.config import LeakConfig
from skewcheck.routing import ROUTER_NAMES
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


class PlanConfig(_Model):
    requests: int = Field(1_000_000, ge=1)
    shard_sweep: list[int] = Field(default_factory=list)  # other shard counts to compare
    routers: Optional[list[str]] = None  # default: the routing section's routers
    shard_capacity_qps: float = Field(500.0, gt=0)  # what one shard sustains (e.g. its pool size / query time)
    target_qps: float = Field(10_000.0, gt=0)  # the total load the release must carry

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
    shards: int = Field(100, ge=1)
    window_s: float = Field(10.0, gt=0)
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
    def _limit_reachable(self) -> "Scenario":
        problem = limit_problem(self.shards, self.gate.max_shard_share)
        if problem:
            raise ValueError(problem)
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


def parse_scenario(text: str, source: str = "<config>", base_dir: Path | None = None) -> Scenario:
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise UsageError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{source}: a scenario is a YAML mapping (shards:, routing:, keys:, ...)")
    if base_dir is not None:
        _anchor_replay_paths(data.get("keys"), base_dir)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_describe(exc, root, source)) from None


def load_scenario(path: str | Path | None) -> Scenario:
    """Load a scenario file; None gives the built-in default scenario."""
    if path is None:
        return Scenario()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read config {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"config {p} is not UTF-8 text") from None
    return parse_scenario(text, str(p), p.parent)


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
