"""The synthetic government cloud: seeded agencies, projects and workloads with realistic
usage shapes, written as OpenMetrics (real metric names) for ``promtool tsdb
create-blocks-from openmetrics``, plus a ground-truth JSON.

    cloud = build_cloud(CloudSpec(agencies=2, days=7))
    write_openmetrics(cloud, out / "openmetrics", files=2)
    write_truth(cloud, out / "truth.json")
"""

from rightsizer.simulate.build import build_cloud
from rightsizer.simulate.cli import add_arguments, run
from rightsizer.simulate.openmetrics import write_openmetrics
from rightsizer.simulate.plan import Agency, Container, Pod, SyntheticCloud, Workload
from rightsizer.simulate.series import PodSeries, pod_series
from rightsizer.simulate.shapes import SHAPES, STANDARD_MIX, ShapeInfo
from rightsizer.simulate.spec import DEFAULT_END, SHAPE_NAMES, CloudSpec
from rightsizer.simulate.truth import truth, write_truth

__all__ = [
    "DEFAULT_END",
    "SHAPES",
    "SHAPE_NAMES",
    "STANDARD_MIX",
    "Agency",
    "CloudSpec",
    "Container",
    "Pod",
    "PodSeries",
    "ShapeInfo",
    "SyntheticCloud",
    "Workload",
    "add_arguments",
    "build_cloud",
    "pod_series",
    "run",
    "truth",
    "write_openmetrics",
    "write_truth",
]
