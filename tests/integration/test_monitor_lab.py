"""`model-safety monitor` for real: canaries on the lab's systemd hosts whose model collapses at
a known time (rules 1-4), watched through ansible-runner, rolled back by playbooks/rollback.yml,
with a webhook that never answers and the Prometheus textfile.

Each host ends byte-identical to its state before the canary (env file, drop-ins); the time
from the collapse to the proven rollback is printed (the figure of the issue's note).
"""

from __future__ import annotations

import socket

import pytest

from tests.integration.lab_activation import log_records, snapshot
from tests.integration.monitor_lab import (
    FAULTS_WITH_CANARY,
    TURNS_BAD_AT,
    activation_started_at,
    canaries,
    conclusive_checks_since,
    epoch,
    monitor,
    records,
)

pytestmark = pytest.mark.lab

# Behaviour -> the rules it must trigger (any one of them).
COLLAPSES = {
    "buy_bias": {"action_collapse"},
    "hold_collapse": {"hold_collapse", "action_collapse"},
    "low_spread": {"flat_predictions", "narrow_spread"},
}


def test_collapsed_canaries_are_rolled_back_within_the_persist_checks(hosts, tmp_path):
    behaviours = list(COLLAPSES)
    envs = [
        {**FAULTS_WITH_CANARY, "SIM_PATCHTST": f"healthy,{behaviour}@{TURNS_BAD_AT}"}
        for behaviour in behaviours
    ]
    befores = canaries(hosts, envs)
    # A webhook that accepts the connection and never answers: it must not delay anything.
    dead = socket.create_server(("127.0.0.1", 0))
    dead_url = f"http://user:secret@127.0.0.1:{dead.getsockname()[1]}/hook?token=abc"
    try:
        run = monitor(
            tmp_path,
            "--limit",
            ",".join(host.name for host in hosts),
            "--duration",
            f"{TURNS_BAD_AT + 60}s",
            "--webhook-url",
            dead_url,
            "--webhook-timeout",
            "2s",
            "--webhook-retries",
            "1",
            "--textfile-dir",
            str(tmp_path),
        )
    finally:
        dead.close()

    assert run.returncode == 4, run.output
    assert "secret" not in run.output and "token=abc" not in run.output
    for host, behaviour in zip(hosts, behaviours, strict=True):
        bad_since = activation_started_at(host) + TURNS_BAD_AT
        (rollback,) = records(run, "rollback_executed", host.name)
        assert rollback["result"] == "rolled_back", rollback
        assert rollback["runner"]["status"] == "successful"
        rules = {v["rule"] for v in rollback["violation_details"]}
        assert rules & COLLAPSES[behaviour], (behaviour, rollback["violation_details"])
        for violation in rollback["violation_details"]:
            assert violation["count"] >= 2
            assert violation["value"] is not None and violation["threshold"] is not None
        # Within the persist checks: the two bad ones, after at most one check that probed
        # before the collapse (recorded after it on a busy machine) and one mixed check;
        # inconclusive checks (too few new events) judge nothing and do not count.
        after_collapse = conclusive_checks_since(run, host.name, bad_since)
        assert 2 <= len(after_collapse) <= 4, [(c["ts"], c["status"]) for c in after_collapse]
        assert after_collapse[-1]["status"] == "violation"
        # The rollback started right after the violation, the dead webhook did not wait.
        (violation_record, *_) = records(run, "violation", host.name)
        started_rollback = epoch(rollback["ts"]) - rollback["runner"]["seconds"]
        assert started_rollback - epoch(violation_record["ts"]) < 1.5
        # The host is back to what it was before the canary, byte for byte.
        after = snapshot(host)
        assert after["env"] == befores[host.name]["env"]
        assert after["dropins"] == befores[host.name]["dropins"]
        host_log = [r for r in log_records(host) if r["event"] == "rollback_executed"]
        assert host_log and host_log[-1]["reason"].startswith("monitor ")
        assert f"{host.name} " in host_log[-1]["reason"]
        print(
            f"\n{host.name} {behaviour}: collapse -> proven rollback "
            f"{epoch(rollback['ts']) - bad_since:.1f} s (rollback run "
            f"{rollback['runner']['seconds']:.1f} s)"
        )
    webhook = [c for c in run.checks if c.get("webhook")]
    assert webhook and all(c["webhook"] == "failed" for c in webhook)
    assert {r["event"] for r in run.activation_log} == {
        "monitoring_started",
        "violation",
        "rollback_executed",
    }
    textfile = (tmp_path / "qsc_monitor_patchtst.prom").read_text()
    for host in hosts:
        labels = f'host="{host.name}",model="patchtst",status="rolled_back"'
        assert f"qsc_monitor_status{{{labels}}} 1" in textfile
