"""`skewcheck sidecar` — consume request events and frames from Kafka; export per-shard metrics.

    skewcheck sidecar --config configs/ci-gate.yaml --bootstrap-servers 127.0.0.1:9092
    curl http://127.0.0.1:9464/metrics        # Prometheus
    curl http://127.0.0.1:9464/verdict        # summary + verdict of what was counted
    skewcheck gate --sidecar http://127.0.0.1:9464

Flags override the scenario's `kafka:` section. On SIGTERM or SIGINT the sidecar saves its state
file, commits its offsets, writes --result and exits 0: a sidecar stopping is not a verdict (the
verdict is `skewcheck gate`). Start-up errors: 2 for configuration (bad SASL/TLS settings, missing
credentials, unknown topic, port in use), 3 when no broker answers within --connect-timeout.
"""

from __future__ import annotations

import argparse
import gc
import re
import signal
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from skewcheck.commands import seconds
from skewcheck.config import KafkaConfig, Scenario, load_scenario
from skewcheck.errors import EXIT_PASS, UsageError, validation_message

DEFAULT_CONNECT_TIMEOUT_S = 30.0  # a broker (or its topic) still starting next to the sidecar
_INSTANCE_ID = re.compile(r"(?![.]{1,2}$)[A-Za-z0-9._-]{1,249}")  # Kafka's group.instance.id rules


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="consume request events from Kafka; serve /metrics, /verdict, /state",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="scenario YAML (routing, shards, gate, kafka); default: built-in")
    p.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]", help="overrides kafka.bootstrap_servers")
    p.add_argument("--topic", help="overrides kafka.topic")
    p.add_argument("--group", help="consumer group (kafka.group_id); instances of one group share the topic")
    p.add_argument("--client", choices=("kafka-python", "confluent"),
                   help="Kafka client library (kafka.client, default kafka-python); confluent is librdkafka "
                        "and needs pip install 'skewcheck[kafka-fast]'")
    p.add_argument("--metrics-host", help="address to serve HTTP on (kafka.metrics_host, default 127.0.0.1)")
    p.add_argument("--metrics-port", type=int, help="port to serve HTTP on (kafka.metrics_port; 0 picks one)")
    p.add_argument("--result", metavar="OUT.json", help="write the result document here when stopped")
    p.add_argument("--state", metavar="FILE",
                   help="save counts and offsets here before each commit; restarting with the same "
                        "file resumes them (without it a restart starts from empty counts)")
    p.add_argument("--instance-id", metavar="ID",
                   help="static group membership (e.g. the pod name): a restarted instance with the same "
                        "ID gets its partitions back at once; give every instance its own")
    p.add_argument("--from-beginning", action="store_true",
                   help="a group without committed offsets starts at the oldest message, not the newest")
    p.add_argument("--connect-timeout", type=seconds, default=DEFAULT_CONNECT_TIMEOUT_S, metavar="SECONDS",
                   help="how long to wait at start for the broker and the topic (default %(default)g)")
    p.add_argument("--verbose", action="store_true", help="show the Kafka client's own log lines")
    p.set_defaults(run=run)


def effective_kafka(scenario: Scenario, args: argparse.Namespace) -> KafkaConfig:
    """The scenario's kafka section with the command-line flags applied and validated again."""
    data = scenario.kafka.model_dump()
    for flag, key in (("bootstrap_servers", "bootstrap_servers"), ("topic", "topic"), ("group", "group_id"),
                      ("client", "client"), ("metrics_host", "metrics_host"), ("metrics_port", "metrics_port")):
        value = getattr(args, flag, None)
        if value is not None:
            data[key] = value
    try:
        return KafkaConfig.model_validate(data)
    except ValidationError as exc:
        raise UsageError(validation_message(exc, root="kafka", separator="; ")) from None


class _Stopping(Exception):
    """SIGTERM/SIGINT arrived while still starting up."""


def run(args: argparse.Namespace) -> int:
    from skewcheck.kafka.consumer import EventConsumer, KafkaErrorLog, open_consumer
    from skewcheck.kafka.security import client_settings, describe
    from skewcheck.sidecar import checkpoint
    from skewcheck.sidecar.server import SidecarServer
    from skewcheck.sidecar.state import SidecarState

    if args.instance_id is not None and not _INSTANCE_ID.fullmatch(args.instance_id):
        raise UsageError(f"--instance-id {args.instance_id!r}: use 1-249 of A-Z a-z 0-9 . _ -")
    scenario = load_scenario(args.config)
    kafka = effective_kafka(scenario, args)
    settings = client_settings(kafka)
    result_path = Path(args.result) if args.result else None
    state_path = Path(args.state) if args.state else None
    if result_path:
        checkpoint.check_writable(result_path, "result")
    if state_path:
        checkpoint.check_writable(state_path, "state file")
    state = SidecarState(scenario, kafka, instance=args.instance_id)
    if state_path:
        saved = checkpoint.load(state_path)
        if saved is not None:
            state.restore(saved, str(state_path))
            print(f"skewcheck sidecar: resumed {state.tally.requests:,} counted requests from {state_path}",
                  flush=True)

    stop = threading.Event()
    starting = True

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        if starting:
            raise _Stopping()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    errors = KafkaErrorLog().install(verbose=args.verbose)
    server = SidecarServer(kafka.metrics_host, kafka.metrics_port, state).start()
    loop: EventConsumer | None = None
    try:
        print(f"skewcheck sidecar: serving {server.url} (/metrics /verdict /state /healthz /readyz)", flush=True)
        try:
            def connect() -> Any:
                return open_consumer(kafka, settings, client_id=f"skewcheck-sidecar-{state.instance}",
                                     connect_timeout_s=args.connect_timeout,
                                     from_beginning=args.from_beginning, errors=errors,
                                     instance_id=args.instance_id)

            loop = EventConsumer(connect(), state, state_path=state_path, errors=errors, reopen=connect)
            loop.forget_stale_positions()
            starting = False
            print(f"skewcheck sidecar: consuming {kafka.topic} as group {kafka.group_id} from {describe(kafka)} "
                  f"with {kafka.client}", flush=True)
        except _Stopping:
            pass
        if loop is not None:
            # what start-up made (modules, models, routers) lives as long as the process: the
            # collector's passes skip it from here on, a tenth of the loop's CPU at full speed
            gc.freeze()
            loop.run(stop)
    finally:
        starting = False
        doc = state.result()  # before leaving the group: the result shows the partitions it held
        counted, consumed = doc["requests"], doc["sidecar"]["consumed"]
        malformed = sum(doc["sidecar"]["malformed"].values())
        if loop is not None:
            loop.close()
        server.close()
        errors.uninstall()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    line = f"skewcheck sidecar: stopped; {consumed:,} messages consumed ({malformed:,} malformed), " \
           f"{counted:,} requests counted"
    if result_path:
        from skewcheck.report.result_json import write_json

        write_json(doc, result_path)
        line += f"; result written to {result_path}"
    print(line, flush=True)
    return EXIT_PASS
