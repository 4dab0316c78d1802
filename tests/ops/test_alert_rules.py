"""Alert rules: `promtool check rules` and `promtool test rules` (Debian's prometheus package)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMTOOL = shutil.which("promtool")
IN_CI = os.environ.get("CI", "").lower() == "true"


def promtool() -> str:
    if PROMTOOL is None:
        message = "promtool not installed (Debian package 'prometheus'; scripts/test installs it)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires it", pytrace=False)
        pytest.skip(message)
    return PROMTOOL


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_promtool_check_rules():
    result = run("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_test_rules():
    result = run("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_required_alert_is_defined_and_tested():
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    tests = (DEPLOY / "prometheus" / "alerts_test.yml").read_text()
    for name in (
        "QuireHigh5xxRatio",
        "QuireSlowRequests",
        "QuireInstanceDown",
        "QuireReadinessFailing",
        "QuireLiveJournalLagGrowing",
        "QuireEditToCommitSlow",
        "QuireRepositoriesVolumeFull",
        "QuireBackupTooOld",
    ):
        assert f"alert: {name}" in rules
        assert f"alertname: {name}" in tests


def test_grafana_dashboard_uses_exported_metrics():
    dashboard = json.loads((DEPLOY / "grafana" / "quire.json").read_text())
    exprs = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    )
    for metric in (
        "quire_http_requests_total",
        "quire_http_request_duration_seconds_bucket",
        "quire_http_requests_in_progress",
        "quire_live_connected_editors",
        "quire_live_journal_uncommitted_entries",
        "quire_live_edit_to_commit_seconds_bucket",
        "quire_git_operations_total",
        "quire_db_query_duration_seconds_bucket",
        "quire_repos_volume_free_bytes",
        "quire_process_resident_memory_bytes",
    ):
        assert metric in exprs, metric
