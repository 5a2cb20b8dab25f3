"""Process-wide settings, applied once by the entry points (the CLI's ``main``, the
operator's startup, the benchmarks' measured processes)."""

from __future__ import annotations

import gc

# Python's defaults are (700, 10, 10): a collection of the whole heap every ~70,000 net
# allocations. An evaluation allocates millions of short-lived objects (parsed answers, rows,
# per-workload results) and keeps a large heap while it runs, so those full scans were a
# third of a steady incremental cycle. Measured at 15,000 workloads (README, Performance):
# steady cycle 15.5 s -> 10.4 s, full evaluation 28.4 s -> 25.5 s, peak memory unchanged.
GC_THRESHOLDS = (10_000, 20, 50)


def tune_garbage_collector(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Collect young objects every ``thresholds[0]`` allocations and the whole heap far less
    often than Python's defaults do (cycles are rare in this code; memory is unchanged)."""
    gc.set_threshold(*thresholds)
