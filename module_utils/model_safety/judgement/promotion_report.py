"""The promotion decision log in Markdown: the decision, the evidence it rests on (shadow
report, gate, monitor, ensemble) and the next steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from . import markdown as md
from .compare_report import compare_section
from .gate_report import MODEL_COLUMNS, model_row

_STRATEGY_KEYS = ("from", "to", "ladder", "allow_jump", "operator", "host")


def _step(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " -> ".join(_step(item) for item in value) or "-"
    if isinstance(value, float):
        return f"{value:g}"
    return "-" if value is None or value == "" else str(value)


def _is_full_weight(value: Any) -> bool:
    try:
        return float(value) >= 1.0
    except (TypeError, ValueError):
        return False


def _next_steps(check: Mapping[str, Any], model: str, target: str, to: Any) -> list[str]:
    if check.get("verdict") != "GO":
        return [
            "Nothing was changed: the promotion stops here, the engine keeps its current "
            "configuration and start.",
            f"Resolve every blocker above, then run the promotion again (`ansible-playbook "
            f"playbooks/promote.yml -e model={model}`); the check runs again first.",
        ]
    change = (
        f"the canary drop-in is removed and {model} votes at its baseline weight (promoted)"
        if _is_full_weight(to)
        else f"the env file and the canary drop-in get {model} at weight {target}, every other "
        "model scaled so the weights sum to 1"
    )
    return [
        "No hard blocker: the promotion goes ahead on this host, nothing is changed yet.",
        f"Backup of the env file and the drop-ins (with the git sha and checksums), then {change}.",
        "The service is stopped and started (never restarted); the journal of that start must "
        f"show the build and {model} voting, and new telemetry and trade intents must show "
        f"{model} in its new role.",
        "Any failure after the backup restores it byte-identical and proves the old start; "
        "success is recorded in the activation log with the rollback command.",
    ]


def _shadow_evidence_lines(report: Mapping[str, Any]) -> list[str]:
    lines = [
        f"## Shadow gates: {report.get('status', '-')} ({report.get('passed', '-')} pass, "
        f"{report.get('required', '-')} required)",
        "",
    ]
    rows = [
        [name, gate.get("status", "-"), md.num(gate.get("value")), md.plain(gate.get("threshold"))]
        for name, gate in (report.get("gates") or {}).items()
        if isinstance(gate, Mapping)
    ]
    lines += md.table(("gate", "status", "value", "threshold"), rows) if rows else ["none judged"]
    metrics = report.get("metrics") or {}
    if metrics:
        lines += [
            "",
            f"- Active events: {md.num(metrics.get('n'))}; "
            f"agreement {md.pct(metrics.get('agreement'))}"
            f"; hard disagreement {md.pct(metrics.get('hard_disagree'))}; conf_std "
            f"{md.num(metrics.get('conf_std'))}",
        ]
    return [*lines, ""]


def _gate_evidence_lines(gate: Mapping[str, Any], model: str) -> list[str]:
    lines = [f"## Quality gate ({gate.get('mode', '-')}): {gate.get('verdict', '-')}", ""]
    entry = (gate.get("models") or {}).get(model)
    if isinstance(entry, Mapping):
        lines += md.table(MODEL_COLUMNS, [model_row(model, entry)])
    else:
        lines.append("no metrics")
    lines += ["", f"- Events: {gate.get('event_count', 0)} (minimum {gate.get('min_events')})"]
    return [*lines, ""]


def _monitor_lines(monitor: Mapping[str, Any]) -> list[str]:
    """The monitor's result for the canary's current step (:mod:`.promotion_watch`)."""
    step = monitor.get("step") or {}
    completed = monitor.get("completed") or {}
    lines = [f"## Monitor: {monitor.get('result', '-')}", ""]
    if step:
        lines.append(
            f"- Current step: {step.get('action') or step.get('event') or '-'} at "
            f"{_step(step.get('weight'))}, {step.get('ts') or '-'}"
        )
    else:
        lines.append("- Current step: no activation or promotion record of the model")
    if completed:
        lines.append(
            f"- Watch completed: {completed.get('ts') or '-'}, "
            f"{md.num(completed.get('checks', completed.get('checks_performed')))} checks, "
            f"window start {completed.get('window_start') or '-'}"
        )
    else:
        lines.append("- Watch completed: none since the current step began")
    lines.append(f"- Activation log: {monitor.get('log') or '-'}")
    lines += [f"- Not safe: {refusal}" for refusal in monitor.get("refusals") or []]
    override = monitor.get("override")
    if isinstance(override, Mapping):
        lines.append(
            f"- OVERRIDDEN (monitor_override): {override.get('reason')} "
            f"(found: {override.get('found')})"
        )
    return [*lines, ""]


def _comparison_lines(comparison: Mapping[str, Any]) -> list[str]:
    """The model against the ensemble without it (:func:`.compare_loss.loss_check`): the
    verdict in words, the numbers it rests on, then the whole paired comparison."""
    against = comparison.get("against") or "the ensemble without the model"
    alpha, share = comparison.get("alpha"), comparison.get("max_loss_share")
    if comparison.get("significant_loss"):
        verdict = "significantly worse: a hard blocker"
    elif comparison.get("decided"):
        verdict = "not significantly worse"
    else:
        verdict = f"not decided ({comparison.get('reason')}): not a blocker"
    horizon, p_loss = md.plain(comparison.get("horizon_s")), comparison.get("p_loss")
    lines = [
        f"## Comparison with {against}: {verdict}",
        "",
        f"- Disagreements (opposite calls, the price moved over {horizon} s): "
        f"{md.num(comparison.get('disagreements'))}; the model right in b "
        f"{md.num(comparison.get('b'))}, wrong in c {md.num(comparison.get('c'))} "
        f"({md.pct(comparison.get('loss_share'))} of them)",
        f"- A loss counts beyond {md.pct(share)} of the disagreements, when one-sided p < "
        f"{md.plain(alpha)}: p {'-' if p_loss is None else f'{p_loss:.3g}'}; at least "
        f"{md.num(comparison.get('min_disagreements'))} disagreements are needed to decide",
        f"- Accuracy: the model {md.pct(comparison.get('canary_accuracy'))}, {against} "
        f"{md.pct(comparison.get('other_accuracy'))}",
        "",
    ]
    result = comparison.get("result")
    return lines + (compare_section(result) if isinstance(result, Mapping) else [])


def _ensemble_summary_lines(check: Mapping[str, Any]) -> list[str]:
    ensemble = check.get("ensemble") or {}
    limit = (check.get("thresholds") or {}).get("max_payload_p95")
    consensus = ensemble.get("consensus") or {}
    sides = ensemble.get("sides") or {}
    return [
        "## Ensemble",
        "",
        f"- Payload p95: {md.num(ensemble.get('payload_p95'), 0)} bytes (blocked at >= "
        f"{md.plain(limit)}); max {md.num(ensemble.get('payload_max'))} bytes",
        "- Consensus: "
        + (", ".join(f"{key}: {md.pct(share)}" for key, share in consensus.items()) or "-"),
        "- Sides: " + (", ".join(f"{key}: {md.pct(share)}" for key, share in sides.items()) or "-"),
        f"- Events: {md.num(ensemble.get('event_count'))} valid, "
        f"{md.num(ensemble.get('malformed'))} malformed",
        "",
    ]


def decision_log_markdown(
    check: Mapping[str, Any], strategy: Mapping[str, Any], now: datetime | None = None
) -> str:
    """The decision log of a promotion check (:mod:`.promotion`): who, when and the strategy
    (``from``, ``to``, ``ladder``, ``allow_jump``, ``operator``, ``host`` and ``time`` of
    ``strategy``; the time defaults to ``now``), the verdict, every blocker, the evidence
    (shadow gates or the gate's metrics, the monitor's result and any override of it), the
    ensemble and what happens next."""
    now = now or datetime.now(UTC)
    model = str(check.get("model") or "-")
    source, target = (
        _step(strategy.get("from", check.get("current_role"))),
        _step(strategy.get("to")),
    )
    uptime, min_uptime = check.get("uptime_s"), check.get("min_uptime_s")
    lines = [f"# Promotion decision: {model} {source} -> {target}", ""]
    lines += [
        f"- {key.replace('_', ' ').capitalize()}: {_step(strategy.get(key))}"
        for key in _STRATEGY_KEYS
    ]
    lines += [
        f"- Time (UTC): {strategy.get('time') or md.iso(now)}",
        f"- Current role: {check.get('current_role') or '-'}",
        f"- Service uptime: {md.num(uptime, 0)} s (required {md.num(min_uptime, 0)} s)",
        md.events_line(check),
        *md.source_lines(check),
        "",
        f"## Verdict: {check.get('verdict', 'BLOCKED')}",
        "",
    ]
    if check.get("error"):
        lines += [f"- Error: {check['error']}", ""]
    lines += ["## Blockers", "", *md.bullets(check.get("blockers") or []), ""]
    if isinstance(check.get("shadow_report"), Mapping):
        lines += _shadow_evidence_lines(check["shadow_report"])
    if isinstance(check.get("gate"), Mapping):
        lines += _gate_evidence_lines(check["gate"], model)
    if isinstance(check.get("monitor"), Mapping):
        lines += _monitor_lines(check["monitor"])
    if isinstance(check.get("comparison"), Mapping):
        lines += _comparison_lines(check["comparison"])
    lines += _ensemble_summary_lines(check)
    lines += [
        "## What happens next",
        "",
        *md.bullets(_next_steps(check, model, target, strategy.get("to"))),
    ]
    return "\n".join(lines).rstrip() + "\n"


def render_promotion_decision(result: Mapping[str, Any], now: datetime) -> str:
    """The decision log of a promotion check carrying its ``strategy``."""
    return decision_log_markdown(result, result.get("strategy") or {}, now)
