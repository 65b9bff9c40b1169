"""Feature drift in the canary monitor: the canary's events since its activation against the
site's feature reference (the one its gate used, ``model_safety_feature_reference``).

The probe (:mod:`.probe`) counts each read's finite feature values in the reference's bins
(:func:`..judgement.drift.window_counts`) and returns the reference it read. Counts add up, so
the host's state keeps per-feature totals since the activation (a new activation restarts
them) and each check judges the totals with :func:`..judgement.drift.drift_from_counts`:

* PSI > ``psi_block`` (0.25), or a reference feature that none of at least ``psi_min_events``
  events carries: violation ``feature_drift`` (rollback), e.g. ``Feature drift: atr_value
  PSI=0.41 (>0.25) over 260 events since the activation (reference 1000 values)``;
* PSI > ``psi_warn`` (0.1): a finding (the check is a warning);
* fewer than ``psi_min_events`` (200) values of a feature: not decided, never a violation
  (at 1 event/min that is 200 minutes); at the end of the watch the host is then
  ``inconclusive`` with the reason (:func:`drift_missing`);
* a reference that cannot be read: a finding every check, and inconclusive at the end.

Without a configured reference the monitor judges no drift and says nothing of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..judgement.drift import drift_from_counts
from .settings import MonitorSettings

RULE = "feature_drift"


def _finding(value: Any, threshold: Any, text: str) -> dict[str, Any]:
    return {"rule": RULE, "value": value, "threshold": threshold, "text": text}


def _added(totals: Mapping[str, list[int]], counts: Mapping[str, Any]) -> dict[str, list[int]]:
    summed = {name: list(values) for name, values in totals.items()}
    for name, values in counts.items():
        if name in summed and isinstance(values, list) and len(values) == len(summed[name]):
            summed[name] = [a + int(b) for a, b in zip(summed[name], values, strict=True)]
    return summed


def judge_drift(
    state: Mapping[str, Any], probe: Mapping[str, Any], settings: MonitorSettings
) -> tuple[dict[str, Any] | None, list[dict], list[dict]]:
    """``(the host's new drift state, violations, findings)`` after one probe (see the module
    docstring); the state is None while no reference is configured."""
    previous = state.get("drift")
    if probe.get("drift_error"):
        error = str(probe["drift_error"])
        kept = {**(previous or {}), "error": error}
        return kept, [], [_finding(None, None, f"feature drift not judged: {error}")]
    reference = probe.get("drift_reference")
    if not isinstance(reference, Mapping):
        return previous, [], []
    features = reference["features"]
    path = reference.get("path")
    fresh = {name: [0] * len(entry["proportions"]) for name, entry in features.items()}
    if (
        previous
        and previous.get("path") == path
        and set(previous.get("counts") or {}) == set(fresh)
    ):
        totals, events = previous["counts"], int(previous.get("events") or 0)
    else:
        totals, events = fresh, 0
    read = probe.get("drift") or {}
    totals = _added(totals, read.get("counts") or {})
    events += int(read.get("events") or 0)
    t = settings.gate_thresholds()
    judged = drift_from_counts(reference, totals, events, t, path=path, undecided_blocks=False)
    new_state = {
        "path": path,
        "counts": totals,
        "events": events,
        "status": judged["status"],
        "psi": {name: row["psi"] for name, row in judged["features"].items()},
        "undecided": [w for w in judged["warnings"] if "not decided" in w],
    }
    violations: list[dict] = []
    findings: list[dict] = []
    since = f"over {events} events since the activation"
    for name, row in judged["features"].items():
        sizes = f"{since} (reference {row['reference_n']} values)"
        if row["status"] == "block":
            text = f"Feature drift: {name} PSI={row['psi']:.2f} (>{t.psi_block:g}) {sizes}"
            violations.append({**_finding(row["psi"], t.psi_block, text), "feature": name})
        elif row["status"] == "missing":
            text = f"Feature drift: {name} missing from every event {sizes}"
            violations.append({**_finding(0, row["reference_n"], text), "feature": name})
        elif row["status"] == "warn":
            text = f"feature drift: {name} PSI={row['psi']:.2f} (>{t.psi_warn:g}) {sizes}"
            findings.append({**_finding(row["psi"], t.psi_warn, text), "feature": name})
    return new_state, violations, findings


def drift_missing(state: Mapping[str, Any]) -> list[str]:
    """What the end of the watch misses of feature drift: not decided, or not judged."""
    drift = state.get("drift")
    if not drift:
        return []
    if drift.get("error"):
        return [f"feature drift not judged: {drift['error']}"]
    return list(drift.get("undecided") or [])
