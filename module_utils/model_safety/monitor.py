"""The canary monitor's judgement: from one probe of a canary host to its violations.

``model-safety monitor`` probes every canary host each interval (the ``canary_probe`` module
through ansible-runner: the service's state, the canary's activation record, the configured
canary and the quality gate over the canary's events since the previous check) and feeds each
probe to :func:`assess` with the host's :class:`HostState`. The gate's own rules
(:func:`.gate.model_findings`) and thresholds judge the model; this module adds only what the
gate has no rule for, and the counting over checks. Violations (``rule`` names):

=====  =========================================  ===========================  ==============
issue  rule                                       measured value / threshold   triggers
=====  =========================================  ===========================  ==============
1      ``action_collapse`` (> 70 % one class)     share / max_action_share     persist_checks
2      ``flat_predictions`` (conf_std < 0.05)     conf_std / min_conf_std      persist_checks
3      ``narrow_spread`` (p90 - p10 < 0.12),      spread / min_spread,         persist_checks
       ``constant_output``                        conf_std / constant_std
4      ``hold_collapse``                          HOLD share / 0.85            persist_checks
5      ``hard_disagreement`` (> 25 %)             share / max_hard_disagree    persist_checks
6      ``redundant`` (agreement > 85 %)           agreement / 0.85             redundant_checks
7      ``service_inactive``, ``service_restarted``  state, InvocationID         at once
8      ``telemetry_stalled`` (no new events),     checks / stall_checks,       at once
       ``telemetry_unreadable`` (Redis, ...)      the error
-      ``model_inactive``, ``malformed_events``   the gate's fail-closed rules persist_checks
-      ``cannot_judge`` (probe failed K times)    checks / stall_checks        at once
-      ``inconclusive_limit`` (too few events)    checks / inconclusive_checks at once
=====  =========================================  ===========================  ==============

"Persist" rules count consecutive conclusive checks; a conclusive check without the rule resets
its count, an inconclusive one (too few new events: the cursor then stays, so the next check
sees more) leaves every count as it is. Standard library only; pure functions over plain
JSON-serialisable data, so the state is persisted as it is.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .names import is_model_name
from .thresholds import Thresholds

PERSISTENT_RULES = (
    "action_collapse",
    "flat_predictions",
    "narrow_spread",
    "constant_output",
    "hold_collapse",
    "hard_disagreement",
    "model_inactive",
    "malformed_events",
)
# The gate's findings that say "nothing to judge yet", not "the model is bad".
INCONCLUSIVE_FINDINGS = frozenset({"too_few_events", "not_in_window", "no_active_events"})

ACTIVE = "monitoring"
ROLLING_BACK = "rolling_back"
COMPLETED = "completed"
ROLLED_BACK = "rolled_back"
ROLLBACK_FAILED = "rollback_failed"
ENDED = "ended"

# Check outcomes, from best to worst.
OK, WARNING, INCONCLUSIVE, ERROR, VIOLATION = "ok", "warning", "inconclusive", "error", "violation"


class MonitorError(ValueError):
    """Bad settings or a state that cannot be used."""


@dataclass(frozen=True)
class MonitorSettings:
    """What one monitor watches and how strictly (the ``model-safety monitor`` options)."""

    model: str
    duration_s: float = 6 * 3600.0
    interval_s: float = 30.0
    persist_checks: int = 2
    max_hard_disagree: float = 0.25
    redundant_agreement: float = 0.85
    redundant_checks: int = 10
    stall_checks: int = 3
    inconclusive_checks: int = 10
    thresholds: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_model_name(self.model):
            raise MonitorError(f"not a valid model name (^[a-z][a-z0-9_]{{0,31}}$): {self.model!r}")
        for name in ("duration_s", "interval_s"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise MonitorError(f"{name} must be a positive number of seconds, got {value!r}")
        for name in ("persist_checks", "redundant_checks", "stall_checks", "inconclusive_checks"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise MonitorError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("max_hard_disagree", "redundant_agreement"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= 1:
                raise MonitorError(f"{name} must be a share in [0, 1], got {value!r}")
        try:
            self.gate_thresholds()
        except (TypeError, ValueError) as exc:
            raise MonitorError(f"bad gate thresholds: {exc}") from None

    def gate_thresholds(self) -> Thresholds:
        """The gate's thresholds with this monitor's overrides (what the probe's gate uses)."""
        return Thresholds().with_overrides(dict(self.thresholds))

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for the state file and the log)."""
        values = asdict(self)
        values["thresholds"] = dict(self.thresholds)
        return values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def stream_id_key(stream_id: str | None) -> tuple[int, int] | None:
    """``"<ms>-<seq>"`` as a sortable pair; None for None or anything else."""
    if not isinstance(stream_id, str):
        return None
    ms, _, seq = stream_id.partition("-")
    if not (ms.isdigit() and seq.isdigit()):
        return None
    return int(ms), int(seq)


def new_state(host: str, settings: MonitorSettings, started_at: str, cursor: str) -> dict:
    """A host's state when its monitoring starts: ``cursor`` is where its first window starts
    (the canary's start time or the stream id of its start)."""
    return {
        "host": host,
        "model": settings.model,
        "status": ACTIVE,
        "started_at": started_at,
        "baseline": None,
        "cursor": cursor,
        "newest_id": None,
        "checks": 0,
        "consecutive": {},
        "redundant_streak": 0,
        "stalled": 0,
        "unjudged": 0,
        "inconclusive": 0,
        "violations": [],
        "last_check": None,
    }


def _violation(rule: str, value: Any, threshold: Any, text: str, count: int = 1) -> dict:
    return {"rule": rule, "value": value, "threshold": threshold, "text": text, "count": count}


def _service_findings(state: dict, probe: Mapping[str, Any]) -> list[dict]:
    """Rule 7: the canary's service must stay active, on the start that activated it."""
    service = probe.get("service") or {}
    if not service.get("running"):
        state_text = f"{service.get('active_state', '?')}/{service.get('sub_state', '?')}"
        return [
            _violation(
                "service_inactive",
                state_text,
                "active/running",
                f"service {service.get('unit', 'engine')} is {state_text}, not active/running",
            )
        ]
    baseline = state["baseline"] or {}
    expected = baseline.get("invocation_id")
    current = service.get("invocation_id")
    restarts = service.get("n_restarts")
    if expected and current != expected:
        return [
            _violation(
                "service_restarted",
                current,
                expected,
                f"service restarted since the activation: InvocationID {current} != "
                f"{expected} (NRestarts {restarts})",
            )
        ]
    base_restarts = baseline.get("n_restarts")
    if isinstance(restarts, int) and isinstance(base_restarts, int) and restarts > base_restarts:
        return [
            _violation(
                "service_restarted",
                restarts,
                base_restarts,
                f"service restarted since the activation: NRestarts {restarts} > {base_restarts}",
            )
        ]
    return []


def _baseline_of(probe: Mapping[str, Any]) -> dict | None:
    """The activation this host's canary runs since: the newest activation or promotion record
    for the model, with the service's NRestarts when it still runs that start."""
    record = probe.get("activation")
    service = probe.get("service") or {}
    if not isinstance(record, Mapping) or not record.get("invocation_id"):
        return None
    same_start = service.get("invocation_id") == record["invocation_id"]
    return {
        "event": record.get("event"),
        "ts": record.get("ts"),
        "invocation_id": record["invocation_id"],
        "started_at": record.get("started_at"),
        "weight": record.get("weight"),
        "n_restarts": service.get("n_restarts") if same_start else 0,
    }


def _canary_of(state: dict, probe: Mapping[str, Any]) -> tuple[str | None, dict | None]:
    """Why this host's canary cannot be watched (no canary of the model configured, no record
    of its activation), or None; and the activation baseline found."""
    model = state["model"]
    config = probe.get("config") or {}
    if config.get("canary") != model:
        return (
            f"{model} is no longer the canary on this host (configured canary: "
            f"{config.get('canary') or 'none'})"
        ), None
    baseline = _baseline_of(probe)
    if baseline is None:
        return f"no activation or promotion of {model} in the activation log", None
    return None, baseline


def _gate_model_findings(
    gate: Mapping[str, Any], settings: MonitorSettings
) -> tuple[bool, list[dict]]:
    """(conclusive, findings) of the canary model in this check's gate result."""
    model = settings.model
    entry = (gate.get("models") or {}).get(model) or {}
    findings = entry.get("findings")
    if not isinstance(findings, list):
        return False, []
    too_few = [f for f in findings if f.get("rule") in INCONCLUSIVE_FINDINGS]
    events = gate.get("event_count") or 0
    if too_few and events < (gate.get("min_events") or 0):
        return False, [
            _violation(f["rule"], f.get("value"), f.get("threshold"), f.get("text", ""))
            for f in too_few
        ]
    # A full window says something even when the canary has too few predictions in it: it
    # does not predict (the gate's model_inactive rule, or its absence from the window).
    found = [
        _violation(f["rule"], f.get("value"), f.get("threshold"), f.get("text", ""))
        for f in findings
        if f.get("rule") not in INCONCLUSIVE_FINDINGS
    ]
    if too_few and not any(f["rule"] == "model_inactive" for f in found):
        active = entry.get("n") or 0
        share = 1.0 - active / events if events else 1.0
        limit = settings.gate_thresholds().max_inactive_share
        found.append(
            _violation(
                "model_inactive",
                share,
                limit,
                f"model inactive: {model} predicted in {active} of {events} events "
                f"(no prediction in {100 * share:.1f}% > {100 * limit:.1f}%)",
            )
        )
    malformed = gate.get("malformed") or 0
    if malformed:
        found.append(_violation("malformed_events", malformed, 0, f"{malformed} malformed events"))
    hard = entry.get("hard_disagree")
    if _is_number(hard) and hard > settings.max_hard_disagree:
        found.append(
            _violation(
                "hard_disagreement",
                hard,
                settings.max_hard_disagree,
                f"hard disagreement with the ensemble {100 * hard:.1f}% > "
                f"{100 * settings.max_hard_disagree:.1f}%",
            )
        )
    return True, found


def assess(
    state: Mapping[str, Any],
    probe: Mapping[str, Any] | None,
    settings: MonitorSettings,
    probe_error: str | None = None,
) -> tuple[dict, dict]:
    """Judge one check of one host: returns ``(new_state, check)``.

    ``probe`` is the ``canary_probe`` result (None with ``probe_error`` when the probe could
    not run: host unreachable, task failed). ``check`` has ``status`` (ok, warning,
    inconclusive, error, violation, ended), ``findings`` (every rule seen in this check, with
    its consecutive ``count``), ``triggered`` (the violations that end the canary: roll back),
    ``events`` (new events judged) and ``reason`` (for ended and error).
    """
    new = copy.deepcopy(dict(state))
    new["checks"] += 1
    check: dict[str, Any] = {"status": OK, "findings": [], "triggered": [], "events": 0}

    if probe is not None and probe.get("config_error"):
        probe_error = f"cannot tell the engine's configuration: {probe['config_error']}"
        probe = None
    if probe is None:
        new["unjudged"] += 1
        reason = probe_error or "the probe gave no result"
        check.update(status=ERROR, reason=reason)
        if new["unjudged"] >= settings.stall_checks:
            check["triggered"] = [
                _violation(
                    "cannot_judge",
                    new["unjudged"],
                    settings.stall_checks,
                    f"the monitor could not judge the host in {new['unjudged']} checks in a "
                    f"row (limit {settings.stall_checks}): {reason}",
                    new["unjudged"],
                )
            ]
            check["status"] = VIOLATION
        return _finish(new, check)
    new["unjudged"] = 0

    ended, baseline = _canary_of(new, probe)
    if ended:
        # The canary was rolled back, promoted to full weight or replaced by someone else:
        # nothing of it is left to watch or to roll back.
        check.update(status="ended", reason=ended)
        return _finish(new, check)
    current = (probe.get("service") or {}).get("invocation_id")
    if new["baseline"] is None:
        new["baseline"] = baseline
    elif baseline["invocation_id"] != new["baseline"]["invocation_id"] and (
        current == baseline["invocation_id"]
    ):
        # A newer activation or promotion of the model (an operator's step) is the new start:
        # it is watched from its own start, with counts of its own; this check's window (read
        # from the previous start's cursor) is not judged.
        new.update(
            baseline=baseline,
            cursor=baseline.get("started_at") or new["cursor"],
            consecutive={},
            redundant_streak=0,
            stalled=0,
            inconclusive=0,
        )
        if not _service_findings(new, probe):
            check["reason"] = (
                f"new baseline: {baseline.get('event')} of {baseline.get('ts')} "
                f"(invocation {baseline['invocation_id']})"
            )
            return _finish(new, check)
    # Rule 7 before the telemetry: a crashed or restarted engine's events prove nothing.
    service_violations = _service_findings(new, probe)
    if service_violations:
        check.update(status=VIOLATION, triggered=service_violations)
        return _finish(new, check)

    gate = probe.get("gate") or {}
    if gate.get("error"):
        check.update(
            status=VIOLATION,
            triggered=[
                _violation(
                    "telemetry_unreadable",
                    gate["error"],
                    "readable",
                    f"telemetry unreadable: {gate['error']}",
                )
            ],
        )
        return _finish(new, check)

    last_id = (gate.get("window") or {}).get("last_id")
    newest = stream_id_key(new["newest_id"])
    latest = stream_id_key(last_id)
    if latest is None or (newest is not None and latest <= newest):
        new["stalled"] += 1
    else:
        new["stalled"] = 0
        new["newest_id"] = last_id
    if new["stalled"] >= settings.stall_checks:
        check.update(
            status=VIOLATION,
            triggered=[
                _violation(
                    "telemetry_stalled",
                    new["stalled"],
                    settings.stall_checks,
                    f"telemetry stalled: no new events in {new['stalled']} checks "
                    f"(limit {settings.stall_checks}; newest {new['newest_id'] or 'none'})",
                    new["stalled"],
                )
            ],
        )
        return _finish(new, check)

    check["events"] = gate.get("event_count") or 0
    conclusive, findings = _gate_model_findings(gate, settings)
    if not conclusive:
        new["inconclusive"] += 1
        check.update(status=INCONCLUSIVE, findings=findings)
        if new["inconclusive"] >= settings.inconclusive_checks:
            check["status"] = VIOLATION
            check["triggered"] = [
                _violation(
                    "inconclusive_limit",
                    new["inconclusive"],
                    settings.inconclusive_checks,
                    f"{new['inconclusive']} inconclusive checks in a row (limit "
                    f"{settings.inconclusive_checks}): " + "; ".join(f["text"] for f in findings),
                    new["inconclusive"],
                )
            ]
        return _finish(new, check)

    new["inconclusive"] = 0
    if latest is not None:
        new["cursor"] = last_id
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding["rule"]] = new["consecutive"].get(finding["rule"], 0) + 1
    new["consecutive"] = counts
    for finding in findings:
        finding["count"] = counts[finding["rule"]]
    triggered = [f for f in findings if f["count"] >= settings.persist_checks]

    entry = (gate.get("models") or {}).get(settings.model) or {}
    agreement = entry.get("agreement")
    if _is_number(agreement) and agreement > settings.redundant_agreement:
        new["redundant_streak"] += 1
        redundant = _violation(
            "redundant",
            agreement,
            settings.redundant_agreement,
            f"agreement with the ensemble {100 * agreement:.1f}% > "
            f"{100 * settings.redundant_agreement:.1f}% in {new['redundant_streak']} checks in "
            f"a row (limit {settings.redundant_checks}): the canary adds nothing of its own",
            new["redundant_streak"],
        )
        findings.append(redundant)
        if new["redundant_streak"] >= settings.redundant_checks:
            triggered.append(redundant)
    else:
        new["redundant_streak"] = 0
    check["findings"] = findings
    check["triggered"] = triggered
    check["status"] = VIOLATION if triggered else WARNING if findings else OK
    return _finish(new, check)


def _finish(new: dict, check: dict) -> tuple[dict, dict]:
    if check["triggered"]:
        new["violations"] = new["violations"] + check["triggered"]
    if check["status"] == "ended":
        new["status"] = ENDED
    new["last_check"] = {
        "status": check["status"],
        "events": check["events"],
        "rules": sorted({f["rule"] for f in check["findings"] + check["triggered"]}),
    }
    return new, check


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
    detail = f"{check['events']} events" + (f"; {'; '.join(rules)}" if rules else "")
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


_STATUS_VALUES = (ACTIVE, ROLLING_BACK, COMPLETED, ROLLED_BACK, ROLLBACK_FAILED, ENDED)


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
        if _is_number(weight):
            add("qsc_monitor_canary_weight_ratio", labels, f"{float(weight):g}")
        checked = state.get("last_check_s")
        if _is_number(checked):
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
