"""The promotion check: the hard blockers before a model moves out of shadow or up the canary
ladder (0.10 -> 0.25 -> 0.50 -> 1.0), over the host's own telemetry since its current start.

By the model's current role:

* ``shadow`` (going to the first canary step): the shadow report of the model
  (:func:`.shadow.shadow_report`) must be READY (>= 3 of its 4 gates pass, or 2 of 3 with
  calibration DEFER) with no hard blocker (counted as a voter, payload p95 >=
  ``max_payload_p95``, hard disagreement > ``shadow_max_hard_disagree``, nothing to judge,
  malformed events). Evidence: ``shadow_report``.
* ``voting`` (the canary going up the ladder; the shadow report does not apply, the model
  votes): the canary-mode quality gate of the model must PASS (:func:`.gate.evaluate`, 200
  events, any malformed event fails it), its hard disagreement must be <=
  ``shadow_max_hard_disagree``, the payload p95 < ``max_payload_p95``, and it must vote in
  every event that reports it (a shadow tag means the role is not what the caller thinks).
  Evidence: ``gate``.

For both, the canary must not be significantly worse than the ensemble without it (for a
shadow model: the published side) on the same window (:mod:`.compare_loss`: one-sided exact
binomial p < ``compare_alpha`` of losing more than ``compare_max_loss_share`` of their
disagreements over ``compare_horizon_s``; not decided is not a blocker; evidence:
``comparison``), and the service must have been up ``min_uptime_s`` seconds on its current
start (the caller measures ``uptime_s``; nothing here reads systemd). From a canary step, the
monitor must also have found the step safe (:mod:`.promotion_watch`, read from the host's
activation log by the ``promotion_check`` module and added with :func:`with_monitor`), unless
overridden.
The verdict is GO only without any blocker; each blocker is a sentence with the measured
value and the threshold. Arguments that make no sense (an unknown role, a bad model name, a
negative or non-finite uptime) raise ValueError: the caller turns that into a BLOCKED result
(:func:`blocked_check`), never a GO.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ..engine.weights import WeightsError, configured_model
from ..names import is_model_name
from ..telemetry.events import EventWindow
from .compare_loss import compare_for_promotion, comparison_blocker
from .gate import evaluate, pct_pair
from .shadow import GATES, readiness, shadow_report
from .stop_rules import payload_p95_blocker
from .thresholds import Thresholds

__all__ = [
    "ROLES",
    "blocked_check",
    "promotion_check",
    "uptime_blockers",
    "validate_baseline_weights",
    "validate_promotion_args",
    "with_monitor",
]

ROLES = ("shadow", "voting")
VERDICTS = {"GO": 0, "BLOCKED": 2}
"""Verdict -> exit code."""
GATE_MODE = "canary"
_DEFAULT = Thresholds()


def _seconds_pair(value: float, threshold: float) -> tuple[str, str]:
    """Both in seconds, whole unless more decimals are needed to tell them apart."""
    digits = 0
    while digits < 6 and f"{value:.{digits}f}" == f"{threshold:.{digits}f}" and value != threshold:
        digits += 1
    return f"{value:.{digits}f}", f"{threshold:.{digits}f}"


def _finite_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
    return float(value)


def validate_promotion_args(
    model: Any, current_role: Any, uptime_s: Any, min_uptime_s: Any
) -> tuple[float, float]:
    """(uptime_s, min_uptime_s) as floats; ValueError naming the first argument that is bad."""
    if not is_model_name(model):
        raise ValueError(f"not a valid model name (^[a-z][a-z0-9_]{{0,31}}$): {model!r}")
    if current_role not in ROLES:
        raise ValueError(f"unknown current_role {current_role!r} (one of {', '.join(ROLES)})")
    return _finite_seconds("uptime_s", uptime_s), _finite_seconds("min_uptime_s", min_uptime_s)


def validate_baseline_weights(weights: Any, model: str) -> dict[str, float]:
    """The baseline weights (each model's name valid, weights > 0 summing to 1, ``model`` one
    of them) as a dict; ValueError naming what is wrong."""
    try:
        return configured_model(weights, model)
    except WeightsError as exc:
        raise ValueError(f"bad baseline weights: {exc}") from None


def uptime_blockers(uptime_s: float, min_uptime_s: float) -> list[str]:
    """The service must have been up ``min_uptime_s`` seconds on its current start."""
    if uptime_s >= min_uptime_s:
        return []
    value, limit = _seconds_pair(uptime_s, min_uptime_s)
    return [f"service up {value} s < min_uptime {limit} s on its current start (not yet stable)"]


def _shadow_blockers(report: dict[str, Any]) -> list[str]:
    hard = list(report["hard_blockers"])
    gates_status, passed, required = readiness(report["gates"], [])
    if gates_status == "READY":
        return hard
    failed = [b for b in report["blockers"] if b not in hard]
    summary = f"shadow report NOT_READY: {passed} of {len(GATES)} gates pass, {required} required"
    return [*hard, summary, *failed]


def _voting_blockers(gate: dict[str, Any], model: str, t: Thresholds) -> list[str]:
    blockers = [f"quality gate ({GATE_MODE}): {b}" for b in gate["blockers"]]
    if gate["verdict"] != "PASS" and not blockers:
        blockers.append(f"quality gate ({GATE_MODE}) {gate['verdict']} with no blocker reported")
    metrics = gate["models"][model]
    if metrics["shadow_events"]:
        blockers.append(
            f"{model}: tagged shadow in {metrics['shadow_events']} of {metrics['present']} "
            "events that report it (a voting canary votes in every event)"
        )
    hard_disagree = metrics["hard_disagree"]
    if hard_disagree is not None and hard_disagree > t.shadow_max_hard_disagree:
        shown, limit = pct_pair(hard_disagree, t.shadow_max_hard_disagree)
        blockers.append(f"{model}: hard disagreement {shown} > {limit}")
    payload = payload_p95_blocker(gate["ensemble"]["payload_p95"], t)
    if payload:
        blockers.append(payload)
    return blockers


def _result(
    model: str,
    current_role: str,
    blockers: list[str],
    uptime_s: float | None,
    min_uptime_s: float | None,
    thresholds: Thresholds,
    **evidence: Any,
) -> dict[str, Any]:
    result = {
        "verdict": None,
        "model": model,
        "current_role": current_role,
        "blockers": blockers,
        "uptime_s": uptime_s,
        "min_uptime_s": min_uptime_s,
        **evidence,
        "thresholds": asdict(thresholds),
    }
    return _judged(result)


def _judged(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with its verdict, exit code and summary set from its blockers."""
    blockers = result["blockers"]
    verdict = "BLOCKED" if blockers else "GO"
    count = len(blockers)
    result["verdict"] = verdict
    result["exit_code"] = VERDICTS[verdict]
    result["summary"] = (
        f"promotion of {result['model']} ({result['current_role']}): {verdict}, {count} "
        f"{'blocker' if count == 1 else 'blockers'}; {result.get('event_count', 0)} events"
    )
    return result


def with_monitor(check: dict[str, Any], monitor: dict[str, Any]) -> dict[str, Any]:
    """``check`` (a result of :func:`promotion_check` or :func:`blocked_check`) with the
    monitor's decision on the canary's current step (:func:`.promotion_watch.decide`) as
    ``monitor``: its ``blockers`` (none when ``safe`` or overridden) are added to the check's,
    and the verdict, exit code and summary follow."""
    result = {**check, "blockers": [*check["blockers"], *monitor["blockers"]], "monitor": monitor}
    return _judged(result)


def promotion_check(
    window: EventWindow,
    model: str,
    current_role: str,
    thresholds: Thresholds,
    uptime_s: float,
    min_uptime_s: float,
    weights: Mapping[str, float],
) -> dict[str, Any]:
    """GO or BLOCKED for promoting ``model`` from ``current_role`` (see the module docstring).

    ``weights`` are the baseline weights (the vote without the canary). Keys: verdict, model,
    current_role, blockers, uptime_s, min_uptime_s, shadow_report (role shadow) or gate (role
    voting; the canary-mode gate result for ``model``), comparison (:func:`.compare_loss.
    loss_check` with the whole comparison as ``result``), ensemble, event_count, malformed,
    window (first_id, last_id), thresholds, exit_code (0 GO, 2 BLOCKED), summary. ValueError
    for nonsensical arguments.
    """
    uptime, min_uptime = validate_promotion_args(model, current_role, uptime_s, min_uptime_s)
    baseline = validate_baseline_weights(weights, model)
    t = thresholds
    evidence: dict[str, Any]
    if current_role == "shadow":
        report = shadow_report(window, model, thresholds=t)
        blockers = _shadow_blockers(report)
        evidence = {"shadow_report": report, "ensemble": report["ensemble"]}
    else:
        gate = evaluate(window, mode=GATE_MODE, model=model, thresholds=t)
        blockers = _voting_blockers(gate, model, t)
        evidence = {"gate": gate, "ensemble": gate["ensemble"]}
    comparison, loss = compare_for_promotion(window, model, current_role, baseline, t)
    blockers += comparison_blocker(loss)
    blockers += uptime_blockers(uptime, min_uptime)
    return _result(
        model,
        current_role,
        blockers,
        uptime,
        min_uptime,
        t,
        **evidence,
        comparison={**loss, "result": comparison},
        event_count=window.n,
        malformed=len(window.malformed),
        window={"first_id": window.first_id, "last_id": window.last_id},
    )


def blocked_check(
    reason: str,
    model: Any,
    current_role: Any,
    uptime_s: Any,
    min_uptime_s: Any,
    thresholds: Thresholds = _DEFAULT,
) -> dict[str, Any]:
    """BLOCKED before any window was judged (Redis unreachable, bad arguments, ...): ``reason``
    is the first blocker (and ``error``), then the uptime blocker when the uptimes are valid."""
    blockers = [reason]
    try:
        uptime = _finite_seconds("uptime_s", uptime_s)
        min_uptime = _finite_seconds("min_uptime_s", min_uptime_s)
    except ValueError:
        uptime = min_uptime = None
    else:
        blockers += uptime_blockers(uptime, min_uptime)
    result = _result(
        model if is_model_name(model) else None,
        current_role if current_role in ROLES else None,
        blockers,
        uptime,
        min_uptime,
        thresholds,
        ensemble={},
        event_count=0,
        malformed=0,
        window={"first_id": None, "last_id": None},
    )
    result["error"] = reason
    return result
