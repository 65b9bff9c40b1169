"""The quality gate: DESIGN.md "Gate rules" over an EventWindow, fail-closed.

Per model (over its active events; thresholds from :class:`~.thresholds.Thresholds`):

* fewer active events than the mode needs (canary 200, collection 100)
* action collapse: any of BUY/SELL/HOLD > ``max_action_share`` (70 %)
* ``conf_std`` < ``min_conf_std`` (0.05)
* spread ``p90 - p10`` < ``min_spread`` (0.12)
* constant output: ``conf_std`` < ``constant_std`` (0.01) or ``p10 == p90``
* HOLD collapse: HOLD > ``hold_collapse_share`` (85 %) with the median confidence in
  [``hold_median_low``, ``hold_median_high``] ([0.40, 0.60])
* model inactive: no prediction in > ``max_inactive_share`` (5 %) of the window's events

Confidences are the models' own: where the engine capped one (QSC_CANARY_CONF_CAP), the event
carries it as ``raw_confidence`` and the rules judge that; each model's ``capped_events`` and
the result's ``raw_confidences`` (``{model: events}``, in the summary) say so.

For the window: any malformed event, an empty window, fewer valid events than the mode
needs, ``--model M`` not in the window, no voting model at all (without ``--model``).

Verdict: canary PASS iff there is no window blocker and every judged model (``--model M``,
else every voting model) has no blocker; otherwise FAIL. Collection: always COLLECTION
(exit 3), with the same blockers listed. Every blocker is a sentence with the measured value
and the threshold, e.g. ``patchtst: action collapse: BUY 93.0% > 70.0%``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..telemetry.events import ACTIONS, EventWindow
from ..telemetry.metrics import ensemble_metrics, model_metrics
from .thresholds import MODES, Mode, Thresholds, get_mode

__all__ = [
    "EXIT_CODES",
    "MALFORMED_SAMPLES",
    "add_blockers",
    "evaluate",
    "exit_code",
    "failure",
    "model_blockers",
    "model_findings",
    "window_blockers",
]

EXIT_CODES = {"PASS": 0, "FAIL": 2, "COLLECTION": 3}
"""Exit code per verdict; anything else (an unknown verdict) is 2."""
MALFORMED_SAMPLES = 10
"""How many malformed entries the result lists (``malformed_samples``)."""
_DEFAULT = Thresholds()


def _digits_apart(value: float, threshold: float, digits: int, scale: float) -> int:
    """Enough decimals (from ``digits``) that value and threshold print differently."""
    if value == threshold:
        return digits
    for extra in range(digits, digits + 8):
        if f"{value * scale:.{extra}f}" != f"{threshold * scale:.{extra}f}":
            return extra
    return digits + 8


def pct_pair(value: float, threshold: float) -> tuple[str, str]:
    """value and threshold as percentages, 1 decimal or as many as tell them apart."""
    digits = _digits_apart(value, threshold, 1, 100.0)
    return f"{value * 100:.{digits}f}%", f"{threshold * 100:.{digits}f}%"


def num_pair(value: float, threshold: float) -> tuple[str, str]:
    """value and threshold with 3 decimals, or as many as tell them apart."""
    digits = _digits_apart(value, threshold, 3, 1.0)
    return f"{value:.{digits}f}", f"{threshold:.{digits}f}"


def _finding(rule: str, value: Any, threshold: Any, text: str) -> dict[str, Any]:
    return {"rule": rule, "value": value, "threshold": threshold, "text": text}


def model_findings(
    metrics: dict[str, Any], mode: str | Mode = "canary", thresholds: Thresholds = _DEFAULT
) -> list[dict[str, Any]]:
    """Every rule ``metrics`` (from :func:`~.metrics.model_metrics`) breaks, each as
    ``{rule, value, threshold, text}``: the rule's name, the measured value, the threshold it
    broke and the blocker sentence. The monitor tells rules apart by ``rule``.

    Rules: ``too_few_events``, ``not_in_window``, ``no_active_events`` (nothing to judge yet),
    ``action_collapse``, ``flat_predictions`` (conf_std), ``narrow_spread`` (p90 - p10),
    ``constant_output``, ``hold_collapse`` and ``model_inactive``.
    """
    spec = get_mode(mode)
    t = thresholds
    found: list[dict[str, Any]] = []
    if not metrics.get("in_window", True):
        text = "not in the window (no event reports this model)"
        return [_finding("not_in_window", 0, 1, text)]
    n = metrics["n"]
    if n < spec.min_events:
        text = f"{n} events < {spec.min_events} required ({spec.name})"
        found.append(_finding("too_few_events", n, spec.min_events, text))
    if n == 0:
        found.append(_finding("no_active_events", 0, 1, "no active events: nothing to judge"))
    else:
        for action in ACTIONS:
            share = metrics["actions"][action]
            if share > t.max_action_share:
                value, limit = pct_pair(share, t.max_action_share)
                text = f"action collapse: {action} {value} > {limit}"
                found.append(_finding("action_collapse", share, t.max_action_share, text))
        conf_std, p10, p90 = metrics["conf_std"], metrics["p10"], metrics["p90"]
        if conf_std < t.min_conf_std:
            value, limit = num_pair(conf_std, t.min_conf_std)
            text = f"conf_std {value} < {limit}"
            found.append(_finding("flat_predictions", conf_std, t.min_conf_std, text))
        if metrics["spread"] < t.min_spread:
            value, limit = num_pair(metrics["spread"], t.min_spread)
            text = f"spread p90-p10 {value} < {limit}"
            found.append(_finding("narrow_spread", metrics["spread"], t.min_spread, text))
        if conf_std < t.constant_std:
            value, limit = num_pair(conf_std, t.constant_std)
            text = f"constant output: conf_std {value} < {limit}"
            found.append(_finding("constant_output", conf_std, t.constant_std, text))
        if p10 == p90:
            text = f"constant output: p10 == p90 == {p10:.3f}"
            found.append(_finding("constant_output", p90 - p10, 0.0, text))
        hold, median = metrics["actions"]["HOLD"], metrics["median"]
        if hold > t.hold_collapse_share and t.hold_median_low <= median <= t.hold_median_high:
            value, limit = pct_pair(hold, t.hold_collapse_share)
            text = (
                f"HOLD collapse: HOLD {value} > {limit} with median confidence {median:.3f} "
                f"in [{t.hold_median_low:.2f}, {t.hold_median_high:.2f}]"
            )
            found.append(_finding("hold_collapse", hold, t.hold_collapse_share, text))
    inactive_share = metrics["inactive_share"]
    if inactive_share is not None and inactive_share > t.max_inactive_share:
        value, limit = pct_pair(inactive_share, t.max_inactive_share)
        events = metrics["n"] + metrics["inactive"] + metrics["absent"]
        text = (
            f"model inactive: no prediction in {value} of events > {limit} "
            f"(inactive {metrics['inactive']}, absent {metrics['absent']} of {events})"
        )
        found.append(_finding("model_inactive", inactive_share, t.max_inactive_share, text))
    return found


def model_blockers(
    metrics: dict[str, Any], mode: str | Mode = "canary", thresholds: Thresholds = _DEFAULT
) -> list[str]:
    """Every rule ``metrics`` breaks, as sentences (the ``text`` of :func:`model_findings`)."""
    return [finding["text"] for finding in model_findings(metrics, mode, thresholds)]


def window_blockers(window: EventWindow, mode: str | Mode = "canary") -> list[str]:
    """Blockers of the window itself (prefixed ``window:``): malformed, empty, too short."""
    spec = get_mode(mode)
    blockers: list[str] = []
    if window.malformed:
        count = len(window.malformed)
        first = window.malformed[0]
        noun = "event" if count == 1 else "events"
        blockers.append(
            f"window: {count} malformed {noun} (first {first.stream_id}: {first.reason})"
        )
    if window.total == 0:
        blockers.append("window: empty (no events)")
    elif window.n < spec.min_events:
        blockers.append(f"window: {window.n} events < {spec.min_events} required ({spec.name})")
    return blockers


def _model_entry(
    metrics: dict[str, Any], findings: list[dict[str, Any]], judged: bool
) -> dict[str, Any]:
    entry = dict(metrics)
    blockers = [finding["text"] for finding in findings]
    entry.update(passed=not blockers, judged=judged, blockers=blockers, findings=findings)
    return entry


def evaluate(
    window: EventWindow,
    *,
    mode: str | Mode = "canary",
    model: str | None = None,
    thresholds: Thresholds = _DEFAULT,
) -> dict[str, Any]:
    """The DESIGN ``--json`` result for ``window``; see the module docstring for the rules.

    Keys: verdict, mode, event_count (valid events), malformed (count), blockers, models
    (every model in the window, plus ``model`` when absent; each with ``passed``, ``judged``,
    its metrics and its own blockers), model, thresholds, malformed_samples (the first 10
    ``{stream_id, reason}``), ensemble, window (first_id, last_id), min_events, exit_code,
    summary.
    """
    spec = get_mode(mode)
    blockers = window_blockers(window, spec)
    models: dict[str, dict[str, Any]] = {}
    for name in window.models:
        metrics = model_metrics(window, name)
        metrics["capped_events"] = window.models[name].capped_events
        judged = name == model if model is not None else not metrics["shadow"]
        models[name] = _model_entry(metrics, model_findings(metrics, spec, thresholds), judged)
    if model is not None and model not in models:
        metrics = model_metrics(window, model)
        models[model] = _model_entry(metrics, model_findings(metrics, spec, thresholds), True)
    judged_names = [name for name, entry in models.items() if entry["judged"]]
    if not judged_names and window.n > 0:
        blockers.append("window: no voting model in the window")
    for name in judged_names:
        blockers.extend(f"{name}: {text}" for text in models[name]["blockers"])
    if not spec.promotes:
        verdict = "COLLECTION"
    elif judged_names and not blockers:
        verdict = "PASS"
    else:
        verdict = "FAIL"
    result = {
        "verdict": verdict,
        "mode": spec.name,
        "event_count": window.n,
        "malformed": len(window.malformed),
        "blockers": blockers,
        "models": models,
        "model": model,
        "judged": judged_names,
        "thresholds": asdict(thresholds),
        "malformed_samples": [
            {"stream_id": m.stream_id, "reason": m.reason}
            for m in window.malformed[:MALFORMED_SAMPLES]
        ],
        "ensemble": ensemble_metrics(window),
        "window": {"first_id": window.first_id, "last_id": window.last_id},
        "min_events": spec.min_events,
        "raw_confidences": {
            name: entry["capped_events"]
            for name, entry in models.items()
            if entry.get("capped_events")
        },
    }
    result["exit_code"] = exit_code(result)
    result["summary"] = _summary(result)
    return result


def _summary(result: dict[str, Any]) -> str:
    judged = ", ".join(result.get("judged") or []) or "no model"
    count = len(result["blockers"])
    noun = "blocker" if count == 1 else "blockers"
    return (
        f"{result['verdict']} ({result['mode']}): {count} {noun}; judged {judged} over "
        f"{result['event_count']} events ({result['malformed']} malformed)"
        f"{_raw_confidence_note(result.get('raw_confidences') or {})}"
    )


def _raw_confidence_note(raw_confidences: dict[str, int]) -> str:
    """``"; judged on raw confidences: patchtst 412 events capped"``, or "" when no event of
    any model was capped."""
    if not raw_confidences:
        return ""
    counts = ", ".join(f"{name} {count} events capped" for name, count in raw_confidences.items())
    return f"; judged on raw confidences: {counts}"


def failure(
    mode: str | Mode,
    reason: str,
    model: str | None = None,
    thresholds: Thresholds = _DEFAULT,
) -> dict[str, Any]:
    """A result for an error before any window (Redis down, bad arguments, ...).

    FAIL, or COLLECTION in collection mode (which never promotes and always exits 3); the
    reason is the only blocker. An unknown mode gives FAIL.
    """
    spec = mode if isinstance(mode, Mode) else MODES.get(mode) if isinstance(mode, str) else None
    verdict = "COLLECTION" if spec is not None and not spec.promotes else "FAIL"
    result: dict[str, Any] = {
        "verdict": verdict,
        "mode": spec.name if spec is not None else str(mode),
        "event_count": 0,
        "malformed": 0,
        "blockers": [reason],
        "models": {},
        "model": model,
        "judged": [],
        "thresholds": asdict(thresholds),
        "malformed_samples": [],
        "ensemble": {},
        "window": {"first_id": None, "last_id": None},
        "min_events": spec.min_events if spec is not None else None,
        "raw_confidences": {},
        "error": reason,
    }
    result["exit_code"] = exit_code(result)
    result["summary"] = _summary(result)
    return result


def exit_code(result: dict[str, Any]) -> int:
    """0 for PASS, 3 for COLLECTION, 2 for FAIL and for anything unexpected."""
    verdict = result.get("verdict") if isinstance(result, dict) else None
    return EXIT_CODES.get(verdict, 2) if isinstance(verdict, str) else 2


def add_blockers(result: dict[str, Any], blockers: list[str]) -> dict[str, Any]:
    """``result`` with more window blockers (feature drift): a PASS becomes a FAIL (collection
    stays COLLECTION, the blockers listed), the exit code and the summary follow."""
    if blockers:
        result["blockers"] = [*result["blockers"], *blockers]
        if result["verdict"] == "PASS":
            result["verdict"] = "FAIL"
        result["exit_code"] = exit_code(result)
        result["summary"] = _summary(result)
    return result
