"""The scoreboard: GO / WAIT / NO-GO per model (DESIGN.md "Gate rules").

* NO-GO: the model fails the gate (its own blockers, or a window blocker such as a malformed
  event, an empty or short window: unclear = blocked).
* GO: it passes, and its agreement with ``side`` is in [``go_agreement_low``,
  ``go_agreement_high``] ([55 %, 80 %], both inclusive) and its hard disagreement is
  < ``go_max_hard_disagree`` (20 %).
* WAIT: it passes but is outside that range (the reasons say where).

Every model of the window is listed, shadow models included (``shadow`` tells them apart).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..telemetry.events import EventWindow
from ..telemetry.metrics import ensemble_metrics, model_metrics
from .gate import model_blockers, pct_pair, window_blockers
from .thresholds import Mode, Thresholds, get_mode

__all__ = ["STATUSES", "scoreboard", "status_of"]

STATUSES = ("GO", "WAIT", "NO-GO")
_DEFAULT = Thresholds()


def status_of(
    passed: bool, agreement: float | None, hard_disagree: float | None, t: Thresholds
) -> tuple[str, list[str]]:
    """(status, reasons): NO-GO unless passed; GO inside the agreement range; else WAIT."""
    if not passed:
        return "NO-GO", ["gate failed"]
    if agreement is None or hard_disagree is None:
        return "NO-GO", ["no agreement measured"]
    reasons = []
    if not t.go_agreement_low <= agreement <= t.go_agreement_high:
        value, low = pct_pair(agreement, t.go_agreement_low)
        _, high = pct_pair(agreement, t.go_agreement_high)
        reasons.append(f"agreement {value} outside [{low}, {high}]")
    if hard_disagree >= t.go_max_hard_disagree:
        value, limit = pct_pair(hard_disagree, t.go_max_hard_disagree)
        reasons.append(f"hard disagreement {value} >= {limit}")
    return ("WAIT", reasons) if reasons else ("GO", [])


def scoreboard(
    window: EventWindow, thresholds: Thresholds = _DEFAULT, mode: str | Mode = "canary"
) -> dict[str, Any]:
    """Status per model of the window, with its gate blockers and agreement figures."""
    spec = get_mode(mode)
    shared = window_blockers(window, spec)
    models: dict[str, Any] = {}
    for name in window.models:
        metrics = model_metrics(window, name)
        blockers = shared + model_blockers(metrics, spec, thresholds)
        status, reasons = status_of(
            not blockers, metrics["agreement"], metrics["hard_disagree"], thresholds
        )
        entry = dict(metrics)
        entry.update(status=status, passed=not blockers, blockers=blockers, reasons=reasons)
        models[name] = entry
    counts = {s: sum(1 for m in models.values() if m["status"] == s) for s in STATUSES}
    return {
        "mode": spec.name,
        "event_count": window.n,
        "malformed": len(window.malformed),
        "blockers": shared,
        "models": models,
        "counts": counts,
        "thresholds": asdict(thresholds),
        "ensemble": ensemble_metrics(window),
        "window": {"first_id": window.first_id, "last_id": window.last_id},
        "min_events": spec.min_events,
        "exit_code": 0,
    }
