"""Process-wide settings: the heap's freed pages go back to the system."""

from __future__ import annotations

import os
import subprocess
import sys

from rightsizer.process import release_memory_every

HEAP = """
from rightsizer.process import release_memory

def resident_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

large, pins = [], []
for _ in range(1000):
    large.append(bytearray(100_000))  # 100 MB in the heap (below glibc's mmap threshold)
    pins.append(bytearray(1_000))  # each pinned behind: freeing cannot shrink the heap's top
before = resident_mib()
del large
freed = resident_mib()
released = release_memory()
print(before, freed, resident_mib(), released)
"""


def test_freed_heap_pages_go_back_to_the_system_only_when_released() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "PYTHONMALLOC"))}
    answer = subprocess.run(
        [sys.executable, "-c", HEAP], env=env, capture_output=True, text=True, check=True
    )
    before, freed, after, released = answer.stdout.split()
    assert released == "True"
    assert int(before) - int(freed) < 20, answer.stdout  # freed, but still resident
    assert int(freed) - int(after) > 80, answer.stdout  # released: ~100 MB less


def test_no_release_thread_when_its_interval_is_zero() -> None:
    assert release_memory_every(0) is None
    stop = release_memory_every(60)
    assert stop is not None
    stop.set()
