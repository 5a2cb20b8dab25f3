"""The recording rules: one definition (``adapters.rules``), two generated files (a plain
rules file Prometheus accepts, a Helm template), and the plan that decides to read them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import test_chart
import yaml
from test_chart import CHART, Render, of_kind, one

from rightsizer.adapters import promql, rules, rulesgen
from rightsizer.handlers.config import OperatorConfig

REPO = Path(__file__).resolve().parents[2]
helm, helm_env, render = test_chart.helm, test_chart.helm_env, test_chart.render  # fixtures


@pytest.fixture(scope="session")
def chart(request: pytest.FixtureRequest) -> Render:
    """test_chart's ``render``: the chart rendered by a real helm."""
    renderer: Render = request.getfixturevalue("render")
    return renderer


# --- drift -----------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", sorted(rulesgen.generate()), ids=str)
def test_committed_files_equal_a_fresh_generation(relative: Path) -> None:
    committed = (CHART / relative).read_text(encoding="utf-8")
    assert committed == rulesgen.generate()[relative], (
        f"charts/rightsizer/{relative} differs from rightsizer.adapters.rules; "
        f"regenerate with: {rulesgen.REGENERATE}"
    )


def test_main_writes_both_files(tmp_path: Path) -> None:
    assert rulesgen.main([str(tmp_path)]) == 0
    for relative, text in rulesgen.generate().items():
        assert (tmp_path / relative).read_text(encoding="utf-8") == text
    assert rulesgen.main([]) == 2


def test_promtool_accepts_the_plain_file() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is in the Debian package prometheus (make system-deps)"
    path = CHART / rulesgen.PLAIN
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules.RULES)} rules found" in done.stdout


def test_the_rules_match_the_default_resolution() -> None:
    assert promql.Resolution() == rules.RESOLUTION
    (group,) = yaml.safe_load((CHART / rulesgen.PLAIN).read_text())["groups"]
    assert group["interval"] == promql.Resolution().step
    assert [r["record"] for r in group["rules"]] == [r.record for r in rules.RULES]
    assert all(r["record"].startswith("rightsizer:") for r in group["rules"])


# --- the chart ---------------------------------------------------------------------------------


def test_no_rules_by_default(chart: Render) -> None:
    docs = chart()
    assert not of_kind(docs, "PrometheusRule")
    assert not [d for d in of_kind(docs, "ConfigMap") if "recording" in d["metadata"]["name"]]


def test_prometheus_rule_when_enabled(chart: Render) -> None:
    docs = chart(values={"recordingRules": {"enabled": True, "labels": {"release": "kps"}}})
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"] == rules.rule_groups()
    assert not of_kind(docs, "ConfigMap")


def test_plain_file_in_a_config_map_when_asked(chart: Render) -> None:
    values: dict[str, Any] = {
        "recordingRules": {"enabled": True, "prometheusRule": False, "configMap": True}
    }
    docs = chart(values=values)
    assert not of_kind(docs, "PrometheusRule")
    (config_map,) = [d for d in of_kind(docs, "ConfigMap") if "recording" in d["metadata"]["name"]]
    text = config_map["data"]["recording-rules.yaml"]
    assert yaml.safe_load(text) == rules.rule_groups()


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_operator_environment_carries_the_mode(chart: Render, mode: str) -> None:
    docs = chart(values={"recordingRules": {"mode": mode}})
    (operator,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in operator["env"]}
    assert env["RIGHTSIZER_RECORDING_RULES"] == mode


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "auto"), ("on", "on"), ("OFF", "off"), ("auto", "auto")]
)
def test_environment_variable(value: str | None, expected: str) -> None:
    env = {"RIGHTSIZER_PROMETHEUS_URL": "http://prometheus:9090"}
    if value is not None:
        env["RIGHTSIZER_RECORDING_RULES"] = value
    config = OperatorConfig.from_environment(env)
    assert config.prometheus().recording_rules == expected


def test_environment_variable_refuses_other_values() -> None:
    env = {"RIGHTSIZER_PROMETHEUS_URL": "http://p:9090", "RIGHTSIZER_RECORDING_RULES": "yes"}
    with pytest.raises(ValueError, match="auto, on, off"):
        OperatorConfig.from_environment(env)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [([], "auto"), (["--recording-rules", "off"], "off"), (["--recording-rules", "on"], "on")],
)
def test_cli_option(arguments: list[str], expected: str) -> None:
    from rightsizer.cli import build_parser
    from rightsizer.cli.evaluate import prometheus_config

    common = ["evaluate", "--prometheus-url", "http://p:9090", "--policy", "policies"]
    args = build_parser().parse_args([*common, *arguments])
    assert prometheus_config(args).recording_rules == expected


def test_cli_refuses_another_mode(capsys: pytest.CaptureFixture[str]) -> None:
    from rightsizer.cli import build_parser

    common = ["evaluate", "--prometheus-url", "http://p:9090", "--policy", "policies"]
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*common, "--recording-rules", "sometimes"])
    assert done.value.code == 2
    assert "auto" in capsys.readouterr().err


# --- the plan ------------------------------------------------------------------------------------


def counts(*, start: float, end: float) -> dict[str, float]:
    return {
        f"{edge} {rule.record}": value
        for rule in rules.RULES
        for edge, value in (("start", start), ("end", end))
    }


PLANS = {
    "covered": (counts(start=10, end=10), True, "they cover the 14d window"),
    "installed recently": (
        counts(start=0, end=10),
        False,
        "they do not cover the 14d window (none at the start)",
    ),
    "not installed": ({}, False, "no recorded series: the rules are not installed"),
    "no longer evaluated": (
        counts(start=10, end=0),
        False,
        "they do not cover the 14d window (none at the end)",
    ),
}


@pytest.mark.parametrize(("found", "recorded", "reason"), PLANS.values(), ids=list(PLANS))
def test_plan_from_coverage(found: dict[str, float], recorded: bool, reason: str) -> None:
    assert rules.plan_from_coverage(found, window="14d") == rules.Plan(recorded, reason)


def test_one_rule_missing_is_not_coverage() -> None:
    found = counts(start=10, end=10)
    found[f"start {rules.MEMORY_AVG}"] = 0
    assert not rules.plan_from_coverage(found, window="14d").recorded


FIXED = {
    "off": ("off", promql.Resolution(), rules.Plan(False, "turned off")),
    "on": ("on", promql.Resolution(), rules.Plan(True, "turned on")),
    "auto probes": ("auto", promql.Resolution(), None),
    "another resolution": (
        "auto",
        promql.Resolution(step="5m"),
        rules.Plan(False, "the CPU resolution differs from the rules' 10m"),
    ),
}


@pytest.mark.parametrize(("mode", "resolution", "plan"), FIXED.values(), ids=list(FIXED))
def test_plan_without_probing(
    mode: rules.Mode, resolution: promql.Resolution, plan: rules.Plan | None
) -> None:
    assert rules.plan_for(mode, resolution) == plan


def test_coverage_probe_reads_two_short_spans_per_rule() -> None:
    query = rules.coverage_query(window="14d")
    assert query.count("[1200s]") == 2 * len(rules.RULES)
    assert query.count("offset 1208400s") == len(rules.RULES)  # 14d - 20m


def test_recorded_queries_read_no_subquery() -> None:
    ns = promql.namespace_matcher(["a"])
    for stat in ("p95", "max"):
        assert ":" not in rules.cpu_stat_query(ns, stat=stat, window="14d").split("[", 1)[1]
    memory = rules.memory_query(ns, window="14d", stale_after="1h", stats=["avg", "max", "p99"])
    assert rules.MEMORY_AVG in memory and rules.MEMORY_MAX in memory
    assert "quantile_over_time(0.99, container_memory_working_set_bytes" in memory
    with pytest.raises(ValueError, match="no recorded CPU series"):
        rules.cpu_stat_query(ns, stat="avg", window="14d")
