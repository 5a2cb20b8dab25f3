"""Process-wide settings, applied once by the entry points (the CLI's ``main``, the
operator's startup, the benchmarks' measured processes)."""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import sys
import threading
from collections.abc import Callable

import structlog

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


def set_up_command_line(level: int = logging.WARNING) -> None:
    """What the command line sets before it runs anything, in its own process and in each
    process it starts to evaluate agencies."""
    tune_garbage_collector()
    log_to_standard_error(level)


def log_to_standard_error(level: int = logging.WARNING) -> None:
    """Our structured logs (``state_corrupt agency=... error=...``) on standard error, from
    ``level`` up, for the command line: its standard output is the result (a table, JSON,
    CSV), which a log line there would make unreadable to the next program."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_standard_error_logger,
        cache_logger_on_first_use=False,
    )


def _standard_error_logger(*_names: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)  # the stream of the moment (tests replace it)


# The operator image's allocator (Dockerfile ENV; the e2e tests and benchmarks start their
# operator with the same). A long-running operator frees most of what it allocates (parsed
# answers, pages of lists) while it keeps the cluster's workloads and kopf's state, and by
# default that mix pins memory nobody uses: pymalloc keeps an arena while one object in it
# lives, and glibc keeps a heap per thread, with large buffers left in the heap once its
# mmap threshold has grown. Measured with 300 policies over 15,000 workloads
# (benchmarks/operator_kopf.py; README, Performance, "The operator as deployed"): with the
# listing packed as it is read, a cycle's largest RSS was 294-339 MiB without these and
# ``release_memory_every``, 273-275 MiB with them.
ALLOCATOR_ENVIRONMENT = {
    "PYTHONMALLOC": "malloc",  # every object from glibc, whose free chunks any size reuses
    "MALLOC_ARENA_MAX": "1",  # one heap for every thread: the GIL serialises them anyway
    "MALLOC_MMAP_THRESHOLD_": "131072",  # buffers of 128 KiB and more: mapped, then unmapped
}


def release_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``: freed chunks
    in the middle of the heap too, which freeing alone never returns). False without glibc."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def release_memory_every(seconds: float) -> threading.Event | None:
    """``release_memory`` every ``seconds`` in a daemon thread, until the returned event is
    set; None when ``seconds`` is 0 or there is no glibc."""
    if seconds <= 0 or _malloc_trim() is None:
        return None
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            release_memory()

    threading.Thread(target=loop, name="release-memory", daemon=True).start()
    return stop


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim
