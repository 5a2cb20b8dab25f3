"""Names of the synthetic cloud: agencies, projects, workloads, pods (all seeded)."""

from __future__ import annotations

import numpy as np

CITIES = (
    "",
    "海口",
    "三亚",
    "儋州",
    "琼海",
    "文昌",
    "万宁",
    "五指山",
    "东方",
    "定安",
    "屯昌",
    "澄迈",
    "临高",
    "白沙",
    "昌江",
    "乐东",
    "陵水",
)
BUREAUS = (
    "财政局",
    "教育局",
    "卫生健康委员会",
    "公安局",
    "交通运输局",
    "自然资源和规划局",
    "人力资源和社会保障局",
    "民政局",
    "生态环境局",
    "住房和城乡建设局",
    "农业农村局",
    "商务局",
    "旅游和文化广电体育局",
    "应急管理局",
    "审计局",
    "统计局",
    "医疗保障局",
    "市场监督管理局",
    "大数据管理局",
    "水务局",
)
PROJECTS = (
    "portal",
    "approval",
    "data-exchange",
    "payroll",
    "archive",
    "hotline",
    "gis",
    "open-data",
    "license",
    "statistics",
    "e-invoice",
    "social-security",
    "health-record",
    "credit",
    "procurement",
    "emergency",
    "grid-service",
    "one-stop",
)
ROLES = {
    "Deployment": (
        "api",
        "web",
        "gateway",
        "worker",
        "auth",
        "search",
        "notify",
        "admin",
        "sync",
        "report-ui",
    ),
    "StatefulSet": ("db", "cache", "mq", "es", "minio"),
    "DaemonSet": ("log-collector", "node-agent", "security-agent"),
    "CronJob": ("nightly-report", "etl", "backup", "reconcile"),
}
POD_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
HEX = "0123456789abcdef"


def agency_name(index: int) -> str:
    return f"agency-{index:03d}"


def display_name(index: int) -> str:
    """A Chinese-looking agency name, unique for the first 340 agencies (1-based index)."""
    position = index - 1
    bureau = BUREAUS[position % len(BUREAUS)]
    cycle = position // len(BUREAUS)
    city = CITIES[cycle % len(CITIES)]
    prefix = f"{city}市" if city else "市"
    suffix = f"（{cycle // len(CITIES) + 1}）" if cycle >= len(CITIES) else ""
    return f"{prefix}{bureau}{suffix}"


def random_chars(rng: np.random.Generator, alphabet: str, length: int) -> str:
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), length))


def pod_suffix(rng: np.random.Generator) -> str:
    return random_chars(rng, POD_SUFFIX_ALPHABET, 5)


def template_hash(rng: np.random.Generator) -> str:
    return random_chars(rng, HEX, 10)


def gpu_uuid(rng: np.random.Generator) -> str:
    parts = [random_chars(rng, HEX, n) for n in (8, 4, 4, 4, 12)]
    return "GPU-" + "-".join(parts)


def unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate = f"{name}-{number}"
        number += 1
    taken.add(candidate)
    return candidate
