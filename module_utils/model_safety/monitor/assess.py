"""The canary monitor's judgement: from one probe of a canary host to its violations.

``model-safety monitor`` probes every canary host each interval (the ``canary_probe`` module
through ansible-runner: the service's state, the canary's activation record, the configured
canary and the canary model's view of the events since the last read) and feeds each probe to
:func:`assess` with the host's state. Each host keeps a window: its events since the
activation's start, the newest ``window_events`` of them. The model-quality rules are decided
on evidence by sequential tests (:mod:`.evidence`: e-detectors at a declared false-rollback
rate, confirmed with new events), per host and, when one canary runs on several hosts, over
their pooled events (:func:`assess_pool`). Violations (``rule`` names):

=====================  ==========================================  ======================
rule                   what                                        decided
=====================  ==========================================  ======================
``action_collapse``    a class > 70 % (HOLD collapse included)     on evidence
``constant_output``    the confidence repeats (within 0.01)        on evidence
``narrow_spread``      p90 - p10 < 0.12 (conf_std < 0.05 too)      on evidence
``hard_disagreement``  BUY vs SELL against the ensemble > 25 %     on evidence
``redundant``          agreement with the ensemble > 85 %          on evidence
``model_inactive``     no prediction in > 5 % of events            on evidence
``malformed_events``   malformed entries, in two reads in a row    new entries confirm
``service_inactive``,  the service stopped, or restarted since     at once (read twice
``service_restarted``  the activation (InvocationID, NRestarts)    within the check)
``telemetry_unreadable``  Redis unreachable, ...                   at once (after retries)
``telemetry_stalled``  silence improbable at the model's own rate  at once (stall_after_s)
``cannot_judge``       the probe failed ``stall_checks`` times      at once
``feature_drift``      a feature's PSI > 0.25 since the activation  >= 200 values
                       (:mod:`.drift_watch`; PSI > 0.1 a warning)   (not decided below)
``restart_loop``,      the runbook's stop conditions                per check (counts and
``log_spam``,          (:mod:`.stop_watch`; ``consensus_redundant``  evidence for the
``disk_growth``,       and a failed measure are warnings)           events-based ones)
``payload_p95``,
``consensus_broken``
=====================  ==========================================  ======================

Too few events is never by itself a violation: it is "not decided yet". At the end of the
watch (:func:`end_of_watch`) a host is ``safe`` only when its window bounds every rule on the
healthy side, else ``inconclusive`` with what is missing. Pure functions over plain
JSON-serialisable data, so the state is persisted as it is.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..engine.stream_stats import span_rate
from ..telemetry.events import ACTIONS
from ..telemetry.metrics import hard_disagreement
from . import evidence
from .drift_watch import drift_missing, judge_drift
from .healthy_bounds import healthy_bounds, missing_text, violation_text
from .observations import INACTIVE, EvidenceError, Observations
from .settings import (
    ENDED,
    ERROR,
    FALLBACK_RATE,
    INCONCLUSIVE,
    OK,
    POOL,
    SAFE,
    VIOLATION,
    WARNING,
    MonitorSettings,
    is_number,
    share_of_alpha,
    stall_after_s,
    stream_id_key,
)
from .stop_watch import judge_stop_conditions


def _violation(rule: str, value: Any, threshold: Any, text: str, **extra: Any) -> dict:
    return {"rule": rule, "value": value, "threshold": threshold, "text": text, **extra}


def _service_findings(state: dict, probe: Mapping[str, Any]) -> list[dict]:
    """The canary's service must stay active, on the start that activated it."""
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


def _restart_window(new: dict, baseline: dict) -> None:
    """Watch from ``baseline``'s start: a new window, new evidence."""
    new.update(
        baseline=baseline,
        cursor=baseline.get("started_at") or new["cursor"],
        newest_id=None,
        window=[],
        events=0,
        detectors=None,
        drift=None,
        malformed_pending=False,
        stop=None,
    )


def window_summary(window: Observations) -> dict[str, Any]:
    """What the check log and the progress line show of a window: the gate's measures."""
    active = window.action != INACTIVE
    n = int(np.count_nonzero(active))
    summary: dict[str, Any] = {"events": window.n, "n": n}
    if not n:
        return summary
    action, conf, side = window.action[active], window.confidence[active], window.side[active]
    counts = np.bincount(action.astype(np.intp), minlength=3)
    p10, median, p90 = (round(float(v), 4) for v in np.percentile(conf, [10, 50, 90]))
    summary.update(
        actions={a: round(int(c) / n, 4) for a, c in zip(ACTIONS, counts[:3], strict=True)},
        conf_std=round(float(np.std(conf)), 4),
        p10=p10,
        median=median,
        p90=p90,
        agreement=round(int(np.count_nonzero(action == side)) / n, 4),
        hard_disagree=round(int(np.count_nonzero(hard_disagreement(action, side))) / n, 4),
    )
    return summary


def pooled_specs(settings: MonitorSettings) -> tuple[evidence.DetectorSpec, ...]:
    """The rules judged over a canary's hosts together: the model's quality. An inactive
    model is judged per host only: a host whose features or inference broke is that host's
    fault, and rolls back that host."""
    return tuple(spec for spec in settings.specs() if spec.rule != "model_inactive")


def _judge_evidence(
    detectors: dict,
    obs: Observations,
    settings: MonitorSettings,
    scope: str,
    specs: tuple[evidence.DetectorSpec, ...],
) -> tuple[dict, list[dict], list[dict]]:
    """Feed ``obs`` to a set of detectors; (new set, pending findings, decided violations)."""
    t = settings.gate_thresholds()
    already = {d["detector"] for d in evidence.decisions(detectors, specs)}
    updated = evidence.update_detectors(
        detectors,
        specs,
        obs,
        constant_std=t.constant_std,
        min_spread=t.min_spread,
        confirm_events=settings.confirm_events,
    )
    levels = evidence.evidence_levels(updated, specs)
    pending = [
        _violation(
            name.split(":")[0],
            levels[name],
            0.0,
            f"{name}: evidence crossed its threshold ({scope}); waiting for "
            f"{settings.confirm_events} new events to confirm",
            detector=name,
            scope=scope,
        )
        for name in evidence.pending(updated)
    ]
    decided = [
        _violation(
            found["rule"],
            found["value"],
            found["threshold"],
            violation_text(found) + (f" ({scope})" if scope != "host" else ""),
            detector=found["detector"],
            scope=scope,
            evidence={k: found[k] for k in ("n", "crossed_n", "onset_n", "events", "log_e")},
        )
        for found in evidence.decisions(updated, specs)
        if found["detector"] not in already
    ]
    return updated, pending, decided


def assess(
    state: Mapping[str, Any],
    probe: Mapping[str, Any] | None,
    settings: MonitorSettings,
    probe_error: str | None = None,
    hosts: int = 1,
) -> tuple[dict, dict, Observations]:
    """Judge one check of one host: returns ``(new_state, check, new observations)``.

    ``probe`` is the ``canary_probe`` result (None with ``probe_error`` when the probe could
    not run: host unreachable, task failed); ``hosts`` is how many hosts this monitor watches
    (their share of the false-rollback rate). ``check`` has ``status`` (ok, warning, error,
    violation, ended), ``findings`` (crossings waiting for confirmation), ``triggered`` (the
    violations that end the canary: roll back), ``events`` (new events read), ``window`` (the
    window's measures) and ``reason`` (for ended and error). The new observations go to the
    pooled judgement (:func:`assess_pool`).
    """
    new = copy.deepcopy(dict(state))
    new["checks"] += 1
    nothing = Observations.empty()
    check: dict[str, Any] = {"status": OK, "findings": [], "triggered": [], "events": 0}

    if probe is not None and probe.get("config_error"):
        probe_error = f"cannot tell the engine's configuration: {probe['config_error']}"
        probe = None
    if probe is None:
        _unjudged(new, check, probe_error or "the probe gave no result", settings)
        return (*_finish(new, check), nothing)
    unjudged, new["unjudged"] = new["unjudged"], 0

    ended, baseline = _canary_of(new, probe)
    if ended:
        # The canary was rolled back, promoted to full weight or replaced by someone else:
        # nothing of it is left to watch or to roll back.
        check.update(status="ended", reason=ended)
        return (*_finish(new, check), nothing)
    current = (probe.get("service") or {}).get("invocation_id")
    if new["baseline"] is None:
        new["baseline"] = baseline
    elif baseline["invocation_id"] != new["baseline"]["invocation_id"] and (
        current == baseline["invocation_id"]
    ):
        # A newer activation or promotion of the model (an operator's step) is the new start:
        # it is watched from its own start with evidence of its own; this check's read (from
        # the previous start's cursor) is not judged.
        _restart_window(new, baseline)
        if not _service_findings(new, probe):
            check["reason"] = (
                f"new baseline: {baseline.get('event')} of {baseline.get('ts')} "
                f"(invocation {baseline['invocation_id']})"
            )
            return (*_finish(new, check), nothing)
    # The service before the telemetry: a crashed or restarted engine's events prove nothing.
    service_violations = _service_findings(new, probe)
    if service_violations:
        check.update(status=VIOLATION, triggered=service_violations)
        return (*_finish(new, check), nothing)

    if probe.get("telemetry_error"):
        check.update(
            status=VIOLATION,
            triggered=[
                _violation(
                    "telemetry_unreadable",
                    probe["telemetry_error"],
                    "readable",
                    f"telemetry unreadable: {probe['telemetry_error']}",
                )
            ],
        )
        return (*_finish(new, check), nothing)

    rate = (probe.get("rate") or {}).get("rate_per_s")
    if new["rate"] is None and is_number(rate) and rate > 0:
        new["rate"] = rate
    observations = probe.get("observations") or {}
    try:
        obs = Observations.from_rows(observations.get("rows") or [])
    except EvidenceError as exc:
        # A probe whose events cannot be judged is a failed probe: counted like one, so that
        # it ends in cannot_judge instead of erring forever unjudged (and unstalled).
        new["unjudged"] = unjudged
        _unjudged(new, check, f"the probe's observations are unusable: {exc}", settings)
        return (*_finish(new, check), nothing)
    last_id = observations.get("last_id")
    if stream_id_key(last_id) is not None:
        new["cursor"] = new["newest_id"] = last_id
    check["events"] = obs.n
    new["events"] += obs.n
    # The rows carry the model's own confidence where the engine capped it: say so.
    capped = observations.get("capped")
    if is_number(capped) and capped > 0:
        check["capped_events"] = int(capped)
        new["capped_events"] = new.get("capped_events", 0) + int(capped)

    window = Observations.merge([Observations.from_rows(new["window"]), obs]).tail(
        settings.window_events
    )
    new["window"] = window.rows()
    silence = probe.get("silence_s")
    # Without a rate before the activation, the window's own rate since it.
    rate = new["rate"] or window_rate(window)
    limit = stall_after_s(settings, rate)
    check["silence_s"], check["stall_after_s"] = silence, round(limit, 1)
    if not is_number(silence) or silence >= limit:
        heard = "no event in the stream" if not is_number(silence) else f"{silence:.0f} s"
        check.update(
            status=VIOLATION,
            triggered=[
                _violation(
                    "telemetry_stalled",
                    silence,
                    round(limit, 1),
                    f"telemetry stalled: silent for {heard} (limit {limit:.0f} s: improbable "
                    f"at the rate of {_rate_text(rate)}; newest {probe.get('newest_id')})",
                )
            ],
        )
        return (*_finish(new, check), obs)

    check["window"] = window_summary(window)

    triggered: list[dict] = []
    malformed = observations.get("malformed") or 0
    if malformed:
        if new["malformed_pending"]:
            triggered.append(
                _violation(
                    "malformed_events",
                    malformed,
                    0,
                    f"{malformed} malformed events, after malformed events in the previous read",
                )
            )
        else:
            check["findings"].append(
                _violation("malformed_events", malformed, 0, f"{malformed} malformed events")
            )
        new["malformed_pending"] = True
    elif obs.n:
        new["malformed_pending"] = False

    new["stop"], stop_violations, stop_warnings = judge_stop_conditions(new, probe, settings, hosts)
    triggered += stop_violations
    check["findings"] += stop_warnings

    new["drift"], drift_violations, drift_findings = judge_drift(new, probe, settings)
    triggered += drift_violations
    check["findings"] += drift_findings

    if new["detectors"] is None:
        planned = evidence.planned_events(new["rate"], settings.duration_s, FALLBACK_RATE)
        alpha = share_of_alpha(settings, hosts, pooled=False)
        new["detectors"] = evidence.new_detectors(settings.specs(), alpha, planned)
    new["detectors"], pending, decided = _judge_evidence(
        new["detectors"], obs, settings, "host", settings.specs()
    )
    check["findings"] += pending
    triggered += decided
    check["triggered"] = triggered
    check["status"] = VIOLATION if triggered else WARNING if check["findings"] else OK
    return (*_finish(new, check), obs)


def _unjudged(new: dict, check: dict, reason: str, settings: MonitorSettings) -> None:
    """A check that could not judge the host: an error, and ``cannot_judge`` once it is the
    ``stall_checks``-th in a row."""
    new["unjudged"] += 1
    check.update(status=ERROR, reason=reason)
    if new["unjudged"] >= settings.stall_checks:
        check["triggered"] = [
            _violation(
                "cannot_judge",
                new["unjudged"],
                settings.stall_checks,
                f"the monitor could not judge the host in {new['unjudged']} checks in a "
                f"row (limit {settings.stall_checks}): {reason}",
            )
        ]
        check["status"] = VIOLATION


def window_rate(window: Observations) -> float | None:
    """Events per second over a window's stream times ((n - 1) / span), None when unknown."""
    return span_rate(window.time_ms[::-1].tolist())


def _rate_text(rate: float | None) -> str:
    if not rate:
        return "an unknown rate"
    return f"{rate * 60:.3g} events/min" if rate < 1 else f"{rate:.3g} events/s"


def new_pool(settings: MonitorSettings, states: Mapping[str, Mapping[str, Any]]) -> dict:
    """The pooled evidence of a canary on several hosts (None for one host)."""
    return {
        "host": POOL,
        "model": settings.model,
        "hosts": sorted(states),
        "detectors": None,
        "decided": [],
    }


def assess_pool(
    pool: Mapping[str, Any],
    observations: Mapping[str, Observations],
    states: Mapping[str, Mapping[str, Any]],
    settings: MonitorSettings,
) -> tuple[dict, list[dict], list[dict]]:
    """Judge the new events of every host of the canary together (one model, one collapse):
    ``(new pool, pending findings, decided violations)``; a decided violation rolls back every
    host of the canary still watched."""
    new = copy.deepcopy(dict(pool))
    hosts = new["hosts"]
    if len(hosts) < 2:
        return new, [], []
    if new["detectors"] is None:
        planned = sum(
            evidence.planned_events(state.get("rate"), settings.duration_s, FALLBACK_RATE)
            for state in states.values()
        )
        alpha = share_of_alpha(settings, len(hosts), pooled=True)
        new["detectors"] = evidence.new_detectors(pooled_specs(settings), alpha, planned)
    merged = Observations.merge([obs for host, obs in observations.items() if host in hosts])
    scope = f"pooled over {len(hosts)} hosts"
    new["detectors"], pending, decided = _judge_evidence(
        new["detectors"], merged, settings, scope, pooled_specs(settings)
    )
    new["decided"] = new["decided"] + decided
    return new, pending, decided


def end_of_watch(state: Mapping[str, Any], settings: MonitorSettings) -> dict[str, Any]:
    """The host's result when its watch ends without a violation: ``result`` ``safe`` when its
    window bounds every rule on the healthy side, else ``inconclusive`` with ``missing`` (what
    was not bounded), and ``bounds`` per detector."""
    t = settings.gate_thresholds()
    window = Observations.from_rows(state.get("window") or [])
    bounds = healthy_bounds(
        settings.specs(), window, constant_std=t.constant_std, min_spread=t.min_spread
    )
    missing = [missing_text(bound) for bound in bounds if not bound["safe"]]
    missing += drift_missing(state)
    return {
        "result": INCONCLUSIVE if missing else SAFE,
        "missing": missing,
        "window_events": window.n,
        "bounds": bounds,
    }


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
