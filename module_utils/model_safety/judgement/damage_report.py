"""The Markdown of a damage report (:func:`.damage.damage`): what the model did while it voted."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import markdown as md


def _ret(value: Any) -> str:
    """A percent return with its sign (+0.123%), '-' when there is none."""
    return "-" if value is None else f"{value:+.3f}%"


def _sizes(stats: Mapping[str, Any]) -> str:
    sizes = stats.get("sizes")
    if not isinstance(sizes, Mapping):
        return "not recorded"
    return ", ".join(f"{name} {md.num(value)}" for name, value in sizes.items())


def _groups(view: Mapping[str, Any], decisive: bool) -> list[str]:
    header = ["symbol", "side", "rows", "with return", "no price", "return sum", "mean", "size"]
    if decisive:
        header += ["without model", "net"]
    rows = []
    for stats in [*view["groups"], {"symbol": "all", "side": "", **view}]:
        row = [
            stats["symbol"],
            stats["side"],
            stats["rows"],
            stats["with_return"],
            stats["no_price"],
            _ret(stats["return_pct_sum"]),
            _ret(stats["return_pct_mean"]),
            _sizes(stats),
        ]
        if decisive:
            row += [_ret(stats["without_model_pct_sum"]), _ret(stats["net_pct_sum"])]
        rows.append(row)
    return md.table(header, rows)


def damage_section(result: Mapping[str, Any]) -> list[str]:
    """Markdown lines of a damage report's findings (without a page header)."""
    model = md.code(result["model"])
    participated, decisive = result["participated"], result["decisive"]
    lines = [
        f"- Window: trade_intents rows after {md.code(result.get('since'))}"
        + (f" and before {md.code(result['until'])}" if result.get("until") else ""),
        f"- Rows: {result['rows']} read, {result['malformed_rows']} malformed (skipped); "
        f"{result['stream_events']} stream events as price points",
        f"- Horizon {md.plain(result['horizon_s'])} s; a later price more than "
        f"{md.plain(result['max_lag_s'])} s past it counts as no price",
        f"- Size: {', '.join(result['size_columns']) or 'not recorded'}",
        "",
    ]
    if not result["decided"]:
        lines += [f"Not decided yet: {result['reason']}.", ""]
    lines += [
        f"## Rows {model} took part in ({participated['rows']})",
        "",
        f"Its vote agreed with the decision (model_source names it). BUY {participated['buy']}, "
        f"SELL {participated['sell']}, HOLD {participated['hold']}; summed forward return "
        f"{_ret(participated['return_pct_sum'])} over {participated['with_return']} decisions.",
        "",
        *_groups(participated, decisive=False),
        "",
        f"## Rows {model} decided ({decisive['rows']})",
        "",
        f"Without its vote the decision would have been different. Summed forward return "
        f"{_ret(decisive['return_pct_sum'])}; on the {decisive['compared']} rows where both "
        f"have one, with it {_ret(decisive['with_model_pct_sum'])}, without it "
        f"{_ret(decisive['without_model_pct_sum'])} (a HOLD earns 0): net "
        f"{_ret(decisive['net_pct_sum'])}.",
        "",
        *_groups(decisive, decisive=True),
        "",
    ]
    if result["malformed_examples"]:
        lines += ["## Malformed rows", ""]
        lines += md.bullets([f"id {e['id']}: {e['reason']}" for e in result["malformed_examples"]])
        lines.append("")
    return lines


def render_damage(result: Mapping[str, Any], now: datetime) -> str:
    """The damage report page: the window, the rows the model took part in and decided, by
    symbol and side, with their forward returns and sizes."""
    lines = md.header(result, f"Damage report: {result.get('model')}", now)
    if result.get("error") or "participated" not in result:
        lines += [f"- Error: {result.get('error') or 'no damage was reported'}", ""]
        return "\n".join(lines).rstrip() + "\n"
    trade_log = result.get("trade_log") or {}
    lines.append(
        f"- Trade log: {md.code(trade_log.get('path'))}, table {md.code(trade_log.get('table'))}"
    )
    lines += md.source_lines(result)
    lines += damage_section(result)
    return "\n".join(lines).rstrip() + "\n"
