"""Backtest output: terminal table, JSON, CSV, and an HTML page with a savings-vs-risk chart
per strategy and a per-agency breakdown."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from rich.console import Console
from rich.table import Table

from rightsizer.backtest.ledger import STRATEGIES, StrategyResult
from rightsizer.backtest.run import BacktestResult
from rightsizer.core.savings import display_money
from rightsizer.reports.charts import Bar, bar_chart

COLOURS = {
    "policy": "#1f77b4",
    "estimator": "#9467bd",
    "vpa-like": "#ff7f0e",
    "krr-like": "#2ca02c",
    "oracle": "#7f7f7f",
}
LABELS = {
    "policy": "this policy (rules, safety)",
    "estimator": "its estimator, ungated",
    "vpa-like": "VPA-like (reference)",
    "krr-like": "KRR-like (reference)",
    "oracle": "oracle (hindsight ceiling)",
}


def _rows(result: BacktestResult, scope: str) -> list[StrategyResult]:
    found = {row.strategy: row for row in result.rows if row.scope == scope}
    return [found[s] for s in STRATEGIES if s in found]


def _share(value: float) -> str:
    return f"{value:.2%}"


def _of_oracle(row: StrategyResult, oracle: StrategyResult | None) -> str:
    if oracle is None or oracle.money_per_month <= 0:
        return "-"
    return f"{float(row.money_per_month / oracle.money_per_month):.0%}"


def _record(row: StrategyResult, oracle: StrategyResult | None) -> dict[str, Any]:
    return {
        "strategy": row.strategy,
        "scope": row.scope,
        "releasedCpuCores": round(row.released_cpu_cores, 4),
        "releasedMemoryGiB": round(row.released_memory_gib, 4),
        "moneyPerMonth": str(display_money(row.money_per_month)),
        "shareOfOracle": _of_oracle(row, oracle),
        "cpuSamplesAboveRequest": round(row.cpu_over_share, 6),
        "memorySamplesAboveRequest": round(row.memory_over_share, 6),
        "workloads": row.workloads,
        "workloadsMemoryAboveRequest": row.memory_over_workloads,
        "workloadsMemoryAboveLimit": row.limit_over_workloads,
        "changes": row.changes,
    }


def _oracles(result: BacktestResult) -> dict[str, StrategyResult]:
    return {row.scope: row for row in result.rows if row.strategy == "oracle"}


def render_json(result: BacktestResult) -> str:
    oracles = _oracles(result)
    body = {
        "kind": "RightsizerBacktest",
        "version": 1,
        "from": result.start.isoformat(),
        "to": result.end.isoformat(),
        "stepSeconds": result.step_seconds,
        "steps": result.steps,
        "queries": result.queries,
        "rows": [_record(row, oracles.get(row.scope)) for row in result.rows],
    }
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def render_csv(result: BacktestResult) -> str:
    oracles = _oracles(result)
    records = [_record(row, oracles.get(row.scope)) for row in result.rows]
    buffer = io.StringIO()
    if records:
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return buffer.getvalue()


def render_table(result: BacktestResult, *, width: int = 140) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=False)
    agencies = sorted({r.scope for r in result.rows if r.scope.startswith("agency:")})
    for scope in ["total", *agencies]:
        table = Table(
            title=f"Backtest {scope}: {result.start:%Y-%m-%d} .. {result.end:%Y-%m-%d}"
            f", {result.steps} steps of {result.step_seconds / 86400:g}d"
        )
        for column in (
            "strategy",
            "cores",
            "GiB",
            "money/month",
            "of oracle",
            "CPU>req",
            "mem>req",
            "workloads mem>req",
            "mem>limit",
            "changes",
        ):
            table.add_column(column, justify="left" if column == "strategy" else "right")
        rows = _rows(result, scope)
        oracle = next((r for r in rows if r.strategy == "oracle"), None)
        for row in rows:
            table.add_row(
                LABELS.get(row.strategy, row.strategy),
                f"{row.released_cpu_cores:.2f}",
                f"{row.released_memory_gib:.1f}",
                str(display_money(row.money_per_month)),
                _of_oracle(row, oracle),
                _share(row.cpu_over_share),
                _share(row.memory_over_share),
                f"{row.memory_over_workloads}/{row.workloads}",
                str(row.limit_over_workloads),
                str(row.changes),
            )
        console.print(table)
    return console.export_text()


def _scatter(rows: Sequence[StrategyResult]) -> str:
    """Savings (y) against CPU samples above request (x), one point per strategy."""
    width, height, pad = 520, 300, 50
    top_money = max((float(r.money_per_month) for r in rows), default=1.0) or 1.0
    top_risk = max((r.cpu_over_share for r in rows), default=0.01) or 0.01
    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="savings vs risk">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - 10}" y2="{height - pad}" '
        'stroke="#333"/>',
        f'<line x1="{pad}" y1="10" x2="{pad}" y2="{height - pad}" stroke="#333"/>',
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle" font-size="12">'
        "CPU samples above request</text>",
        f'<text x="14" y="{height / 2}" font-size="12" transform="rotate(-90 14 '
        f'{height / 2})" text-anchor="middle">money released per month</text>',
    ]
    for row in rows:
        x = pad + (row.cpu_over_share / (top_risk * 1.15)) * (width - pad - 20)
        y = height - pad - (float(row.money_per_month) / (top_money * 1.1)) * (height - pad - 20)
        colour = COLOURS.get(row.strategy, "#000")
        label = escape(LABELS.get(row.strategy, row.strategy))
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{colour}"><title>{label}: '
            f"{_share(row.cpu_over_share)}, {display_money(row.money_per_month)}"
            "</title></circle>"
        )
        parts.append(f'<text x="{x + 10:.1f}" y="{y + 4:.1f}" font-size="12">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: BacktestResult) -> str:
    total = _rows(result, "total")
    oracle = next((r for r in total if r.strategy == "oracle"), None)
    head = (
        "<tr><th>strategy</th><th>cores</th><th>GiB</th><th>money/month</th>"
        "<th>of oracle</th><th>CPU&gt;req</th><th>mem&gt;req</th><th>workloads mem&gt;req"
        "</th><th>mem&gt;limit</th><th>changes</th></tr>"
    )

    def line(row: StrategyResult, ceiling: StrategyResult | None) -> str:
        cells = [
            LABELS.get(row.strategy, row.strategy),
            f"{row.released_cpu_cores:.2f}",
            f"{row.released_memory_gib:.1f}",
            str(display_money(row.money_per_month)),
            _of_oracle(row, ceiling),
            _share(row.cpu_over_share),
            _share(row.memory_over_share),
            f"{row.memory_over_workloads}/{row.workloads}",
            str(row.limit_over_workloads),
            str(row.changes),
        ]
        return "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"

    agencies = sorted({r.scope for r in result.rows if r.scope.startswith("agency:")})
    sections = []
    for scope in agencies:
        rows = _rows(result, scope)
        ceiling = next((r for r in rows if r.strategy == "oracle"), None)
        sections.append(
            f"<h3>{escape(scope.removeprefix('agency:'))}</h3><table>{head}"
            + "".join(line(r, ceiling) for r in rows)
            + "</table>"
        )
    money = bar_chart(
        [
            Bar(
                label=LABELS.get(r.strategy, r.strategy),
                value=float(r.money_per_month),
                colour=COLOURS.get(r.strategy, "#000"),
                text=str(display_money(r.money_per_month)),
            )
            for r in total
        ],
        title="money released per month",
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>rightsizer '
        "backtest</title><style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "</style></head><body>"
        f"<h1>Backtest: savings against risk</h1><p>{result.start:%Y-%m-%d %H:%M} to "
        f"{result.end:%Y-%m-%d %H:%M} UTC, {result.steps} steps of "
        f"{result.step_seconds / 86400:g} days, {result.queries} PromQL queries; rendered "
        f"{stamp}. VPA-like and KRR-like are small reimplementations for comparison, not the "
        "tools themselves; the oracle knows the future and is the ceiling.</p>"
        f"<h2>All agencies</h2><table>{head}"
        + "".join(line(r, oracle) for r in total)
        + "</table>"
        + _scatter(total)
        + money
        + "<h2>By agency</h2>"
        + "".join(sections)
        + "</body></html>\n"
    )


RENDERERS = {"table": render_table, "json": render_json, "csv": render_csv, "html": render_html}
