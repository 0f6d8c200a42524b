"""The example CI workflow (deploy/github-actions/skewcheck-gate.yml): its structure, and its
commands run as GitHub runs them, against a real target."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO

WORKFLOW = REPO / "deploy" / "github-actions" / "skewcheck-gate.yml"


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
