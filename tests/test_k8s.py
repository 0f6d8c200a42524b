"""Offline checks of the deployment artefacts: the kustomize base in k8s/ (every manifest strictly
against the Kubernetes schemas, the custom resources against theirs, the wiring between them and
their hardening). No cluster, no network."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import REPO
from crd_schemas import MONITOR_SCHEMA, PROMETHEUS_RULE_SCHEMA
from k8s_objects import (
    CRD_KINDS,
    IMAGE,
    IMAGE_REF,
    K8S,
    K8S_VERSIONS,
    LOCUST_ENV,
    LOCUSTFILE,
    MIRRORS,
    NOT_RESOURCES,
    SIDECAR_COMMAND,
    _generator_source,
    _wid,
    all_objects,
    by_kind,
    container,
    container_env,
    containers,
    get,
    kustomization,
    pod_spec,
    workloads,
)

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


