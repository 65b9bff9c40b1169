"""`model-safety monitor` against faults that trigger at once (a crash loop: rule 7; telemetry
that stalls: rule 8) beside a healthy canary that completes its window safe; the monitor is
killed mid-window and restarted (it resumes every host it had not finished), and a second
monitor for the same hosts is refused. Every rolled-back host ends byte-identical to its
pre-canary state."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from model_safety.monitor.settings import ACTIVE, ROLLING_BACK
from tests.integration.lab_activation import log_records, snapshot
from tests.integration.monitor_lab import (
    FAULTS_WITH_CANARY,
    activation_started_at,
    canaries,
    conclusive_checks_since,
    epoch,
    monitor,
    read_jsonl,
    records,
    start_monitor,
)

pytestmark = pytest.mark.lab

# The faults start this long after the canary's engine start: after the first monitor is
# killed (the canary's own proof ends about 12 s after that start; the first monitor checks
# twice and a second one is refused in about 12 s more), so the restarted one judges them.
FAULT_AT = 30
# Fault -> (the rules it may trigger, the most judging checks recorded after the fault until
# one does; a check is recorded when its probe ends, so on a busy machine one probed before the
# fault may be recorded after it).
FAULTS = {
    # Rule 7 at once: caught restarting (auto-restart) or already restarted.
    "SIM_CRASH_AFTER": (
        {"SIM_CRASH_AFTER": str(FAULT_AT)},
        {"service_inactive", "service_restarted"},
        2,
    ),
    # Stall: one check may still see the last events, then --stall-checks 2 empty ones.
    "SIM_SILENT_AFTER": ({"SIM_SILENT_AFTER": str(FAULT_AT)}, {"telemetry_stalled"}, 3),
}
WINDOW_S = 40


def test_faults_roll_back_a_healthy_canary_completes_and_a_killed_monitor_resumes(hosts, tmp_path):
    crashing, silent, healthy = hosts
    envs = [{**FAULTS_WITH_CANARY, **env} for env, _rules, _checks in FAULTS.values()]
    befores = canaries(hosts, [*envs, {}])
    args = ("--limit", ",".join(host.name for host in hosts), "--duration", f"{WINDOW_S}s")

    first = start_monitor(tmp_path, *args)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            checks = [c for c in read_jsonl(tmp_path / "checks.jsonl") if "check" in c]
            if len({c["check"] for c in checks}) >= 2:
                break
            time.sleep(0.3)
        refused = monitor(tmp_path, *args, timeout=60)
        assert refused.returncode == 2, refused.output
        assert "another monitor already watches" in refused.output
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    # What the killed monitor left: a host it had not finished (still watched, or its rollback
    # under way) is resumed; one it had finished, on a machine slow enough for a fault to come
    # before the kill, starts afresh.
    unfinished = {
        host.name: json.loads((tmp_path / "state" / f"{host.name}.patchtst.json").read_text())[
            "status"
        ]
        in (ACTIVE, ROLLING_BACK)
        for host in hosts
    }
    assert unfinished[healthy.name], unfinished

    run = monitor(tmp_path, *args)

    assert run.returncode == 4, run.output
    for host in hosts:
        started = records(run, "monitoring_started", host.name)
        assert [r["resumed"] for r in started] == [False, unfinished[host.name]]
        if unfinished[host.name]:
            assert started[1]["window_start"] == started[0]["window_start"]
            assert started[1]["checks_done"] >= 1  # the window goes on: not started over
    for host, (fault, (_env, rules, most_checks)) in zip(
        (crashing, silent), FAULTS.items(), strict=True
    ):
        bad_since = activation_started_at(host) + FAULT_AT
        (rollback,) = records(run, "rollback_executed", host.name)
        assert rollback["result"] == "rolled_back", rollback
        assert {v["rule"] for v in rollback["violation_details"]} <= rules, rollback[
            "violation_details"
        ]
        after_fault = conclusive_checks_since(run, host.name, bad_since)
        assert 1 <= len(after_fault) <= most_checks, [(c["ts"], c["status"]) for c in after_fault]
        after = snapshot(host)
        assert after["env"] == befores[host.name]["env"]
        assert after["dropins"] == befores[host.name]["dropins"]
        print(
            f"\n{host.name} {fault}: fault -> proven rollback "
            f"{epoch(rollback['ts']) - bad_since:.1f} s ({len(after_fault)} checks)"
        )
    # The healthy canary: its window ran to its end across both monitors, then completed.
    (completed,) = records(run, "monitoring_completed", healthy.name)
    assert completed["result"] == "safe"
    window_start = records(run, "monitoring_started", healthy.name)[0]["window_start"]
    assert completed["window_start"] == window_start
    assert WINDOW_S <= epoch(completed["ts"]) - epoch(window_start) < WINDOW_S + 15
    assert not records(run, "violation", healthy.name)
    assert "qsc_canary.conf" in snapshot(healthy)["dropins"]
    # On the host, that record carries the canary's paired comparison over its watch
    # (monitor_record.yml): 40 s of events cannot judge a 300 s horizon, and it says so.
    on_host = [r for r in log_records(healthy) if r["event"] == "monitoring_completed"][-1]
    assert on_host["window_start"] == window_start
    comparison = on_host["comparison"]
    assert comparison["decided"] is False, comparison
    assert comparison["summary"] == (
        "patchtst: not decided: patchtst made no directional call with an outcome"
    )
    assert comparison["report"].startswith("/var/lib/model-safety/reports/compare_")
