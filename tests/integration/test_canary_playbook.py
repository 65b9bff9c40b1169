"""`ansible-playbook playbooks/canary.yml` for real, against the lab's systemd hosts.

Every test starts from `LabHost.reset` (the lab's env file, no drop-in, no lease, backup or
log, a fresh start) with the engine at 100 events/s, so the gate's 200 events come in 2 s.
Each test compares what is on the host before and after, byte for byte: files, drop-ins,
the engine's invocation, backups, the activation log and the lease.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time

import pytest

from labctl.config import REPO_ROOT
from labctl.remote import DROPIN_DIR, ENV_FILE, set_env_keys
from tests.integration.lab_activation import (
    BACKUPS,
    CANARY_DROPIN,
    DESIGN_WEIGHTS,
    LEASE,
    Run,
    ansible_module,
    fresh,
    fresh_all,
    log_records,
    playbook,
    snapshot,
    start_playbook,
)

pytestmark = pytest.mark.lab


def canary(*args: str) -> Run:
    return playbook("canary.yml", *args)


def expected_env(before: str) -> str:
    return set_env_keys(before, {"PATCHTST_SHADOW_ONLY": "false"})


def test_canary_on_one_host_is_proven_recorded_and_not_repeated(hosts):
    host = hosts[0]
    before = fresh(host)

    run = canary("-e", "model=patchtst", "--limit", host.name)

    assert run.returncode == 0, run.output
    after = snapshot(host)
    # Env file: exactly the one key changed, every other byte kept, mode and owner kept.
    assert after["env"] == expected_env(before["env"])
    assert after["env_stat"] == before["env_stat"] == "640 root:qt"
    diff = [
        (old, new)
        for old, new in zip(before["env"].splitlines(), after["env"].splitlines(), strict=True)
        if old != new
    ]
    assert diff == [("PATCHTST_SHADOW_ONLY=true", "PATCHTST_SHADOW_ONLY=false")]
    # Drop-in with the DESIGN weights; a new start that runs them, from the deployed build.
    dropin = after["dropins"]["qsc_canary.conf"]
    assert 'Environment="QSC_CANARY_MODEL=patchtst"' in dropin
    assert 'Environment="QSC_CANARY_WEIGHT=0.1"' in dropin
    assert f'Environment="QSC_MODEL_WEIGHTS={DESIGN_WEIGHTS}"' in dropin
    assert after["invocation"] != before["invocation"]
    journal = host.journal(after["invocation"])
    assert f"AI_ENGINE_BUILD: {host.git_head()[:7]}" in journal
    assert f"[CANARY] patchtst weight=10% weights={DESIGN_WEIGHTS}" in journal
    # One backup, whose manifest matches the files as they were before.
    assert len(after["backups"]) == 1 and after["backups"][0].endswith("_patchtst")
    backup = f"{BACKUPS}/{after['backups'][0]}"
    manifest = json.loads(host.read_file(f"{backup}/manifest.json"))
    assert manifest["model"] == "patchtst" and manifest["weight"] == 0.1
    assert manifest["git_sha"] == host.git_head()
    saved = {entry["path"]: entry for entry in manifest["files"]}
    assert saved[ENV_FILE]["sha256"] == hashlib.sha256(before["env"].encode()).hexdigest()
    assert saved[CANARY_DROPIN].get("absent") is True
    assert host.out("stat", "-c", "%a", backup) == "700"
    # The activation log line, and the lease released.
    (record,) = log_records(host)
    assert record["event"] == "activation"
    assert record["model"] == "patchtst" and float(record["weight"]) == 0.1
    assert record["invocation_id"] == after["invocation"]
    assert record["git_sha"] == host.git_head()
    assert record["backup"] == backup
    assert int(record["gate"]["event_count"]) >= 200 and record["gate"]["verdict"] == "PASS"
    assert record["rollback_command"].endswith(f"playbooks/rollback.yml --limit {host.name}")
    assert after["lease"] == ""
    assert "roll back: ansible-playbook -i" in run.output
    print(f"\ncanary on 1 host: {run.seconds} s")

    again = canary("-e", "model=patchtst", "--limit", host.name)

    assert again.returncode != 0
    assert "one model at a time: canary patchtst is installed" in again.output
    assert f"rollback.yml --limit {host.name}" in again.output
    assert snapshot(host) == after


# Secrets an env file may hold next to the key a canary changes (the engine ignores them).
ENV_SECRETS = {
    "REDIS_PASSWORD": "s3cr3t-pw",
    "API_TOKEN": "tok-9f2e1c",
    "BROKER_URL": "https://trader:url-pw-77@broker.example/api",
}


def test_check_mode_shows_the_change_and_changes_nothing_nor_any_secret(hosts):
    host = hosts[1]
    before = fresh(host, **ENV_SECRETS)

    run = canary("-e", "model=patchtst", "--limit", host.name, "--check", "--diff", "-vvv")

    assert run.returncode == 0, run.output
    for secret in ("s3cr3t-pw", "tok-9f2e1c", "url-pw-77"):
        assert secret not in run.output
    assert "-PATCHTST_SHADOW_ONLY=true +PATCHTST_SHADOW_ONLY=false" in run.output
    assert "(changed keys only; secrets hidden)" in run.output
    assert f'+Environment="QSC_MODEL_WEIGHTS={DESIGN_WEIGHTS}"' in run.output
    assert "quality gate PASS for patchtst" in run.output
    assert snapshot(host) == before


def test_gate_fail_stops_before_anything_changes(hosts):
    host = hosts[1]
    before = fresh(host, SIM_PATCHTST="constant")

    run = canary("-e", "model=patchtst", "--limit", host.name)

    assert run.returncode != 0
    assert "quality gate FAIL for patchtst" in run.output
    assert "nothing on the host was changed" in run.output
    assert snapshot(host) == before


@pytest.mark.parametrize(
    ("extra", "refusal"),
    [
        (("-e", "model_gate_mode=collection"), "the gate ran in mode 'collection', not 'canary'"),
        (("-e", "model_gate_model=xgb"), "the gate judged xgb, not patchtst"),
        (
            ("-e", '{"model_gate_thresholds": {"max_action_share": 0.99}}'),
            "threshold max_action_share was 0.99, not 0.7 (the default)",
        ),
    ],
    ids=["mode", "model", "thresholds"],
)
def test_no_gate_variable_lets_a_failing_canary_past_the_gate(hosts, extra, refusal):
    host = hosts[0]
    # patchtst collapses towards BUY: a canary-mode gate of patchtst at 70 % FAILs it.
    before = fresh(host, SIM_PATCHTST="buy_bias")

    run = canary("-e", "model=patchtst", "--limit", host.name, *extra)

    assert run.returncode != 0
    assert "the gate result does not allow the canary of patchtst" in run.output
    assert refusal in run.output
    assert "nothing on the host was changed" in run.output
    assert snapshot(host) == before


def test_threshold_overrides_and_a_confidence_cap_are_applied_proven_and_recorded(hosts):
    host = hosts[0]
    fresh(host)
    override = {"max_action_share": 0.75}

    run = canary(
        "-e", "model=patchtst", "--limit", host.name,
        "-e", json.dumps({"canary_gate_thresholds": override}),
        "-e", "conf_cap=0.75",
    )  # fmt: skip

    assert run.returncode == 0, run.output
    assert 'thresholds overridden: {"max_action_share": 0.75}' in run.output
    (record,) = log_records(host)
    assert record["gate"]["thresholds_override"] == override
    assert record["gate"]["thresholds"]["max_action_share"] == 0.75
    # The cap: in the drop-in, on the canary's start-up line, in the proof and the record.
    after = snapshot(host)
    assert 'Environment="QSC_CANARY_CONF_CAP=0.75"' in after["dropins"]["qsc_canary.conf"]
    journal = host.journal(after["invocation"])
    assert "[OK] patchtst agent loaded (weight: 10%) conf_cap=0.75" in journal
    assert "[OK] xgb agent loaded (weight: 28.125%)" in journal
    assert "patchtst confidence capped at 0.75" in run.output
    assert "canary at 0.1, confidence capped at 0.75" in run.output
    assert record["conf_cap"] == 0.75
    # The running engine caps what it publishes and carries the raw confidence alongside.
    newest = host.last_stream_id()
    events = host.wait_events(newest, 100)
    entries = [event["model_breakdown"]["patchtst"] for event in events]
    active = [entry for entry in entries if "action" in entry]
    assert active and all(entry["confidence_cap"] == 0.75 for entry in active)
    assert all(entry["confidence"] == min(entry["raw_confidence"], 0.75) for entry in active)
    assert any(entry["raw_confidence"] > 0.75 for entry in active)
    report = (
        REPO_ROOT / "reports" / "safety" / host.name / record["gate"]["reports"][0].split("/")[-1]
    )
    text = report.with_suffix(".md").read_text()
    assert "differ from the defaults: max_action_share" in text


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"SIM_BUILD_OVERRIDE": "deadbee"}, "runs build deadbee"),
        ({"SIM_FAIL_START": "true"}, "stop+start of quantum-ai-engine.service failed"),
    ],
    ids=["stale-build", "failed-start"],
)
def test_failure_after_the_change_restores_the_backup(hosts, fault, reason):
    host = hosts[1]
    # The fault only bites once a canary is configured: the state before it is healthy.
    before = fresh(host, SIM_FAULTS_ONLY_WITH_CANARY="true", **fault)

    run = canary("-e", "model=patchtst", "--limit", host.name)

    assert run.returncode != 0
    assert reason in run.output, run.output
    assert "restored from" in run.output and "with patchtst shadow again, as before" in run.output
    after = snapshot(host)
    assert after["env"] == before["env"]
    assert after["env_stat"] == before["env_stat"]
    assert after["dropins"] == before["dropins"] == {}
    assert after["lease"] == ""
    # The engine was started again on the old files, and proves the old build.
    assert after["invocation"] != before["invocation"]
    assert host.show("ActiveState")["ActiveState"] == "active"
    journal = host.journal(after["invocation"])
    assert f"AI_ENGINE_BUILD: {host.git_head()[:7]}" in journal
    assert not any(line.startswith("[CANARY]") for line in journal)
    (record,) = log_records(host)
    assert record["event"] == "activation_failed"
    assert reason in record["reason"] + record["state"]
    assert record["backup"] == f"{BACKUPS}/{after['backups'][0]}"
    print(f"\nrescue ({fault}): {run.seconds} s")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("-e", "model=../x"), "not a valid model name: '../x'"),
        (("-e", "model=a;b"), "not a valid model name: 'a;b'"),
        (("-e", "model=unknown"), "unknown model 'unknown'"),
        (("-e", "model=patchtst", "-e", "weight=0"), "strictly between 0 and 1"),
        (("-e", "model=patchtst", "-e", "weight=1"), "strictly between 0 and 1"),
        (("-e", "model=patchtst", "-e", "weight=-0.1"), "strictly between 0 and 1"),
        (("-e", "model=patchtst", "-e", "weight=abc"), "must be a decimal number, got 'abc'"),
        (
            ("-e", "model=patchtst", "-e", "conf_cap=1.5"),
            "conf_cap must be a finite number in (0, 1], got '1.5'",
        ),
        ((), "not a valid model name: ''"),
        (
            ("-e", "model=patchtst", "-e", "canary_serial=0"),
            "canary_serial: '0' hosts per batch; at least 1 is needed",
        ),
        (
            ("-e", "model=patchtst", "-e", '{"canary_serial": [1, "150%"]}'),
            "canary_serial (batch 2): '150%' is not a percentage from 1% to 100%",
        ),
    ],
    ids=[
        "dotdot",
        "semicolon",
        "unknown",
        "w0",
        "w1",
        "negative",
        "abc",
        "cap",
        "missing",
        "serial0",
        "serial150",
    ],
)
def test_bad_input_fails_before_the_host_is_touched(lab, extra, message):
    host = lab.hosts[2]
    before = snapshot(host)

    run = canary(*extra, "--limit", host.name)

    assert run.returncode != 0
    assert message in run.output
    # Failed on the controller, at the very first task: no other task ran.
    assert "Take the host's activation lease" not in run.output
    assert snapshot(host) == before


def test_redis_down_fails_closed_before_anything_changes(hosts):
    host = hosts[2]
    before = fresh(host)

    # Redis unreachable from the gate (the engine's own Redis is fine): the gate FAILs.
    run = canary(
        "-e",
        "model=patchtst",
        "--limit",
        host.name,
        "-e",
        "ai_engine_redis_url=redis://127.0.0.1:1/0",
    )

    assert run.returncode != 0
    assert "quality gate FAIL for patchtst" in run.output
    assert "Redis at redis://127.0.0.1:1/0 unreachable" in run.output
    assert snapshot(host) == before

    # redis-server really stopped: the engine logs errors, the preflight refuses at once.
    host.run("systemctl", "stop", "redis-server")
    try:
        stopped = snapshot(host)
        run = canary("-e", "model=patchtst", "--limit", host.name)
        after = snapshot(host)
    finally:
        host.run("systemctl", "start", "redis-server")

    assert run.returncode != 0
    assert "not fit for an activation, nothing was changed" in run.output
    assert "[ERROR] redis" in run.output
    assert after == stopped


def test_a_record_that_cannot_be_written_restores_the_host(hosts):
    """The activation log on a full filesystem: the change was made and proven, but it cannot
    be recorded, so it is undone (a host never runs a canary its log does not show)."""
    host = hosts[2]
    full = "/var/log/qsc-full"
    before = fresh(host)
    host.run("mkdir", "-p", full)
    host.run("mount", "-t", "tmpfs", "-o", "size=16k,mode=0750", "tmpfs", full)
    try:
        host.run("sh", "-c", f"dd if=/dev/zero of={full}/filler bs=1k count=64 || true")
        run = canary(
            "-e", "model=patchtst", "--limit", host.name,
            "-e", f"model_safety_activation_log={full}/qsc_canary.jsonl",
        )  # fmt: skip
        log = host.run("cat", f"{full}/qsc_canary.jsonl", check=False).stdout
    finally:
        host.run("umount", full, check=False)

    assert run.returncode != 0
    assert "Record the change" in run.output and "No space left on device" in run.output
    assert "restored from /opt/quantum/backups/model_activations/" in run.output
    assert "this failure is NOT in the activation log" in run.output
    assert "hosts already changed: none" in run.output
    assert log == ""
    after = snapshot(host)
    assert after["env"] == before["env"]
    assert after["dropins"] == {}
    assert after["lease"] == ""
    assert after["invocation"] != before["invocation"]
    journal = host.journal(after["invocation"])
    assert any(line.startswith("[SHADOW] patchtst agent loaded") for line in journal)


def test_the_lease_comes_first_outlasts_the_gate_and_is_checked_before_the_change(hosts):
    host = hosts[2]
    # 10 events/s from a fresh start: the gate waits about 20 s for its 200 events.
    before = fresh(host, ENGINE_RATE="10")
    process = start_playbook(
        "canary.yml", "-e", "model=patchtst", "-e", "canary_gate_wait=300", "--limit", host.name
    )
    try:
        deadline = time.monotonic() + 60
        while not (lease := host.run("cat", LEASE, check=False).stdout):
            assert time.monotonic() < deadline, "the canary never took the lease"
            time.sleep(0.2)
        taken = json.loads(lease)
        # The lease was taken before anything was judged, and lasts the gate's wait longer.
        assert taken["purpose"] == "canary patchtst" and taken["ttl"] == 1800 + 300
        # Meanwhile another operator breaks it (an emergency): the canary must notice.
        broken = ansible_module(
            host.name,
            "activation_lock",
            {"path": LEASE, "owner": "bob", "purpose": "rollback: emergency", "force": True},
        )
        assert broken.returncode == 0, broken.stdout + broken.stderr
        output, _ = process.communicate(timeout=300)
    finally:
        process.kill()
    output = " ".join(output.split())

    assert process.returncode != 0
    assert "held by bob for rollback: emergency" in output
    assert "Make sure this activation still holds the lease" in output
    # Refused before any write: no restore, no stop + start, and the failure is logged.
    assert "nothing on the host was changed (refused before any write)" in output
    after = snapshot(host)
    # Backed up, but nothing changed; bob's lease is left alone.
    assert {k: after[k] for k in ("env", "dropins", "invocation")} == {
        k: before[k] for k in ("env", "dropins", "invocation")
    }
    assert json.loads(after["lease"])["owner"] == "bob"


def test_another_activation_holding_the_lease_is_named(hosts):
    host = hosts[2]
    before = fresh(host)
    taken = ansible_module(
        host.name,
        "activation_lock",
        {"path": LEASE, "owner": "alice", "purpose": "canary lgbm", "ttl": 600},
    )
    assert taken.returncode == 0, taken.stdout + taken.stderr
    held = snapshot(host)

    run = canary("-e", "model=patchtst", "--limit", host.name)

    assert run.returncode != 0
    assert "held by alice for canary lgbm" in run.output
    # The lease comes first: nothing of the host was read or judged.
    assert "model_activation : Read the engine's status" not in run.output
    assert snapshot(host) == held
    assert {k: v for k, v in held.items() if k != "lease"} == {
        k: v for k, v in before.items() if k != "lease"
    }


def test_fleet_of_three_runs_the_canary_everywhere(hosts):
    befores = fresh_all(hosts)

    run = canary("-e", "model=patchtst", "--limit", ",".join(h.name for h in hosts))

    assert run.returncode == 0, run.output
    for host in hosts:
        after = snapshot(host)
        assert after["env"] == expected_env(befores[host.name]["env"])
        assert "qsc_canary.conf" in after["dropins"]
        assert [r["event"] for r in log_records(host)] == ["activation"]
    names = ",".join(host.name for host in hosts)
    assert f"playbooks/rollback.yml --limit {names}" in run.output
    print(f"\ncanary on 3 hosts: {run.seconds} s")


def test_a_failure_in_the_fleet_stops_the_rollout(hosts):
    first, failing, untouched = hosts
    fresh(first)
    before_failing = fresh(failing, SIM_FAULTS_ONLY_WITH_CANARY="true", SIM_FAIL_START="true")
    before_untouched = fresh(untouched)

    run = canary("-e", "model=patchtst", "--limit", ",".join(h.name for h in hosts))

    assert run.returncode != 0
    assert f"hosts already changed: {first.name}" in run.output
    assert f"rollback.yml --limit {first.name}" in run.output
    assert "qsc_canary.conf" in snapshot(first)["dropins"]
    assert snapshot(failing)["env"] == before_failing["env"]
    assert snapshot(untouched) == before_untouched


def test_killing_the_playbook_never_leaves_a_half_written_file(hosts):
    host = hosts[1]
    for marker in ("TASK [model_activation : Change the env file and the drop-in, stop + start",):
        before = fresh(host)
        process = start_playbook("canary.yml", "-e", "model=patchtst", "--limit", host.name)
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(marker):
                break
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        time.sleep(1)

        after = snapshot(host)
        assert after["env"] in (before["env"], expected_env(before["env"]))
        dropin = after["dropins"].get("qsc_canary.conf")
        assert dropin is None or dropin.endswith(f'QSC_MODEL_WEIGHTS={DESIGN_WEIGHTS}"\n')
        # engine_change writes a .<name>.*.tmp file next to the target, then renames it.
        assert host.out("find", "/etc/quantum", DROPIN_DIR, "-name", ".*.tmp") == ""
        # The killed run still holds the lease: a new one is refused until it is stale.
        refused = canary("-e", "model=patchtst", "--limit", host.name)
        assert refused.returncode != 0
        assert "another activation holds" in refused.output or "one model at a time" in (
            refused.output
        )


# The reference a site writes on a good day (model-safety feature-reference), here from the
# reference engine's own healthy events; the host's engine then runs with SIM_FEATURES=shifted.
FEATURE_REFERENCE = "/var/lib/model-safety/feature_reference.json"
DRIFTED_FEATURES = {"SIM_FEATURES": "shifted"}
DRIFTED_NAMES = ("atr_value", "return_1", "rsi_14", "volatility_factor")


def healthy_feature_reference() -> str:
    from model_safety.judgement.drift import build_reference
    from model_safety.telemetry.events import parse_window
    from tests.module_harness import engine_payloads, stream_id

    payloads = engine_payloads(2000)
    window = parse_window([(stream_id(i), p) for i, p in enumerate(payloads)])
    reference = build_reference(window, stream="quantum:stream:trade.intent", source="healthy")
    return json.dumps(reference)


def test_features_out_of_distribution_stop_the_canary_before_anything_changes(hosts):
    """Issue 16 item 3: with the site's feature reference configured, a canary whose gate
    sees the features drifted (and nothing else wrong) stops at the gate, the host unchanged."""
    host = hosts[2]
    fresh(host, **DRIFTED_FEATURES)
    # Where the lease lives too, as the lease makes it (reset removed it).
    host.run("install", "-d", "-m", "0700", "/var/lib/model-safety")
    host.write_file(FEATURE_REFERENCE, healthy_feature_reference(), owner="root:root")
    before = snapshot(host)

    run = canary(
        "-e", "model=patchtst", "--limit", host.name,
        "-e", json.dumps({"model_safety_feature_reference": FEATURE_REFERENCE}),
    )  # fmt: skip

    assert run.returncode != 0
    found = re.search(
        r"quality gate FAIL for patchtst \((\d+) events[^)]*\): (.*?) \| nothing on the host was "
        r"changed",
        run.output,
    )
    assert found, run.output
    # The models pass: the blockers are the four features' drift, and nothing else.
    blockers = found.group(2).split("; ")
    assert [b.split(" PSI ")[0] for b in blockers] == [
        f"feature drift: {name}" for name in DRIFTED_NAMES
    ], blockers
    assert f"> 0.25 (reference 2000 values, current {found.group(1)})" in blockers[0]
    assert snapshot(host) == before
