"""The Markdown reports of the gate's sibling checks: the scoreboard, feature sanity and the
shadow report.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import markdown as md
from .drift_report import drift_section

_BOARD_COLUMNS = (
    "model",
    "role",
    "status",
    "n",
    "agreement",
    "hard disagree",
    "BUY",
    "SELL",
    "HOLD",
    "conf_std",
    "spread",
    "why",
)


def render_scoreboard(result: Mapping[str, Any], now: datetime) -> str:
    """GO / WAIT / NO-GO per model, with the reasons and every gate blocker."""
    lines = md.header(result, "Scoreboard", now)
    if result.get("error"):
        lines += [f"## Unavailable: {result['error']}", ""]
    models = result.get("models") or {}
    thresholds = result.get("thresholds") or {}
    lines += [md.events_line(result), *md.source_lines(result), ""]
    if thresholds:
        lines += [
            f"GO = gate passes, agreement with the ensemble in "
            f"[{md.pct(thresholds.get('go_agreement_low'))}, "
            f"{md.pct(thresholds.get('go_agreement_high'))}] and hard disagreement < "
            f"{md.pct(thresholds.get('go_max_hard_disagree'))}; WAIT = gate passes, outside that; "
            "NO-GO = gate fails.",
            "",
        ]
    if result.get("blockers"):
        lines += ["## Window blockers", "", *md.bullets(result["blockers"]), ""]
    shared = set(result.get("blockers") or [])
    rows = []
    for name, row in models.items():
        actions = row.get("actions") or {}
        reasons = [r for r in row.get("reasons") or [] if r != "gate failed"]
        if row.get("status") == "NO-GO":
            own = [b for b in row.get("blockers") or [] if b not in shared]
            reasons = own + (["window blockers"] if shared else []) + reasons
        rows.append(
            [
                name,
                "shadow" if row.get("shadow") else "voting",
                row.get("status", "NO-GO"),
                md.num(row.get("n")),
                md.pct(row.get("agreement")),
                md.pct(row.get("hard_disagree")),
                md.pct(actions.get("BUY")),
                md.pct(actions.get("SELL")),
                md.pct(actions.get("HOLD")),
                md.num(row.get("conf_std")),
                md.num(row.get("spread")),
                "; ".join(map(str, reasons)) or "-",
            ]
        )
    lines += ["## Models", "", *md.table(_BOARD_COLUMNS, rows), ""] if rows else []
    for name, row in models.items():
        own = [b for b in row.get("blockers") or [] if b not in (result.get("blockers") or [])]
        if own:
            lines += [f"### {name}: gate blockers", "", *md.bullets(own), ""]
    return "\n".join(lines).rstrip() + "\n"


_FEATURE_COLUMNS = ("feature", "values", "NaN", "Inf", "missing", "mean", "std", "min", "max")


def render_feature_sanity(result: Mapping[str, Any], now: datetime) -> str:
    """Per-feature statistics, problems (exit 2) and warnings."""
    status = "OK" if result.get("exit_code") == 0 else "FAIL"
    lines = md.header(result, f"Feature sanity: {status}", now)
    lines += [md.events_line(result), *md.source_lines(result)]
    if result.get("error"):
        lines.append(f"- Error: {result['error']}")
    lines += ["", "## Problems", "", *md.bullets(result.get("problems") or [])]
    lines += ["", "## Warnings", "", *md.bullets(result.get("warnings") or []), ""]
    rows = [
        [
            name,
            md.num(entry.get("count")),
            md.num(entry.get("nan")),
            md.num(entry.get("inf")),
            md.num(entry.get("missing")),
            md.num(entry.get("mean"), 6),
            md.num(entry.get("std"), 6) + (" (flatline)" if entry.get("flatline") else ""),
            md.num(entry.get("min"), 6),
            md.num(entry.get("max"), 6),
        ]
        for name, entry in (result.get("features") or {}).items()
    ]
    if rows:
        lines += ["## Features", "", *md.table(_FEATURE_COLUMNS, rows), ""]
    lines += drift_section(result.get("drift"))
    duplicates = result.get("duplicates") or {}
    if duplicates:
        lines += [
            f"Duplicate feature vectors among the last {duplicates.get('compared')} events: "
            f"{md.pct(duplicates.get('share'))} "
            f"(warning above {md.pct(duplicates.get('threshold'))})",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def render_shadow_report(result: Mapping[str, Any], now: datetime) -> str:
    """The four activation gates of a shadow model and its hard blockers."""
    title = f"Shadow report: {result.get('model')}: {result.get('status')}"
    lines = md.header(result, title, now)
    lines += [md.events_line(result), *md.source_lines(result)]
    if result.get("error"):
        lines.append(f"- Error: {result['error']}")
    lines.append("")
    rows = [
        [name, gate.get("status", "-"), md.num(gate.get("value")), md.num(gate.get("threshold"))]
        for name, gate in (result.get("gates") or {}).items()
        if isinstance(gate, Mapping)
    ]
    if rows:
        lines += ["## Gates", "", *md.table(("gate", "status", "value", "threshold"), rows), ""]
    lines += ["## Hard blockers", "", *md.bullets(result.get("hard_blockers") or []), ""]
    hard = set(result.get("hard_blockers") or [])
    others = [b for b in result.get("blockers") or [] if b not in hard]
    if others:
        lines += ["## Other blockers", "", *md.bullets(others), ""]
    return "\n".join(lines).rstrip() + "\n"
