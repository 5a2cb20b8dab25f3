"""The operator's settings: each read from its environment variable, each documented with
its default in rightsizer/handlers/config.py."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from rightsizer.handlers import config
from rightsizer.handlers.config import OperatorConfig

URL = {"RIGHTSIZER_PROMETHEUS_URL": "http://prometheus:9090"}


@pytest.mark.parametrize(
    ("env", "setting", "expected"),
    [
        ({}, "evaluations_at_once", 4),
        ({"RIGHTSIZER_EVALUATIONS_AT_ONCE": "2"}, "evaluations_at_once", 2),
        ({}, "release_memory_seconds", 10.0),
        ({"RIGHTSIZER_RELEASE_MEMORY_SECONDS": "0"}, "release_memory_seconds", 0.0),
        ({}, "cache_seconds", 60.0),
        ({"RIGHTSIZER_CACHE_SECONDS": "0"}, "cache_seconds", 0.0),
    ],
)
def test_a_setting_has_its_default_until_its_variable_says_otherwise(
    env: dict[str, str], setting: str, expected: Any
) -> None:
    assert getattr(OperatorConfig.from_environment({**URL, **env}), setting) == expected


def test_evaluations_at_once_is_refused_below_one() -> None:
    with pytest.raises(ValueError, match="RIGHTSIZER_EVALUATIONS_AT_ONCE must be 1 or more"):
        OperatorConfig.from_environment({**URL, "RIGHTSIZER_EVALUATIONS_AT_ONCE": "0"})


def test_every_variable_read_is_documented() -> None:
    read = set(re.findall(r'"(RIGHTSIZER_[A-Z_]+)"', inspect.getsource(config)))
    documented = set(re.findall(r"^(RIGHTSIZER_[A-Z_]+)\s", config.__doc__ or "", re.M))
    assert read - documented == set()
