"""The `--skew-*` options (Locust's command line, environment and web UI start form) and the
scenario they select.

Every option is in the start form's "Custom parameters" (Locust lists an argument there only when
it carries `include_in_web_ui`, which an argument group's add_argument doesn't set by itself). What
the form posts to /swarm lands in `environment.parsed_options` as text — an empty field for an
option without a default — so numbers are read here, and a bad value is one clear message (the
web UI checks the form with `scenario_from_options` before Locust starts the test).
"""

from __future__ import annotations

from typing import Any

from locust import events

from skewcheck.config import Scenario, load_scenario, with_overrides
from skewcheck.errors import UsageError
from skewcheck.routing import ROUTER_NAMES

STOP_ON = ["", "never", "block", "decided"]


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kw: Any) -> None:
    group = parser.add_argument_group("skewcheck", "Per-shard balance and the release gate")

    def option(*args: Any, **kwargs: Any) -> None:
        action = group.add_argument(*args, **kwargs)
        action.include_in_web_ui = True  # what LocustArgumentParser.add_argument would set
        action.is_secret = action.is_required = action.is_multiple = False

    option("--skew-config", env_var="LOCUST_SKEW_CONFIG", default="",
           help="Scenario YAML (keys, routing, gate); default: the built-in scenario")
    option("--skew-shards", env_var="LOCUST_SKEW_SHARDS", type=int, default=None,
           help="Number of shards (overrides the scenario)")
    option("--skew-routing", env_var="LOCUST_SKEW_ROUTING", default="", choices=["", *ROUTER_NAMES],
           help="Primary router (empty: the scenario's)")
    option("--skew-compare", env_var="LOCUST_SKEW_COMPARE", default="",
           help="Comma-separated what-if routers counted side by side")
    option("--skew-max-share", env_var="LOCUST_SKEW_MAX_SHARE", type=float, default=None,
           help="Block when a shard carries more than this share (default 0.15)")
    option("--skew-min-requests", env_var="LOCUST_SKEW_MIN_REQUESTS", type=int, default=None,
           help="Fewer counted requests than this is inconclusive (exit 3)")
    option("--skew-stop-on", env_var="LOCUST_SKEW_STOP_ON", default="", choices=STOP_ON,
           help="End the run once the live verdict is decided: block (a block the evidence "
                "already proves) or decided (block or pass); default never")
    option("--skew-report-dir", env_var="LOCUST_SKEW_REPORT_DIR", default="",
           help="Write result.json, junit.xml, summary.md and report.html here")
    option("--skew-kafka-bootstrap", env_var="LOCUST_SKEW_KAFKA_BOOTSTRAP", default="",
           help="Publish to this Kafka (host:port,...) for the sidecar; frames unless the "
                "scenario says kafka.produce: events")


def _number(options: Any, name: str, kind: type) -> Any:
    """An option's number: from the command line already typed, from the web form as text."""
    value = getattr(options, name, None)
    if value is None or isinstance(value, kind) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise UsageError(f"--{name.replace('_', '-')}: {text[:40]!r} is not {what}") from None


def _text(options: Any, name: str) -> str:
    return str(getattr(options, name, "") or "").strip()


def scenario_from_options(options: Any) -> Scenario:
    scenario = load_scenario(_text(options, "skew_config") or None)
    compare = _text(options, "skew_compare")
    bootstrap = _text(options, "skew_kafka_bootstrap")
    if bootstrap:
        kafka = scenario.kafka.model_copy(update={
            "bootstrap_servers": bootstrap,
            "produce": "frames" if scenario.kafka.produce == "off" else scenario.kafka.produce})
        scenario = scenario.model_copy(update={"kafka": kafka})
    stop_on = _text(options, "skew_stop_on")
    if stop_on not in STOP_ON:
        raise UsageError(f"--skew-stop-on: {stop_on[:40]!r} is not one of never, block, decided")
    return with_overrides(
        scenario,
        shards=_number(options, "skew_shards", int),
        primary=_text(options, "skew_routing") or None,
        compare=[c.strip() for c in compare.split(",") if c.strip()] if compare else None,
        max_share=_number(options, "skew_max_share", float),
        min_requests=_number(options, "skew_min_requests", int),
        stop_on=stop_on or None,
        report_dir=_text(options, "skew_report_dir") or None,
        source="--skew-* options",
    )
