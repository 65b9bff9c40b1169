"""A strict check of one telemetry event against DESIGN.md "Telemetry event" (for tests)."""

from __future__ import annotations

import math
import re
from datetime import datetime

ACTIONS = {"BUY", "SELL", "HOLD"}
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
TOP_KEYS = {
    "symbol",
    "side",
    "confidence",
    "consensus_count",
    "total_models",
    "timestamp",
    "model_breakdown",
}
OPTIONAL_KEYS = {"price", "features"}


def _confidence(value: object, where: str) -> None:
    assert isinstance(value, float | int) and not isinstance(value, bool), f"{where}: {value!r}"
    assert math.isfinite(value) and 0.0 <= value <= 1.0, f"{where}: {value!r} not in [0, 1]"


def validate_event(event: dict) -> None:
    """Raise AssertionError naming the first way event breaks the contract."""
    keys = set(event)
    assert keys >= TOP_KEYS, f"missing keys: {TOP_KEYS - keys}"
    assert keys <= TOP_KEYS | OPTIONAL_KEYS, f"unknown keys: {keys - TOP_KEYS - OPTIONAL_KEYS}"
    assert re.fullmatch(r"[A-Z0-9]{2,20}", event["symbol"]), event["symbol"]
    assert event["side"] in ACTIONS, event["side"]
    _confidence(event["confidence"], "confidence")
    assert TIMESTAMP.fullmatch(event["timestamp"]), event["timestamp"]
    datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    if "price" in event:
        assert isinstance(event["price"], float | int) and event["price"] > 0, event["price"]
    if "features" in event:
        assert isinstance(event["features"], dict) and event["features"]
    voting_agree = 0
    voting = 0
    for name, entry in event["model_breakdown"].items():
        assert re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name), name
        shadow = entry.get("shadow", False) is True
        if entry.get("inactive") is True:
            assert isinstance(entry.get("inactive_reason"), str) and entry["inactive_reason"]
            assert "action" not in entry and "confidence" not in entry, entry
            continue
        assert entry["action"] in ACTIONS, entry
        _confidence(entry["confidence"], f"{name}.confidence")
        assert entry["model"] == (f"{name}_shadow" if shadow else name), entry
        if not shadow:
            voting += 1
            voting_agree += entry["action"] == event["side"]
    assert event["total_models"] == voting, (event["total_models"], voting)
    assert event["consensus_count"] == voting_agree, (event["consensus_count"], voting_agree)
