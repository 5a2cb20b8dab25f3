"""`rightsizer revert KIND/NAMESPACE/NAME...`: restore the resources recorded before
rightsizer's last change, in one conditional patch, and opt the workload out."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime

from rightsizer.adapters.kubernetes import ClusterError, KubernetesCluster
from rightsizer.core.model import WORKLOAD_KINDS, WorkloadRef
from rightsizer.revert import restore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "workloads",
        nargs="+",
        metavar="KIND/NAMESPACE/NAME",
        help="e.g. Deployment/fin-prod/ledger",
    )
    parser.add_argument("--kubeconfig", help="default: in-cluster, then $KUBECONFIG")
    parser.add_argument("--context")
    parser.add_argument(
        "--keep-managed", action="store_true", help="do not opt the workload out after reverting"
    )
    parser.set_defaults(run=run)


def parse_ref(text: str) -> WorkloadRef:
    kind, _, rest = text.partition("/")
    namespace, _, name = rest.partition("/")
    matched = next((k for k in WORKLOAD_KINDS if k.lower() == kind.lower()), None)
    if matched is None or not namespace or not name:
        raise SystemExit(
            f"rightsizer revert: {text!r}: expected KIND/NAMESPACE/NAME with KIND "
            f"one of {', '.join(WORKLOAD_KINDS)}"
        )
    return WorkloadRef(kind=matched, namespace=namespace, name=name)


def run(args: argparse.Namespace) -> int:
    from kubernetes import client, config

    refs = [parse_ref(text) for text in args.workloads]
    if args.kubeconfig or args.context:
        config.load_kube_config(config_file=args.kubeconfig, context=args.context)  # type: ignore[no-untyped-call]
    else:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
            config.load_kube_config(config_file=path)  # type: ignore[no-untyped-call]
    cluster = KubernetesCluster(api=client.ApiClient())
    failed = 0
    for ref in refs:
        try:
            message = restore(
                cluster,
                cluster.read(ref),
                now=datetime.now(UTC),
                reason="rightsizer revert",
                keep_managed=args.keep_managed,
            )
        except ClusterError as error:
            print(f"{ref}: not reverted: {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"{ref}: {message}")
    return 1 if failed else 0
