"""Prometheus rules: promtool accepts them, and every alert has a unit test that sees it fire
and sees it stay silent (infra/prometheus/tests/<alert>.test.yml)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS = Path(__file__).resolve().parents[2] / "infra" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.test.yml"))


def alerts() -> list[str]:
    return [
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=PROMETHEUS)


def test_promtool_checks_the_rules():
    assert RULE_FILES
    done = promtool("check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass():
    assert TEST_FILES
    done = promtool("test", "rules", *map(str, TEST_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("alert", alerts())
def test_each_alert_is_tested_firing_and_not_firing(alert):
    path = PROMETHEUS / "tests" / f"{alert}.test.yml"
    assert path.exists(), f"no unit test for {alert}"
    cases = [
        case
        for group in yaml.safe_load(path.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
        if case["alertname"] == alert
    ]
    assert any(case.get("exp_alerts") for case in cases), f"{alert} is never seen firing"
    assert any(not case.get("exp_alerts") for case in cases), f"{alert} is never seen silent"


def test_a_broken_expectation_fails(tmp_path):
    """The unit tests can fail: the same rules with an expectation that is wrong."""
    test = yaml.safe_load((PROMETHEUS / "tests" / "RedisDown.test.yml").read_text())
    test["rule_files"] = [str(PROMETHEUS / "rules" / p.name) for p in RULE_FILES]
    test["tests"][1]["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"severity": "page"}}]
    wrong = tmp_path / "wrong.test.yml"
    wrong.write_text(yaml.safe_dump(test))
    assert promtool("test", "rules", str(wrong)).returncode != 0
