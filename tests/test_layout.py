"""The core imports no edge: routing, tally, summary, gate, plan and the reporters load without
Locust, Kafka, Prometheus or a network client, as the design requires."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "skewcheck"
# the edges: what only the Locust plugin, the Kafka pipeline, the sidecar, the demo target and
# the leak probe may import
EDGE_PACKAGES = ("skewcheck.locust", "skewcheck.kafka", "skewcheck.sidecar", "skewcheck.demo",
                 "skewcheck.plugin", "skewcheck.metrics", "skewcheck.commands")
EDGE_MODULES = ("skewcheck.leak.probe", "skewcheck.leak.source", "skewcheck.leak.load",
                "skewcheck.leak.hook")
NETWORK = ("socket", "ssl", "http", "urllib.request", "urllib.error", "socketserver", "locust",
           "gevent", "kafka", "prometheus_client", "flask", "requests")
CORE = ("skewcheck.config", "skewcheck.keys", "skewcheck.keytext", "skewcheck.hashes",
        "skewcheck.routing", "skewcheck.frame", "skewcheck.tally", "skewcheck.sketch",
        "skewcheck.stats", "skewcheck.summary", "skewcheck.gate", "skewcheck.verdict",
        "skewcheck.result", "skewcheck.plan", "skewcheck.report", "skewcheck.leak.config",
        "skewcheck.leak.profile", "skewcheck.leak.check", "skewcheck.infer")


def _module_path(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when the file is imported (module level, not inside functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, (ast.If, ast.Try)):
            for child in ast.walk(node):
                if isinstance(child, ast.Import):
                    names.update(alias.name for alias in child.names)
                elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                    names.add(child.module)
    return names


def _closure(roots: tuple[str, ...]) -> dict[str, set[str]]:
    """Every skewcheck module the roots load at import time, with what each imports."""
    seen: dict[str, set[str]] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_path(name)
        if path is None:
            continue
        imports = _top_level_imports(path)
        if path.name != "__init__.py" and "." in name:
            parent = name.rsplit(".", 1)[0]
            if parent != "skewcheck":
                imports.add(parent)  # importing a submodule runs its package's __init__
        seen[name] = imports
        todo.extend(i for i in imports if i.startswith("skewcheck"))
    return seen


def test_the_core_loads_no_edge_and_no_network_module() -> None:
    closure = _closure(CORE)
    edges = sorted(m for m in closure if m.startswith(EDGE_PACKAGES) or m in EDGE_MODULES)
    assert not edges, f"the core imports edge modules: {edges}"
    network = sorted({(m, i) for m, imports in closure.items() for i in imports
                      if i.split(".")[0] in NETWORK or i in NETWORK})
    assert not network, f"core modules import network or framework modules: {network}"


def test_importing_the_core_with_the_network_stack_blocked() -> None:
    # what pydantic itself loads (importlib.metadata pulls in email and socket) comes first; then
    # every edge and network module left is made unimportable, and the whole core must still load
    script = f"""
import sys
import numpy, yaml, mmh3, pydantic
class _Warm(pydantic.BaseModel):
    x: int = 0
for name in {list(NETWORK) + ["http.client", "http.server", "urllib.request"]!r}:
    if name not in sys.modules:
        sys.modules[name] = None
for name in {list(CORE)!r}:
    __import__(name)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
