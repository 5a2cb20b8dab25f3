"""Incremental evaluation against VictoriaMetrics: the Prometheus suite's incremental cases
(tests/prometheus/test_incremental.py), run unchanged. The operator folds state by default,
so its delta, seed and live queries must hold on this backend too: the same grades,
actions, targets and throttling as VictoriaMetrics' own full evaluation, within the
tolerance stated for Prometheus, and damaged, lost, foreign or outdated state rebuilt."""

from __future__ import annotations

import pytest
from test_incremental import (
    compared,
    short,
    test_incremental_grades_match_the_full_path,
    test_incremental_recommendations_match_the_full_path,
    test_incremental_throttling_matches_the_full_path,
    test_lost_or_corrupt_state_is_detected_and_rebuilt,
    test_state_about_something_else_is_never_used,
    test_state_from_another_version_is_rebuilt_and_said_so,
)

pytestmark = pytest.mark.victoria

__all__ = [
    "compared",
    "short",
    "test_incremental_grades_match_the_full_path",
    "test_incremental_recommendations_match_the_full_path",
    "test_incremental_throttling_matches_the_full_path",
    "test_lost_or_corrupt_state_is_detected_and_rebuilt",
    "test_state_about_something_else_is_never_used",
    "test_state_from_another_version_is_rebuilt_and_said_so",
]
