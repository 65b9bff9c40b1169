"""The quality gate's Markdown report: the verdict, every blocker with its measured value and
threshold, the per-model table, the thresholds used and the first malformed events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from . import markdown as md
from .compare_report import compare_section
from .drift_report import drift_section
from .thresholds import Thresholds

MODEL_COLUMNS = (
    "model",
    "role",
    "n",
    "BUY",
    "SELL",
    "HOLD",
    "conf_std",
    "p10",
    "p90",
    "spread",
    "median",
    "agreement",
    "hard disagree",
    "inactive",
    "gate",
)


def model_row(name: str, model: Mapping[str, Any]) -> list[str]:
    actions = model.get("actions") or {}
    p10, p90 = model.get("p10"), model.get("p90")
    spread = model.get("spread")
    if spread is None and isinstance(p10, int | float) and isinstance(p90, int | float):
        spread = p90 - p10
    return [
        name,
        "shadow" if model.get("shadow") else "voting",
        md.num(model.get("n")),
        md.pct(actions.get("BUY")),
        md.pct(actions.get("SELL")),
        md.pct(actions.get("HOLD")),
        md.num(model.get("conf_std")),
        md.num(p10),
        md.num(p90),
        md.num(spread),
        md.num(model.get("median")),
        md.pct(model.get("agreement")),
        md.pct(model.get("hard_disagree")),
        md.pct(model.get("inactive_share")),
        "PASS" if model.get("passed") else "FAIL",
    ]


def _malformed_lines(result: Mapping[str, Any]) -> list[str]:
    samples = result.get("malformed_samples") or []
    count = result.get("malformed") or 0
    if not count and not samples:
        return ["## Malformed events", "", "none", ""]
    lines = [f"## Malformed events: {count} (first {len(samples)} listed)", ""]
    rows = [[s.get("stream_id", "-"), s.get("reason", "-")] for s in samples]
    return [*lines, *md.table(("stream id", "reason"), rows), ""]


def _thresholds_lines(result: Mapping[str, Any]) -> list[str]:
    thresholds = result.get("thresholds") or {}
    if not thresholds:
        return []
    defaults = asdict(Thresholds())
    overridden = [name for name, value in thresholds.items() if defaults.get(name) != value]
    rows = [
        [name, md.plain(value), md.plain(defaults.get(name)), "OVERRIDDEN" * (name in overridden)]
        for name, value in thresholds.items()
    ]
    said = (
        f"**{len(overridden)} threshold(s) differ from the defaults: {', '.join(overridden)}**"
        if overridden
        else "Every threshold is the default."
    )
    table = md.table(("threshold", "value", "default", ""), rows)
    return ["## Thresholds", "", said, "", *table, ""]


def _ensemble_lines(result: Mapping[str, Any]) -> list[str]:
    ensemble = result.get("ensemble") or {}
    if not ensemble:
        return []
    lines = ["## Ensemble", ""]
    for key, value in ensemble.items():
        if isinstance(value, Mapping):
            parts = ", ".join(
                f"{k}: {md.pct(v) if isinstance(v, float) else v}" for k, v in value.items()
            )
            lines.append(f"- {key}: {parts or '-'}")
        elif isinstance(value, list | tuple):
            lines.append(f"- {key}: {', '.join(map(str, value)) or '-'}")
        else:
            lines.append(f"- {key}: {md.num(value)}")
    return [*lines, ""]


def _comparison_lines(result: Mapping[str, Any]) -> list[str]:
    """The judged model's paired comparison (run_gate with a model), said to be information."""
    comparison = result.get("comparison")
    if not isinstance(comparison, Mapping):
        return []
    title, *section = compare_section(comparison)
    return [title, "", "Information on the same events: it never changes the verdict.", *section]


def render_quality_gate(result: Mapping[str, Any], now: datetime) -> str:
    """The gate report (see the module docstring)."""
    verdict = result.get("verdict", "FAIL")
    models = result.get("models") or {}
    judged = result.get("model")
    lines = md.header(result, "Quality gate", now)
    lines += [
        f"## Verdict: {verdict}",
        "",
        f"- Judged: {md.code(judged) if judged else 'every voting model'}",
        md.events_line(result),
        *md.source_lines(result),
    ]
    if result.get("raw_confidences"):
        lines.append(
            "- Judged on raw confidences (the engine capped these models' published "
            "confidence; the events carry the raw one): "
            + ", ".join(
                f"{md.code(name)} {count} events capped"
                for name, count in result["raw_confidences"].items()
            )
        )
    if result.get("error"):
        lines.append(f"- Error: {result['error']}")
    lines += ["", "## Blockers", "", *md.bullets(result.get("blockers") or []), ""]
    if models:
        rows = [model_row(name, model) for name, model in models.items()]
        lines += ["## Models", "", *md.table(MODEL_COLUMNS, rows), ""]
        for name, model in models.items():
            if model.get("blockers"):
                lines += [f"### {name}: blockers", "", *md.bullets(model["blockers"]), ""]
    lines += _malformed_lines(result)
    lines += _ensemble_lines(result)
    lines += drift_section(result.get("drift"))
    lines += _comparison_lines(result)
    lines += _thresholds_lines(result)
    return "\n".join(lines).rstrip() + "\n"
