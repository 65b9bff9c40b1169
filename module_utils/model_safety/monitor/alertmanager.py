"""The monitor's notifications in Alertmanager's webhook receiver format (``version`` "4"), for
the receivers that already read Alertmanager's own (``--webhook-format alertmanager``).

A violation is one firing alert per violated rule; the host's ``rollback_executed`` that follows
carries the same labels (so the same fingerprint): resolved when the rollback is proven, still
firing, with the failure in its annotations, when it is not. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..utctime import iso_ms
from .settings import ROLLED_BACK

MONITOR_FORMAT = "monitor"
ALERTMANAGER_FORMAT = "alertmanager"
WEBHOOK_FORMATS = (MONITOR_FORMAT, ALERTMANAGER_FORMAT)
ALERTNAME = "ModelSafetyCanaryViolation"
RECEIVER = "model-safety"
# Alertmanager's "not ended yet" (Go's zero time), sent as endsAt of a firing alert.
NOT_ENDED = "0001-01-01T00:00:00Z"
# The monitor rolls a host back on every violation: each is critical.
SEVERITY = "critical"


def webhook_format(text: str) -> str:
    """``text`` if it names a webhook payload format, else ValueError naming the choices."""
    if text not in WEBHOOK_FORMATS:
        raise ValueError(f"webhook format must be one of {', '.join(WEBHOOK_FORMATS)}: {text!r}")
    return text


def _fingerprint(labels: Mapping[str, str]) -> str:
    """16 hex digits identifying the label set (Alertmanager's is a 64-bit hash of it too)."""
    text = json.dumps(dict(sorted(labels.items())), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _common(mappings: list[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every mapping has."""
    if not mappings:
        return {}
    first, *rest = mappings
    return {key: value for key, value in first.items() if all(m.get(key) == value for m in rest)}


def alertmanager_payload(notification: Mapping[str, Any], now_s: float) -> dict[str, Any]:
    """``notification`` (``event``, ``host``, ``model``, ``violations`` and, for a rollback,
    ``result``) as an Alertmanager webhook payload sent at ``now_s`` (epoch seconds)."""
    event = str(notification["event"])
    host, model = str(notification["host"]), str(notification["model"])
    resolved = event == "rollback_executed" and notification.get("result") == ROLLED_BACK
    status = "resolved" if resolved else "firing"
    now = iso_ms(now_s)
    alerts = []
    for violation in notification.get("violations") or []:
        rule = str(violation.get("rule"))
        labels = {
            "alertname": ALERTNAME,
            "host": host,
            "model": model,
            "rule": rule,
            "severity": SEVERITY,
        }
        if event == "rollback_executed":
            outcome = "rolled back" if resolved else "ROLLBACK FAILED, act now"
            summary = f"{model} on {host}: {rule}; {outcome}"
        else:
            summary = f"{model} on {host}: {rule} violated; rolling back"
        alerts.append(
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": summary, "description": str(violation.get("text"))},
                "startsAt": now,
                "endsAt": now if resolved else NOT_ENDED,
                "generatorURL": "",
                "fingerprint": _fingerprint(labels),
            }
        )
    group_labels = {"host": host, "model": model}
    group_key = ",".join(f"{key}={json.dumps(value)}" for key, value in group_labels.items())
    return {
        "version": "4",
        "groupKey": f"{{}}:{{{group_key}}}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": RECEIVER,
        "groupLabels": group_labels,
        "commonLabels": _common([alert["labels"] for alert in alerts]) or group_labels,
        "commonAnnotations": _common([alert["annotations"] for alert in alerts]),
        "externalURL": "",
        "alerts": alerts,
    }
