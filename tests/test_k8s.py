"""Offline checks of the deployment artefacts: the kustomize base in k8s/ and the
example CI workflow in deploy/github-actions/. No cluster, no network."""

from __future__ import annotations

import copy
import json
import functools
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import REPO

K8S = REPO / "k8s"
WORKFLOW = REPO / "deploy" / "github-actions" / "skewcheck-gate.yml"

IMAGE = "ghcr.io/example/skewcheck"
IMAGE_REF = f"{IMAGE}:0.1.0"

# Oldest Kubernetes we claim to support, and the newest schemas the installed
# kubernetes-validate ships: a field that one of them lacks or renamed fails here.
# 1.29 is the first whose Job schema accepts a podFailurePolicy rule with only
# onExitCodes (1.28's marks onPodConditions required).
K8S_VERSIONS = ["1.29", kubernetes_validate.latest_version()]

# Custom resources of the Prometheus operator: kubernetes-validate has no
# schema for them (it only knows built-in kinds), so the ServiceMonitor is
# checked against the small schema below and the PrometheusRule's spec with
# promtool in tests/test_prometheus_rules.py.
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}

# kustomize refuses generator files outside k8s/ (symlinks too), so the
# locustfile is carried as a copy that must not drift from the original.
MIRRORS = {"files/orders.py": REPO / "locustfiles" / "orders.py"}

# Not cluster resources: promtool's unit tests for the PrometheusRule.
NOT_RESOURCES = ("tests/",)

LOCUST_ENV = ["LOCUST_SKEW_CONFIG", "LOCUST_SKEW_SHARDS", "LOCUST_SKEW_ROUTING",
              "LOCUST_SKEW_COMPARE", "LOCUST_SKEW_MAX_SHARE", "LOCUST_SKEW_REPORT_DIR", "LOCUST_HOST"]

SIDECAR_COMMAND = ["skewcheck", "sidecar", "--config", "/skewcheck/scenario.yaml",
                   "--bootstrap-servers", "$(KAFKA_BOOTSTRAP)", "--topic", "skewcheck.requests",
                   "--group", "skewcheck-sidecar", "--metrics-host", "0.0.0.0", "--metrics-port", "9464"]
LOCUSTFILE = "/skewcheck/locustfiles/orders.py"


# --------------------------------------------------------------------------- loading

def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def resource_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for rel in kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / rel).read_text()):
            if doc is not None:
                docs.append((rel, doc))
    return docs


def _generator_source(spec: str) -> tuple[str, str]:
    key, _, path = spec.partition("=")
    return (key, path) if path else (Path(key).name, key)


def generated_configmaps() -> list[dict[str, Any]]:
    """The ConfigMaps kustomize would generate, minus the hash suffix."""
    out = []
    for gen in kustomization().get("configMapGenerator", []):
        data: dict[str, str] = {}
        for spec in gen.get("files", []):
            key, path = _generator_source(spec)
            data[key] = (K8S / path).read_text()
        for lit in gen.get("literals", []):
            key, _, value = lit.partition("=")
            data[key] = value
        out.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": gen["name"]}, "data": data})
    return out


@functools.lru_cache(maxsize=None)
def _parsed_objects() -> tuple[dict[str, Any], ...]:
    return tuple([doc for _, doc in resource_docs()] + generated_configmaps())


def all_objects() -> list[dict[str, Any]]:
    # Copies, so that a test that edits an object cannot leak into another.
    return copy.deepcopy(list(_parsed_objects()))


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [o for o in all_objects() if o["kind"] == kind]


def get(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in by_kind(kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def workloads() -> list[dict[str, Any]]:
    return [o for o in all_objects() if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_spec(obj)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def container(kind: str, name: str) -> dict[str, Any]:
    (c,) = pod_spec(get(kind, name))["containers"]
    return c


def container_env(c: dict[str, Any]) -> dict[str, Any]:
    """Name -> value (str) or valueFrom (dict), with envFrom ConfigMaps resolved."""
    env: dict[str, Any] = {}
    for src in c.get("envFrom", []):
        assert "configMapRef" in src, f"{c['name']}: envFrom only from ConfigMaps (Secrets go through secretKeyRef)"
        env.update(get("ConfigMap", src["configMapRef"]["name"])["data"])
    for e in c.get("env", []):
        env[e["name"]] = e["value"] if "value" in e else e["valueFrom"]
    return env


def _wid(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


# --------------------------------------------------------------------------- kustomization

def test_kustomization_lists_every_file_and_nothing_missing():
    k = kustomization()
    referenced = set(k["resources"])
    for gen in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        referenced |= {_generator_source(s)[1] for s in gen.get("files", [])}
        referenced |= set(gen.get("envs", []))
    on_disk = {p.relative_to(K8S).as_posix() for p in K8S.rglob("*") if p.is_file()}
    on_disk = {p for p in on_disk if p != "kustomization.yaml" and not p.startswith(NOT_RESOURCES)}

    assert sorted(on_disk - referenced) == [], "files in k8s/ that kustomization.yaml does not include"
    assert sorted(referenced - on_disk) == [], "kustomization.yaml names files that do not exist"


def test_mirrored_files_match_their_source():
    for rel, source in MIRRORS.items():
        mirror = K8S / rel
        assert mirror.read_bytes() == source.read_bytes(), (
            f"k8s/{rel} differs from {source.relative_to(REPO)}: "
            f"cp {source.relative_to(REPO)} k8s/{rel}")


def test_image_is_the_overridable_placeholder():
    assert {"name": IMAGE, "newName": IMAGE, "newTag": "0.1.0"} in kustomization()["images"]
    for w in workloads():
        for c in containers(w):
            assert c["image"] == IMAGE_REF, f"{_wid(w)}/{c['name']}: kustomize images: would not rewrite {c['image']}"


def test_no_name_prefix_that_would_break_service_dns():
    k = kustomization()
    assert "namePrefix" not in k and "nameSuffix" not in k


# --------------------------------------------------------------------------- schemas

def _builtin_objects() -> list[dict[str, Any]]:
    return [o for o in all_objects() if o["kind"] not in CRD_KINDS]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("obj", _builtin_objects(), ids=_wid)
def test_manifest_validates_strictly(obj, version):
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{_wid(obj)} against Kubernetes {version}: {path}: {exc.message}")


def test_only_known_custom_resources():
    crds = {o["kind"] for o in all_objects() if o["kind"] in CRD_KINDS}
    assert {"PrometheusRule"} <= crds and crds & {"ServiceMonitor", "PodMonitor"}
    for o in all_objects():
        if "monitoring.coreos.com" in o["apiVersion"]:
            assert o["apiVersion"] == "monitoring.coreos.com/v1" and o["kind"] in CRD_KINDS


_DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"}
_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {"type": "object", "required": ["name"], "additionalProperties": False,
             "properties": {"name": _NAME, "namespace": _NAME, "labels": _LABELS, "annotations": _LABELS}}

# The subset of the operator's ServiceMonitor/PodMonitor fields this base
# uses, closed with additionalProperties so a typo is an error, as in strict
# mode for built-in kinds. Types follow the operator's CRD (v1).
_ENDPOINT = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "port": {"type": "string", "minLength": 1},
        "targetPort": {"type": ["string", "integer"]},
        "path": {"type": "string", "pattern": "^/"},
        "scheme": {"enum": ["http", "https"]},
        "interval": _DURATION,
        "scrapeTimeout": _DURATION,
        "honorLabels": {"type": "boolean"},
        "relabelings": {"type": "array"},
        "metricRelabelings": {"type": "array"},
    },
    "anyOf": [{"required": ["port"]}, {"required": ["targetPort"]}],
}
MONITOR_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"enum": ["ServiceMonitor", "PodMonitor"]},
        "metadata": _METADATA,
        "spec": {
            "type": "object", "required": ["selector"], "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "additionalProperties": False, "minProperties": 1,
                             "properties": {"matchLabels": _LABELS, "matchExpressions": {"type": "array"}}},
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
                "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
            },
        },
    },
}
PROMETHEUS_RULE_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        # The groups are a Prometheus rules file; promtool judges them.
        "spec": {"type": "object", "required": ["groups"], "additionalProperties": False,
                 "properties": {"groups": {"type": "array", "minItems": 1}}},
    },
}


def test_monitor_matches_operator_schema():
    monitors = by_kind("ServiceMonitor") + by_kind("PodMonitor")
    assert monitors
    for m in monitors:
        jsonschema.validate(m, MONITOR_SCHEMA)


def test_monitor_schema_rejects_typos():
    (m,) = by_kind("ServiceMonitor")
    bad = yaml.safe_load(yaml.safe_dump(m))
    bad["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, MONITOR_SCHEMA)


def test_prometheusrule_wrapper_matches_schema():
    (rule,) = by_kind("PrometheusRule")
    jsonschema.validate(rule, PROMETHEUS_RULE_SCHEMA)


# --------------------------------------------------------------------------- wiring

def test_services_select_exactly_their_pods_and_ports_exist():
    for svc in by_kind("Service"):
        selector = svc["spec"]["selector"]
        matched = [w for w in workloads()
                   if w["kind"] != "Job" and selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matched) == 1, f"Service/{svc['metadata']['name']} selects {[_wid(w) for w in matched]}"
        ports = {p["name"]: p["containerPort"] for c in containers(matched[0]) for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in ports, f"Service/{svc['metadata']['name']}: no container port {p['targetPort']}"
            assert ports[p["targetPort"]] == p["port"]


def test_deployment_selectors_match_their_templates():
    for w in workloads():
        if w["kind"] == "Job":
            continue
        assert w["spec"]["selector"]["matchLabels"].items() <= w["spec"]["template"]["metadata"]["labels"].items()


def test_servicemonitor_scrapes_the_sidecar_metrics_port():
    (mon,) = by_kind("ServiceMonitor")
    svc = get("Service", "skewcheck-sidecar")
    assert mon["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    # Only the sidecar: the Locust master exports the same names and would double every alert.
    others = [s for s in by_kind("Service") if s["metadata"]["name"] != svc["metadata"]["name"]
              and mon["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    assert others == []
    (ep,) = mon["spec"]["endpoints"]
    assert ep["port"] in {p["name"] for p in svc["spec"]["ports"]} and ep["path"] == "/metrics"


def test_locust_master_and_workers():
    master = container("Deployment", "skewcheck-locust-master")
    assert master["command"] == ["locust", "-f", LOCUSTFILE, "--master"]
    assert {p["containerPort"] for p in master["ports"]} == {5557, 8089}
    assert get("Deployment", "skewcheck-locust-master")["spec"]["replicas"] == 1

    svc = get("Service", "skewcheck-locust-master")
    assert {p["port"] for p in svc["spec"]["ports"]} == {5557, 8089}

    worker = container("Deployment", "skewcheck-locust-worker")
    assert worker["command"] == ["locust", "-f", LOCUSTFILE, "--worker",
                                 "--master-host", svc["metadata"]["name"]]

    for c in (master, worker):
        env = container_env(c)
        assert set(LOCUST_ENV) <= env.keys(), f"{c['name']} lacks {set(LOCUST_ENV) - env.keys()}"
        assert env["LOCUST_SKEW_CONFIG"] == "/skewcheck/scenario.yaml"
        assert float(env["LOCUST_SKEW_MAX_SHARE"]) == 0.15


def test_sidecar_command_probes_and_service():
    c = container("Deployment", "skewcheck-sidecar")
    assert c["command"] == SIDECAR_COMMAND
    # $(KAFKA_BOOTSTRAP) is only expanded when the variable is defined; an
    # undefined one reaches the sidecar as the literal text.
    assert container_env(c).get("KAFKA_BOOTSTRAP")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in (c["livenessProbe"], c["readinessProbe"]):
        assert ports[probe["httpGet"]["port"]] == 9464
    assert get("Deployment", "skewcheck-sidecar")["spec"]["replicas"] == 1
    svc = get("Service", "skewcheck-sidecar")
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(9464, "metrics")]


def test_gate_job_reads_the_sidecar_service():
    job = get("Job", "skewcheck-gate")
    c = container("Job", "skewcheck-gate")
    assert c["command"] == ["skewcheck", "gate", "--sidecar", "http://skewcheck-sidecar:9464"]
    host, port = re.match(r"http://([^:/]+):(\d+)$", c["command"][-1]).groups()
    assert int(port) in {p["port"] for p in get("Service", host)["spec"]["ports"]}
    assert pod_spec(job)["restartPolicy"] == "Never"
    # Verdict exit codes end the Job at once instead of being retried.
    (fail,) = [r for r in job["spec"]["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert fail["onExitCodes"]["containerName"] == c["name"]
    assert {1, 3} <= set(fail["onExitCodes"]["values"])


def test_files_under_skewcheck_come_from_the_configmap():
    """Every /skewcheck/... path a container is told to read is an item of the mounted ConfigMap."""
    for w in workloads():
        volumes = {v["name"]: v for v in pod_spec(w).get("volumes", [])}
        for c in containers(w):
            visible: set[str] = set()
            for m in c.get("volumeMounts", []):
                cm = volumes[m["name"]].get("configMap")
                if cm is None:
                    continue
                assert m.get("readOnly") is True
                keys = get("ConfigMap", cm["name"])["data"].keys()
                for item in cm["items"]:
                    assert item["key"] in keys, f"{_wid(w)}: ConfigMap {cm['name']} has no key {item['key']}"
                    visible.add(f"{m['mountPath'].rstrip('/')}/{item['path']}")
            words = list(c.get("command", [])) + list(c.get("args", []))
            words += [v for v in container_env(c).values() if isinstance(v, str)]
            for path in (w for w in words if w.startswith("/skewcheck/")):
                assert path in visible, f"{_wid(w)}/{c['name']} reads {path}, which no ConfigMap item provides"


def _scenario():
    from skewcheck.config import load_scenario

    return load_scenario(K8S / "files" / "scenario.yaml")


def test_scenario_is_valid_and_agrees_with_the_locust_options():
    scenario = _scenario()
    locust = get("ConfigMap", "skewcheck-locust")["data"]
    assert int(locust["LOCUST_SKEW_SHARDS"]) == scenario.shards
    assert locust["LOCUST_SKEW_ROUTING"] == scenario.routing.primary
    assert locust["LOCUST_SKEW_COMPARE"].split(",") == scenario.routing.compare
    assert float(locust["LOCUST_SKEW_MAX_SHARE"]) == scenario.gate.max_shard_share
    assert locust["LOCUST_SKEW_REPORT_DIR"] == scenario.report.dir


def test_scenario_kafka_matches_the_sidecar():
    """Workers produce with the scenario's kafka: settings; the sidecar consumes with its flags."""
    kafka = _scenario().kafka
    cmd = container("Deployment", "skewcheck-sidecar")["command"]
    flag = {cmd[i]: cmd[i + 1] for i in range(2, len(cmd) - 1, 2)}
    assert kafka.produce != "off"
    assert kafka.bootstrap_servers == get("ConfigMap", "skewcheck-kafka")["data"]["KAFKA_BOOTSTRAP"]
    assert kafka.topic == flag["--topic"] and kafka.group_id == flag["--group"]
    for c in (container("Deployment", "skewcheck-sidecar"), container("Deployment", "skewcheck-locust-worker")):
        assert {kafka.sasl_username_env, kafka.sasl_password_env} <= container_env(c).keys()


# --------------------------------------------------------------------------- hardening

_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTOR = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _quantity(q: str | int | float) -> float:
    m = _QUANTITY.match(str(q))
    assert m, f"unparseable quantity {q!r}"
    return float(m.group(1)) * _FACTOR[m.group(2)]


@pytest.mark.parametrize("w", workloads(), ids=_wid)
def test_every_container_has_requests_and_limits(w):
    for c in containers(w):
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= res.get(kind, {}).keys(), f"{c['name']}: {kind} incomplete"
        for r in ("cpu", "memory"):
            assert _quantity(res["requests"][r]) <= _quantity(res["limits"][r]), f"{c['name']}: {r} request > limit"


@pytest.mark.parametrize("w", workloads(), ids=_wid)
def test_pods_run_non_root_without_privileges(w):
    spec = pod_spec(w)
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for c in containers(w):
        sc = c["securityContext"]
        assert sc.get("runAsUser", psc["runAsUser"]) > 0
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
        assert not sc.get("privileged", False)


_SECRETISH = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|SASL_USER|USERNAME|CREDENTIAL|API_?KEY", re.I)


def test_credentials_only_through_secret_references():
    assert by_kind("Secret") == [], "no Secret objects in the base: values would be committed"
    assert "secretGenerator" not in kustomization()
    for cm in by_kind("ConfigMap"):
        if cm["metadata"]["name"] == "skewcheck-files":
            continue
        assert not [k for k in cm["data"] if _SECRETISH.search(k)], f"ConfigMap/{cm['metadata']['name']}"
    for w in workloads():
        for c in containers(w):
            for e in c.get("env", []):
                if _SECRETISH.search(e["name"]):
                    assert "value" not in e, f"{_wid(w)}/{c['name']}: {e['name']} set inline"
                    assert "secretKeyRef" in e["valueFrom"], f"{_wid(w)}/{c['name']}: {e['name']}"


@pytest.mark.parametrize("name", ["skewcheck-sidecar", "skewcheck-locust-worker"])
def test_kafka_clients_get_optional_sasl_credentials(name):
    env = {e["name"]: e for e in container("Deployment", name).get("env", [])}
    # The env names are the scenario's kafka.sasl_username_env/sasl_password_env defaults.
    for var, key in (("SKEWCHECK_KAFKA_USERNAME", "username"), ("SKEWCHECK_KAFKA_PASSWORD", "password")):
        ref = env[var]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == key and ref["optional"] is True


# --------------------------------------------------------------------------- kustomize build

def test_kustomize_build_renders_valid_objects_with_image_override(tmp_path):
    """What `kubectl apply -k` would send: a user overlay overriding the image."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed; the checks above cover the sources")
    base = tmp_path / "base"
    shutil.copytree(K8S, base)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../base"],
        "images": [{"name": IMAGE, "newName": "registry.example.com/team/skewcheck", "newTag": "1.2.3"}],
    }))
    proc = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    built = [d for d in yaml.safe_load_all(proc.stdout) if d]

    assert {(d["kind"], d["metadata"]["name"]) for d in built if d["kind"] != "ConfigMap"} == \
        {(o["kind"], o["metadata"]["name"]) for o in all_objects() if o["kind"] != "ConfigMap"}
    configmaps = {d["metadata"]["name"] for d in built if d["kind"] == "ConfigMap"}
    for d in built:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "skewcheck"
        if d["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(d, K8S_VERSIONS[-1], strict=True)
        if "template" not in d.get("spec", {}):
            continue
        for c in containers(d):
            assert c["image"] == "registry.example.com/team/skewcheck:1.2.3"
            # Generated names carry a content hash; references must follow it.
            for src in c.get("envFrom", []):
                assert src["configMapRef"]["name"] in configmaps
        for v in pod_spec(d).get("volumes", []):
            if "configMap" in v:
                assert v["configMap"]["name"] in configmaps


# --------------------------------------------------------------------------- CI workflow example

def _workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _gate_steps() -> list[dict[str, Any]]:
    (job,) = _workflow()["jobs"].values()
    return job["steps"]


def _step_using(action: str) -> dict[str, Any]:
    (step,) = [s for s in _gate_steps() if s.get("uses", "").startswith(action + "@")]
    return step


def test_workflow_structure():
    wf = _workflow()
    # YAML 1.1 reads the bare key `on` as the boolean true.
    triggers = wf.get("on", wf.get(True))
    assert "workflow_dispatch" in triggers
    assert wf["permissions"]["checks"] == "write"
    (job,) = wf["jobs"].values()
    assert job["runs-on"] and job["timeout-minutes"] <= 60
    assert "STAGING_URL" in job["env"]
    for s in job["steps"]:
        assert ("uses" in s) != ("run" in s), s
        if "uses" in s:
            assert re.search(r"@(v\d+|[0-9a-f]{40})$", s["uses"]), f"unpinned action {s['uses']}"
    assert job["steps"][0]["uses"].startswith("actions/checkout@")


def test_workflow_runs_the_locust_gate():
    (step,) = [s for s in _gate_steps() if "locust " in s.get("run", "")]
    line = next(ln for ln in step["run"].splitlines() if ln.strip().startswith("locust "))
    command = " ".join(ln.strip().rstrip("\\") for ln in step["run"].splitlines()
                       if ln.strip().startswith(("locust ", "--skew-")))
    assert command.replace('"', "").split() == [
        "locust", "-f", "locustfiles/orders.py", "--headless", "-u", "50", "-r", "25", "-t", "$SKEWCHECK_RUN_TIME",
        "--host", "$STAGING_URL", "--skew-config", "$SKEWCHECK_CONFIG", "--skew-report-dir", "reports"]
    (job,) = _workflow()["jobs"].values()
    assert job["env"]["SKEWCHECK_CONFIG"] == "configs/ci-gate.yaml" and job["env"]["SKEWCHECK_RUN_TIME"] == "2m"
    assert (REPO / job["env"]["SKEWCHECK_CONFIG"]).is_file()
    # skewcheck itself is installed, not the repository the workflow runs in
    (install,) = [s for s in _gate_steps() if "pip install" in s.get("run", "")]
    assert install["run"].strip() == 'python -m pip install "$SKEWCHECK_PACKAGE"'
    assert job["env"]["SKEWCHECK_PACKAGE"].startswith("skewcheck[locust] @ ")
    # The exit code must survive the shell's -e so the publishing steps still run.
    assert "set +e" in step["run"] and "GITHUB_OUTPUT" in step["run"]
    assert "continue-on-error" not in step


def test_workflow_publishes_reports():
    junit = _step_using("mikepenz/action-junit-report")
    assert junit["with"]["report_paths"] == "reports/junit.xml"
    (summary,) = [s for s in _gate_steps() if ">> \"$GITHUB_STEP_SUMMARY\"" in s.get("run", "")]
    assert "cat reports/summary.md" in summary["run"]
    upload = _step_using("actions/upload-artifact")
    assert upload["with"]["path"] == "reports"
    for s in (junit, summary, upload):
        # A block is exactly when the reports matter most.
        assert "cancelled()" in s["if"]


@pytest.mark.parametrize("code, fails", [("0", False), ("1", True), ("2", True), ("3", True), ("", True)])
def test_workflow_verdict_step_fails_on_block_and_inconclusive(code, fails, tmp_path):
    verdict = _gate_steps()[-1]
    assert verdict["env"]["GATE_EXIT"] == "${{ steps.gate.outputs.exit-code }}"
    assert "${{" not in verdict["run"], "expressions spliced into the script"
    summary = tmp_path / "summary"
    proc = subprocess.run(["bash", "-e", "-c", verdict["run"]], env={"GATE_EXIT": code, "PATH": "/usr/bin:/bin",
                                                                  "GITHUB_STEP_SUMMARY": str(summary)},
                          capture_output=True, text=True, timeout=10)
    assert (proc.returncode != 0) == fails, proc.stdout + proc.stderr


def _step_env(step: dict[str, Any], outputs: dict[str, str]) -> dict[str, str]:
    """A step's env as the runner gives it: `${{ steps.ID.outputs.NAME }}` from earlier steps."""
    env = {}
    for name, value in (step.get("env") or {}).items():
        env[name] = re.sub(r"\$\{\{\s*steps\.(\w+)\.outputs\.([\w-]+)\s*\}\}",
                           lambda m: outputs.get(f"{m.group(1)}.{m.group(2)}", ""), str(value))
    return env


@pytest.mark.slow
def test_the_workflow_commands_gate_a_real_target_as_github_runs_them(tmp_path: Path) -> None:
    """Every `run:` step of the workflow, in order, in a repository laid out as the workflow
    expects, with the environment GitHub gives it; the install step installs this checkout."""
    from skewcheck.demo import start_subprocess, stop_subprocess

    (job,) = _workflow()["jobs"].values()
    repo = tmp_path / "repo"
    (repo / "locustfiles").mkdir(parents=True)
    shutil.copy(REPO / "locustfiles" / "orders.py", repo / "locustfiles")
    shutil.copytree(REPO / "configs", repo / "configs")
    # a fresh environment for the install step; the dependencies come from this test's own
    # environment (a .pth), so pip installs skewcheck itself without downloading them again
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "locust").is_dir())
    (site / "test-deps.pth").write_text(str(deps) + "\n")
    locust = venv / "bin" / "locust"  # what pip writes for locust's console script
    locust.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom locust.main import main\nsys.exit(main())\n")
    locust.chmod(0o755)
    summary, output = tmp_path / "step-summary.md", tmp_path / "github-output"
    target, url = start_subprocess(config=str(REPO / "configs" / "incident-2020.yaml"), cwd=str(REPO))
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "CI": "true", "GITHUB_ACTIONS": "true",
           "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output), "GITHUB_WORKSPACE": str(repo),
           **job["env"],
           "STAGING_URL": url, "SKEWCHECK_CONFIG": "configs/incident-2020.yaml", "SKEWCHECK_RUN_TIME": "6s",
           "SKEWCHECK_PACKAGE": f"skewcheck[locust] @ {REPO.as_uri()}"}
    results = []
    try:
        for step in _gate_steps():
            if "run" not in step:
                continue  # actions (checkout, setup-python, JUnit, upload) run on GitHub only
            outputs = dict(line.split("=", 1) for line in output.read_text().splitlines()) if output.exists() else {}
            outputs = {f"{step_id}.{k}": v for k, v in outputs.items() for step_id in ("gate",)}
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                  cwd=repo, env={**env, **_step_env(step, outputs)}, capture_output=True,
                                  text=True, timeout=240)
            results.append((step["name"], proc))
    finally:
        stop_subprocess(target)
    by_name = {name: proc for name, proc in results}
    install = by_name["Install skewcheck with the Locust plugin"]
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    assert list(site.glob("skewcheck-*.dist-info")), "the install step did not install skewcheck"
    gate = by_name["Load staging and judge the shard balance"]
    assert gate.returncode == 0, gate.stdout[-2000:] + gate.stderr[-2000:]  # the verdict is kept, not raised
    assert "exit-code=1" in output.read_text()
    assert "::error title=skewcheck max_shard_share [hash-mod]::max_shard_share blocks the release: shard 0 " \
           "carries 100.0%25 of requests under hash-mod" in gate.stdout  # % escaped as the runner requires
    result = json.loads((repo / "reports" / "result.json").read_text())
    assert result["scenario"]["name"] == "incident-2020"  # the scenario the workflow names
    junit = ET.parse(repo / "reports" / "junit.xml").getroot()
    assert any(tc.find("failure") is not None for tc in junit.iter("testcase")
               if tc.get("name") == "max_shard_share[hash-mod]")
    assert summary.read_text().count("## skewcheck: ❌ BLOCK (exit 1)") == 1  # appended once
    verdict = results[-1][1]
    assert verdict.returncode == 1 and "::error::skewcheck blocked the release" in verdict.stdout
