"""The alerting rules in docs/prometheus: valid for promtool, firing on the series they watch, and naming
only metrics that /metrics exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parent.parent / "docs" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool comes with Debian's prometheus (.ci/setup)")


@needs_promtool
def test_promtool_checks_the_rules():
    result = subprocess.run(  # noqa: S603
        [PROMTOOL, "check", "rules", "opsrelay-rules.yml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


@needs_promtool
def test_the_rules_fire_on_the_series_they_watch():
    result = subprocess.run(  # noqa: S603
        [PROMTOOL, "test", "rules", "opsrelay-rules.test.yml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_a_rule_names_is_exported(client):
    exported = set(re.findall(r"^# TYPE (\S+) (\w+)", client.get("/metrics").text, re.M))
    names = {name for name, _ in exported}
    names |= {f"{name}_total" for name, kind in exported if kind == "counter"}
    used = set(re.findall(r"\bopsrelay_\w+", (RULES / "opsrelay-rules.yml").read_text()))
    assert used and used <= names, used - names
