"""`model-safety monitor` for real: canaries on the lab's systemd hosts whose model collapses at
a known time, watched through ansible-runner at 10 events/s with 5 s checks (issue 13, item 9:
a collapse is decided on evidence within 2 checks of collapsed events, then rolled back by
playbooks/rollback.yml), with a webhook that never answers and the Prometheus textfile.

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

# Behaviour -> (the rules that may decide it, the most checks recorded after the collapse up to
# the decision: one that probed before the collapse but was recorded after it on a busy
# machine, one mixed, and the checks of collapsed events the evidence needs). An action
# collapse needs about 70 events (2 checks); a confidence stuck in a narrow band about 170
# (the band's tell, 0.1 nat per event, is weaker than a class's, up to 0.35).
COLLAPSES = {
    # 97 % BUY also sells nothing when the ensemble sells: hard disagreement, rightly.
    "buy_bias": ({"action_collapse", "hard_disagreement"}, 4),
    "hold_collapse": ({"action_collapse", "narrow_spread", "constant_output"}, 4),
    "low_spread": ({"narrow_spread", "constant_output"}, 6),
}


def test_collapsed_canaries_are_rolled_back_within_two_checks_of_evidence(hosts, tmp_path):
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
            "--interval",
            "5s",
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
        rules_allowed, most_checks = COLLAPSES[behaviour]
        rules = {v["rule"] for v in rollback["violation_details"]}
        assert rules and rules <= rules_allowed, (behaviour, rollback["violation_details"])
        for violation in rollback["violation_details"]:
            assert violation["value"] is not None and violation["threshold"] is not None
            # Decided on evidence: confirmed by events after the crossing.
            assert violation["evidence"]["n"] > violation["evidence"]["crossed_n"]
        after_collapse = conclusive_checks_since(run, host.name, bad_since)
        assert 1 <= len(after_collapse) <= most_checks, [
            (c["ts"], c["status"], c["events"]) for c in after_collapse
        ]
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
        # The monitor's rollback attaches what the canary did while it voted (issue 16 item 2).
        damage = host_log[-1]["damage"]
        assert damage["model"] == "patchtst" and damage["rows"] > 0, damage
        assert host_log[-1]["damage_reports"]["markdown"].endswith(".md")
        print(
            f"\n{host.name} {behaviour}: {len(after_collapse)} checks; collapse -> proven rollback "
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
