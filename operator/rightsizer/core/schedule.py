"""When a policy is due: five-field cron schedules, with a stable per-policy offset (jitter)
so hundreds of policies on the same schedule do not all fire in the same minute.

All times are passed in; the schedule is read in the policy's fixed UTC offset.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
_PART = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")
_SEARCH_LIMIT = timedelta(days=5 * 366)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def matches(self, moment: datetime) -> bool:
        if moment.minute not in self.minutes or moment.hour not in self.hours:
            return False
        if moment.month not in self.months:
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # cron: both must hold unless one is '*'
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def parse_cron(text: str) -> Cron:
    """'0 2 * * 1' -> Cron; ValueError with a plain reason otherwise."""
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise ValueError(f"{text!r}: a schedule has 5 fields (minute hour day month weekday)")
    values = [
        _field(part, name, low, high)
        for part, (name, low, high) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = frozenset(v % 7 for v in values[4])
    return Cron(
        frozenset(values[0]),
        frozenset(values[1]),
        frozenset(values[2]),
        frozenset(values[3]),
        weekdays,
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )


def _field(text: str, name: str, low: int, high: int) -> set[int]:
    found: set[int] = set()
    for item in text.split(","):
        match = _PART.match(item)
        if match is None:
            raise ValueError(f"{name}: {item!r} is not a cron value")
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            start, end = low, high
        elif "-" in span:
            start, end = (int(v) for v in span.split("-"))
        else:
            start = end = int(span)
            if match.group(2):
                end = high
        if not low <= start <= end <= high or step < 1:
            raise ValueError(f"{name}: {item!r} is outside {low}-{high}")
        found.update(range(start, end + 1, step))
    return found


def jitter_seconds(name: str, spread: float) -> float:
    """A stable offset in [0, spread) for ``name``."""
    if spread <= 0:
        return 0.0
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % int(spread * 1000) / 1000


def previous_run(cron: Cron, at: datetime, *, utc_offset: str) -> datetime | None:
    """The last scheduled minute at or before ``at`` (searching back at most five years)."""
    zone = _zone(utc_offset)
    moment = at.astimezone(zone).replace(second=0, microsecond=0)
    limit = moment - _SEARCH_LIMIT
    while moment > limit:
        if cron.matches(moment):
            return moment
        moment = _step_back(cron, moment)
    return None


def _step_back(cron: Cron, moment: datetime) -> datetime:
    """Skip whole hours or days that cannot match, else one minute."""
    if moment.hour not in cron.hours or moment.month not in cron.months:
        return moment.replace(minute=0) - timedelta(minutes=1)
    return moment - timedelta(minutes=1)


def next_run(cron: Cron, after: datetime, *, utc_offset: str) -> datetime | None:
    zone = _zone(utc_offset)
    moment = after.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = moment + _SEARCH_LIMIT
    while moment < limit:
        if cron.matches(moment):
            return moment
        if moment.hour not in cron.hours or moment.month not in cron.months:
            moment = moment.replace(minute=0) + timedelta(hours=1)
        else:
            moment += timedelta(minutes=1)
    return None


def is_due(
    schedule: str,
    *,
    last: datetime | None,
    now: datetime,
    offset_seconds: float,
    utc_offset: str,
    failed: bool = False,
    retry_seconds: float = 300.0,
) -> bool:
    """Due when a scheduled time (plus the policy's offset) has passed since ``last``; a
    policy never evaluated is due at once; one whose last evaluation failed (Prometheus or
    the API server unreachable) is due again ``retry_seconds`` after it."""
    if last is None:
        return True
    if failed and now - last >= timedelta(seconds=retry_seconds):
        return True
    shifted = now - timedelta(seconds=offset_seconds)
    scheduled = previous_run(parse_cron(schedule), shifted, utc_offset=utc_offset)
    return scheduled is not None and scheduled + timedelta(seconds=offset_seconds) > last


def _zone(utc_offset: str) -> timezone:
    sign = -1 if utc_offset.startswith("-") else 1
    hours, minutes = (int(v) for v in utc_offset[1:].split(":"))
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def in_change_window(windows: list[str], now: datetime, *, utc_offset: str) -> bool:
    """True when there are no windows, or ``now`` falls in one ('Sat 00:00-06:00',
    'Mon-Fri 22:00-23:59')."""
    if not windows:
        return True
    local = now.astimezone(_zone(utc_offset))
    minute = local.hour * 60 + local.minute
    names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    for window in windows:
        days, hours = window.split(" ")
        first, _, last = days.partition("-")
        start_day, end_day = names.index(first), names.index(last or first)
        span = (
            range(start_day, end_day + 1)
            if start_day <= end_day
            else [*range(start_day, 7), *range(end_day + 1)]
        )
        begin, end = (int(t[:2]) * 60 + int(t[3:]) for t in hours.split("-"))
        if local.weekday() in span and begin <= minute < end:
            return True
    return False
