"""What the canary monitor tells people and tools: the progress line, the reason given to
rollback.yml and the node_exporter textfile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .settings import (
    ACTIVE,
    COMPLETED,
    ENDED,
    ERROR,
    INCONCLUSIVE,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    ROLLING_BACK,
    is_number,
)

# rollback.yml makes its lease purpose "rollback: <reason>"; a purpose has at most 200 characters.
ROLLBACK_REASON_MAX = 180


def rollback_reason(violated: Mapping[str, list[Mapping[str, Any]]], rollback_id: str) -> str:
    """The ``reason`` given to rollback.yml: ``monitor <rollback_id>:`` and the violated rules
    per host, at most ROLLBACK_REASON_MAX characters (it becomes the lease's purpose on each
    host, so the id names the lease of this rollback); the measured values are in the monitor's
    own records."""
    reason = f"monitor {rollback_id}: " + "; ".join(
        f"{host} " + ",".join(sorted({str(v["rule"]) for v in violations}))
        for host, violations in violated.items()
    )
    if len(reason) > ROLLBACK_REASON_MAX:
        reason = reason[: ROLLBACK_REASON_MAX - 3] + "..."
    return reason


def describe_check(host: str, check: Mapping[str, Any]) -> str:
    """One readable phrase for ``host``'s check (the progress line)."""
    status = check["status"]
    if status in (ERROR, "ended"):
        return f"{host} {status} ({check.get('reason')})"
    rules = [f["text"] for f in check["triggered"]] or [f["text"] for f in check["findings"]]
    window = (check.get("window") or {}).get("events")
    detail = f"{check['events']} new events" + (f", window {window}" if window else "")
    if check.get("capped_events"):
        detail += f", judged on raw confidences: {check['capped_events']} events capped"
    detail += f"; {'; '.join(rules)}" if rules else ""
    return f"{host} {status} ({detail})"


def format_duration(seconds: float) -> str:
    """``1:02:03`` (hours unbounded)."""
    whole = max(0, int(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def progress_line(
    model: str,
    elapsed_s: float,
    duration_s: float,
    check_number: int,
    at: str,
    checks: Mapping[str, Mapping[str, Any]],
    violations: int,
) -> str:
    """The line people read: elapsed, remaining, the last check per host, violations so far."""
    hosts = ", ".join(describe_check(host, check) for host, check in checks.items()) or "-"
    return (
        f"monitor {model}: {format_duration(elapsed_s)} elapsed, "
        f"{format_duration(duration_s - elapsed_s)} left | check {check_number} at {at}: "
        f"{hosts} | violations {violations}"
    )


_STATUS_VALUES = (
    ACTIVE,
    ROLLING_BACK,
    COMPLETED,
    INCONCLUSIVE,
    ROLLED_BACK,
    ROLLBACK_FAILED,
    ENDED,
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# The textfile's families in order: (name, type, help). 0..1 gauges end in _ratio, counters in
# _total, times in _seconds; the status is one-hot (a state set, not a ratio).
_FAMILIES = (
    ("qsc_monitor_canary_weight_ratio", "gauge", "Weight of the watched canary (activation)."),
    ("qsc_monitor_last_check_timestamp_seconds", "gauge", "When the host was last checked."),
    ("qsc_monitor_checks_total", "counter", "Checks performed in this monitoring window."),
    ("qsc_monitor_violations_total", "counter", "Violations that triggered in this window."),
    ("qsc_monitor_status", "gauge", "The monitoring status of the host (1 for the current one)."),
    ("qsc_monitor_exported_timestamp_seconds", "gauge", "When this file was written."),
)


def prometheus_text(model: str, states: Mapping[str, Mapping[str, Any]], now_s: float) -> str:
    """The node_exporter textfile of ``model``'s monitor: per host its canary weight, last check
    time, checks, violations and status (one-hot ``qsc_monitor_status``).

    Each family is written once, its HELP and TYPE before all of its samples, as the exposition
    format requires. Every series carries ``model``: node_exporter merges the files of all
    monitors, and two models' series must never share a name and labels."""
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _FAMILIES}

    def add(name: str, labels: str, value: object) -> None:
        samples[name].append(f"{name}{{{labels}}} {value}")

    model_label = f'model="{_label(model)}"'
    for host, state in states.items():
        labels = f'host="{_label(host)}",{model_label}'
        weight = (state.get("baseline") or {}).get("weight")
        if is_number(weight):
            add("qsc_monitor_canary_weight_ratio", labels, f"{float(weight):g}")
        checked = state.get("last_check_s")
        if is_number(checked):
            add("qsc_monitor_last_check_timestamp_seconds", labels, f"{checked:.3f}")
        add("qsc_monitor_checks_total", labels, state["checks"])
        add("qsc_monitor_violations_total", labels, len(state["violations"]))
        for status in _STATUS_VALUES:
            add("qsc_monitor_status", f'{labels},status="{status}"', int(state["status"] == status))
    add("qsc_monitor_exported_timestamp_seconds", model_label, f"{now_s:.3f}")
    lines: list[str] = []
    for name, kind, text in _FAMILIES:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples[name]]
    return "\n".join(lines) + "\n"
