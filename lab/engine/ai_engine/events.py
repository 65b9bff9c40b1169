"""Telemetry event payloads in the DESIGN.md schema, and their JSON encoding."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .ensemble import Decision, counts_with_shadow
from .market import FEATURE_NAMES, FLATLINE_FEATURES, SHIFTED_FEATURE_OFFSETS, Tick
from .models import Prediction


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and 'Z', e.g. 2026-01-10T12:00:00.123Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def features_for(mode: str, tick: Tick) -> dict[str, float]:
    """The features to publish: the tick's own, a flatline constant, NaN everywhere, or the
    tick's own moved out of distribution (``shifted``)."""
    if mode == "shifted":
        return {
            name: value + SHIFTED_FEATURE_OFFSETS[name] for name, value in tick.features.items()
        }
    if mode == "flatline":
        return dict(FLATLINE_FEATURES)
    if mode == "nan":
        return dict.fromkeys(FEATURE_NAMES, math.nan)
    return dict(tick.features)


def breakdown_entry(model: str, prediction: Prediction, shadow: bool) -> dict[str, Any]:
    """One ``model_breakdown`` value; shadow models are tagged ``<name>_shadow`` + shadow; a
    capped confidence comes with ``raw_confidence`` and ``confidence_cap``."""
    if prediction.active:
        entry: dict[str, Any] = {"action": prediction.action, "confidence": prediction.confidence}
        if prediction.raw_confidence is not None:
            entry["raw_confidence"] = prediction.raw_confidence
            entry["confidence_cap"] = prediction.confidence_cap
    else:
        entry = {"inactive": True, "inactive_reason": prediction.inactive_reason}
    if shadow:
        entry["model"] = f"{model}_shadow"
        entry["shadow"] = True
    else:
        entry["model"] = model
    return entry


def build_payload(
    tick: Tick,
    predictions: Mapping[str, Prediction],
    decision: Decision,
    shadow: frozenset[str],
    features: Mapping[str, float],
    moment: datetime,
    *,
    shadow_leak: bool,
    pad: int,
) -> dict[str, Any]:
    """The event dict: ensemble decision, every model's output (model order) and features.

    Faults: ``shadow_leak`` counts the active shadow models in consensus_count/total_models
    (SIM_SHADOW_LEAK); ``pad`` > 0 appends ``"pad": "x" * pad`` (SIM_PAYLOAD_PAD).
    """
    if shadow_leak:
        consensus_count, total_models = counts_with_shadow(decision, predictions, shadow)
    else:
        consensus_count, total_models = decision.consensus_count, decision.total_models
    payload: dict[str, Any] = {
        "symbol": tick.symbol,
        "side": decision.side,
        "confidence": decision.confidence,
        "price": round(tick.price, 4),
        "consensus_count": consensus_count,
        "total_models": total_models,
        "timestamp": format_timestamp(moment),
        "model_breakdown": {
            name: breakdown_entry(name, prediction, name in shadow)
            for name, prediction in predictions.items()
        },
        "features": dict(features),
    }
    if pad:
        payload["pad"] = "x" * pad
    return payload


def encode(payload: Mapping[str, Any]) -> str:
    """Compact JSON; NaN features are written as the bare token NaN (not strict JSON)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=True)
