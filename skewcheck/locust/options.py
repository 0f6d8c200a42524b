"""The `--skew-*` options (Locust's command line, environment and web UI start form) and the
scenario they select."""

from __future__ import annotations

from typing import Any

from locust import events

from skewcheck.config import Scenario, load_scenario, with_overrides


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
    group.add_argument("--skew-stop-on", env_var="LOCUST_SKEW_STOP_ON", default="",
                       choices=["", "never", "block", "decided"],
                       help="End the run once the live verdict is decided: block (a block the evidence "
                            "already proves) or decided (block or pass); default never")
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
        stop_on=getattr(options, "skew_stop_on", "") or None,
        report_dir=getattr(options, "skew_report_dir", "") or None,
        source="--skew-* options",
    )
