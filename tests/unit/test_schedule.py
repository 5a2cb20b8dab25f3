from datetime import UTC, datetime, timedelta

import pytest

from rightsizer.core.schedule import (
    in_change_window,
    is_due,
    jitter_seconds,
    next_run,
    parse_cron,
)

MONDAY_NOON_SHANGHAI = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 2 * * 1", MONDAY_NOON_SHANGHAI, "2026-11-30 02:00"),
        ("*/15 * * * *", MONDAY_NOON_SHANGHAI, "2026-11-23 12:15"),
        ("0 2 1 1,4,7,10 *", MONDAY_NOON_SHANGHAI, "2027-01-01 02:00"),
        ("30 22 * * 1-5", MONDAY_NOON_SHANGHAI, "2026-11-23 22:30"),
        ("0 0 29 2 *", MONDAY_NOON_SHANGHAI, "2028-02-29 00:00"),
        ("0 9 * * 0", MONDAY_NOON_SHANGHAI, "2026-11-29 09:00"),
        ("0 9 * * 7", MONDAY_NOON_SHANGHAI, "2026-11-29 09:00"),
    ],
)
def test_next_run_in_the_policy_timezone(cron: str, after: datetime, expected: str) -> None:
    found = next_run(parse_cron(cron), after, utc_offset="+08:00")
    assert found is not None
    assert found.strftime("%Y-%m-%d %H:%M") == expected


@pytest.mark.parametrize(
    "bad", ["", "* * * *", "61 * * * *", "* 24 * * *", "a b c d e", "*/0 * * * *", "5-1 * * * *"]
)
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_cron(bad)


def test_due_once_per_scheduled_time_shifted_by_the_policy_offset() -> None:
    weekly = "0 2 * * 1"
    last = datetime(2026, 11, 16, 18, 30, tzinfo=UTC)  # after the previous Monday's run
    before = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)  # Mon 02:00 +08:00
    kwargs = {"offset_seconds": 300.0, "utc_offset": "+08:00"}
    assert not is_due(weekly, last=last, now=before + timedelta(minutes=4), **kwargs)
    assert is_due(weekly, last=last, now=before + timedelta(minutes=6), **kwargs)
    assert not is_due(
        weekly, last=before + timedelta(minutes=6), now=before + timedelta(hours=3), **kwargs
    )
    assert is_due(weekly, last=None, now=before, **kwargs)


def test_jitter_is_stable_and_spreads_policies() -> None:
    offsets = {jitter_seconds(f"agency-{i:03}", 600) for i in range(300)}
    assert jitter_seconds("agency-001", 600) == jitter_seconds("agency-001", 600)
    assert all(0 <= o < 600 for o in offsets)
    assert len({int(o // 60) for o in offsets}) == 10  # every minute of the spread is used


@pytest.mark.parametrize(
    ("windows", "moment", "inside"),
    [
        ([], MONDAY_NOON_SHANGHAI, True),
        (["Mon 11:00-13:00"], MONDAY_NOON_SHANGHAI, True),
        (["Mon 13:00-14:00"], MONDAY_NOON_SHANGHAI, False),
        (["Sat-Mon 00:00-24:00"], MONDAY_NOON_SHANGHAI, True),
        (["Tue-Fri 00:00-24:00"], MONDAY_NOON_SHANGHAI, False),
    ],
)
def test_change_windows(windows: list[str], moment: datetime, inside: bool) -> None:
    assert in_change_window(windows, moment, utc_offset="+08:00") is inside


def test_a_failed_evaluation_is_retried_after_the_backoff_not_next_week() -> None:
    weekly = "0 2 * * 1"
    last = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # after this week's run
    kwargs = {"offset_seconds": 0.0, "utc_offset": "+08:00", "retry_seconds": 300.0}
    assert not is_due(weekly, last=last, now=last + timedelta(minutes=4), failed=True, **kwargs)
    assert is_due(weekly, last=last, now=last + timedelta(minutes=5), failed=True, **kwargs)
    assert not is_due(weekly, last=last, now=last + timedelta(days=2), failed=False, **kwargs)
