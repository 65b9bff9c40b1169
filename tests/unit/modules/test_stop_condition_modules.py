"""The runbook's stop conditions through the modules' main() (issue 16 item 4): engine_status
with stop_paths (the preflight's check: measures, findings and the sentences that refuse,
thresholds from the task) and canary_probe with stop_paths (the monitor's measures and the
read's payload sizes and consensus counts), against the fake journalctl, a real data directory
and the real redis-server; every bad option refused before anything is read."""

from __future__ import annotations

import json

import pytest

from tests.module_harness import BASELINE, UNIT, fails, succeeds

CANARY = "QSC_CANARY_MODEL=patchtst PATCHTST_SHADOW_ONLY=false"


@pytest.fixture
def status_args(fake_systemd, git_checkout, telemetry, tmp_path) -> dict:
    """A running engine whose fake journal answers 3 lines to every read, 150 events."""
    checkout, sha = git_checkout
    fake_systemd.set(
        journal=[f"AI_ENGINE_BUILD: {sha[:7]}", "[OK] xgb agent loaded (weight: 100%)", "[READY]"]
    )
    telemetry.add(150)
    data = tmp_path / "data"
    data.mkdir()
    (data / "trade.db").write_bytes(b"\x01" * 300_000)
    return {
        **telemetry.args,
        "service": UNIT,
        "checkout": str(checkout),
        "stop_paths": [str(data), str(tmp_path / "no-logs-yet")],
        "activation_log": str(tmp_path / "qsc_canary.jsonl"),
        "stop_log_window": 3,
    }


def test_the_preflight_check_measures_and_refuses_with_the_rules_sentence(status_args) -> None:
    # The fake journal answers 3 lines to both reads: 3 scheduled restarts in 24 h (> 2) and
    # 3 lines in 3 s (60/min, under 1000).
    result = succeeds("engine_status", status_args)["stop_conditions"]
    assert result["blockers"] == [
        "Restart loop: 3 crash restarts in 24 h (>2; journal 3, NRestarts 0)"
    ]
    assert result["measures"]["log_lines"]["per_min"] == 60.0
    assert result["measures"]["disk"]["bytes"] >= 300_000
    assert result["measures"]["redis"]["stream_length"] == 150
    assert result["events"]["events"] == 150 and result["events"]["payload_p95"] > 500
    assert result["undecided"] == ["disk_growth: no size recorded at the activation"]
    assert result["errors"] == []


def test_thresholds_from_the_task_and_the_baseline_of_the_last_activation(
    status_args, tmp_path
) -> None:
    data = status_args["stop_paths"][0]
    record = {
        "event": "activation",
        "model": "patchtst",
        "stop_baseline": {"disk": {"paths": {data: 0}}},
    }
    (tmp_path / "qsc_canary.jsonl").write_text(json.dumps(record) + "\n")
    status_args["stop_thresholds"] = {
        "max_restarts_24h": 3,
        "max_log_lines_per_min": 59,
        "max_disk_growth_bytes": 200_000,
        "max_payload_p95": 100,
    }
    result = succeeds("engine_status", status_args, check_mode=True)["stop_conditions"]
    assert [f["rule"] for f in result["findings"]] == ["log_spam", "disk_growth", "payload_p95"]
    assert all(f["blocking"] for f in result["findings"])


def test_a_journal_that_cannot_be_read_is_an_error_the_preflight_refuses_on(
    status_args, fake_systemd
) -> None:
    fake_systemd.set(fail={"journalctl": "No journal files were found."})
    result = succeeds("engine_status", status_args)
    assert result["problems"]  # the startup proof's journal too
    errors = result["stop_conditions"]["errors"]
    assert [e.split(":")[0] for e in errors] == ["restart_loop", "log_spam"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stop_paths": ["relative"]}, "normalised absolute path"),
        ({"stop_paths": ["/a/../etc"]}, "normalised absolute path"),
        ({"stop_log_window": 0}, "log_window_s must be in [1, 3600]"),
        ({"stop_log_window": 4000}, "log_window_s must be in [1, 3600]"),
        ({"stop_thresholds": {"max_restarts_24h": -1}}, "max_restarts_24h"),
        ({"stop_thresholds": {"no_such": 1}}, "unknown thresholds: no_such"),
        ({"stop_thresholds": {"consensus_low_share": 2}}, "share in [0, 1]"),
    ],
)
def test_bad_stop_options_are_refused_before_anything_is_read(
    status_args, fake_systemd, change, message
) -> None:
    result = fails("engine_status", {**status_args, **change})
    assert "invalid stop conditions" in result["msg"] and message in result["msg"]
    assert fake_systemd.calls() == []


@pytest.fixture
def probe_args(fake_systemd, telemetry, tmp_path) -> dict:
    fake_systemd.show(Environment=CANARY)
    telemetry.add(120)
    log = tmp_path / "qsc_canary.jsonl"
    log.write_text(
        json.dumps(
            {
                "event": "activation",
                "model": "patchtst",
                "weight": 0.1,
                "started_at": "2026-01-10T12:00:00.000Z",
            }
        )
        + "\n"
    )
    return {
        "model": "patchtst",
        "baseline": BASELINE,
        "service": UNIT,
        "activation_log": str(log),
        **telemetry.args,
        "retries": 0,
        "stop_paths": [str(tmp_path)],
    }


def test_the_probe_measures_the_host_and_the_events_it_read(probe_args) -> None:
    result = succeeds("canary_probe", probe_args)
    measures, events = result["stop_conditions"], result["stop_events"]
    assert measures["restarts"]["count"] == measures["restarts"]["journal_24h"]
    assert measures["redis"]["stream_length"] == 120 and measures["redis"]["error"] is None
    assert events["events"] == len(result["observations"]["rows"]) == len(events["payload_bytes"])
    assert 0 <= events["low"] <= events["events"] and 0 <= events["full"] <= events["events"]


def test_the_probe_without_stop_paths_measures_nothing(probe_args) -> None:
    del probe_args["stop_paths"]
    result = succeeds("canary_probe", probe_args)
    assert "stop_conditions" not in result and "stop_events" not in result


@pytest.mark.parametrize(
    "change", [{"stop_paths": ["x/y"]}, {"stop_log_window": 0.5}, {"stop_paths": ["/a\nb"]}]
)
def test_the_probe_refuses_bad_stop_options(probe_args, fake_systemd, change) -> None:
    result = fails("canary_probe", {**probe_args, **change})
    assert result["msg"].startswith("invalid stop conditions")
    assert fake_systemd.calls() == []
