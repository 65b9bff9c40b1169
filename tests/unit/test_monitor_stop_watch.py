"""The runbook's stop conditions in the canary monitor (monitor.stop_watch through
monitor.assess): a blocking host rule is a violation of the check, a redundant consensus and a
failed measure are warnings, the events-based rules accumulate since the activation and are
not decided below stop_min_events: a broken canary at 1 event/min (30 s checks) is decided only
after 100 minutes' events, at 100/s within the first check; a healthy one never."""

from __future__ import annotations

import math
from typing import Any

import pytest

from model_safety.monitor.assess import assess
from model_safety.monitor.evidence import mixture_log_m
from model_safety.monitor.settings import MonitorSettings
from model_safety.monitor.stop_watch import CONSENSUS_BUDGET, judge_stop_conditions
from tests.unit.test_monitor_assess import DEFAULT, MODEL, activation, probe, start

BASE = 1_768_046_400_000


def measures(restarts: int = 0, per_min: float = 10.0, disk: int = 0, error: str | None = None):
    return {
        "restarts": {"count": restarts, "journal_24h": restarts, "n_restarts": 0, "error": None},
        "log_lines": {"lines": per_min, "per_min": per_min, "window_s": 60.0, "error": error},
        "disk": {"paths": {"/opt/quantum/data": disk}, "bytes": disk, "error": None},
        "redis": {"used_memory": 10, "stream_length": 10, "error": None},
    }


def stop_probe(rows, events=None, **measured: Any) -> dict[str, Any]:
    result = probe(rows)
    record = activation()
    record["stop_baseline"] = {"disk": {"paths": {"/opt/quantum/data": 0}}}
    result["activation"] = record
    result["stop_conditions"] = measures(**measured)
    result["stop_events"] = events or {"events": 0, "payload_bytes": [], "low": 0, "full": 0}
    return result


def rows_at(t0: int, n: int, step_ms: int) -> list[list[Any]]:
    """Healthy rows: every action, spread confidences, agreeing with the side 60 % of the time
    (else the side is HOLD: never a hard disagreement)."""
    return [
        [t0 + i * step_ms, i % 3, 0.3 + 0.4 * ((i * 37) % 100) / 100, i % 3 if i % 5 < 3 else 2]
        for i in range(n)
    ]


def consensus_events(n: int, low: int, full: int = 0, size: int = 600) -> dict[str, Any]:
    return {"events": n, "payload_bytes": [size] * n, "low": low, "full": full}


@pytest.mark.parametrize(
    ("measured", "rule"),
    [
        ({"restarts": 3}, "restart_loop"),
        ({"per_min": 1500.0}, "log_spam"),
        ({"disk": 5_000_000_001}, "disk_growth"),
    ],
)
def test_a_host_stop_condition_is_a_violation(measured, rule) -> None:
    _, check, _ = assess(start(), stop_probe(rows_at(BASE, 5, 1000), **measured), DEFAULT)
    assert check["status"] == "violation"
    assert [v["rule"] for v in check["triggered"]] == [rule]


def test_healthy_measures_are_ok_and_a_failed_measure_is_a_warning() -> None:
    _, ok, _ = assess(start(), stop_probe(rows_at(BASE, 5, 1000)), DEFAULT)
    assert (ok["status"], ok["triggered"]) == ("ok", [])
    _, warned, _ = assess(
        start(), stop_probe(rows_at(BASE, 5, 1000), error="journal unreadable: rc 1"), DEFAULT
    )
    assert warned["status"] == "warning"
    assert [f["rule"] for f in warned["findings"]] == ["stop_measure"]


def test_without_measures_nothing_is_judged() -> None:
    state, check, _ = assess(start(), probe(rows_at(BASE, 5, 1000)), DEFAULT)
    assert check["status"] == "ok" and state["stop"] == {
        "payloads": [],
        "consensus": {"events": 0, "low": 0, "full": 0},
    }


def test_payload_p95_is_judged_over_the_sizes_kept_since_the_activation() -> None:
    state = start()
    big = consensus_events(60, 0, size=1600)
    state, check, _ = assess(state, stop_probe(rows_at(BASE, 60, 10), big), DEFAULT)
    assert check["status"] == "ok"  # 60 < stop_min_events: not decided yet
    state, check, _ = assess(state, stop_probe(rows_at(BASE + 600, 60, 10), big), DEFAULT)
    assert [v["rule"] for v in check["triggered"]] == ["payload_p95"]
    assert check["triggered"][0]["text"] == "Payload p95 1600 bytes >= 1500 (120 events)"


def run_checks(per_check: list[int], low_share: float, full_share: float = 0.0):
    """Checks 30 s apart, ``per_check[i]`` events in check i; the first check whose stop
    conditions trigger, with the events seen by then (None: never)."""
    state = start()
    seen = 0
    for index, n in enumerate(per_check):
        events = consensus_events(n, round(n * low_share), round(n * full_share))
        stop = judge_stop_conditions(state, stop_probe([], events), DEFAULT)
        state["stop"], triggered, _ = stop
        seen += n
        if triggered:
            return index, seen, triggered
    return None


def test_a_broken_canary_at_one_event_per_minute_is_decided_after_enough_events() -> None:
    # 1 event/min with 30 s checks: an event every other check, all at consensus 0-1.
    found = run_checks([index % 2 for index in range(600)], low_share=1.0)
    assert found is not None
    index, seen, triggered = found
    assert seen == 100 and index == 199  # stop_min_events, ~100 minutes
    assert triggered[0]["rule"] == "consensus_broken"


def test_a_broken_canary_at_100_per_second_is_decided_in_the_first_check() -> None:
    found = run_checks([3000] * 3, low_share=0.45)
    assert found is not None and found[0] == 0
    assert found[2][0]["text"] == "Consensus broken: consensus 0-1 in 45.0% of 3000 events (>30%)"


@pytest.mark.parametrize("per_check", [[index % 2 for index in range(2000)], [3000] * 50])
def test_a_healthy_consensus_never_triggers(per_check) -> None:
    assert run_checks(per_check, low_share=0.2, full_share=0.5) is None


def test_a_share_just_over_the_limit_needs_evidence_not_just_the_share() -> None:
    # 31 % of 100 events is over 30 %, but far from evidence at the monitor's error rate.
    assert run_checks([100], low_share=0.31) is None
    alpha = DEFAULT.false_rollback_rate * CONSENSUS_BUDGET
    assert mixture_log_m(31, 100, 0.30) < math.log(1 / alpha)


def test_a_redundant_canary_is_a_warning_never_a_rollback() -> None:
    state = start()
    events = consensus_events(3000, 0, 2700)
    _, check, _ = assess(state, stop_probe(rows_at(BASE, 30, 10), events), DEFAULT)
    assert check["triggered"] == []
    assert [f["rule"] for f in check["findings"]] == ["consensus_redundant"]
    assert f"full consensus with {MODEL} in 90.0% of 3000 events" in check["findings"][0]["text"]


def test_monitor_thresholds_override_the_stop_conditions() -> None:
    strict = MonitorSettings(model=MODEL, thresholds={"max_log_lines_per_min": 5})
    _, check, _ = assess(start(strict), stop_probe(rows_at(BASE, 5, 1000)), strict)
    assert [v["rule"] for v in check["triggered"]] == ["log_spam"]
