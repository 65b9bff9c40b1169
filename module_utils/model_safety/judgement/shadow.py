"""Shadow report: may a shadow model leave shadow? Four gates and the hard blockers.

Gates (each ``{"status": PASS|FAIL|DEFER, "value", "threshold"}``, over the model's active
events):

* ``action_diversity``: PASS when no action class is > ``max_action_share`` (70 %).
* ``confidence_spread``: PASS when the population std of its confidences is
  >= ``min_conf_std`` (0.05).
* ``agreement``: PASS when its agreement with the ensemble's ``side`` is
  >= ``shadow_min_agreement`` (55 %).
* ``calibration``: for every active BUY or SELL of the model in an event with a price, the
  truth is the sign of (price of the same symbol at the first event at least
  ``calibration_horizon_s`` (60 s) later, by ``timestamp``) - (price now); events without
  such a later price, or whose price did not move, are not judged; HOLD is never judged.
  The judged confidences are cut into ``calibration_buckets`` (3) quantile buckets (numpy's
  linear quantiles as edges; buckets are right-closed like pandas.qcut: a confidence equal
  to an inner edge goes to the lower bucket).
  PASS when the directional accuracy never decreases from the lowest to the highest bucket
  and the highest is > the lowest; DEFER below ``calibration_min_events`` (100) judged
  events; FAIL otherwise (an empty bucket included).

READY when >= 3 of the 4 gates pass, or when calibration is DEFER and >= 2 of the other 3
pass; else NOT_READY. BLOCKED, whatever the gates say, on a hard blocker:

* the model was counted as a voter: an event whose consensus_count/total_models include it
  while it is tagged shadow (malformed entries with :data:`~.events.VOTER_REASON`), or an
  event where it is not tagged shadow at all (it voted);
* payload size p95 >= ``max_payload_p95`` (1500 bytes);
* hard disagreement (BUY vs SELL against ``side``) > ``shadow_max_hard_disagree`` (30 %);
* nothing to judge or data that cannot be trusted: the model is not in the window, the
  window is empty, or it has other malformed entries (fail closed).

``exit_code`` is 0 for READY, 2 otherwise.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from ..telemetry.events import BUY, SELL, VOTER_REASON, EventWindow
from ..telemetry.metrics import ensemble_metrics, model_metrics
from .gate import num_pair, pct_pair
from .stop_rules import payload_p95_blocker
from .thresholds import Thresholds

__all__ = ["GATES", "calibration", "future_events", "future_prices", "readiness", "shadow_report"]

GATES = ("action_diversity", "confidence_spread", "agreement", "calibration")
_DEFAULT = Thresholds()
_INT64_SAFE = 2**62


def future_events(window: EventWindow, horizon_ms: int) -> np.ndarray:
    """Per event: the index of the first event of the same symbol with a valid price (a finite
    number > 0) at least ``horizon_ms`` later, by ``timestamp``; -1 where the event has no
    valid price or there is no such later event.

    Vectorised: events with a price are sorted by (symbol, timestamp) and searched at once
    (temporaries are released as soon as possible: about 40 bytes per event at the peak).
    """
    horizon = int(horizon_ms)
    later = np.full(window.n, -1, dtype=np.intp)
    priced = np.flatnonzero(np.isfinite(window.price) & (window.price > 0))
    if priced.size == 0:
        return later
    priced = priced[np.lexsort((window.timestamp_ms[priced], window.symbol[priced]))]
    symbol = window.symbol[priced]
    stamp = window.timestamp_ms[priced]
    low = int(stamp.min())
    span = int(stamp.max()) - low + horizon + 1
    if (int(symbol.max()) + 1) * span < _INT64_SAFE:
        key = symbol.astype(np.int64) * span + (stamp - low)
        del stamp
        target = np.searchsorted(key, key + horizon, side="left")
        del key
    else:  # absurd time spans: search each symbol's run on its own
        target = np.zeros(priced.size, dtype=np.intp)
        bounds = np.flatnonzero(np.diff(symbol)) + 1
        for start, stop in zip(
            np.r_[0, bounds].tolist(), np.r_[bounds, symbol.size].tolist(), strict=True
        ):
            run = stamp[start:stop]
            target[start:stop] = np.searchsorted(run, run + horizon, side="left") + start
    # a target past the end, or in the next symbol's run, has no later price
    valid = target < priced.size
    valid[valid] = symbol[target[valid]] == symbol[valid]
    later[priced[valid]] = priced[target[valid]]
    return later


def future_prices(window: EventWindow, horizon_ms: int) -> np.ndarray:
    """Per event: the price of the same symbol at the first event >= ``horizon_ms`` later
    (:func:`future_events`); NaN where there is none."""
    later = future_events(window, horizon_ms)
    found = later >= 0
    future = np.full(window.n, np.nan)
    future[found] = window.price[later[found]]
    return future


def calibration(window: EventWindow, name: str, thresholds: Thresholds = _DEFAULT) -> dict:
    """The calibration gate of model ``name`` (see the module docstring)."""
    t = thresholds
    buckets = t.calibration_buckets
    rule = (
        f"directional accuracy non-decreasing over {buckets} confidence buckets and highest "
        f"> lowest; >= {t.calibration_min_events} judged events; horizon "
        f"{t.calibration_horizon_s:g} s"
    )
    gate: dict[str, Any] = {"status": "DEFER", "value": None, "threshold": rule, "judged": 0}
    columns = window.models.get(name)
    if columns is None or window.n == 0:
        return gate
    move = future_prices(window, round(t.calibration_horizon_s * 1000)) - window.price
    action = columns.action
    directional = columns.present & ~columns.inactive & ((action == BUY) | (action == SELL))
    judged = directional & np.isfinite(move) & (move != 0)
    correct = ((action == BUY) & (move > 0)) | ((action == SELL) & (move < 0))
    confidence = columns.confidence[judged]
    hits = correct[judged]
    count = int(confidence.size)
    gate["judged"] = count
    if count < t.calibration_min_events:
        gate["value"] = f"{count} judged events < {t.calibration_min_events}"
        return gate
    edges = np.quantile(confidence, np.linspace(0.0, 1.0, buckets + 1))
    bucket = np.searchsorted(edges[1:-1], confidence, side="left")
    sizes = np.bincount(bucket, minlength=buckets)
    right = np.bincount(bucket, weights=hits.astype(np.float64), minlength=buckets)
    accuracy = [
        (float(r) / int(s)) if s else None
        for r, s in zip(right.tolist(), sizes.tolist(), strict=True)
    ]
    gate["value"] = accuracy
    gate["buckets"] = [
        {"low": float(edges[i]), "high": float(edges[i + 1]), "n": int(sizes[i]), "accuracy": a}
        for i, a in enumerate(accuracy)
    ]
    rates = right / np.maximum(sizes, 1)
    calibrated = bool((sizes > 0).all() and (np.diff(rates) >= 0).all() and rates[-1] > rates[0])
    gate["status"] = "PASS" if calibrated else "FAIL"
    return gate


def readiness(gates: dict[str, dict[str, Any]], hard_blockers: list[str]) -> tuple[str, int, str]:
    """(status, gates passed, what was required) from the four gates and the hard blockers.

    BLOCKED on any hard blocker; else READY when >= 3 of 4 gates pass, or, with calibration
    DEFER, >= 2 of the other 3; else NOT_READY. A missing gate counts as failed.
    """
    statuses = [gates.get(name, {}).get("status", "FAIL") for name in GATES]
    passed = statuses.count("PASS")
    deferred = statuses[GATES.index("calibration")] == "DEFER"
    required = "2 of 3 (calibration deferred)" if deferred else "3 of 4"
    ready = passed >= (2 if deferred else 3)
    status = "BLOCKED" if hard_blockers else "READY" if ready else "NOT_READY"
    return status, passed, required


def _gates(metrics: dict[str, Any], t: Thresholds) -> dict[str, dict[str, Any]]:
    n = metrics["n"]
    top = max(metrics["actions"].values()) if n else None
    conf_std = metrics["conf_std"]
    agreement = metrics["agreement"]
    return {
        "action_diversity": {
            "status": "PASS" if top is not None and top <= t.max_action_share else "FAIL",
            "value": top,
            "threshold": t.max_action_share,
        },
        "confidence_spread": {
            "status": "PASS" if conf_std is not None and conf_std >= t.min_conf_std else "FAIL",
            "value": conf_std,
            "threshold": t.min_conf_std,
        },
        "agreement": {
            "status": "PASS"
            if agreement is not None and agreement >= t.shadow_min_agreement
            else "FAIL",
            "value": agreement,
            "threshold": t.shadow_min_agreement,
        },
    }


def _describe_failed(name: str, gate: dict[str, Any]) -> str:
    value, threshold = gate["value"], gate["threshold"]
    if value is None:
        return f"{name} FAIL: nothing measured"
    if name == "action_diversity":
        shown, limit = pct_pair(value, threshold)
        return f"{name} FAIL: top action {shown} > {limit}"
    if name == "confidence_spread":
        shown, limit = num_pair(value, threshold)
        return f"{name} FAIL: conf_std {shown} < {limit}"
    if name == "agreement":
        shown, limit = pct_pair(value, threshold)
        return f"{name} FAIL: agreement {shown} < {limit}"
    accuracy = ", ".join("-" if a is None else f"{a * 100:.1f}%" for a in value)
    return f"{name} FAIL: accuracy by confidence bucket [{accuracy}] ({threshold})"


def shadow_report(
    window: EventWindow, model: str, thresholds: Thresholds = _DEFAULT
) -> dict[str, Any]:
    """READY / NOT_READY / BLOCKED for ``model`` with its four gates and hard blockers."""
    t = thresholds
    metrics = model_metrics(window, model)
    gates = _gates(metrics, t)
    gates["calibration"] = calibration(window, model, t)
    ensemble = ensemble_metrics(window)

    hard: list[str] = []
    voter = [m for m in window.malformed if m.reason.startswith(VOTER_REASON) and model in m.models]
    if voter:
        hard.append(
            f"shadow model counted as voter in {len(voter)} events "
            f"(first {voter[0].stream_id}: {voter[0].reason})"
        )
    voted = metrics["present"] - metrics["shadow_events"]
    if voted:
        hard.append(
            f"counted as voter: not tagged shadow in {voted} of {metrics['present']} events "
            "that report it"
        )
    p95 = ensemble["payload_p95"]
    payload = payload_p95_blocker(p95, t)
    if payload:
        hard.append(payload)
    hard_disagree = metrics["hard_disagree"]
    if hard_disagree is not None and hard_disagree > t.shadow_max_hard_disagree:
        shown, limit = pct_pair(hard_disagree, t.shadow_max_hard_disagree)
        hard.append(f"hard disagreement {shown} > {limit}")
    voter_ids = {id(m) for m in voter}
    others = [m for m in window.malformed if id(m) not in voter_ids]
    if others:
        hard.append(
            f"window: {len(others)} malformed events (first {others[0].stream_id}: "
            f"{others[0].reason})"
        )
    if window.total == 0:
        hard.append("window: empty (no events)")
    elif not metrics["in_window"]:
        hard.append(f"{model} is not in the window (no event reports it)")
    elif metrics["n"] == 0:
        hard.append(f"{model} has no active events in the window")

    status, passed, required = readiness(gates, hard)
    failed = [_describe_failed(name, g) for name, g in gates.items() if g["status"] == "FAIL"]
    return {
        "model": model,
        "status": status,
        "ready": status == "READY",
        "gates": gates,
        "passed": passed,
        "required": required,
        "hard_blockers": hard,
        "blockers": hard + ([] if status == "READY" else failed),
        "metrics": metrics,
        "payload_p95": p95,
        "event_count": window.n,
        "malformed": len(window.malformed),
        "ensemble": ensemble,
        "thresholds": asdict(t),
        "window": {"first_id": window.first_id, "last_id": window.last_id},
        "exit_code": 0 if status == "READY" else 2,
        "summary": f"{model}: {status} ({passed} gates pass, {required} needed; "
        f"{len(hard)} hard blockers)",
    }
