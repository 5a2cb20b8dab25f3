"""Incremental evaluation against a real Prometheus: the same answers as the full path within
the stated tolerance, lost or damaged state rebuilt, a fixed number of queries per cycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import ROOT, STANDARD
from test_query_plan import small_cloud, small_cloud_policies

from rightsizer.adapters.files import load_policies
from rightsizer.adapters.incremental import IncrementalConfig, IncrementalSource
from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.adapters.statecodec import SCHEMA
from rightsizer.adapters.statestore import FileStateStore, safe_name
from rightsizer.core.evaluation import WorkloadEvaluation
from rightsizer.core.report import AgencyReport
from rightsizer.localprom import LocalPrometheus, cached_dataset
from rightsizer.ports import Collection, UsageSource
from rightsizer.service import (
    NamedPolicy,
    collection_request,
    evaluate_policies,
    expand_by_label,
    resolve_namespaces,
)

pytestmark = pytest.mark.prometheus

SAME_GRADE = 0.95  # share of workloads graded the same as by the full path
TARGET_TOLERANCE = 0.05  # relative difference of every recommended target
STAT_TOLERANCE = 0.07  # ... of the statistic, where the minChange band keeps one side
THROTTLE_TOLERANCE = 0.01  # absolute difference of a container's throttled ratio


def policies(source: PrometheusSource, **update: object) -> list[NamedPolicy]:
    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    spec = policy.spec.model_copy(update=update)
    template = NamedPolicy(policy.name, spec)
    return expand_by_label([template], source, label="rightsizer.io/agency", end=STANDARD.end)


def incremental(url: str, folder: Path) -> IncrementalSource:
    return IncrementalSource(PrometheusSource(PrometheusConfig(url=url)), FileStateStore(folder))


def by_key(reports: list[AgencyReport]) -> dict[str, WorkloadEvaluation]:
    assert all(r.complete for r in reports), [r.error for r in reports]
    return {e.ref.key: e for r in reports for e in r.workloads}


Throttling = dict[tuple[str, str], float | None]  # (workload, container) -> throttled ratio


def throttling(source: UsageSource, chosen: list[NamedPolicy]) -> Throttling:
    """Each container's measured throttled ratio at the end (None: no CPU limit)."""
    namespaces = resolve_namespaces(chosen, source, end=STANDARD.end)
    requests = [collection_request(p, ns) for p, ns in zip(chosen, namespaces, strict=True)]
    found: Throttling = {}
    for result in source.collect(requests, end=STANDARD.end):
        assert isinstance(result, Collection), result
        for observation in result.observations:
            for name, usage in observation.usage.containers.items():
                found[(observation.usage.ref.key, name)] = usage.throttled_ratio
    return found


@dataclass
class Compared:
    full: dict[str, WorkloadEvaluation]
    folded: dict[str, WorkloadEvaluation]
    full_throttling: Throttling
    folded_throttling: Throttling


@pytest.fixture(scope="module")
def compared(prometheus: LocalPrometheus, tmp_path_factory: pytest.TempPathFactory) -> Compared:
    """Full evaluation at the end; incremental seeded 30 hours before, then folded every 3
    hours (across a midnight, so a day is closed from folded points)."""
    full_source = PrometheusSource(PrometheusConfig(url=prometheus.url))
    chosen = policies(full_source)
    full = by_key(evaluate_policies(chosen, full_source, end=STANDARD.end))
    source = incremental(prometheus.url, tmp_path_factory.mktemp("state"))
    start = STANDARD.end - timedelta(hours=30)
    evaluate_policies(chosen, source, end=start)
    assert set(source.rebuilt.values()) == {"missing"}
    for hour in range(3, 31, 3):
        reports = evaluate_policies(chosen, source, end=start + timedelta(hours=hour))
        assert source.rebuilt == {}, "a steady cycle folds, it does not rebuild"
    folded_throttling = throttling(source, chosen)  # the last cycle's end again: no new step
    assert source.rebuilt == {}
    return Compared(
        full=full,
        folded=by_key(reports),
        full_throttling=throttling(full_source, chosen),
        folded_throttling=folded_throttling,
    )


def test_incremental_grades_match_the_full_path(compared: Compared) -> None:
    assert compared.folded.keys() == compared.full.keys()
    same = [k for k, e in compared.full.items() if compared.folded[k].grade == e.grade]
    assert len(same) >= SAME_GRADE * len(compared.full)
    actions = [k for k, e in compared.full.items() if compared.folded[k].action == e.action]
    assert len(actions) >= SAME_GRADE * len(compared.full)


def test_incremental_throttling_matches_the_full_path(compared: Compared) -> None:
    """Throttling kept as summed CFS periods: the same containers measured (none without a
    CPU limit), each ratio close to the full path's, the same cpuThrottled matches."""
    full, folded = compared.full_throttling, compared.folded_throttling
    assert folded.keys() == full.keys()
    assert {k for k, v in folded.items() if v is None} == {k for k, v in full.items() if v is None}
    measured = {k: v for k, v in full.items() if v is not None}
    assert any(v > 0.1 for v in measured.values()), "the test cloud has throttled containers"
    for key, ratio in measured.items():
        assert folded[key] == pytest.approx(ratio, abs=THROTTLE_TOLERANCE), key

    def throttled(found: dict[str, WorkloadEvaluation]) -> set[tuple[str, str, str]]:
        return {
            (key, match.rule, match.container)
            for key, evaluation in found.items()
            for match in evaluation.matches
            if "throttled" in match.rule
        }

    assert throttled(compared.folded) == throttled(compared.full)


def test_incremental_recommendations_match_the_full_path(compared: Compared) -> None:
    assert within_tolerance(compared.full, compared.folded) >= 100


def within_tolerance(
    expected: dict[str, WorkloadEvaluation], found: dict[str, WorkloadEvaluation]
) -> int:
    """Every target within the tolerance (asserted); the number of targets compared."""
    checked = 0
    for key, full in expected.items():
        folded = {c.container: c for c in found[key].containers}
        for container in full.containers:
            for resource, wanted in container.resources.items():
                got = folded[container.container].resources[resource]
                floor = 0.001 if resource == "cpu" else 2**20
                close = abs(got.target - wanted.target) <= max(
                    TARGET_TOLERANCE * wanted.target, floor
                )
                # one side kept the request inside the minChange band, the other just not
                kept = wanted.current_request in (got.target, wanted.target)
                near = abs(got.lower - wanted.lower) <= STAT_TOLERANCE * wanted.lower
                assert close or (kept and near), (
                    key,
                    container.container,
                    resource,
                    wanted.target,
                    got.target,
                )
                checked += 1
    return checked


# -- lost, damaged and foreign state (a 2-day window: rebuilding is cheap) ---------------------
@pytest.fixture(scope="module")
def short(prometheus: LocalPrometheus) -> list[NamedPolicy]:
    source = PrometheusSource(PrometheusConfig(url=prometheus.url))
    return policies(source, window="2d", min_history="1d")


def cycle(
    source: IncrementalSource, chosen: list[NamedPolicy], hours: int
) -> dict[str, WorkloadEvaluation]:
    return by_key(evaluate_policies(chosen, source, end=STANDARD.end - timedelta(hours=hours)))


def same_answers(
    expected: dict[str, WorkloadEvaluation], found: dict[str, WorkloadEvaluation]
) -> None:
    assert found.keys() == expected.keys()
    same = [k for k, e in expected.items() if found[k].grade == e.grade]
    assert len(same) >= SAME_GRADE * len(expected)
    within_tolerance(expected, found)


def test_rebuilt_names_every_agency_of_the_cycle_though_collected_in_chunks(
    prometheus: LocalPrometheus, short: list[NamedPolicy], tmp_path: Path
) -> None:
    """The evaluation collects agencies in chunks (one ``collect`` each): what a cycle
    rebuilt is every chunk's, and the next cycle starts afresh."""
    source = incremental(prometheus.url, tmp_path)
    end = STANDARD.end - timedelta(hours=2)
    for chunk in (short[:1], short[1:]):
        evaluate_policies(chunk, source, end=end)
    assert sorted(source.rebuilt) == sorted(p.name for p in short)
    cycle(source, short, hours=1)
    assert source.rebuilt == {}


def test_policies_sharing_namespaces_in_one_batch_each_fold_all_of_their_rows(
    prometheus: LocalPrometheus, short: list[NamedPolicy], tmp_path: Path
) -> None:
    """A batch lets an agency's answer rows go once folded; two policies over the same
    namespaces (in one batch) each still fold all of them: each one's state, read alone
    in the next cycle, answers as a rebuild does."""
    twin = NamedPolicy(f"{short[0].name}-twin", short[0].spec)
    source = incremental(prometheus.url, tmp_path / "shared")
    for hours in (2, 1):  # a rebuild, then a steady cycle, the two policies batched together
        cycle(source, [short[0], twin], hours=hours)
    rebuilt = cycle(incremental(prometheus.url, tmp_path / "alone"), short[:1], hours=0)
    for policy in (short[0], twin):
        same_answers(rebuilt, cycle(source, [policy], hours=0))
        assert source.rebuilt == {}


def test_lost_or_corrupt_state_is_detected_and_rebuilt(
    prometheus: LocalPrometheus, short: list[NamedPolicy], tmp_path: Path
) -> None:
    source = incremental(prometheus.url, tmp_path)
    cycle(source, short, hours=2)
    expected = cycle(source, short, hours=1)
    files = sorted(tmp_path.glob("*.state"))
    assert len(files) == 3
    blob = bytearray(files[0].read_bytes())
    blob[len(blob) // 2] ^= 0x55
    files[0].write_bytes(bytes(blob))
    files[1].unlink()
    restarted = incremental(prometheus.url, tmp_path)  # an operator restart: nothing in memory
    # the same evaluation time again: rebuilt agencies answer as the folded state did
    again = cycle(restarted, short, hours=1)
    reasons = sorted(restarted.rebuilt.values())
    assert len(reasons) == 2 and reasons[0].startswith("corrupt") and reasons[1] == "missing"
    same_answers(expected, again)


def test_state_from_another_version_is_rebuilt_and_said_so(
    prometheus: LocalPrometheus, short: list[NamedPolicy], tmp_path: Path
) -> None:
    """After an upgrade that changed the state's schema: every agency rebuilt once, its
    reason naming the versions (an intact older state is not reported as damage)."""
    source = incremental(prometheus.url, tmp_path)
    expected = cycle(source, short, hours=1)
    for path in tmp_path.glob("*.state"):
        blob = bytearray(path.read_bytes())
        blob[3:5] = (SCHEMA - 1).to_bytes(2, "little")  # as the previous release wrote it
        path.write_bytes(bytes(blob))
    restarted = incremental(prometheus.url, tmp_path)
    again = cycle(restarted, short, hours=1)
    assert set(restarted.rebuilt.values()) == {
        f"written by another version (schema {SCHEMA - 1}, now {SCHEMA})"
    }
    same_answers(expected, again)


def test_state_about_something_else_is_never_used(
    prometheus: LocalPrometheus, short: list[NamedPolicy], tmp_path: Path
) -> None:
    source = incremental(prometheus.url, tmp_path)
    expected = cycle(source, short, hours=1)
    first, second = short[0].name, short[1].name
    # another agency's (valid, intact) state where this agency's belongs
    (tmp_path / f"{safe_name(second)}.state").write_bytes(
        (tmp_path / f"{safe_name(first)}.state").read_bytes()
    )
    restarted = incremental(prometheus.url, tmp_path)
    again = cycle(restarted, short, hours=1)
    assert list(restarted.rebuilt) == [second]
    assert restarted.rebuilt[second].startswith("about something else")
    same_answers(expected, again)


# -- queries per cycle --------------------------------------------------------------------------
def served_per_cycle(workloads_per_agency: int, folder: Path) -> tuple[int, int]:
    """Queries the server answered for a rebuild, then for a steady cycle an hour later."""
    spec = small_cloud(workloads_per_agency)
    chosen = small_cloud_policies()
    with LocalPrometheus(cached_dataset(spec).data_dir) as server:
        source = IncrementalSource(  # a rebuild batches as the full path, a steady cycle not
            PrometheusSource(PrometheusConfig(url=server.url, agencies_per_batch=1)),
            FileStateStore(folder),
            IncrementalConfig(agencies_per_batch=3),
        )
        counts = []
        for end in (spec.end - timedelta(hours=1), spec.end):
            before = server.query_count()
            reports = evaluate_policies(chosen, source, end=end)
            counts.append(server.query_count() - before)
            assert all(report.complete for report in reports)
    return counts[0], counts[1]


@pytest.fixture(scope="module")
def tmp_folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tmp_path_factory.mktemp("small"), tmp_path_factory.mktemp("large")


def test_query_count_per_cycle_does_not_grow_with_workloads(
    tmp_folders: tuple[Path, Path],
) -> None:
    small = served_per_cycle(8, tmp_folders[0])
    large = served_per_cycle(64, tmp_folders[1])
    assert small == large
    # per batch, one query per part: inventory (9 kept, 4 fresh, restarts), live (2),
    # storage, GPU and delta (6) each cycle; when rebuilding, the seeds' parts more: CPU
    # (6 quantiles, max, sum, count), memory (max, sum, count, 2 CFS) and the kept
    # inventory's. A rebuild reads each of the 3 agencies alone (the full path's batch of 1),
    # a steady cycle all 3 at once (the incremental path's batch of 3)
    steady = 14 + 2 + 1 + 1 + 6
    assert small == (3 * (steady + 9 + 5 + 10), 1 * steady)
