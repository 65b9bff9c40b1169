"""Unit tests for the monitor's Alertmanager webhook payloads (model_safety.monitor.alertmanager)
and their delivery by the Webhook to a real HTTP server on 127.0.0.1 (``--webhook-format`` is
tested with the other options in test_monitor_cli)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from model_safety.monitor.alertmanager import NOT_ENDED, alertmanager_payload
from model_safety.monitor.store import MonitorIOError, Webhook
from tests.unit.test_monitor_store import Outcomes, Recorder

NOW_S = 1767700000.25
NOW = "2026-01-06T11:46:40.250Z"
VIOLATIONS = [
    {"rule": "action_collapse", "value": 0.93, "threshold": 0.7, "text": "BUY 93 % > 70 %"},
    {"rule": "telemetry_stalled", "value": 400, "threshold": 300, "text": "no events for 400 s"},
]
# What Alertmanager's webhook receiver sends (version 4), and so what its readers expect.
PAYLOAD_KEYS = {
    "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
    "commonLabels", "commonAnnotations", "externalURL", "alerts",
}  # fmt: skip
ALERT_KEYS = {
    "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
}  # fmt: skip


def notification(event: str = "violation", **fields: Any) -> dict[str, Any]:
    return {"event": event, "host": "e1", "model": "patchtst", "violations": VIOLATIONS, **fields}


def test_a_violation_is_one_firing_alert_per_rule() -> None:
    payload = alertmanager_payload(notification(), NOW_S)
    assert set(payload) == PAYLOAD_KEYS
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "model-safety"
    assert payload["groupKey"] == '{}:{host="e1",model="patchtst"}'
    assert payload["groupLabels"] == {"host": "e1", "model": "patchtst"}
    assert payload["commonLabels"] == {
        "alertname": "ModelSafetyCanaryViolation",
        "host": "e1",
        "model": "patchtst",
        "severity": "critical",
    }
    assert payload["commonAnnotations"] == {}  # each rule has its own text
    assert payload["externalURL"] == ""
    first, second = payload["alerts"]
    assert set(first) == ALERT_KEYS
    assert first["labels"] == {**payload["commonLabels"], "rule": "action_collapse"}
    assert second["labels"]["rule"] == "telemetry_stalled"
    assert first["annotations"] == {
        "summary": "patchtst on e1: action_collapse violated; rolling back",
        "description": "BUY 93 % > 70 %",
    }
    assert (first["status"], first["startsAt"], first["endsAt"]) == ("firing", NOW, NOT_ENDED)
    assert len(first["fingerprint"]) == 16
    assert first["fingerprint"] != second["fingerprint"]


def test_a_proven_rollback_resolves_the_same_alerts() -> None:
    fired = alertmanager_payload(notification(), NOW_S)
    resolved = alertmanager_payload(
        notification("rollback_executed", result="rolled_back"), NOW_S + 60
    )
    assert resolved["status"] == "resolved"
    assert [a["fingerprint"] for a in resolved["alerts"]] == [
        a["fingerprint"] for a in fired["alerts"]
    ]
    alert = resolved["alerts"][0]
    assert alert["status"] == "resolved"
    assert alert["endsAt"] == "2026-01-06T11:47:40.250Z"
    assert alert["annotations"]["summary"] == "patchtst on e1: action_collapse; rolled back"


def test_a_failed_rollback_keeps_the_alerts_firing() -> None:
    payload = alertmanager_payload(
        notification("rollback_executed", result="rollback_failed"), NOW_S
    )
    assert payload["status"] == "firing"
    assert {a["status"] for a in payload["alerts"]} == {"firing"}
    assert {a["endsAt"] for a in payload["alerts"]} == {NOT_ENDED}
    assert payload["alerts"][0]["annotations"]["summary"] == (
        "patchtst on e1: action_collapse; ROLLBACK FAILED, act now"
    )


def test_an_unknown_format_is_refused_without_showing_the_url() -> None:
    with pytest.raises(MonitorIOError, match="webhook format must be one of monitor, alertmanager"):
        Webhook("http://127.0.0.1:9/hook/secret-token", payload_format="slack")


@pytest.fixture
def server() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


@pytest.mark.parametrize("payload_format", ["monitor", "alertmanager"])
def test_each_format_reaches_a_real_http_server(server: Recorder, payload_format: str) -> None:
    outcomes = Outcomes()
    hook = Webhook(server.url, retries=0, report=outcomes, payload_format=payload_format)
    hook.notify(notification())
    outcome = outcomes.wait()
    hook.drain(5)
    assert outcome == {"webhook": "delivered", "event": "violation", "attempt": 1, "status": 200}
    assert "secret-path" not in json.dumps(outcomes.items)
    (request,) = server.requests
    assert request["headers"]["Content-Type"] == "application/json"
    body = json.loads(request["body"])
    if payload_format == "monitor":
        assert body == notification()
    else:
        assert set(body) == PAYLOAD_KEYS
        assert [a["labels"]["rule"] for a in body["alerts"]] == [v["rule"] for v in VIOLATIONS]
