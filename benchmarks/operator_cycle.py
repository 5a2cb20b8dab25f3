"""Operator benchmark: one evaluation cycle of 300 policies over 15,000 workloads, against a
real kube-apiserver + etcd (the e2e control plane) and a real Prometheus holding the
Hainan-scale cloud. Prints wall time, peak memory of the operator's process, API calls and
PromQL queries, for a first cycle (every workload annotated) and a steady one (nothing new to
write). Prints figures; asserts nothing on time.

    python benchmarks/operator_cycle.py                # 300 x 50 (the dataset of scale.py)
    python benchmarks/operator_cycle.py --agencies 20  # smaller
    python benchmarks/operator_cycle.py --baseline     # per-policy lists and queries, no budget
    python benchmarks/operator_cycle.py --state        # incremental, state in ConfigMaps

Each cycle runs in a fresh process (the cluster-wide listing is read once per cycle); API
calls are counted by verb and resource as the client sends them. With ``--state`` the usage
comes through the incremental source with its state in sharded ConfigMaps, as the operator
runs with ``state: configmap``: the first cycle an hour before the data's end (the state
rebuilt), the next ones at the end (folded from the ConfigMaps, nothing in memory).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
STATE_NAMESPACE = "rightsizer-system"
sys.path.insert(0, str(ROOT / "tests" / "e2e"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agencies", type=int, default=300)
    parser.add_argument("--workloads-per-agency", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=3, help="cycles after the first is 2nd")
    parser.add_argument(
        "--baseline", action="store_true", help="plain KubernetesCluster, one policy at a time"
    )
    parser.add_argument("--cache-seconds", type=float, default=60.0)
    parser.add_argument("--events-per-minute", type=float, default=120.0)
    parser.add_argument("--state", action="store_true", help="incremental, state in ConfigMaps")
    parser.add_argument(
        "--agencies-per-batch", type=int, help="with --state (default: IncrementalConfig's)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hours-before", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--agencies-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from controlplane import ControlPlane

    from rightsizer.localprom import LocalPrometheus, cached_dataset
    from rightsizer.simulate import CloudSpec

    spec = CloudSpec(
        agencies=args.agencies,
        workloads_per_agency=args.workloads_per_agency,
        single_pod=True,
        pod_level_series=False,
    )
    dataset = cached_dataset(spec, files=max(1, args.agencies // 25))
    truth = json.loads(dataset.truth_path.read_text())
    with (
        tempfile.TemporaryDirectory() as work,
        ControlPlane.start(Path(work)) as cp,
        LocalPrometheus(dataset.data_dir) as prometheus,
    ):
        cp.kubectl("apply", "-f", str(ROOT / "crds"))
        if args.state:
            cp.kubectl("create", "namespace", STATE_NAMESPACE)
        started = time.monotonic()
        created = load(cp.admin_kubeconfig, truth)
        # the child (the operator) reads its policies' agencies, not the dataset's truth (its
        # 15,000 workloads decoded take ~40 MiB that no operator holds)
        agencies = Path(work) / "agencies.json"
        agencies.write_text(
            json.dumps(
                {
                    "end": truth["end"],
                    "agencies": [
                        {"agency": a["agency"], "namespaces": a["namespaces"]}
                        for a in truth["agencies"]
                    ],
                }
            )
        )
        del truth
        print(f"control plane up; {created} objects created in {time.monotonic() - started:.1f}s")
        print(
            f"{'cycle':>8} {'wall s':>7} {'peak MiB':>8} {'API calls':>9} {'queries':>7} "
            f"{'workloads':>9} {'annotated':>9} {'events':>6}"
        )
        breakdowns = []
        for cycle in range(1, args.cycles + 1):
            name = {1: "first", 2: "second"}.get(cycle, f"#{cycle}")
            before = 1 if args.state and cycle == 1 else 0
            figures = run_child(
                cp.admin_kubeconfig, prometheus.url, agencies, args, hours_before=before
            )
            print(
                f"{name:>8} {figures['wall']:>7.1f} {figures['peakMiB']:>8.0f} "
                f"{figures['apiCalls']:>9} {figures['queries']:>7} {figures['workloads']:>9} "
                f"{figures['annotated']:>9} {figures['events']:>6}",
                flush=True,
            )
            breakdowns.append((name, figures["byVerb"]))
        print("API calls by verb and resource:")
        for name, counts in breakdowns:
            print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def load(kubeconfig: Path, truth: dict[str, Any]) -> int:
    """Namespaces (labelled by agency) and one paused Deployment per workload."""
    from kubernetes import client, config

    from rightsizer.core.units import format_quantity

    config.load_kube_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    api = client.ApiClient()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    for agency in truth["agencies"]:
        for namespace in agency["namespaces"]:
            core.create_namespace(
                {
                    "metadata": {
                        "name": namespace,
                        "labels": {"rightsizer.io/agency": agency["agency"]},
                    }
                }
            )

    def deployment(workload: dict[str, Any]) -> None:
        containers = [
            {
                "name": c["name"],
                "image": "registry.local/app:1",
                "resources": {
                    part: {
                        r: format_quantity(r, v)
                        for r, v in c[part].items()
                        if r in ("cpu", "memory")
                    }
                    for part in ("requests", "limits")
                    if c.get(part)
                },
            }
            for c in workload["containers"]
        ]
        labels = {"app": workload["name"]}
        apps.create_namespaced_deployment(
            workload["namespace"],
            {
                "metadata": {
                    "name": workload["name"],
                    "labels": {"app.kubernetes.io/part-of": workload["project"]},
                },
                "spec": {
                    "replicas": workload["replicas"],
                    "paused": True,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": containers},
                    },
                },
            },
        )

    deployments = [w for w in truth["workloads"] if w["kind"] == "Deployment"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(deployment, deployments))
    return len(deployments) + sum(len(a["namespaces"]) for a in truth["agencies"])


def run_child(
    kubeconfig: Path, url: str, agencies: Path, args: argparse.Namespace, *, hours_before: int
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--kubeconfig",
        str(kubeconfig),
        "--url",
        url,
        "--agencies-file",
        str(agencies),
        "--cache-seconds",
        str(args.cache_seconds),
        "--events-per-minute",
        str(args.events_per_minute),
        *(["--baseline"] if args.baseline else []),
        *(["--state"] if args.state else []),
        *(
            ["--agencies-per-batch", str(args.agencies_per_batch)]
            if args.agencies_per_batch
            else []
        ),
        "--hours-before",
        str(hours_before),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def child(args: argparse.Namespace) -> None:
    """One cycle of every policy, as the operator runs it, in a fresh process."""
    from datetime import datetime, timedelta

    from rightsizer.process import tune_garbage_collector

    tune_garbage_collector()  # as the operator does at startup

    from kubernetes import client, config

    from rightsizer.adapters.files import load_policies
    from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
    from rightsizer.service import NamedPolicy

    agencies = json.loads(Path(args.agencies_file).read_text())
    end = datetime.fromisoformat(agencies["end"]) - timedelta(hours=args.hours_before)
    [template] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    config.load_kube_config(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    api = client.ApiClient()
    by_verb = count_requests(api)
    prometheus = PrometheusSource(PrometheusConfig(url=args.url))
    source: Any = prometheus
    if args.state:
        from rightsizer.adapters.incremental import IncrementalConfig, IncrementalSource
        from rightsizer.adapters.statestore import ConfigMapStateStore

        store = ConfigMapStateStore(api=api, namespace=STATE_NAMESPACE)
        batch = args.agencies_per_batch or IncrementalConfig.agencies_per_batch
        source = IncrementalSource(prometheus, store, IncrementalConfig(agencies_per_batch=batch))
    policies = []
    for agency in agencies["agencies"]:
        spec = template.spec.model_copy(
            update={
                "agency": agency["agency"],
                "namespaces": agency["namespaces"],
                "namespace_selector": None,
            }
        )
        policies.append((NamedPolicy(f"default-{agency['agency']}", spec), 1))
    started = time.perf_counter()
    cluster, results = run_cycle(args, api, policies, source=source, end=end)
    print(
        json.dumps(
            {
                "wall": time.perf_counter() - started,
                "peakMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "apiCalls": cluster.calls,
                "byVerb": by_verb,
                "queries": prometheus.queries,
                "workloads": sum(r.status.workloads for r in results),
                "annotated": sum(1 for r in results for d in r.decisions if d.writes),
                "events": sum(r.events for r in results),
            }
        )
    )


def run_cycle(
    args: argparse.Namespace, api: Any, policies: list[Any], *, source: Any, end: Any
) -> tuple[Any, list[Any]]:
    """Baseline: a plain cluster, one policy after another. Otherwise: the shared listing,
    the operator-wide event budget, and the policies' queries batched."""
    from rightsizer.cycle import CycleSettings, run_policy

    if args.baseline:
        from rightsizer.adapters.kubernetes import KubernetesCluster

        cluster = KubernetesCluster(api=api)
        results = [
            run_policy(
                policy,
                generation=generation,
                source=source,
                cluster=cluster,
                now=end,
                settings=CycleSettings(),
            )
            for policy, generation in policies
        ]
        return cluster, results
    from rightsizer.adapters.cache import CachedCluster
    from rightsizer.adapters.eventbudget import EventBudget
    from rightsizer.cycle_batch import run_policies

    cached = CachedCluster(api=api, cache_seconds=args.cache_seconds)
    settings = CycleSettings(event_budget=EventBudget(args.events_per_minute))
    return cached, run_policies(policies, source=source, cluster=cached, now=end, settings=settings)


def count_requests(api: Any) -> dict[str, int]:
    """Count every request the client sends, as "verb resource" (list, get, patch, create)."""
    counts: dict[str, int] = {}
    send = api.rest_client.request

    def counted(method: str, url: str, *rest: Any, **options: Any) -> Any:
        path = urlsplit(url).path.strip("/").split("/")
        path = path[2:] if path[0] == "api" else path[3:]  # api/v1/... or apis/group/v1/...
        if len(path) > 2 and path[0] == "namespaces":
            path = path[2:]
        verb = {"GET": "get" if len(path) > 1 else "list", "PATCH": "patch", "POST": "create"}
        name = f"{verb.get(method, method.lower())} {path[0] if path else '?'}"
        counts[name] = counts.get(name, 0) + 1
        return send(method, url, *rest, **options)

    api.rest_client.request = counted
    return counts


if __name__ == "__main__":
    main()
