"""`skewcheck sidecar` start-up errors, without a broker: one clear line and the documented exit
code — 2 for configuration (SASL/TLS settings, credentials, addresses, files, ports), 3 when no
broker answers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.locust_runs import free_port
from tests.sidecar_runs import skewcheck

pytest.importorskip("kafka")


def sidecar(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "skewcheck", "sidecar", "--metrics-port", "0", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("SKEWCHECK_KAFKA")},
                               **(env or {})})


def scenario(tmp_path, kafka: str) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text("kafka:\n" + "".join(f"  {line}\n" for line in kafka.strip().splitlines()))
    return str(path)


def one_line(run: subprocess.CompletedProcess) -> str:
    lines = [line for line in run.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    return lines[0]


@pytest.mark.parametrize("kafka, env, message", [
    ("security_protocol: SASL_SSL", {}, "kafka.security_protocol SASL_SSL needs kafka.sasl_mechanism"),
    ("security_protocol: SASL_PLAINTEXT\nsasl_mechanism: SCRAM-SHA-512", {},
     "SASL credentials missing: set the environment variable(s) SKEWCHECK_KAFKA_USERNAME, SKEWCHECK_KAFKA_PASSWORD"),
    ("security_protocol: SASL_PLAINTEXT\nsasl_mechanism: PLAIN\nsasl_password_env: MY_PW",
     {"SKEWCHECK_KAFKA_USERNAME": "u"}, "set the environment variable(s) MY_PW"),
    ("sasl_mechanism: PLAIN", {}, "kafka.sasl_mechanism PLAIN is set but kafka.security_protocol is PLAINTEXT"),
    ("security_protocol: SSL\nssl_cafile: /nonexistent/ca.pem", {}, "kafka.ssl_cafile /nonexistent/ca.pem: no such file"),
    ("ssl_cafile: /etc/hostname", {}, "does not use TLS"),
    ("security_protocol: SASL_MECHANICAL", {}, "kafka.security_protocol"),
    ("bootstrap_servers: kafka-without-port", {}, "'kafka-without-port' is not host:port"),
])
def test_bad_security_settings_exit_2_before_connecting(tmp_path, kafka, env, message):
    started = time.monotonic()
    run = sidecar("--config", scenario(tmp_path, kafka), "--connect-timeout", "30", env=env)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in one_line(run)
    assert time.monotonic() - started < 20  # refused before any connection attempt


def test_a_ca_file_that_is_not_pem_exits_2(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    run = sidecar("--config", scenario(tmp_path, f"security_protocol: SSL\nssl_cafile: {bad}"))
    assert run.returncode == 2 and "is not a PEM CA bundle" in one_line(run)


def test_an_unreachable_broker_at_start_exits_3_with_one_line(client):
    port = free_port()
    started = time.monotonic()
    run = sidecar("--bootstrap-servers", f"127.0.0.1:{port}", "--connect-timeout", "2", "--client", client)
    assert run.returncode == 3, run.stdout + run.stderr
    line = one_line(run)
    assert line.startswith(f"skewcheck sidecar: cannot reach Kafka at 127.0.0.1:{port} (PLAINTEXT) within 2 s")
    assert time.monotonic() - started < 20


def test_other_usage_errors_exit_2(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = sidecar("--metrics-port", str(port), "--bootstrap-servers", "127.0.0.1:1")
        assert run.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in one_line(run)
    run = sidecar("--result", str(tmp_path / "no" / "such" / "dir" / "out.json"))
    assert run.returncode == 2 and "is not a directory" in one_line(run)
    run = sidecar("--metrics-port", "70000")
    assert run.returncode == 2 and "kafka.metrics_port" in one_line(run)
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing: {primary: modulo}\n")
    run = sidecar("--config", str(bad))
    assert run.returncode == 2 and "unknown router 'modulo'" in run.stderr


def test_sigterm_while_waiting_for_the_broker_writes_the_result_and_exits_0(tmp_path, client):
    import os

    out = tmp_path / "result.json"
    proc = subprocess.Popen([sys.executable, "-m", "skewcheck", "sidecar", "--metrics-port", "0",
                             "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--connect-timeout", "60",
                             "--result", str(out), "--client", client], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()  # "serving http://…": the process is up and connecting
        assert "skewcheck sidecar: serving http://127.0.0.1:" in line
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    doc = json.loads(out.read_text())
    assert doc["kind"] == "sidecar" and doc["requests"] == 0 and doc["verdict"]["status"] == "inconclusive"


def test_gate_help_names_the_sidecar_flag():
    run = skewcheck("gate", "--help")
    assert "--sidecar URL" in run.stdout


def test_a_client_library_that_is_not_installed_exits_2_with_one_line(tmp_path):
    blocked = tmp_path / "confluent_kafka"  # shadows the installed package, as if it were missing
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('No module named confluent_kafka')\n")
    run = sidecar("--client", "confluent", "--bootstrap-servers", f"127.0.0.1:{free_port()}",
                  env={"PYTHONPATH": f"{tmp_path}:{REPO}"})
    assert run.returncode == 2, run.stdout + run.stderr
    assert "kafka.client confluent needs confluent-kafka: pip install 'skewcheck[kafka-fast]'" in one_line(run)
