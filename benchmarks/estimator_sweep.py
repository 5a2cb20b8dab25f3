"""Estimator sweep: which CPU percentile, margins and confidence meet a risk budget?

Fetches the backtest cloud's history once (1,000 single-pod workloads, 90 days, the same
cached dataset as benchmarks/backtest.py; the history is pickled next to it), then replays
every estimator variant from it offline in 7-day steps: the statistics come from the same
10-minute samples the PromQL reads, the estimator stack is the product's own
(``build_estimator``), the oracle is the replay window's CPU p99 and memory peak. Prints, per
variant, the share of the oracle's savings, the share of CPU samples above the request and
the workloads with a memory sample above it, best first, and the best variant within the
budget. Rules and safety gates are not applied: that is what ``rightsizer backtest`` adds.

    python benchmarks/estimator_sweep.py --cpu-budget 0.01 --memory-budget 0.02
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STATS = ("p95", "p98", "p99")
CPU_HEADROOMS = (0.0, 0.05, 0.1, 0.15)
CONFIDENCES = (0.0, 0.5, 1.0)
MEMORY_HEADROOMS = (0.05, 0.1, 0.2)


@dataclass(frozen=True)
class Step:
    cpu: Any  # ResourceStats of the training window
    memory: Any
    replay_cpu: np.ndarray
    replay_memory: np.ndarray
    seconds: float


@dataclass(frozen=True)
class Container:
    key: str
    cpu_request: float | None
    memory_request: float | None
    replicas: float
    steps: list[Step | None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu-budget", type=float, default=0.01)
    parser.add_argument("--memory-budget", type=float, default=0.02)
    args = parser.parse_args()
    containers = load_containers()
    results = [replay(containers, **variant) for variant in variants()]
    results.sort(key=lambda r: -r["ofOracle"])
    for row in results:
        print(json.dumps(row))
    workloads = len({c.key for c in containers})
    within = [
        r
        for r in results
        if r["cpuOver"] <= args.cpu_budget
        and r["memoryOverWorkloads"] <= args.memory_budget * workloads
    ]
    print("best within budget:", json.dumps(within[0]) if within else "none")


def variants() -> list[dict[str, Any]]:
    return [
        {"stat": q, "cpu_headroom": c, "confidence": k, "memory_headroom": m}
        for q, c, k, m in itertools.product(STATS, CPU_HEADROOMS, CONFIDENCES, MEMORY_HEADROOMS)
    ]


def load_containers() -> list[Container]:
    from common import single_pod_cloud

    dataset = single_pod_cloud(20, 50, 104, files=4)
    cache = dataset.root / "sweep-history.pickle"
    if not cache.exists():
        cache.write_bytes(pickle.dumps(fetch(dataset)))
    end, histories, workloads = pickle.loads(cache.read_bytes())
    return containers_of(end, histories, workloads)


def fetch(dataset: Any) -> tuple[datetime, dict[str, Any], dict[str, Any]]:
    from rightsizer.adapters.files import load_policies
    from rightsizer.adapters.history import fetch_history
    from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
    from rightsizer.localprom import LocalPrometheus
    from rightsizer.service import (
        NamedPolicy,
        collection_request,
        expand_by_label,
        resolve_namespaces,
    )

    end = dataset.spec.end
    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    with LocalPrometheus(dataset.data_dir) as server:
        source = PrometheusSource(PrometheusConfig(url=server.url))
        policies = expand_by_label(
            [NamedPolicy(policy.name, policy.spec)], source, label="rightsizer.io/agency", end=end
        )
        namespaces = resolve_namespaces(policies, source, end=end)
        requests = [collection_request(p, n) for p, n in zip(policies, namespaces, strict=True)]
        workloads = {
            o.workload.ref.key: o.workload
            for collected in source.collect(requests, end=end)
            if not isinstance(collected, Exception)
            for o in collected.observations
        }
        histories = {
            p.name: fetch_history(source, n, start=end - timedelta(days=104), end=end)
            for p, n in zip(policies, namespaces, strict=True)
        }
    return end, histories, workloads


def containers_of(
    end: datetime, histories: dict[str, Any], workloads: dict[str, Any]
) -> list[Container]:
    moments = [end - timedelta(days=90) + timedelta(days=7 * i) for i in range(13)]
    found = []
    for history in histories.values():
        for (ref, name), pods in history.containers.items():
            workload = workloads.get(ref.key)
            container = (
                next((c for c in workload.containers if c.name == name), None) if workload else None
            )
            if container is None or not container.in_template:
                continue
            steps = [
                step_of(history.grid, pods, moment, min(moment + timedelta(days=7), end))
                for moment in moments
            ]
            found.append(
                Container(
                    ref.key,
                    container.requests.get("cpu"),
                    container.requests.get("memory"),
                    workload.replicas,
                    steps,
                )
            )
    return found


def step_of(grid: Any, pods: list[Any], moment: datetime, replay_end: datetime) -> Step | None:
    from rightsizer.backtest.references import daily_peaks
    from rightsizer.core.model import ResourceStats

    first, now, last = (
        grid.index(moment - timedelta(days=14)),
        grid.index(moment) + 1,
        grid.index(replay_end) + 1,
    )
    cpu = np.concatenate([p.window(first, now)[0] for p in pods]).astype(np.float64)
    memory = np.concatenate([p.window(first, now)[1] for p in pods]).astype(np.float64)
    times = np.concatenate(
        [
            grid.start
            + (max(first, p.offset) + np.arange(p.window(first, now)[1].size)) * grid.step
            for p in pods
        ]
    )
    keep_cpu, keep_memory = ~np.isnan(cpu), ~np.isnan(memory)
    if keep_cpu.sum() < 10 or keep_memory.sum() < 10:
        return None
    cpu, memory, times = cpu[keep_cpu], memory[keep_memory], times[keep_memory]
    days = float(times.max() - times.min()) / 86400
    values = {"avg": float(cpu.mean()), "max": float(cpu.max())}
    values.update({q: float(np.percentile(cpu, int(q[1:]))) for q in STATS})
    replay_cpu = np.concatenate([p.window(now, last)[0] for p in pods]).astype(np.float64)
    replay_memory = np.concatenate([p.window(now, last)[1] for p in pods]).astype(np.float64)
    return Step(
        cpu=ResourceStats(values=values, samples=cpu.size, history_days=days),
        memory=ResourceStats(
            values={"max": float(memory.max()), "avg": float(memory.mean())},
            samples=memory.size,
            history_days=days,
            daily_peaks=tuple(float(v) for v in daily_peaks(times, memory)[1]),
        ),
        replay_cpu=replay_cpu[~np.isnan(replay_cpu)],
        replay_memory=replay_memory[~np.isnan(replay_memory)],
        seconds=(replay_end - moment).total_seconds(),
    )


def replay(containers: list[Container], **variant: Any) -> dict[str, Any]:
    from rightsizer.adapters.files import load_policies
    from rightsizer.backtest.references import oracle
    from rightsizer.core.estimators import EstimationFacts, build_estimator

    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    base = policy.spec.recommendation
    recommendation = base.model_copy(
        update={
            "cpu": base.cpu.model_copy(
                update={"stat": variant["stat"], "headroom": variant["cpu_headroom"]}
            ),
            "memory": base.memory.model_copy(update={"headroom": variant["memory_headroom"]}),
            "confidence": variant["confidence"],
        }
    )
    cpu_estimator, memory_estimator = (
        build_estimator(recommendation, "cpu"),
        build_estimator(recommendation, "memory"),
    )
    prices = policy.spec.prices
    cpu_price, memory_price = float(prices.cpu_core_month), float(prices.memory_gib_month) / 2**30
    over = samples = 0
    memory_over: set[str] = set()
    saved = oracle_saved = 0.0
    for container in containers:
        for step in container.steps:
            if step is None:
                continue
            cpu = cpu_estimator.estimate(EstimationFacts(resource="cpu", stats=step.cpu))
            memory = memory_estimator.estimate(
                EstimationFacts(resource="memory", stats=step.memory)
            )
            best_cpu, best_memory = oracle(step.replay_cpu, step.replay_memory)
            weight = container.replicas * step.seconds
            if cpu and best_cpu is not None and container.cpu_request:
                samples += step.replay_cpu.size
                over += int((step.replay_cpu > cpu.value).sum())
                saved += (container.cpu_request - cpu.value) * cpu_price * weight
                oracle_saved += (container.cpu_request - best_cpu) * cpu_price * weight
            if memory and best_memory is not None and container.memory_request:
                if (step.replay_memory > memory.value).any():
                    memory_over.add(container.key)
                saved += (container.memory_request - memory.value) * memory_price * weight
                oracle_saved += (container.memory_request - best_memory) * memory_price * weight
    return {
        **variant,
        "ofOracle": round(saved / oracle_saved, 4),
        "cpuOver": round(over / samples, 5),
        "memoryOverWorkloads": len(memory_over),
    }


if __name__ == "__main__":
    main()
