"""`playbooks/shadow.yml` and `playbooks/promote.yml` for real, against the lab's hosts.

Shadow: a model file is deployed in shadow mode and proven from the journal (the file's
sha256) and new events (tagged shadow, never counted); a missing file changes nothing.
Promotion: every hard blocker is produced by the real engine with its SIM_ switches and stops
the promotion before anything changes; a jump is refused; the ladder 0.10 -> 0.25 -> 0.50 ->
1.0 shows each step's weights in the journal, and 1.0 is the promoted state (no drop-in). A
step from a canary weight needs the monitor's safe for that step (appended to the host's log
with playbooks/monitor_record.yml, as the monitor does) or an explicit -e monitor_override,
which is recorded.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from labctl.config import REPO_ROOT
from labctl.remote import DROPIN_DIR, ENV_FILE, set_env_keys
from tests.integration.lab_activation import (
    BACKUPS,
    Run,
    fresh,
    log_records,
    playbook,
    snapshot,
)

pytestmark = pytest.mark.lab

MODEL_FILE = "/opt/quantum/models/patchtst-v2.pth"


def promote(host, *args: str) -> Run:
    # The tests' fresh starts are seconds old: 2 s of uptime instead of the lab's 10 (a later
    # -e in args, as in the uptime test, wins).
    return playbook(
        "promote.yml",
        "-e",
        "model=patchtst",
        "-e",
        "promote_min_uptime=2",
        "--limit",
        host.name,
        *args,
    )


def shadow_model_file(host, path: str) -> Run:
    """shadow.yml on ``host``: patchtst in shadow with the model file ``path``."""
    return playbook(
        "shadow.yml", "-e", "model=patchtst", "-e", f"model_path={path}", "--limit", host.name
    )


def test_shadow_deploys_a_model_file_and_proves_it(hosts):
    host = hosts[0]
    content = "retrained patchtst weights\n" * 100
    before = fresh(host)
    host.write_file(MODEL_FILE, content, "0644", "root:root")
    sha256 = hashlib.sha256(content.encode()).hexdigest()

    run = shadow_model_file(host, MODEL_FILE)

    assert run.returncode == 0, run.output
    after = snapshot(host)
    assert after["env"] == set_env_keys(before["env"], {"PATCHTST_MODEL_PATH": MODEL_FILE})
    journal = host.journal(after["invocation"])
    assert f"[PatchTST-INIT] Model file: {MODEL_FILE} (present, sha256 {sha256[:12]})" in journal
    cutover = host.last_stream_id()
    for event in host.wait_events(cutover, 20, timeout=30):
        assert event["model_breakdown"]["patchtst"]["shadow"] is True
        assert event["total_models"] == 3
    (backup,) = after["backups"]
    metadata = json.loads(host.read_file(f"{BACKUPS}/{backup}/manifest.json"))["metadata"]
    assert metadata["model_sha256"] == sha256 and metadata["model_path"] == MODEL_FILE
    record = log_records(host)[-1]
    assert record["event"] == "shadow" and record["model_sha256"] == sha256


def test_shadow_with_a_missing_model_file_changes_nothing(hosts):
    host = hosts[0]
    before = fresh(host)

    run = shadow_model_file(host, "/opt/quantum/models/none.pth")

    assert run.returncode != 0
    assert "does not exist or is not a regular file; nothing was changed" in run.output
    assert snapshot(host) == before


def test_shadow_takes_a_voting_model_out_of_the_vote(hosts):
    host = hosts[0]
    before = fresh(host)

    run = playbook("shadow.yml", "-e", "model=xgb", "--limit", host.name)

    assert run.returncode == 0, run.output
    assert snapshot(host)["env"] == set_env_keys(before["env"], {"XGB_SHADOW_ONLY": "true"})
    cutover = host.last_stream_id()
    for event in host.wait_events(cutover, 20, timeout=30):
        assert event["model_breakdown"]["xgb"]["shadow"] is True
        assert event["model_breakdown"]["patchtst"]["shadow"] is True
        assert event["total_models"] == 2


BLOCKED = "promotion of patchtst BLOCKED"
# The payload p95 is also a runbook stop condition: the preflight refuses with its sentence
# before the promotion's check runs.
STOP_CONDITION = "stop condition, nothing was changed"


@pytest.mark.parametrize(
    ("env", "args", "heading", "blocker"),
    [
        ({"SIM_SHADOW_LEAK": "true"}, (), BLOCKED, "shadow model counted as voter"),
        ({"SIM_PAYLOAD_PAD": "1600"}, (), STOP_CONDITION, "bytes >= 1500"),
        ({"SIM_PATCHTST": "contrarian"}, (), BLOCKED, "hard disagreement"),
        ({"SIM_PATCHTST": "constant"}, (), BLOCKED, "NOT_READY"),
        ({}, ("-e", "promote_min_uptime=3600"), BLOCKED, "< min_uptime 3600 s"),
    ],
    ids=["shadow-counted-as-voter", "payload-p95", "hard-disagreement", "shadow-gates", "uptime"],
)
def test_every_hard_blocker_stops_the_promotion(hosts, env, args, heading, blocker):
    host = hosts[1]
    before = fresh(host, **env)
    host.wait_events(host.last_stream_id(), 220, timeout=30)

    run = promote(host, *args)

    assert run.returncode != 0
    assert heading in run.output, run.output
    assert blocker in run.output, run.output
    assert snapshot(host) == before


def wait_entries(host, count: int, timeout: float) -> None:
    """Until the engine has added ``count`` more entries to the stream (cheap to poll)."""
    target = host.entries_added() + count
    deadline = time.monotonic() + timeout
    while host.entries_added() < target:
        assert time.monotonic() < deadline, f"{host.name}: fewer than {count} new events"
        time.sleep(1)


def test_a_misleading_model_is_refused_on_its_significant_loss(hosts):
    """The lab's 'misleading' shadow model passes every other rule, but it is wrong in most of
    the calls where it and the ensemble disagree: refused on the comparison alone (the lab
    inventory's horizon, the symbol's next tick), nothing changed, the decision log says why."""
    host = hosts[1]
    before = fresh(host, SIM_PATCHTST="misleading")
    # 1500 events (15 s at 100/s): about 220 disagreements, p ~1e-5 (p < 0.005 in the seeded
    # simulations of test_lab_engine_models.py)
    wait_entries(host, 1500, timeout=60)

    run = promote(host)

    assert run.returncode != 0
    against = "the ensemble without patchtst (the published side)"
    assert (
        f"promotion of patchtst BLOCKED on {host.name}: patchtst significantly worse than "
        f"{against}: wrong in " in run.output
    ), run.output
    assert "horizon 0.03 s | nothing on the host was changed" in run.output
    assert snapshot(host) == before
    decision = newest_decision_log(host)
    assert "## Verdict: BLOCKED" in decision
    assert f"## Comparison with {against}: significantly worse: a hard blocker" in decision
    assert "## Paired comparison: `patchtst` against the baseline" in decision
    assert "## Shadow gates: READY" in decision


def test_a_jump_is_refused(hosts):
    host = hosts[1]
    before = fresh(host)

    run = promote(host, "-e", "weight=0.5")

    assert run.returncode != 0
    assert "the next step is 0.1" in run.output and "a jump needs -e allow_jump=true" in run.output
    assert snapshot(host) == before


def monitor_records(host, *records: dict) -> None:
    """Append the monitor's records to the host's activation log as the monitor does
    (playbooks/monitor_record.yml)."""
    records_var = {"monitor_records": {host.name: list(records)}}
    run = playbook("monitor_record.yml", "--limit", host.name, "-e", json.dumps(records_var))
    assert run.returncode == 0, run.output


def completed(result: str, *missing: str) -> dict:
    """A monitor's monitoring_completed record of patchtst."""
    return {
        "event": "monitoring_completed",
        "model": "patchtst",
        "result": result,
        "missing": list(missing),
        "checks": 3,
        "duration_s": 90.0,
    }


def newest_decision_log(host) -> str:
    decisions = sorted(
        (REPO_ROOT / "reports" / "safety" / host.name).glob("promotion_decision_*.md")
    )
    assert decisions
    return decisions[-1].read_text()


def test_the_promotion_ladder_needs_the_monitors_safe_up_to_the_promoted_state(hosts):
    """One canary for every case of the monitor's result (CI time): out of shadow no watch is
    needed; from 0.1 a step with no monitor result, then with an inconclusive one, is refused
    with nothing changed; a safe one promotes; at 0.25 the operator's override promotes and is
    recorded; the override takes the last step to the promoted state."""
    host = hosts[2]
    before = fresh(host)
    steps = []

    def step(weight: str, *args: str) -> Run:
        host.wait_events(host.last_stream_id(), 220, timeout=30)
        run = promote(host, "-e", f"weight={weight}", *args)
        if run.returncode == 0:
            journal = host.journal(host.invocation())
            percent = {"0.1": "10", "0.25": "25", "0.5": "50", "1.0": "20"}[weight]
            assert f"[OK] patchtst agent loaded (weight: {percent}%)" in journal
            steps.append(run.seconds)
        return run

    run = step("0.1")
    assert run.returncode == 0, run.output
    assert "monitor_result" not in log_records(host)[-1]

    # No monitor result since the step began: refused, nothing changed.
    at_canary = snapshot(host)
    run = step("0.25")
    assert run.returncode != 0
    assert "promotion of patchtst BLOCKED" in run.output, run.output
    assert "monitor: no completed watch of patchtst since its promotion to 0.1 at" in run.output
    assert "or override with -e 'monitor_override=" in run.output
    assert "nothing on the host was changed" in run.output
    assert snapshot(host) == at_canary
    assert "## Monitor: missing" in newest_decision_log(host)

    # The monitor's inconclusive end: refused, naming it and why, nothing changed.
    monitor_records(host, completed("inconclusive", "only 150 of the 200 events the gate needs"))
    at_canary = snapshot(host)
    run = step("0.25")
    assert run.returncode != 0
    assert "ended 'inconclusive' at" in run.output, run.output
    assert "only 150 of the 200 events the gate needs" in run.output
    assert snapshot(host) == at_canary

    # Its safe end (the newest since the step) promotes, and the record says so.
    monitor_records(host, completed("safe"))
    run = step("0.25")
    assert run.returncode == 0, run.output
    record = log_records(host)[-1]
    assert (record["event"], record["monitor_result"]) == ("promotion", "safe")
    assert "monitor_override" not in record

    # A safe watch of 0.1 does not count for 0.25: the override does, and is recorded.
    reason = "watched by hand for the lab test"
    run = step("0.5", "-e", json.dumps({"monitor_override": f" {reason}\n"}))
    assert run.returncode == 0, run.output
    record = log_records(host)[-1]
    assert record["monitor_result"] == "missing"
    assert record["monitor_override"] == {"reason": reason, "found": "missing"}
    decision = newest_decision_log(host)
    assert f"- OVERRIDDEN (monitor_override): {reason} (found: missing)" in decision
    assert "## Verdict: GO" in decision

    # The last step, not about the monitor.
    run = step("1.0", "-e", json.dumps({"monitor_override": "lab test of the ladder"}))
    assert run.returncode == 0, run.output
    after = snapshot(host)
    # Promoted: the model votes at its baseline weight; no canary drop-in is left.
    assert after["env"] == set_env_keys(before["env"], {"PATCHTST_SHADOW_ONLY": "false"})
    assert after["dropins"] == {}
    assert not any(line.startswith("[CANARY]") for line in host.journal(after["invocation"]))
    assert host.run("ls", f"{DROPIN_DIR}/qsc_canary.conf", check=False).returncode != 0
    assert [float(r["to"]) for r in log_records(host) if r["event"] == "promotion"] == [
        0.1,
        0.25,
        0.5,
        1.0,
    ]
    assert host.read_file(ENV_FILE).count("PATCHTST_SHADOW_ONLY=false") == 1
    assert newest_decision_log(host).startswith("# Promotion decision: patchtst")
    print(f"\npromotion steps: {steps} s")
