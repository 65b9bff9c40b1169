"""Per-model and ensemble metrics over an EventWindow, vectorised with numpy.

Definitions (DESIGN.md "Gate rules" and the ``--json`` result):

* a model's **active events** are those where it reported an action and a confidence;
  ``n`` counts them. Every per-model statistic is over the active events only.
* ``actions``: the share of BUY, SELL and HOLD among the active events (fractions in [0, 1]).
* ``conf_std``: the population standard deviation (ddof=0) of the confidences.
* ``p10``, ``p90``, ``median``: numpy's default (linear interpolation) percentiles;
  ``spread`` = p90 - p10.
* ``agreement``: share of active events whose action equals the event's ``side``;
  ``hard_disagree``: share where one is BUY and the other SELL.
* ``inactive_share``: share of the window's valid events in which the model gave no
  prediction: reported inactive, or missing from ``model_breakdown`` altogether (a model
  that is not there does not vote either; fail closed).
* ``shadow``: True when every event that reports the model tags it ``"shadow": true``;
  a model that voted in any event of the window is a voting model.

Undefined values (no active event, empty window) are ``None``, never NaN, so the result
stays strict JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .events import ACTIONS, BUY, SELL, EventWindow

__all__ = ["ensemble_metrics", "hard_disagreement", "model_metrics", "payload_p95"]


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def hard_disagreement(action: np.ndarray, side: np.ndarray) -> np.ndarray:
    return ((action == BUY) & (side == SELL)) | ((action == SELL) & (side == BUY))


def model_metrics(window: EventWindow, name: str) -> dict[str, Any]:
    """The metrics of model ``name`` over ``window`` (all zero/None when it is absent)."""
    events = window.n
    columns = window.models.get(name)
    if columns is None:
        return {
            "name": name,
            "in_window": False,
            "n": 0,
            "shadow": False,
            "present": 0,
            "inactive": 0,
            "absent": events,
            "shadow_events": 0,
            "inactive_share": 1.0 if events else None,
            "actions": dict.fromkeys(ACTIONS, 0.0),
            "conf_std": None,
            "p10": None,
            "p90": None,
            "spread": None,
            "median": None,
            "agreement": None,
            "hard_disagree": None,
        }
    present = columns.present
    active = present & ~columns.inactive
    n = int(np.count_nonzero(active))
    present_count = int(np.count_nonzero(present))
    shadow_events = int(np.count_nonzero(present & columns.shadow))
    result: dict[str, Any] = {
        "name": name,
        "in_window": True,
        "n": n,
        "shadow": present_count > 0 and shadow_events == present_count,
        "present": present_count,
        "inactive": present_count - n,
        "absent": events - present_count,
        "shadow_events": shadow_events,
        "inactive_share": _share(events - n, events),
    }
    if n == 0:
        result.update(
            actions=dict.fromkeys(ACTIONS, 0.0),
            conf_std=None,
            p10=None,
            p90=None,
            spread=None,
            median=None,
            agreement=None,
            hard_disagree=None,
        )
        return result
    action = columns.action[active]
    confidence = columns.confidence[active]
    side = window.side[active]
    counts = np.bincount(action.astype(np.intp), minlength=len(ACTIONS))
    p10, median, p90 = (float(v) for v in np.percentile(confidence, [10, 50, 90]))
    result.update(
        actions={a: int(c) / n for a, c in zip(ACTIONS, counts.tolist(), strict=True)},
        conf_std=float(np.std(confidence)),
        p10=p10,
        p90=p90,
        spread=p90 - p10,
        median=median,
        agreement=int(np.count_nonzero(action == side)) / n,
        hard_disagree=int(np.count_nonzero(hard_disagreement(action, side))) / n,
    )
    return result


def payload_p95(sizes: Any) -> float | None:
    """The 95th percentile (linear) of payload sizes in bytes; None without any."""
    sizes = np.asarray(sizes)
    return float(np.percentile(sizes, 95)) if sizes.size else None


def ensemble_metrics(window: EventWindow) -> dict[str, Any]:
    """The ensemble's view: consensus distribution, side shares, payload sizes, counts.

    ``consensus``: share of valid events per ``"<consensus_count>/<total_models>"``, ordered
    by total then count. ``payload_p95``: 95th percentile (linear) of the raw payload size in
    bytes over the valid events.
    """
    n = window.n
    result: dict[str, Any] = {
        "event_count": n,
        "malformed": len(window.malformed),
        "total_entries": window.total,
        "sides": dict.fromkeys(ACTIONS, 0.0),
        "consensus": {},
        "payload_p95": None,
        "payload_max": None,
        "confidence_mean": None,
        "symbols": len(window.symbols),
        "models": list(window.models),
    }
    if n == 0:
        return result
    counts = np.bincount(window.side.astype(np.intp), minlength=len(ACTIONS))
    result["sides"] = {a: int(c) / n for a, c in zip(ACTIONS, counts.tolist(), strict=True)}
    key = window.total_models.astype(np.int64) * 65536 + window.consensus_count.astype(np.int64)
    values, value_counts = np.unique(key, return_counts=True)
    result["consensus"] = {
        f"{k % 65536}/{k // 65536}": c / n
        for k, c in zip(values.tolist(), value_counts.tolist(), strict=True)
    }
    result["payload_p95"] = payload_p95(window.payload_bytes)
    result["payload_max"] = int(window.payload_bytes.max())
    result["confidence_mean"] = float(window.confidence.mean())
    return result
