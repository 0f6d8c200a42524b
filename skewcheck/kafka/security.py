"""Kafka connection settings from the scenario's `kafka:` section (sidecar and producer), in
kafka-python's names and in librdkafka's.

Everything that can be checked without a broker is checked here, so a wrong setting is one clear
message and exit 2 before any connection is tried: SASL without a mechanism, a mechanism without
SASL, credentials missing from the environment, a CA file that is not there or not PEM.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

from skewcheck.config import KafkaConfig
from skewcheck.errors import UsageError

_TLS = ("SSL", "SASL_SSL")
_SASL = ("SASL_PLAINTEXT", "SASL_SSL")


def bootstrap_list(servers: str) -> list[str]:
    """`host:port,host:port` as a list; UsageError for an empty list or a missing/bad port."""
    hosts = [s.strip() for s in servers.split(",") if s.strip()]
    if not hosts:
        raise UsageError("kafka.bootstrap_servers is empty; give host:port[,host:port...]")
    for host in hosts:
        name, sep, port = host.rpartition(":")
        if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"kafka.bootstrap_servers: {host!r} is not host:port")
    return hosts


def client_settings(kafka: KafkaConfig, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for KafkaConsumer/KafkaProducer: servers, protocol, SASL, TLS."""
    env = os.environ if environ is None else environ
    protocol = kafka.security_protocol
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap_list(kafka.bootstrap_servers),
        "security_protocol": protocol,
    }
    if protocol in _SASL:
        if kafka.sasl_mechanism is None:
            raise UsageError(f"kafka.security_protocol {protocol} needs kafka.sasl_mechanism "
                             "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
        user, password = env.get(kafka.sasl_username_env), env.get(kafka.sasl_password_env)
        missing = [name for name, value in ((kafka.sasl_username_env, user),
                                            (kafka.sasl_password_env, password)) if not value]
        if missing:
            raise UsageError(f"SASL credentials missing: set the environment variable(s) {', '.join(missing)} "
                             "(named by kafka.sasl_username_env / kafka.sasl_password_env)")
        settings.update(sasl_mechanism=kafka.sasl_mechanism, sasl_plain_username=user,
                        sasl_plain_password=password)
    elif kafka.sasl_mechanism is not None:
        raise UsageError(f"kafka.sasl_mechanism {kafka.sasl_mechanism} is set but kafka.security_protocol is "
                         f"{protocol}; use SASL_PLAINTEXT or SASL_SSL, or remove the mechanism")
    if kafka.ssl_cafile:
        if protocol not in _TLS:
            raise UsageError(f"kafka.ssl_cafile is set but kafka.security_protocol {protocol} does not use "
                             "TLS; use SSL or SASL_SSL")
        try:
            ssl.create_default_context(cafile=kafka.ssl_cafile)
        except FileNotFoundError:
            raise UsageError(f"kafka.ssl_cafile {kafka.ssl_cafile}: no such file") from None
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"kafka.ssl_cafile {kafka.ssl_cafile} is not a PEM CA bundle: {exc}") from None
        settings["ssl_cafile"] = kafka.ssl_cafile
    return settings


def describe(kafka: KafkaConfig) -> str:
    """How we connect, for messages: `127.0.0.1:9092 (SASL_SSL/SCRAM-SHA-512)`."""
    how = kafka.security_protocol + (f"/{kafka.sasl_mechanism}" if kafka.sasl_mechanism else "")
    return f"{kafka.bootstrap_servers} ({how})"


def librdkafka_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """`client_settings` (checked already) in librdkafka's names, for the confluent client."""
    conf: dict[str, Any] = {
        "bootstrap.servers": ",".join(settings["bootstrap_servers"]),
        "security.protocol": settings["security_protocol"],
    }
    if "sasl_mechanism" in settings:
        conf.update({"sasl.mechanism": settings["sasl_mechanism"], "sasl.username": settings["sasl_plain_username"],
                     "sasl.password": settings["sasl_plain_password"]})
    if "ssl_cafile" in settings:
        conf["ssl.ca.location"] = settings["ssl_cafile"]  # host names are checked, as kafka-python does
    return conf
