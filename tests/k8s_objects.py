"""The kustomize base in k8s/ as objects: the files it lists, the ConfigMaps it generates, and
lookups the manifest tests share."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, Iterator

import kubernetes_validate
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

