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
* ``confidence_histogram``: ``{bin_width, counts}``, the active confidences counted in
  :data:`CONFIDENCE_BINS` (20) equal bins over [0, 1]: bin k holds k/20 <= c < (k+1)/20, the
  last one 1.0 too; the counts sum to ``n``.
* ``over_time``: ``{bin_seconds, bins}``, the window's span (stream id times, first to last
  valid event) cut into at most :data:`TIME_BINS` (12) equal bins aligned to a round step
  (1 ms ... 1 s, 5 s, 1 min, 5 min, 1 h ..., days); each bin ``{start, n, agreement,
  hard_disagree}`` over the model's active events in it (``start`` ISO-8601 UTC; ``n`` 0 and
  the fractions None where it had none). The bins are the window's, alike for every model.

Undefined values (no active event, empty window) are ``None``, never NaN, so the result
stays strict JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..utctime import iso_ms
from .events import ACTIONS, BUY, SELL, EventWindow

__all__ = [
    "CONFIDENCE_BINS",
    "TIME_BINS",
    "confidence_histogram",
    "ensemble_metrics",
    "hard_disagreement",
    "model_metrics",
    "over_time",
    "payload_p95",
    "time_bins",
]

CONFIDENCE_BINS = 20
"""Bins of the confidence histogram over [0, 1] (0.05 wide)."""
TIME_BINS = 12
"""At most this many time bins in ``over_time``."""
_SECOND_MS, _MINUTE_MS, _HOUR_MS, _DAY_MS = 1000, 60_000, 3_600_000, 86_400_000
_ROUND_STEPS_MS = (
    *(1, 2, 5, 10, 20, 50, 100, 200, 500),
    *(_SECOND_MS * s for s in (1, 2, 5, 10, 15, 30)),
    *(_MINUTE_MS * m for m in (1, 2, 5, 10, 15, 30)),
    *(_HOUR_MS * h for h in (1, 2, 3, 6, 12)),
)
"""Time bin widths, so that bins start on round clock times (a window's bins read 01:05,
01:10, ... rather than 01:02:37.4); beyond them, whole days."""


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def hard_disagreement(action: np.ndarray, side: np.ndarray) -> np.ndarray:
    return ((action == BUY) & (side == SELL)) | ((action == SELL) & (side == BUY))


def confidence_histogram(confidence: np.ndarray) -> dict[str, Any]:
    """``{bin_width, counts}``: ``confidence`` (values in [0, 1], as the parser admits them)
    counted in CONFIDENCE_BINS equal bins, 1.0 in the last one."""
    # np.histogram works in blocks of 65536 values: on a large window it is faster than one
    # bincount, whose window-sized temporaries cost more in fresh pages than in arithmetic.
    counts, _edges = np.histogram(confidence, bins=CONFIDENCE_BINS, range=(0.0, 1.0))
    return {"bin_width": 1 / CONFIDENCE_BINS, "counts": counts.tolist()}


def time_bins(stream_ms: np.ndarray) -> tuple[int, int, int]:
    """``(first, step, count)`` for events at ``stream_ms`` (ms, at least one): bin i covers
    [(first + i) * step, (first + i + 1) * step) ms, with the smallest round step that keeps
    the bins from the first to the last event at most TIME_BINS."""
    low, high = int(stream_ms.min()), int(stream_ms.max())

    def count(step: int) -> int:
        return high // step - low // step + 1

    step = next((s for s in _ROUND_STEPS_MS if count(s) <= TIME_BINS), None)
    if step is None:
        days = -(-(high - low + 1) // (_DAY_MS * TIME_BINS))  # ceil: the bins cover the span
        step = _DAY_MS * days
        if count(step) > TIME_BINS:  # the span reached one day boundary more
            step += _DAY_MS
    return low // step, step, count(step)


def over_time(
    window: EventWindow, active: np.ndarray, agree: np.ndarray, hard: np.ndarray
) -> dict[str, Any]:
    """``{bin_seconds, bins}``: the model's events (``active`` over the window), its agreements
    and hard disagreements (both over its active events) per time bin of the window."""
    if window.n == 0:
        return {"bin_seconds": None, "bins": []}
    first, step, count = time_bins(window.stream_ms)
    # One bincount over bin * 3 + outcome (0 other, 1 agrees, 2 hard disagreement: the two
    # exclude each other): a count per bin and outcome, without a gather per outcome.
    code = window.stream_ms[active] // step - first
    code *= 3
    code += agree.view(np.int8)
    code += hard.view(np.int8) << 1
    counts = np.bincount(code, minlength=3 * count).reshape(count, 3)
    n = counts.sum(axis=1).tolist()
    agreed, hard_count = counts[:, 1].tolist(), counts[:, 2].tolist()
    bins = [
        {
            "start": iso_ms((first + i) * step / _SECOND_MS),
            "n": n[i],
            "agreement": _share(agreed[i], n[i]),
            "hard_disagree": _share(hard_count[i], n[i]),
        }
        for i in range(count)
    ]
    return {"bin_seconds": step / _SECOND_MS, "bins": bins}


def window_models(window: EventWindow) -> dict[str, dict[str, Any]]:
    """:func:`model_metrics` of every model in ``window``."""
    return {name: model_metrics(window, name) for name in window.models}


def model_metrics(window: EventWindow, name: str) -> dict[str, Any]:
    """The metrics of model ``name`` over ``window`` (all zero/None when it is absent)."""
    events = window.n
    columns = window.models.get(name)
    if columns is None:
        nothing = np.zeros(events, dtype=np.bool_)
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
            "confidence_histogram": confidence_histogram(np.zeros(0)),
            "over_time": over_time(window, nothing, nothing[:0], nothing[:0]),
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
            confidence_histogram=confidence_histogram(np.zeros(0)),
            over_time=over_time(window, active, active[:0], active[:0]),
        )
        return result
    action = columns.action[active]
    confidence = columns.confidence[active]
    side = window.side[active]
    counts = np.bincount(action.astype(np.intp), minlength=len(ACTIONS))
    p10, median, p90 = (float(v) for v in np.percentile(confidence, [10, 50, 90]))
    agree = action == side
    hard = hard_disagreement(action, side)
    result.update(
        actions={a: int(c) / n for a, c in zip(ACTIONS, counts.tolist(), strict=True)},
        conf_std=float(np.std(confidence)),
        p10=p10,
        p90=p90,
        spread=p90 - p10,
        median=median,
        agreement=int(np.count_nonzero(agree)) / n,
        hard_disagree=int(np.count_nonzero(hard)) / n,
        confidence_histogram=confidence_histogram(confidence),
        over_time=over_time(window, active, agree, hard),
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
