"""The command line parses: every subcommand's help, and the exit codes of validate."""

import dataclasses
import gc
from pathlib import Path

import pytest

from rightsizer.adapters.incremental import IncrementalConfig
from rightsizer.adapters.prometheus import PrometheusConfig
from rightsizer.cli import main
from rightsizer.process import GC_THRESHOLDS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "command", ["evaluate", "validate", "backtest", "simulate", "demo", "revert"]
)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "usage: rightsizer" in capsys.readouterr().out


def test_validate_accepts_the_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "policies")]) == 0
    shipped = len(list((ROOT / "policies").glob("*.yaml")))
    assert capsys.readouterr().out.count("valid:") == shipped == 4


def test_validate_exits_2_with_the_field_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: rightsizer.io/v1alpha1\nkind: EfficiencyPolicy\n"
        "metadata: {name: x}\nspec: {agency: x, namespaces: [a], window: 2w2d}\n"
    )
    assert main(["validate", str(bad)]) == 2
    assert "spec.window: '2w2d' is not a duration" in capsys.readouterr().err


def test_the_command_line_tunes_the_garbage_collector(capsys: pytest.CaptureFixture[str]) -> None:
    """An evaluation's heap is large and its objects short-lived: the CLI sets the collector's
    thresholds (process.GC_THRESHOLDS) before it runs anything."""
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert main(["validate", str(ROOT / "policies")]) == 0
        assert gc.get_threshold() == GC_THRESHOLDS != (700, 10, 10)
    finally:
        gc.set_threshold(*before)


@pytest.mark.parametrize(
    ("arguments", "full", "incremental"),
    [
        ([], PrometheusConfig.agencies_per_batch, IncrementalConfig.agencies_per_batch),
        (["--agencies-per-batch", "7"], 7, 7),
    ],
)
def test_agencies_per_batch_is_each_path_s_own_unless_given(
    arguments: list[str], full: int, incremental: int
) -> None:
    """The full path's queries cost per query, the incremental path's per row: each has
    its own measured default, and the option, when given, sets both."""
    from rightsizer.cli import build_parser
    from rightsizer.cli.evaluate import incremental_config, prometheus_config

    common = ["evaluate", "--prometheus-url", "http://p:9090", "--policy", "policies"]
    args = build_parser().parse_args([*common, *arguments])
    assert prometheus_config(args).agencies_per_batch == full
    assert incremental_config(args).agencies_per_batch == incremental
    assert PrometheusConfig.agencies_per_batch != IncrementalConfig.agencies_per_batch


@pytest.mark.parametrize("processes", ["0", "-2", "two"])
def test_evaluate_refuses_fewer_than_one_process(
    processes: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["evaluate", "--prometheus-url", "http://127.0.0.1:1", "--policy", "policies"]
    with pytest.raises(SystemExit) as done:
        main([*arguments, "--processes", processes])
    assert done.value.code == 2
    assert "expected auto or a number of at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("asked", "incremental", "cores", "processes"),
    [
        ("auto", True, 2, 2),  # a steady cycle is our own work: a core each
        ("auto", True, 16, 4),  # at most 4
        ("auto", False, 16, 1),  # a full evaluation waits for Prometheus
        (3, False, 2, 3),  # as given
        (1, True, 16, 1),
    ],
)
def test_processes_auto_is_the_cores_for_incremental_cycles_only(
    asked: int | str, incremental: bool, cores: int, processes: int
) -> None:
    from rightsizer.cli.evaluate import process_count, processes_for

    parsed = process_count(str(asked))
    assert processes_for(parsed, incremental=incremental, cores=cores) == processes


@pytest.mark.parametrize(
    ("workers", "processes", "each"),
    [(2, 1, 2), (2, 2, 1), (4, 2, 2), (5, 2, 2), (1, 4, 1)],
)
def test_processes_share_the_queries_in_flight(workers: int, processes: int, each: int) -> None:
    """N processes each get their share of --workers (at least one), so that Prometheus
    holds no more queries at once than one process would send it."""
    from rightsizer.parallel import SourceRecipe

    recipe = SourceRecipe(PrometheusConfig(url="http://p:9090", workers=workers))
    shared = recipe.sharing_workers(processes)
    assert shared.prometheus.workers == each
    assert each * processes <= max(workers, processes)
    assert dataclasses.replace(shared.prometheus, workers=workers) == recipe.prometheus
