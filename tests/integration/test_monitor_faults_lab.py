"""`model-safety monitor` against faults that trigger at once or over the ensemble: a crash
loop (rule 7), telemetry that stalls (rule 8) and a contrarian canary (rule 5), each on its
own lab host under one monitor; every host ends byte-identical to its pre-canary state."""

from __future__ import annotations

import pytest

from tests.integration.lab_activation import snapshot
from tests.integration.monitor_lab import (
    FAULTS_WITH_CANARY,
    TURNS_BAD_AT,
    activation_started_at,
    canaries,
    epoch,
    host_checks,
    monitor,
    records,
)

pytestmark = pytest.mark.lab

# Fault -> (the rules it may trigger, the most checks after the fault until one does).
FAULTS = {
    # Rule 7 at once: caught restarting (auto-restart) or already restarted.
    "SIM_CRASH_AFTER": (
        {"SIM_CRASH_AFTER": str(TURNS_BAD_AT)},
        {"service_inactive", "service_restarted"},
        1,
    ),
    # Stall: one check may still see the last events, then --stall-checks 2 empty ones.
    "SIM_SILENT_AFTER": (
        {"SIM_SILENT_AFTER": str(TURNS_BAD_AT)},
        {"telemetry_stalled"},
        3,
    ),
    "contrarian": (
        {"SIM_PATCHTST": f"healthy,contrarian@{TURNS_BAD_AT}"},
        {"hard_disagreement"},
        3,
    ),
}


def test_crash_stall_and_disagreement_are_rolled_back(hosts, tmp_path):
    envs = [{**FAULTS_WITH_CANARY, **env} for env, _rules, _checks in FAULTS.values()]
    befores = canaries(hosts, envs)

    run = monitor(
        tmp_path,
        "--limit",
        ",".join(host.name for host in hosts),
        "--duration",
        f"{TURNS_BAD_AT + 60}s",
    )

    assert run.returncode == 4, run.output
    for host, (fault, (_env, rules, most_checks)) in zip(hosts, FAULTS.items(), strict=True):
        bad_since = activation_started_at(host) + TURNS_BAD_AT
        (rollback,) = records(run, "rollback_executed", host.name)
        assert rollback["result"] == "rolled_back", rollback
        assert {v["rule"] for v in rollback["violations"]} <= rules, rollback["violations"]
        after_fault = [c for c in host_checks(run, host.name) if epoch(c["ts"]) > bad_since]
        assert 1 <= len(after_fault) <= most_checks, [(c["ts"], c["status"]) for c in after_fault]
        after = snapshot(host)
        assert after["env"] == befores[host.name]["env"]
        assert after["dropins"] == befores[host.name]["dropins"]
        print(
            f"\n{host.name} {fault}: fault -> proven rollback "
            f"{epoch(rollback['ts']) - bad_since:.1f} s ({len(after_fault)} checks)"
        )
