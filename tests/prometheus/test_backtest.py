"""Backtests on a real Prometheus: no peeking, sane risk on known shapes, the CLI."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, STANDARD

from rightsizer.adapters.files import load_policies
from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.backtest.run import BacktestResult, run_backtest
from rightsizer.localprom import Dataset, LocalPrometheus
from rightsizer.service import NamedPolicy, expand_by_label

pytestmark = pytest.mark.prometheus
STEP = timedelta(days=2)
START = STANDARD.end - timedelta(days=6)


def backtest(  # type: ignore[no-untyped-def]
    url: str, *, start=START, end=STANDARD.end, step=STEP, spec=None
) -> BacktestResult:
    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    source = PrometheusSource(PrometheusConfig(url=url))
    template = NamedPolicy(
        policy.name, policy.spec.model_copy(update=spec or {"min_history": "3d"})
    )
    policies = expand_by_label([template], source, label="rightsizer.io/agency", end=end)
    return run_backtest(policies, source, start=start, end=end, step=step)


@pytest.fixture(scope="module")
def result(prometheus: LocalPrometheus) -> BacktestResult:
    return backtest(prometheus.url)


def targets(result: BacktestResult, step: float) -> dict[tuple[str, str, str], Any]:
    return {
        (t.strategy, t.workload, t.container): (t.cpu, t.memory)
        for t in result.trace
        if t.step == step and t.strategy != "oracle"
    }


def test_no_step_reads_data_from_after_its_own_evaluation_time(
    standard_cloud: Dataset, tmp_path: Path
) -> None:
    """Delete everything after t from a copy of the data: every strategy but the oracle
    must recommend exactly the same at t."""
    moment = START + STEP
    data = tmp_path / "data"
    shutil.copytree(standard_cloud.data_dir, data)
    with LocalPrometheus(data, extra_args=["--web.enable-admin-api"]) as server:
        full = backtest(server.url, start=moment, end=moment + STEP)
        query = urllib.parse.urlencode(
            {"match[]": '{__name__=~".+"}', "start": f"{moment.timestamp() + 1:.0f}"}
        )
        request = urllib.request.Request(
            f"{server.url}/api/v1/admin/tsdb/delete_series?{query}", method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status == 204
        cut = backtest(server.url, start=moment, end=moment + STEP)
    before, after = targets(full, moment.timestamp()), targets(cut, moment.timestamp())
    assert before
    assert before == after
    future_blind = [r for r in cut.rows if r.strategy == "oracle" and r.scope == "total"]
    assert future_blind[0].cpu_over_share == 0.0  # the oracle has nothing left to replay


def test_steady_shapes_have_near_zero_risk_for_every_sane_strategy(
    result: BacktestResult, truth: dict[str, Any]
) -> None:
    steady = {
        f"workload:{w['kind']}/{w['namespace']}/{w['name']}"
        for w in truth["workloads"]
        if w["shape"] in ("rightsized", "overprovisioned", "idle")
    }
    rows = [
        r
        for r in result.rows
        if r.scope in steady and r.strategy in ("policy", "estimator", "vpa-like")
    ]
    assert rows
    assert max(r.cpu_over_share for r in rows) <= 0.01
    assert max(r.memory_over_share for r in rows) == 0.0


def test_our_estimator_never_cuts_growing_memory_below_its_next_peak(
    result: BacktestResult, truth: dict[str, Any]
) -> None:
    growing = {
        f"workload:{w['kind']}/{w['namespace']}/{w['name']}"
        for w in truth["workloads"]
        if w["shape"] == "memory-growth"
    }
    rows = [r for r in result.rows if r.scope in growing and r.strategy in ("policy", "estimator")]
    assert rows
    assert all(r.memory_over_workloads == 0 for r in rows)


def test_an_oom_killed_workload_is_never_sized_below_the_memory_it_died_at(
    result: BacktestResult, truth: dict[str, Any]
) -> None:
    for workload in (w for w in truth["workloads"] if w["shape"] == "oom-killed"):
        key = f"{workload['kind']}/{workload['namespace']}/{workload['name']}"
        limits = {c["name"]: c["limits"]["memory"] for c in workload["containers"]}
        ours = [
            t
            for t in result.trace
            if t.workload == key and t.strategy in ("policy", "estimator") and t.memory is not None
        ]
        assert ours
        assert all(t.memory >= limits[t.container] for t in ours), key


def test_a_kill_answered_by_an_upsize_is_not_answered_again(
    prometheus: LocalPrometheus, truth: dict[str, Any]
) -> None:
    """History keeps OOM-killing at the real limit; under the raised simulated limit those
    kills would not have happened (backtest/counterfactual.py). With a 2-day window the
    first upsize leaves the window after two daily steps: the kills replayed after it must
    not be answered again (one upsize per container, no ratchet)."""
    short = {"window": "2d", "min_history": "1d"}
    result = backtest(prometheus.url, step=timedelta(days=1), spec=short)
    oom = {
        f"{w['kind']}/{w['namespace']}/{w['name']}"
        for w in truth["workloads"]
        if w["shape"] == "oom-killed"
    }
    sizes: dict[tuple[str, str], set[float]] = {}
    for t in result.trace:
        if t.workload in oom and t.strategy == "policy" and t.memory is not None:
            sizes.setdefault((t.workload, t.container), set()).add(t.memory)
    assert len(sizes) >= len(oom) > 0
    assert all(len(values) <= 2 for values in sizes.values()), sizes


def test_queries_grow_with_steps_not_workloads(result: BacktestResult) -> None:
    agencies = len({r.scope for r in result.rows if r.scope.startswith("agency:")})
    per_step = 9  # the evaluation's queries per agency
    history = 2 * 1 + 1  # CPU and memory per time chunk, owners once, per agency
    namespaces = 2  # label and annotation look-ups for --agency-label
    assert result.queries <= agencies * (result.steps * per_step + history) + namespaces


def test_cli_writes_the_backtest_in_every_format(
    prometheus: LocalPrometheus, tmp_path: Path
) -> None:
    from rightsizer.cli import main

    outputs = [tmp_path / name for name in ("b.html", "b.json", "b.csv")]
    code = main(
        [
            "backtest",
            "--prometheus-url",
            prometheus.url,
            "--policy",
            str(ROOT / "policies" / "default.yaml"),
            "--agency-label",
            "rightsizer.io/agency",
            "--from",
            START.isoformat(),
            "--to",
            STANDARD.end.isoformat(),
            "--step",
            "2d",
            "--trace",
            str(tmp_path / "t.csv"),
            *[arg for path in outputs for arg in ("-o", str(path))],
        ]
    )
    assert code == 0
    body = json.loads(outputs[1].read_text())
    assert {row["strategy"] for row in body["rows"]} == {
        "policy",
        "estimator",
        "vpa-like",
        "krr-like",
        "oracle",
    }
    assert "<svg" in outputs[0].read_text()
    assert (tmp_path / "t.csv").read_text().count("\n") > 100
