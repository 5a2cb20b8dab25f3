"""Operator benchmark: one evaluation cycle of 300 policies over 15,000 workloads, against a
real kube-apiserver + etcd (the e2e control plane) and a real Prometheus holding the
Hainan-scale cloud. Prints wall time, peak memory of the operator's process, API calls and
PromQL queries, for a first cycle (every workload annotated) and a steady one (nothing new to
write). Prints figures; asserts nothing on time.

    python benchmarks/operator_cycle.py                # 300 x 50 (the dataset of scale.py)
    python benchmarks/operator_cycle.py --agencies 20  # smaller
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agencies", type=int, default=300)
    parser.add_argument("--workloads-per-agency", type=int, default=50)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--truth", help=argparse.SUPPRESS)
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
        started = time.monotonic()
        created = load(cp.admin_kubeconfig, truth)
        print(f"control plane up; {created} objects created in {time.monotonic() - started:.1f}s")
        print(
            f"{'cycle':>8} {'wall s':>7} {'peak MiB':>8} {'API calls':>9} {'queries':>7} "
            f"{'workloads':>9} {'annotated':>9} {'events':>6}"
        )
        for name in ("first", "steady"):
            figures = run_child(cp.admin_kubeconfig, prometheus.url, dataset.truth_path)
            print(
                f"{name:>8} {figures['wall']:>7.1f} {figures['peakMiB']:>8.0f} "
                f"{figures['apiCalls']:>9} {figures['queries']:>7} {figures['workloads']:>9} "
                f"{figures['annotated']:>9} {figures['events']:>6}"
            )


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


def run_child(kubeconfig: Path, url: str, truth: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--kubeconfig",
        str(kubeconfig),
        "--url",
        url,
        "--truth",
        str(truth),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def child(args: argparse.Namespace) -> None:
    """One cycle of every policy, as the operator runs it, in a fresh process."""
    from datetime import datetime

    from kubernetes import client, config

    from rightsizer.adapters.files import load_policies
    from rightsizer.adapters.kubernetes import KubernetesCluster
    from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
    from rightsizer.cycle import CycleSettings, run_policy
    from rightsizer.service import NamedPolicy

    truth = json.loads(Path(args.truth).read_text())
    end = datetime.fromisoformat(truth["end"])
    [template] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    config.load_kube_config(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    cluster = KubernetesCluster(api=client.ApiClient())
    source = PrometheusSource(PrometheusConfig(url=args.url))
    started = time.perf_counter()
    workloads = annotated = events = 0
    for agency in truth["agencies"]:
        spec = template.spec.model_copy(
            update={
                "agency": agency["agency"],
                "namespaces": agency["namespaces"],
                "namespace_selector": None,
            }
        )
        policy = NamedPolicy(f"default-{agency['agency']}", spec)
        result = run_policy(
            policy, generation=1, source=source, cluster=cluster, now=end, settings=CycleSettings()
        )
        workloads += result.status.workloads
        annotated += sum(1 for d in result.decisions if d.writes)
        events += result.events
    print(
        json.dumps(
            {
                "wall": time.perf_counter() - started,
                "peakMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "apiCalls": cluster.calls,
                "queries": source.queries,
                "workloads": workloads,
                "annotated": annotated,
                "events": events,
            }
        )
    )


if __name__ == "__main__":
    main()
