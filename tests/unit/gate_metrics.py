"""Gate metrics the gate's unit tests (findings, rules) start from."""

from __future__ import annotations

from typing import Any

# A model that breaks no rule: diverse actions, wide confidences, always active.
HEALTHY: dict[str, Any] = {
    "name": "patchtst",
    "in_window": True,
    "n": 500,
    "actions": {"BUY": 0.2, "SELL": 0.3, "HOLD": 0.5},
    "conf_std": 0.2,
    "p10": 0.3,
    "p90": 0.8,
    "spread": 0.5,
    "median": 0.55,
    "inactive_share": 0.0,
    "inactive": 0,
    "absent": 0,
}
