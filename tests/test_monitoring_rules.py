"""The Prometheus rules: valid for promtool, their unit tests pass, and they read only real metrics."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.promql_names import RULES_DIR, known_names, metric_names, rule_groups


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed — install Prometheus (apt-get install prometheus, "
            "or run deploy/ensure-tools.sh as CI does)"
        )
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_rule_files() -> None:
    files = sorted(str(p) for p in RULES_DIR.glob("*.yml"))
    assert len(files) == 2, files
    result = _run("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    tests = sorted(str(p) for p in (RULES_DIR / "tests").glob("*.yml"))
    assert tests, "no rule unit tests found"
    result = _run("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_read_only_defined_metrics() -> None:
    known = known_names()
    unknown = {
        rule.get("record") or rule.get("alert"): sorted(metric_names(rule["expr"]) - known)
        for group in rule_groups()
        for rule in group["rules"]
    }
    assert not {name: names for name, names in unknown.items() if names}


def test_every_alert_has_a_severity_and_a_summary_and_a_unit_test() -> None:
    alerts = [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]
    assert len(alerts) >= 8
    tested = "\n".join(p.read_text() for p in (RULES_DIR / "tests").glob("*.yml"))
    for alert in alerts:
        assert alert["labels"]["severity"] in ("page", "ticket"), alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert f"alertname: {alert['alert']}" in tested, f"{alert['alert']} has no promtool unit test"


def test_the_kpi_and_slo_rules_exist() -> None:
    recorded = {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}
    assert {
        "agency:gdx_exchange_success:ratio_rate5m",
        "agency:gdx_exchange_success:ratio_rate1h",
        "agency:gdx_freshness_slo_burn_rate:1h",
        "chain:gdx_audit_checkpoint_age:seconds",
    } <= recorded
