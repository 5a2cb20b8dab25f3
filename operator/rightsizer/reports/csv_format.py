"""CSV: one row per workload, header first; keys and codes stay English in every language.

CPU in cores, memory in bytes (and in human form), released memory in GiB, money as the
exact decimal in ``currency``. Requests are per replica, summed over the containers that
were sized; released and reclaimable amounts are for all replicas. ``money_released`` and
``money_reclaimable`` are empty unless the renderer was given the policy's prices. An
agency that was not evaluated gets one row with outcome ``not-evaluated`` and the error as
its reason, so that it cannot go unnoticed. A display name that a spreadsheet would read
as a formula is prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from decimal import Decimal

from rightsizer.core.evaluation import WorkloadEvaluation
from rightsizer.core.report import AgencyReport, rank_agencies
from rightsizer.core.units import human
from rightsizer.reports.text import exact_money, gib
from rightsizer.reports.view import RenderOptions, requests, workload_money

COLUMNS = (
    "agency",
    "display_name",
    "policy",
    "project",
    "kind",
    "namespace",
    "name",
    "outcome",
    "score",
    "grade",
    "action",
    "cpu_request_current",
    "cpu_request_recommended",
    "memory_request_current_bytes",
    "memory_request_recommended_bytes",
    "memory_request_current",
    "memory_request_recommended",
    "released_cpu_cores",
    "released_memory_gib",
    "money_released",
    "reclaimable_cpu_cores",
    "reclaimable_memory_gib",
    "money_reclaimable",
    "currency",
    "reasons",
)
NOT_EVALUATED = "not-evaluated"
REASON_SEPARATOR = " | "
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _decimal(value: float | None, places: int = 6) -> str:
    if value is None or not math.isfinite(value):
        return ""
    text = f"{round(value, places):.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _bytes(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else str(round(value))


def _human(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else human("memory", value)


def _text(value: str | None) -> str:
    """Free text (a display name): never read as a formula by a spreadsheet."""
    text = value or ""
    return "'" + text if text[:1] in _FORMULA_STARTS else text


def _money(value: Decimal | None) -> str:
    return "" if value is None else exact_money(value)


def workload_row(
    report: AgencyReport, item: WorkloadEvaluation, options: RenderOptions
) -> dict[str, str]:
    cpu_now, cpu_new = requests(item, "cpu")
    mem_now, mem_new = requests(item, "memory")
    return {
        "agency": report.agency,
        "display_name": _text(report.display_name),
        "policy": report.policy,
        "project": item.project or "",
        "kind": item.ref.kind,
        "namespace": item.ref.namespace,
        "name": item.ref.name,
        "outcome": item.outcome,
        "score": _decimal(item.score, 2),
        "grade": item.grade or "",
        "action": item.action,
        "cpu_request_current": _decimal(cpu_now),
        "cpu_request_recommended": _decimal(cpu_new),
        "memory_request_current_bytes": _bytes(mem_now),
        "memory_request_recommended_bytes": _bytes(mem_new),
        "memory_request_current": _human(mem_now),
        "memory_request_recommended": _human(mem_new),
        "released_cpu_cores": _decimal(item.released.cpu),
        "released_memory_gib": _decimal(gib(item.released.memory)),
        "money_released": _money(workload_money(report, item.released, options)),
        "reclaimable_cpu_cores": _decimal(item.reclaimable.cpu),
        "reclaimable_memory_gib": _decimal(gib(item.reclaimable.memory)),
        "money_reclaimable": _money(workload_money(report, item.reclaimable, options)),
        "currency": report.currency,
        "reasons": REASON_SEPARATOR.join(item.reasons),
    }


def failed_row(report: AgencyReport) -> dict[str, str]:
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        agency=report.agency,
        display_name=_text(report.display_name),
        policy=report.policy,
        outcome=NOT_EVALUATED,
        currency=report.currency,
        reasons=report.error or "",
    )
    return row


def rows(reports: Sequence[AgencyReport], options: RenderOptions) -> list[dict[str, str]]:
    """Agencies in ranking order, workloads in the order the report holds them."""
    result: list[dict[str, str]] = []
    for report in rank_agencies(reports):
        if report.error is not None:
            result.append(failed_row(report))
            continue
        result.extend(workload_row(report, item, options) for item in report.workloads)
    return result


def render_csv(reports: Sequence[AgencyReport], options: RenderOptions) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows(reports, options))
    return buffer.getvalue()
