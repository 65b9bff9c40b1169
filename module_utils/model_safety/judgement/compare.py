"""Paired canary-vs-baseline comparison on the same events (issue 16 item 1).

Every event carries every model's prediction, the ensemble's side, a symbol, a timestamp and
(optionally) a price. That allows a paired comparison: on each event, was a model's direction
right about the price move over the horizon? All of it is numpy over the window's columns;
the only Python loops run per symbol, per model or per confidence bucket, never per event.

The numbers, in an operator's words:

* outcome: the price of the first later event of the same symbol at or after
  ``timestamp + horizon`` minus the event's price. Up, down or flat; events without such a
  later event (the end of the window) or without a valid price have no outcome.
* late outcome: that later event came more than ``max_lag`` (default: the horizon itself) after
  ``timestamp + horizon``, so the later price lies outside [t + horizon, t + horizon +
  max_lag]. After a telemetry stall the first later event can be hours away: its price says
  nothing about the move over the horizon, so such an event has no outcome either, and is
  counted apart.
* directional call: a BUY or SELL with an up or down outcome. BUY is right when the price went
  up, SELL when it went down. HOLDs, calls on a flat move and calls without an outcome are
  counted apart and never judged.
* accuracy: right calls / directional calls, with its Wilson 95 % interval (the range the true
  accuracy lies in with 95 % confidence, honest for small counts).
* paired test (McNemar): on the events where both the canary and the other made a directional
  call, b = canary right and other wrong, c = canary wrong and other right. Without a
  difference b and c are equally likely; the exact binomial p-value says how surprising the
  split is (two-sided: any difference; one-sided: the canary is worse). Effect size
  (b - c) / (b + c) is +1 when the canary wins every disagreement, -1 when it loses each.
* calibration: accuracy per confidence bucket; a well calibrated model is right about as often
  as its confidence says.
* counterfactual: each event's side recomputed by the engine's vote over the voting models
  minus the canary, with the baseline weights; the decisions the canary changed and how often
  they were right with it and without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..engine.weights import configured_model, parse_weights
from ..site_defaults import DEFAULT_BASELINE_WEIGHTS
from ..telemetry.contract import BUY, HOLD, SELL
from ..telemetry.events import EventWindow
from .shadow import future_events

DEFAULT_HORIZON_S = 300.0
"""Seconds between an event and the price it is judged against."""
DEFAULT_ALPHA = 0.05
"""One-sided significance level of "the canary is worse"."""
CONFIDENCE_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Calibration buckets [0, 0.5), [0.5, 0.6), ..., [0.9, 1.0] (the last one includes 1.0)."""
WILSON_Z = 1.959963984540054
"""Normal quantile of a two-sided 95 % interval."""
EXACT_BINOMIAL_MAX_N = 1000
"""Up to this many discordant pairs the binomial tail is summed in exact integers."""
TIE_TOLERANCE = 1e-12
"""The engine's vote tie tolerance (lab/engine/ai_engine/ensemble.py)."""
UP, DOWN, FLAT = 1, -1, 0
NO_OUTCOME = -2
"""Outcome code of an event without a later price of its symbol past the horizon."""
LATE_OUTCOME = -3
"""Outcome code of an event whose later price came more than the maximum lag too late."""


def _seconds(name: str, value: float, minimum_included: bool) -> float:
    """``value`` as a finite float > 0 (>= 0 when ``minimum_included``), else ValueError."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value >= 0 if minimum_included else value > 0)
    if not ok:
        wanted = ">= 0" if minimum_included else "> 0"
        raise ValueError(f"{name} must be a finite number of seconds {wanted}, got {value!r}")
    return float(value)


def checked_options(
    horizon_s: float, alpha: float, max_lag_s: float | None
) -> tuple[float, float, float]:
    """``(horizon_s, alpha, max_lag_s)`` validated (a horizon > 0, alpha in (0, 1), a lag >= 0,
    all finite; a lag of None is the horizon); ValueError naming the bad one."""
    horizon_s = _seconds("horizon", horizon_s, minimum_included=False)
    max_lag_s = horizon_s if max_lag_s is None else _seconds("max_lag", max_lag_s, True)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return horizon_s, float(alpha), max_lag_s


def baseline_weights(model: str, weights: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The baseline weights of the counterfactual vote: ``weights`` (``{model: weight}``), or
    the design's (site_defaults) when None, validated as the engine's baseline (each > 0,
    summing to 1) with ``model`` among them; ValueError (WeightsError) otherwise."""
    if weights is None:
        names = [item.partition(":")[0] for item in DEFAULT_BASELINE_WEIGHTS.split(",")]
        weights = parse_weights(DEFAULT_BASELINE_WEIGHTS, names)
    return configured_model(weights, model)


def outcomes(
    window: EventWindow, horizon_s: float = DEFAULT_HORIZON_S, max_lag_s: float | None = None
) -> np.ndarray:
    """int8 per event: UP, DOWN or FLAT price move over the horizon, NO_OUTCOME, or
    LATE_OUTCOME when the later price came more than ``max_lag_s`` (None: the horizon) after
    ``timestamp + horizon``. The later event is the shadow report's calibration rule
    (:func:`.shadow.future_events`)."""
    horizon_s, _alpha, max_lag_s = checked_options(horizon_s, DEFAULT_ALPHA, max_lag_s)
    horizon_ms = round(horizon_s * 1000.0)
    later = future_events(window, horizon_ms)
    found = later >= 0
    result = np.full(window.n, NO_OUTCOME, dtype=np.int8)
    move = np.sign(window.price[later[found]] - window.price[found])
    lag_ms = window.timestamp_ms[later[found]] - window.timestamp_ms[found] - horizon_ms
    result[found] = np.where(lag_ms > round(max_lag_s * 1000.0), LATE_OUTCOME, move)
    return result


def _calls(action: np.ndarray, outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(directional call, right) per event for one model's action codes."""
    directional = ((action == BUY) | (action == SELL)) & ((outcome == UP) | (outcome == DOWN))
    right = directional & (
        ((action == BUY) & (outcome == UP)) | ((action == SELL) & (outcome == DOWN))
    )
    return directional, right


def wilson(right: int, calls: int, z: float = WILSON_Z) -> tuple[float, float] | None:
    """Wilson score interval of the accuracy right / calls; None without any call."""
    if calls <= 0:
        return None
    share = right / calls
    denominator = 1.0 + z * z / calls
    centre = (share + z * z / (2 * calls)) / denominator
    half = z * math.sqrt(share * (1 - share) / calls + z * z / (4 * calls * calls)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_cdf_half(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2): exact integers up to EXACT_BINOMIAL_MAX_N, log-space
    (log binomial coefficients by a cumulative sum, then log-sum-exp) beyond."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if n <= EXACT_BINOMIAL_MAX_N:
        # C(n, i + 1) = C(n, i) (n - i) / (i + 1), exact in integers: one product per term
        # instead of a fresh binomial coefficient (5 tests of 1000 pairs: 50 ms -> 1 ms).
        term = total = 1
        for i in range(k):
            term = term * (n - i) // (i + 1)
            total += term
        return total / 2**n
    i = np.arange(1, k + 1, dtype=np.float64)
    log_comb = np.concatenate(([0.0], np.cumsum(np.log(n - i + 1) - np.log(i))))
    top = log_comb.max()
    log_tail = top + math.log(float(np.exp(log_comb - top).sum())) - n * math.log(2.0)
    return min(1.0, math.exp(log_tail))


def mcnemar(b: int, c: int) -> dict[str, Any]:
    """Exact McNemar test on b (canary right, other wrong) and c (canary wrong, other right).

    ``p_two_sided``: probability of a split at least this uneven in either direction when both
    are equally good; ``p_canary_worse``: probability of b this small or smaller (one-sided).
    Without discordant pairs both p-values are 1 and the effect size is None.
    """
    n = b + c
    return {
        "b": b,
        "c": c,
        "discordant": n,
        "p_two_sided": min(1.0, 2.0 * binomial_cdf_half(min(b, c), n)) if n else 1.0,
        "p_canary_worse": binomial_cdf_half(b, n) if n else 1.0,
        "effect_size": (b - c) / n if n else None,
    }


def accuracy(action: np.ndarray, outcome: np.ndarray, active: np.ndarray) -> dict[str, Any]:
    """Directional accuracy of one action column: calls, right, accuracy, its Wilson interval,
    and the events not judged (HOLD, calls on a flat move, calls without an outcome)."""
    directional, right = _calls(np.where(active, action, -1), outcome)
    calls, rights = int(directional.sum()), int(right.sum())
    buy_sell = active & ((action == BUY) | (action == SELL))
    interval = wilson(rights, calls)
    return {
        "active": int(active.sum()),
        "calls": calls,
        "right": rights,
        "accuracy": rights / calls if calls else None,
        "wilson95": list(interval) if interval else None,
        "hold": int((active & (action == HOLD)).sum()),
        "flat": int((buy_sell & (outcome == FLAT)).sum()),
        "no_outcome": int((buy_sell & (outcome == NO_OUTCOME)).sum()),
        "late_outcome": int((buy_sell & (outcome == LATE_OUTCOME)).sum()),
    }


def calibration(
    action: np.ndarray, confidence: np.ndarray, outcome: np.ndarray, active: np.ndarray
) -> list[dict[str, Any]]:
    """Per confidence bucket of CONFIDENCE_EDGES: directional calls, right, accuracy and mean
    confidence (a calibrated model's accuracy is close to its mean confidence)."""
    directional, right = _calls(np.where(active, action, -1), outcome)
    edges = np.asarray(CONFIDENCE_EDGES)
    bucket = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, len(edges) - 2)
    calls = np.bincount(bucket[directional], minlength=len(edges) - 1)
    rights = np.bincount(bucket[right], minlength=len(edges) - 1)
    confs = np.bincount(bucket[directional], confidence[directional], minlength=len(edges) - 1)
    return [
        {
            "bucket": [CONFIDENCE_EDGES[i], CONFIDENCE_EDGES[i + 1]],
            "calls": int(calls[i]),
            "right": int(rights[i]),
            "accuracy": float(rights[i] / calls[i]) if calls[i] else None,
            "mean_confidence": float(confs[i] / calls[i]) if calls[i] else None,
        }
        for i in range(len(edges) - 1)
    ]


def paired(
    canary: np.ndarray, other: np.ndarray, outcome: np.ndarray, alpha: float
) -> dict[str, Any]:
    """McNemar of the canary's actions against another action column on the same events, with
    the accuracy difference on the events both called and whether the canary is significantly
    worse (one-sided p < ``alpha``)."""
    canary_call, canary_right = _calls(canary, outcome)
    other_call, other_right = _calls(other, outcome)
    both = canary_call & other_call
    pairs = int(both.sum())
    b = int((both & canary_right & ~other_right).sum())
    c = int((both & ~canary_right & other_right).sum())
    result = {"paired_calls": pairs, "decided": pairs > 0, **mcnemar(b, c)}
    result["accuracy_difference"] = (b - c) / pairs if pairs else None
    result["canary_worse"] = pairs > 0 and result["p_canary_worse"] < alpha
    return result


def voting_models(window: EventWindow) -> list[str]:
    """Models that vote (are in the breakdown, not shadow) in at least one event."""
    return [m for m, cols in window.models.items() if bool((cols.present & ~cols.shadow).any())]


def vote_without(window: EventWindow, model: str, weights: Mapping[str, float]) -> np.ndarray:
    """Per event, the side (action code) the engine's vote gives over the event's active voting
    models minus ``model``, with ``weights``: score[action] = sum of weight * confidence, the
    unique best score wins, HOLD on a tie or without any voter."""
    scores = np.zeros((window.n, 3))
    for name, cols in window.models.items():
        voter = cols.active & ~cols.shadow
        if name == model or not voter.any():
            continue
        if name not in weights:
            raise ValueError(f"no baseline weight for voting model {name!r}")
        weighted = weights[name] * np.nan_to_num(cols.confidence)
        for code in (BUY, SELL, HOLD):
            scores[:, code] += np.where(voter & (cols.action == code), weighted, 0.0)
    best = scores.max(axis=1, initial=0.0)
    leaders = (best[:, None] - scores) <= TIE_TOLERANCE
    unique = leaders.sum(axis=1) == 1
    return np.where(unique, scores.argmax(axis=1), HOLD).astype(np.int8)


def counterfactual(
    window: EventWindow, model: str, weights: Mapping[str, float], outcome: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    """The decisions ``model`` changed: events whose published side differs from the vote
    without it, and how the changed decisions fared with it (published) and without it."""
    without = vote_without(window, model, weights)
    changed = window.side != without
    side_call, side_right = _calls(np.where(changed, window.side, -1), outcome)
    without_call, without_right = _calls(np.where(changed, without, -1), outcome)
    summary = {
        "changed": int(changed.sum()),
        "changed_share": float(changed.mean()) if window.n else None,
        "changed_with_outcome": int((changed & _has_outcome(outcome)).sum()),
        "with_canary": _share(int(side_right.sum()), int(side_call.sum())),
        "without_canary": _share(int(without_right.sum()), int(without_call.sum())),
    }
    return summary, without


def _has_outcome(outcome: np.ndarray) -> np.ndarray:
    return (outcome == UP) | (outcome == DOWN) | (outcome == FLAT)


def _share(right: int, calls: int) -> dict[str, Any]:
    return {"calls": calls, "right": right, "accuracy": right / calls if calls else None}


def compare(
    window: EventWindow,
    model: str,
    weights: Mapping[str, float],
    horizon_s: float = DEFAULT_HORIZON_S,
    alpha: float = DEFAULT_ALPHA,
    max_lag_s: float | None = None,
) -> dict[str, Any]:
    """The paired comparison of ``model`` (the canary) with each baseline voting model, the
    ensemble's published side and the ensemble without the canary, as a JSON-able dict.

    ``weights`` are the baseline weights of the voting models (the counterfactual vote);
    ``max_lag_s`` the latest a later price may come after ``timestamp + horizon`` (None: the
    horizon).
    ``decided`` is False, with a ``reason``, when the canary has no directional call with an
    outcome in the window: nothing is judged then, it is never an error.
    """
    horizon_s, alpha, max_lag_s = checked_options(horizon_s, alpha, max_lag_s)
    outcome = outcomes(window, horizon_s, max_lag_s)
    result: dict[str, Any] = {
        "model": model,
        "horizon_s": horizon_s,
        "max_lag_s": max_lag_s,
        "alpha": alpha,
        "events": window.n,
        "events_with_price": int((np.isfinite(window.price) & (window.price > 0)).sum()),
        "events_with_outcome": int(_has_outcome(outcome).sum()),
        "late_outcomes": int((outcome == LATE_OUTCOME).sum()),
        "moves": {
            "up": int((outcome == UP).sum()),
            "down": int((outcome == DOWN).sum()),
            "flat": int((outcome == FLAT).sum()),
        },
        "symbols": len(window.symbols),
    }
    canary = window.models.get(model)
    if canary is None:
        return {**result, "decided": False, "reason": f"model {model} is in no event"}
    # Whom "the ensemble without it" is (compare_loss.AGAINST): a canary that voted in the
    # window is left out of the recomputed vote; a shadow one never voted.
    result["canary_role"] = "voting" if bool((canary.present & ~canary.shadow).any()) else "shadow"
    models = {}
    for name, cols in window.models.items():
        models[name] = accuracy(cols.action, outcome, cols.active)
        models[name]["calibration"] = calibration(
            cols.action, cols.confidence, outcome, cols.active
        )
    everywhere = np.ones(window.n, dtype=np.bool_)
    ensemble = accuracy(window.side, outcome, everywhere)
    ensemble["calibration"] = calibration(window.side, window.confidence, outcome, everywhere)
    changes, without = counterfactual(window, model, weights, outcome)
    canary_actions = np.where(canary.active, canary.action, -1)
    others = {
        name: np.where(window.models[name].active, window.models[name].action, -1)
        for name in voting_models(window)
        if name != model
    }
    comparisons = [
        {"other": name, "kind": "model", **paired(canary_actions, actions, outcome, alpha)}
        for name, actions in others.items()
    ]
    comparisons.append(
        {
            "other": "ensemble",
            "kind": "ensemble",
            **paired(canary_actions, window.side, outcome, alpha),
        }
    )
    comparisons.append(
        {
            "other": f"ensemble without {model}",
            "kind": "counterfactual",
            **paired(canary_actions, without, outcome, alpha),
        }
    )
    decided = models[model]["calls"] > 0
    result.update(
        decided=decided,
        reason=None if decided else f"{model} made no directional call with an outcome",
        models=models,
        ensemble=ensemble,
        ensemble_without_canary=accuracy(without, outcome, everywhere),
        counterfactual=changes,
        comparisons=comparisons,
        canary_worse_than=[c["other"] for c in comparisons if c["canary_worse"]],
    )
    return result


def gate_comparison(
    window: EventWindow,
    model: str,
    weights: Mapping[str, Any] | None = None,
    horizon_s: float = DEFAULT_HORIZON_S,
    alpha: float = DEFAULT_ALPHA,
    max_lag_s: float | None = None,
) -> dict[str, Any]:
    """:func:`compare` for a section of another check's report (the gate's, the monitor's), on
    the window that check already read. It informs and never decides that check: anything
    that keeps it from comparing (a voting model without a weight, ...) is a result that is
    not decided, with the reason, never an exception."""
    try:
        return compare(window, model, baseline_weights(model, weights), horizon_s, alpha, max_lag_s)
    except ValueError as exc:
        return {"model": model, "decided": False, "reason": f"not compared: {exc}"}
