"""The operator as deployed, at scale: ``kopf run -m rightsizer.handlers`` (a timer per
policy, one policy evaluated per tick, four workers) against a real kube-apiserver + etcd and
a real Prometheus, with one EfficiencyPolicy per agency (300 x 50 workloads by default).

The operator runs as the image runs it: with ``rightsizer.process.ALLOCATOR_ENVIRONMENT``
(the e2e tests' ``OperatorProcess`` sets it; ``--env`` adds or overrides settings).

Prints, per cycle (every policy evaluated once more): wall time, evaluations, the operator
process's memory (its largest resident size sampled during the cycle, and its high-water
mark), API calls by verb and resource as the API server's audit log records them for the
operator's own ServiceAccount, and queries as Prometheus counts them. Asserts nothing.

``operator_cycle.py`` measures the same cloud through ``cycle_batch.run_policies`` (every
policy in one call, queries batched across agencies); this is the path the operator runs.

The operator evaluates at the real time, so the data must reach it: the dataset ends two hours
after the next full hour (Prometheus answers what is older than now, as if still scraping), and
is rebuilt when that hour changes. Its history is ``--days`` long (2: a 14-day cloud takes ~25
minutes to build); the policies ask for ``minHistory: 1d`` and are due every minute.

    python benchmarks/operator_kopf.py                    # 300 x 50, 2 cycles
    python benchmarks/operator_kopf.py --state            # incremental, state in ConfigMaps
    python benchmarks/operator_kopf.py --agencies 20 --cycles 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

NAMESPACE = "rightsizer-system"
ACCOUNT = "bench-operator"
USER = f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agencies", type=int, default=300)
    parser.add_argument("--workloads-per-agency", type=int, default=50)
    parser.add_argument("--days", type=float, default=2)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument(
        "--policies", type=int, help="policies for the first N agencies only (default: all)"
    )
    parser.add_argument("--state", action="store_true", help="incremental, state in ConfigMaps")
    parser.add_argument("--tick", type=float, default=5.0, help="RIGHTSIZER_TICK_SECONDS")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the operator (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per cycle")
    args = parser.parse_args()

    from controlplane import ControlPlane
    from e2e_cloud import OperatorProcess

    from operator_cycle import load
    from rightsizer.localprom import LocalPrometheus, cached_dataset
    from rightsizer.simulate import CloudSpec

    now = datetime.now(UTC)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=3)
    spec = CloudSpec(
        agencies=args.agencies,
        workloads_per_agency=args.workloads_per_agency,
        days=args.days,
        single_pod=True,
        pod_level_series=False,
        end=end,
    )
    started = time.monotonic()
    dataset = cached_dataset(spec, files=max(1, args.agencies // 25))
    print(f"dataset ending {end:%Y-%m-%d %H:%M}Z ready in {time.monotonic() - started:.0f}s")
    truth = json.loads(dataset.truth_path.read_text())
    agencies = [a["agency"] for a in truth["agencies"]][: args.policies]
    with (
        tempfile.TemporaryDirectory() as folder,
        ControlPlane.start(Path(folder)) as cp,
        LocalPrometheus(dataset.data_dir) as prometheus,
    ):
        work = Path(folder)
        cp.kubectl("apply", "-f", str(ROOT / "crds"))
        created = load(cp.admin_kubeconfig, truth)
        del truth
        kubeconfig = operator_identity(cp, work)
        cp.kubectl("apply", "-f", "-", stdin=json.dumps(policy_list(agencies)))
        print(f"{created} objects and {len(agencies)} policies created")
        operator = OperatorProcess(
            kubeconfig=kubeconfig,
            prometheus_url=prometheus.url,
            log_path=work / "operator.log",
            extra_env={
                "RIGHTSIZER_TICK_SECONDS": str(args.tick),
                **dict(item.split("=", 1) for item in args.env),
                "RIGHTSIZER_STATE": "configmap" if args.state else "off",
                "RIGHTSIZER_STATE_NAMESPACE": NAMESPACE,
            },
        )
        print(
            f"{'cycle':>6} {'wall s':>7} {'evals':>6} {'RSS MiB':>8} {'HWM MiB':>8} "
            f"{'API calls':>9} {'queries':>8} {'Prom CPU s':>10}"
        )
        with operator:
            assert operator.process is not None
            assert operator.process.popen is not None
            pid = operator.process.popen.pid
            since = datetime.now(UTC)
            for cycle in range(1, args.cycles + 1):
                queries, cpu = prometheus_counters(prometheus.url)
                figures = run_cycle(
                    cp, operator, pid, policies=len(agencies), since=since, timeout=args.timeout
                )
                after_queries, after_cpu = prometheus_counters(prometheus.url)
                calls = api_calls(cp, since, figures["until"])
                print(
                    f"{cycle:>6} {figures['wall']:>7.1f} {figures['evaluations']:>6} "
                    f"{figures['rss']:>8.0f} {figures['hwm']:>8.0f} {sum(calls.values()):>9} "
                    f"{after_queries - queries:>8.0f} {after_cpu - cpu:>10.1f}",
                    flush=True,
                )
                print("  API calls: " + ", ".join(f"{k} {v}" for k, v in sorted(calls.items())))
                since = figures["until"]


def operator_identity(cp: Any, work: Path) -> Path:
    """A ServiceAccount of its own (cluster-admin), so that the audit log tells its calls."""
    cp.kubectl("create", "namespace", NAMESPACE)
    cp.kubectl("create", "serviceaccount", ACCOUNT, "-n", NAMESPACE)
    cp.kubectl(
        "create",
        "clusterrolebinding",
        ACCOUNT,
        "--clusterrole=cluster-admin",
        f"--serviceaccount={NAMESPACE}:{ACCOUNT}",
    )
    token = cp.kubectl(
        "create", "token", ACCOUNT, "-n", NAMESPACE, "--duration", "12h"
    ).stdout.strip()
    return cp.token_kubeconfig(work / "operator.kubeconfig", token)  # type: ignore[no-any-return]


def policy_list(agencies: list[str]) -> dict[str, Any]:
    """One policy per agency (the e2e tests' policy object): the shipped defaults but for
    history and schedule."""
    from e2e_cloud import policy

    items = [
        policy(f"default-{agency}", agency, minHistory="1d", schedule="* * * * *")
        for agency in agencies
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def run_cycle(
    cp: Any, operator: Any, pid: int, *, policies: int, since: datetime, timeout: float
) -> dict[str, Any]:
    """Until every policy has an evaluation recorded after ``since``: the wall time, the
    largest resident size seen and the high-water mark (MiB)."""
    from e2e_cloud import POLICIES

    started, rss = time.monotonic(), 0.0
    after = since.strftime("%Y-%m-%dT%H:%M:%S")
    while True:
        operator.process.check_alive()
        memory = process_memory(pid)
        rss = max(rss, memory["VmRSS"])
        items = cp.get(POLICIES)["items"]
        done = sum(1 for p in items if (p.get("status") or {}).get("lastEvaluation", "") > after)
        if done >= policies:
            break
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{done} of {policies} policies evaluated in {timeout:.0f}s")
        time.sleep(2.0)
    until = datetime.now(UTC)
    return {
        "wall": time.monotonic() - started,
        "evaluations": evaluations(operator, since, until),
        "rss": rss,
        "hwm": process_memory(pid)["VmHWM"],
        "until": until,
    }


def process_memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid``, in MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = float(value.split()[0]) / 1024
    return found


def evaluations(operator: Any, since: datetime, until: datetime) -> int:
    """The operator's own "evaluation_done" log lines in [since, until)."""
    first, last = since.isoformat(), until.isoformat()
    return sum(
        1
        for record in operator.logs()
        if record.get("event") == "evaluation_done"
        and first <= str(record.get("timestamp", "")) < last
    )


def api_calls(cp: Any, since: datetime, until: datetime) -> Counter[str]:
    """The operator's requests in [since, until), by verb and resource (audit log)."""
    first = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    last = until.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    calls: Counter[str] = Counter()
    for event in cp.audit(USER):
        if first <= event["requestReceivedTimestamp"] < last:
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "?")
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            calls[f"{event['verb']} {resource}"] += 1
    return calls


def prometheus_counters(url: str) -> tuple[float, float]:
    """Queries answered so far (instant and range) and the server's CPU seconds."""
    from common import server_metrics

    found = server_metrics(url, ("prometheus_http_requests_total", "process_cpu_seconds_total"))
    queries = sum(
        value
        for labels, value in found["prometheus_http_requests_total"]
        if 'handler="/api/v1/query' in labels
    )
    return queries, sum(value for _, value in found["process_cpu_seconds_total"])


if __name__ == "__main__":
    main()
