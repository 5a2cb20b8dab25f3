"""`rightsizer simulate`: write a synthetic cloud as OpenMetrics files and its ground truth."""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

from rightsizer.simulate.build import build_cloud
from rightsizer.simulate.openmetrics import write_openmetrics
from rightsizer.simulate.spec import DEFAULT_END, SHAPE_NAMES, CloudSpec
from rightsizer.simulate.truth import write_truth

_DURATION = re.compile(r"^(\d+)(s|m|h|d)?$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval(text: str) -> int:
    """'5m' -> 300, '30s' -> 30, '300' -> 300."""
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an interval (e.g. 5m, 30s, 1h)")
    return int(match.group(1)) * _SECONDS[match.group(2) or "s"]


def end_time(text: str) -> datetime:
    """ISO 8601 with a zone ('Z' allowed)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from error
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z or +08:00)")
    return value


def shape_list(text: str) -> tuple[str, ...]:
    shapes = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in shapes if s not in SHAPE_NAMES]
    if not shapes or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown shapes {unknown or text!r}; known: {','.join(SHAPE_NAMES)}"
        )
    return shapes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CloudSpec()
    add = parser.add_argument
    add("--agencies", type=int, default=defaults.agencies)
    add("--workloads-per-agency", type=int, default=defaults.workloads_per_agency)
    add("--days", type=float, default=defaults.days)
    add(
        "--interval",
        type=interval,
        default=defaults.interval_seconds,
        help="cAdvisor sample interval, e.g. 5m (default 5m)",
    )
    add(
        "--ksm-interval",
        type=interval,
        default=defaults.ksm_interval_seconds,
        help="kube-state-metrics and kubelet interval (default 30m)",
    )
    add("--seed", type=int, default=defaults.seed)
    add(
        "--end",
        type=end_time,
        default=DEFAULT_END,
        help="time of the last sample, ISO 8601 (default 2026-11-16T00:00:00Z)",
    )
    add("--out", type=Path, required=True, help="writes OUT/openmetrics/*.om and OUT/truth.json")
    add("--files", type=int, default=1, help="split the agencies over this many files")
    add("--jobs", type=int, default=1, help="write this many files in parallel")
    add(
        "--no-pod-level-series",
        dest="pod_level_series",
        action="store_false",
        help='omit cAdvisor\'s container="" and container="POD" series',
    )
    add(
        "--single-pod",
        action="store_true",
        help="benchmark mode: every workload a single-pod, single-container Deployment",
    )
    add("--shapes", type=shape_list, default=None, help="restrict to these shapes: a,b")


def spec_from(args: argparse.Namespace) -> CloudSpec:
    return CloudSpec(
        agencies=args.agencies,
        workloads_per_agency=args.workloads_per_agency,
        days=args.days,
        interval_seconds=args.interval,
        ksm_interval_seconds=args.ksm_interval,
        seed=args.seed,
        end=args.end,
        pod_level_series=args.pod_level_series,
        shapes=args.shapes,
        single_pod=args.single_pod,
    )


def run(args: argparse.Namespace) -> int:
    """Write OUT/openmetrics/*.om and OUT/truth.json; 0 on success, 2 on a bad spec."""
    try:
        spec = spec_from(args)
    except ValueError as error:
        print(f"rightsizer simulate: {error}")
        return 2
    cloud = build_cloud(spec)
    out: Path = args.out
    paths = write_openmetrics(cloud, out / "openmetrics", files=args.files, jobs=args.jobs)
    write_truth(cloud, out / "truth.json")
    size = sum(path.stat().st_size for path in paths)
    print(
        f"wrote {len(cloud.workloads)} workloads of {len(cloud.agencies)} agencies: "
        f"{len(paths)} OpenMetrics files ({size / 1e6:.1f} MB) and truth.json under {out}"
    )
    return 0
