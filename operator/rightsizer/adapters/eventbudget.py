"""The operator-wide rate limit on events: a token bucket shared by every policy.

Each evaluation already stops at its own ``max_events`` and counts the rest in one summary
event on its policy. This budget bounds them all together: ``per_minute`` events a minute,
up to ``per_minute`` at once after a quiet spell. An event it refuses is counted in the same
summary (which the budget never refuses: there is at most one per evaluation).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class EventBudget:
    """``per_minute`` <= 0: no operator-wide limit."""

    per_minute: float
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _last: float = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._tokens = max(self.per_minute, 0.0)
        self._last = self.clock()

    def take(self) -> bool:
        """One event may be posted now (and is counted); False: over the budget."""
        if self.per_minute <= 0:
            return True
        with self._lock:
            now = self.clock()
            elapsed = max(now - self._last, 0.0)
            self._tokens = min(self.per_minute, self._tokens + elapsed * self.per_minute / 60)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


__all__ = ["EventBudget"]
