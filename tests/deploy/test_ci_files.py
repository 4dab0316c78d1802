"""The GitHub workflows and Dependabot config say what docs/DEPLOY.md promises."""

from __future__ import annotations

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with requirements-dev.txt")
ROOT = Path(__file__).resolve().parents[2]


def _load(rel: str) -> dict:
    return yaml.safe_load((ROOT / rel).read_text())


def test_ci_runs_tests_on_postgres_and_redis_and_the_checks() -> None:
    ci = _load(".github/workflows/ci.yml")
    test = ci["jobs"]["test"]
    assert {"postgres", "redis"} <= set(test["services"])
    assert any(step.get("run") == "scripts/test" for step in test["steps"])
    text = (ROOT / ".github/workflows/ci.yml").read_text()
    for tool in ("bandit", "pip-audit", "hadolint", "promtool", "build-push-action"):
        assert tool in text, tool


def test_deploy_needs_ci_and_approval_and_can_roll_back() -> None:
    wf = _load(".github/workflows/deploy.yml")
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads `on` as a boolean
    assert on["workflow_run"]["workflows"] == ["CI"] and on["workflow_run"]["branches"] == ["main"]
    assert "rollback_version" in on["workflow_dispatch"]["inputs"]
    job = wf["jobs"]["deploy"]
    assert job["environment"] == "production"
    assert "success" in job["if"]
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert "kamal deploy -c deploy/deploy.yml" in runs and "kamal rollback" in runs


def test_dependabot_covers_pip_npm_and_actions() -> None:
    ecosystems = {u["package-ecosystem"] for u in _load(".github/dependabot.yml")["updates"]}
    assert {"pip", "npm", "github-actions"} <= ecosystems
