"""API objects for a synthetic cloud's ground truth (truth.json), and the resources kmock serves.

The workloads are what the generator put in Prometheus: same kinds, names, containers and
requests/limits (as Kubernetes quantity strings), so the operator joins them with the usage.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import kmock

from rightsizer.core.units import format_quantity

GROUP = "rightsizer.io"
POLICIES = "rightsizer.io/v1alpha1/efficiencypolicies"
REPORTS = "rightsizer.io/v1alpha1/efficiencyreports"
NAMESPACES = "v1/namespaces"
EVENTS = "v1/events"
HPAS = "autoscaling/v2/horizontalpodautoscalers"
NODES = "v1/nodes"
LIMIT_RANGES = "v1/limitranges"
PDBS = "policy/v1/poddisruptionbudgets"
PODS = "v1/pods"
VPAS = "autoscaling.k8s.io/v1/verticalpodautoscalers"  # not served unless a test declares it
AGENCY_LABEL = "rightsizer.io/agency"
PROJECT_LABEL = "app.kubernetes.io/part-of"
EXCLUDE = "rightsizer.io/exclude"
WORKLOAD_RESOURCES = {
    "Deployment": "apps/v1/deployments",
    "StatefulSet": "apps/v1/statefulsets",
    "DaemonSet": "apps/v1/daemonsets",
    "CronJob": "batch/v1/cronjobs",
    "Job": "batch/v1/jobs",
}
_VERBS = {"get", "list", "watch", "create", "patch", "update", "delete"}
_RESOURCES: dict[str, tuple[str, bool, set[str]]] = {  # resource -> (kind, namespaced, subs)
    POLICIES: ("EfficiencyPolicy", False, {"status"}),
    REPORTS: ("EfficiencyReport", False, set()),
    NAMESPACES: ("Namespace", False, set()),
    EVENTS: ("Event", True, set()),
    HPAS: ("HorizontalPodAutoscaler", True, {"status"}),
    NODES: ("Node", False, {"status"}),
    LIMIT_RANGES: ("LimitRange", True, set()),
    PDBS: ("PodDisruptionBudget", True, {"status"}),
    PODS: ("Pod", True, {"status", "resize"}),
    **{resource: (kind, True, {"status"}) for kind, resource in WORKLOAD_RESOURCES.items()},
}


def declare_resources(server: kmock.KubernetesEmulator) -> None:
    """Discovery for everything the operator and kopf talk to."""
    for resource, (kind, namespaced, subresources) in _RESOURCES.items():
        server.resources[resource] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, verbs=_VERBS, subresources=subresources
        )


def key(workload: Mapping[str, Any]) -> str:
    """The core's workload key: Kind/namespace/name."""
    return f"{workload['kind']}/{workload['namespace']}/{workload['name']}"


def object_key(workload: Mapping[str, Any]) -> tuple[str, str, str]:
    """The workload's address in ``kmock.objects``."""
    return WORKLOAD_RESOURCES[workload["kind"]], workload["namespace"], workload["name"]


def _quantities(values: Mapping[str, float]) -> dict[str, str]:
    return {
        name: format_quantity("gpu" if name == "nvidia.com/gpu" else name, amount)
        for name, amount in values.items()
    }


def container(spec: Mapping[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if spec["requests"]:
        resources["requests"] = _quantities(spec["requests"])
    if spec["limits"]:
        resources["limits"] = _quantities(spec["limits"])
    return {
        "name": spec["name"],
        "image": f"registry.gov.example/{spec['name']}:1.0",
        "resources": resources,
    }


def workload_object(
    workload: Mapping[str, Any],
    *,
    uid: str,
    excluded: bool = False,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Deployment / StatefulSet / DaemonSet / CronJob as kubectl would show it."""
    kind, name = workload["kind"], workload["name"]
    labels = {"app.kubernetes.io/name": name, PROJECT_LABEL: workload["project"]}
    if excluded:
        labels[EXCLUDE] = "true"
    pod_spec: dict[str, Any] = {"containers": [container(c) for c in workload["containers"]]}
    template = {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": pod_spec}
    spec: dict[str, Any]
    status: dict[str, Any] = {}
    if kind == "CronJob":
        pod_spec["restartPolicy"] = "OnFailure"
        spec = {"schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": template}}}
    else:
        spec = {"selector": {"matchLabels": {"app.kubernetes.io/name": name}}, "template": template}
        if kind == "DaemonSet":
            status = {"desiredNumberScheduled": workload["replicas"]}
        else:
            spec["replicas"] = workload["replicas"]
        if kind == "StatefulSet":
            spec["serviceName"] = name
            if workload.get("storageBytes"):
                spec["volumeClaimTemplates"] = [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {
                                "requests": {
                                    "storage": format_quantity("storage", workload["storageBytes"])
                                }
                            },
                        },
                    }
                ]
    group_version = WORKLOAD_RESOURCES[kind].rsplit("/", 1)[0]
    body: dict[str, Any] = {
        "apiVersion": group_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": workload["namespace"],
            "uid": uid,
            "generation": 1,
            "resourceVersion": "1",
            "labels": labels,
        },
        "spec": spec,
    }
    if annotations:
        body["metadata"]["annotations"] = dict(annotations)
    if status:
        body["status"] = status
    return body


def hpa_object(workload: Mapping[str, Any]) -> dict[str, Any]:
    group_version = WORKLOAD_RESOURCES[workload["kind"]].rsplit("/", 1)[0]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": workload["name"],
            "namespace": workload["namespace"],
            "uid": f"hpa-{workload['name']}",
            "resourceVersion": "1",
        },
        "spec": {
            "scaleTargetRef": {
                "apiVersion": group_version,
                "kind": workload["kind"],
                "name": workload["name"],
            },
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def namespace_object(name: str, agency: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": f"ns-{name}",
            "resourceVersion": "1",
            "labels": {AGENCY_LABEL: agency, "kubernetes.io/metadata.name": name},
        },
    }


def cloud_objects(
    truth: Mapping[str, Any],
    *,
    excluded: Collection[str] = (),
    annotations: Mapping[str, str] | None = None,
) -> Iterator[tuple[tuple[str, str | None, str], dict[str, Any]]]:
    """(kmock key, object) for every namespace, workload and HPA of the truth.
    ``excluded``: workload keys that carry the opt-out label; ``annotations``: every
    workload's (as others' tools leave them)."""
    for agency in truth["agencies"]:
        for namespace in agency["namespaces"]:
            yield (NAMESPACES, None, namespace), namespace_object(namespace, agency["agency"])
    for index, workload in enumerate(truth["workloads"]):
        body = workload_object(
            workload,
            uid=f"uid-{index:04d}",
            excluded=key(workload) in excluded,
            annotations=annotations,
        )
        yield object_key(workload), body
        if workload["hpa"]:
            yield (HPAS, workload["namespace"], workload["name"]), hpa_object(workload)


def load_cloud(
    server: kmock.KubernetesEmulator,
    truth: Mapping[str, Any],
    *,
    excluded: Collection[str] = (),
    annotations: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Store the truth's objects in the emulator; return the workloads as created, by key."""
    created: dict[str, dict[str, Any]] = {}
    for address, body in cloud_objects(truth, excluded=excluded, annotations=annotations):
        server.objects[address] = copy.deepcopy(body)
        if address[0] in WORKLOAD_RESOURCES.values():
            created[f"{body['kind']}/{address[1]}/{address[2]}"] = body
    return created


def policy_object(name: str, agency: str, **spec: Any) -> dict[str, Any]:
    """An EfficiencyPolicy selecting the agency's namespaces by label; ``spec`` overrides."""
    return {
        "apiVersion": "rightsizer.io/v1alpha1",
        "kind": "EfficiencyPolicy",
        "metadata": {"name": name},
        "spec": {
            "agency": agency,
            "namespaceSelector": {"matchLabels": {AGENCY_LABEL: agency}},
            "projectLabel": PROJECT_LABEL,
            **spec,
        },
    }


def pod_template(body: Mapping[str, Any]) -> dict[str, Any]:
    spec = body["spec"]
    if body["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def containers(body: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Container name -> its resources, from an object's pod template."""
    return {c["name"]: dict(c.get("resources") or {}) for c in pod_template(body)["containers"]}
