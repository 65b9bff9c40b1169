"""`ansible-playbook playbooks/rollback.yml` for real, against the lab's systemd hosts.

A canary is activated with canary.yml, then rolled back; every test compares the host's files
byte for byte with what they were before the canary, and reads the engine's journal and new
events to see the old config run again. The first test does so through the installed collection
(qsc.model_safety.canary and .rollback) instead of the checkout: the others and
test_canary_playbook.py run the checkout's playbooks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from labctl.config import REPO_ROOT
from labctl.remote import DROPIN_DIR, ENV_FILE
from model_safety.activation.since import start_time
from tests.installed_collection import InstalledCollection, build_and_install
from tests.integration.lab_activation import (
    BACKUPS,
    CANARY_DROPIN,
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


def rollback(*args: str, collection: InstalledCollection | None = None) -> Run:
    return playbook("rollback.yml", *args, collection=collection)


def canary(*args: str, collection: InstalledCollection | None = None) -> Run:
    run = playbook("canary.yml", "-e", "model=patchtst", *args, collection=collection)
    assert run.returncode == 0, run.output
    return run


def manifest(host, name: str) -> dict:
    return json.loads(host.read_file(f"{BACKUPS}/{name}/manifest.json"))


def shadow_events_since(host, invocation: str, minimum: int = 20) -> list[dict]:
    """Events of the start ``invocation`` (after its first line in the journal)."""
    cutover = host.last_stream_id()
    assert host.invocation() == invocation
    return host.wait_events(cutover, minimum, timeout=30)


def test_the_collections_canary_then_rollback_restore_the_files_and_the_old_config(hosts, tmp_path):
    collection = build_and_install(tmp_path)
    host = hosts[0]
    before = fresh(host)
    # -vvv names the file of every module run: the collection's, or ansible-core's own.
    activation = canary("--limit", host.name, "-vvv", collection=collection)
    activated = snapshot(host)

    modules = set(re.findall(r"Using module file (\S+)", activation.output))
    ours = {Path(m).name for m in modules if Path(m).is_relative_to(collection.root)}
    assert {"quality_gate.py", "activation_backup.py", "engine_change.py"} <= ours
    assert {Path(m).name for m in modules} - ours <= {"stat.py", "async_status.py"}
    assert "TASK [qsc.model_safety.model_activation : " in activation.output
    for checkout_path in ("library", "module_utils", "filter_plugins", "roles", "playbooks"):
        assert str(REPO_ROOT / checkout_path) not in activation.output
    # The gate's report is fetched to reports/safety under the directory the playbook ran in,
    # never into the installed collection; the way back names the collection's rollback.
    (record,) = log_records(host)
    gate_report = record["gate"]["reports"][0].rsplit("/", 1)[-1]
    assert (collection.cwd / "reports" / "safety" / host.name / gate_report).is_file()
    assert not (collection.root / "reports").exists()
    inventory = REPO_ROOT / "inventory" / "lab"
    rollback_command = f"ansible-playbook -i {inventory} qsc.model_safety.rollback"
    assert record["rollback_command"] == f"{rollback_command} --limit {host.name}"
    assert f"roll back: {rollback_command} --limit {host.name}" in activation.output

    checked = rollback("--limit", host.name, "--check", "--diff", collection=collection)

    assert checked.returncode == 0, checked.output
    assert f"{ENV_FILE} (sha256" in checked.output  # the diff names files, never contents
    assert {k: v for k, v in snapshot(host).items() if k != "log"} == {
        k: v for k, v in activated.items() if k != "log"
    }

    # Another activation holds the lease: refused, nothing changed, and the refusal logged.
    held = ansible_module(
        host.name,
        "activation_lock",
        {"path": LEASE, "owner": "alice", "purpose": "promotion patchtst", "ttl": 600},
        collection=collection,
    )
    assert held.returncode == 0, held.stdout + held.stderr
    refused = rollback("--limit", host.name, collection=collection)
    assert refused.returncode != 0
    assert "held by alice for promotion patchtst" in refused.output
    assert {k: v for k, v in snapshot(host).items() if k not in ("log", "lease")} == {
        k: v for k, v in activated.items() if k not in ("log", "lease")
    }
    failed = log_records(host)[-1]
    assert failed["event"] == "rollback_failed" and "held by alice" in failed["failure"]
    token = json.loads(host.read_file(LEASE))["token"]
    released = ansible_module(
        host.name,
        "activation_lock",
        {"path": LEASE, "state": "released", "token": token},
        collection=collection,
    )
    assert released.returncode == 0, released.stdout + released.stderr

    # A reason of many lines and far longer than a lease's purpose is never a refusal.
    reason = "lost money\n\tsee the desk's note: " + "x" * 300
    run = rollback(
        "--limit", host.name, "-e", json.dumps({"reason": reason}), collection=collection
    )

    assert run.returncode == 0, run.output
    after = snapshot(host)
    assert after["env"] == before["env"] and after["env_stat"] == before["env_stat"]
    assert after["dropins"] == before["dropins"] == {}
    assert after["invocation"] not in (before["invocation"], activated["invocation"])
    assert after["lease"] == ""
    journal = host.journal(after["invocation"])
    assert f"AI_ENGINE_BUILD: {host.git_head()[:7]}" in journal
    assert not any(line.startswith("[CANARY]") for line in journal)
    assert any(line.startswith("[SHADOW] patchtst agent loaded") for line in journal)
    # The pre-canary config runs again: patchtst tagged shadow, never counted.
    for event in shadow_events_since(host, after["invocation"]):
        assert event["model_breakdown"]["patchtst"].get("shadow") is True
        voters = [m for m, e in event["model_breakdown"].items() if not e.get("shadow")]
        assert event["total_models"] == len(voters) == 3
    (backup,) = after["backups"]
    record = log_records(host)[-1]
    assert record["event"] == "rollback_executed" and record["reason"] == reason
    assert (record["action"], record["canary_model"], record["trigger"]) == (
        "rollback_executed",
        "patchtst",
        reason,
    )
    assert record["backup"] == f"{BACKUPS}/{backup}" and record["changed"] is True
    assert record["invocation_id"] == after["invocation"]
    assert manifest(host, backup)["restorations"][0]["reason"] == reason
    # What patchtst did while it voted (issue 16 item 2), in the same record: the canary's rows
    # from its activation to the new start, and the reports beside it on the host, 0640.
    damage = record["damage"]
    activation = next(r for r in log_records(host) if r["event"] == "activation")
    assert (damage["model"], damage["since"]) == ("patchtst", start_time(activation))
    assert damage["rows"] > 0 and damage["malformed_rows"] == 0
    assert 0 < damage["participated"] <= damage["rows"]
    assert f"damage: patchtst voted in {damage['participated']} rows" in run.output
    for path in record["damage_reports"].values():
        assert host.out("stat", "-c", "%a", path) == "640"
    page = host.read_file(record["damage_reports"]["markdown"])
    assert page.startswith("# Damage report: patchtst\n")
    assert f"## Rows `patchtst` took part in ({damage['participated']})" in page
    made_in = re.search(r"damage_\S+\.md \(([0-9.]+) s\)", run.output)
    assert made_in, run.output
    print(
        f"\nrollback of 1 host: {run.seconds} s; its damage report of {damage['rows']} rows "
        f"took {made_in.group(1)} s"
    )

    again = rollback("--limit", host.name, "-e", "reason=again", collection=collection)

    assert again.returncode == 0, again.output
    assert "nothing to change: the engine was not restarted" in again.output
    repeated = snapshot(host)
    assert {k: v for k, v in repeated.items() if k != "log"} == {
        k: v for k, v in after.items() if k != "log"
    }
    last = log_records(host)[-1]
    assert last["event"] == "rollback_executed" and last["changed"] is False
    assert len(manifest(host, backup)["restorations"]) == 1


def test_rollback_without_a_backup_changes_nothing(hosts):
    host = hosts[1]
    before = fresh(host)

    run = rollback("--limit", host.name)

    assert run.returncode != 0
    assert "no backup under" in run.output
    after = snapshot(host)
    assert {k: v for k, v in after.items() if k != "log"} == {
        k: v for k, v in before.items() if k != "log"
    }
    assert log_records(host)[-1]["event"] == "rollback_failed"


def test_a_corrupt_backup_is_refused_not_skipped(hosts):
    host = hosts[1]
    before = fresh(host)
    canary("--limit", host.name)
    assert rollback("--limit", host.name).returncode == 0
    (intact,) = snapshot(host)["backups"]
    time.sleep(2)  # the preflight wants the engine up for a while
    canary("--limit", host.name)
    activated = snapshot(host)
    newest = max(activated["backups"])
    # One flipped byte in the saved env file of the newest backup.
    saved = f"{BACKUPS}/{newest}/files{ENV_FILE}"
    host.write_file(
        saved, host.read_file(saved).replace("ENGINE_RATE", "ENGINE_RATF"), "0600", "root:root"
    )

    refused = rollback("--limit", host.name)

    assert refused.returncode != 0
    assert f"backup {newest} is corrupt" in refused.output
    assert f"-e backup=<name> (newest intact: {intact})" in refused.output
    assert "nothing was changed" in refused.output
    after_refusal = snapshot(host)
    assert after_refusal["env"] == activated["env"]
    assert after_refusal["dropins"] == activated["dropins"]
    assert after_refusal["invocation"] == activated["invocation"]

    chosen = rollback("--limit", host.name, "-e", f"backup={intact}")

    assert chosen.returncode == 0, chosen.output
    assert snapshot(host)["env"] == before["env"]
    assert snapshot(host)["dropins"] == {}


def test_rollback_of_three_hosts_runs_in_parallel(hosts):
    befores = fresh_all(hosts)
    names = ",".join(host.name for host in hosts)
    canary("-e", "canary_serial=3", "--limit", names)

    run = rollback("-e", "reason=fleet", "--limit", names)

    assert run.returncode == 0, run.output
    for host in hosts:
        after = snapshot(host)
        assert after["env"] == befores[host.name]["env"]
        assert after["dropins"] == {}
        assert log_records(host)[-1]["event"] == "rollback_executed"
    print(f"\nrollback of 3 hosts: {run.seconds} s")


@pytest.mark.parametrize(
    "fault",
    [
        # Refused before READY: systemctl start itself fails.
        "SIM_FAIL_START=true",
        # Crashes right after READY: the watch of the new start catches it.
        "SIM_CRASH_AFTER=0.3",
    ],
)
def test_an_engine_that_fails_on_the_restored_files_fails_the_rollback(hosts, fault):
    host = hosts[2]
    before = fresh(host)
    canary("--limit", host.name)
    activated = snapshot(host)
    (intact,) = activated["backups"]
    # A newer backup of the canary's files with a fault the engine cannot run with (taken
    # as an activation takes one).
    faulty = activated["env"] + fault + "\n"
    host.write_file(ENV_FILE, faulty)
    taken = ansible_module(
        host.name,
        "activation_backup",
        {
            "model": "patchtst",
            "root": BACKUPS,
            "files": [ENV_FILE, CANARY_DROPIN],
            "dirs": [DROPIN_DIR],
        },
    )
    assert taken.returncode == 0, taken.stdout + taken.stderr
    host.write_file(ENV_FILE, activated["env"])

    run = rollback("--limit", host.name)

    assert run.returncode != 0
    assert f"rollback of {host.name} failed at Stop, then start the engine" in run.output
    failed = log_records(host)[-1]
    assert failed["event"] == "rollback_failed" and failed["model"] == "patchtst"
    assert failed["failure"].startswith("Stop, then start the engine (never restart)")
    refused = snapshot(host)
    assert (refused["env"], refused["lease"]) == (faulty, "")

    chosen = rollback("--limit", host.name, "-e", f"backup={intact}")

    assert chosen.returncode == 0, chosen.output
    after = snapshot(host)
    assert after["env"] == before["env"] and after["dropins"] == {}
    journal = host.journal(after["invocation"])
    assert f"AI_ENGINE_BUILD: {host.git_head()[:7]}" in journal
    assert log_records(host)[-1]["event"] == "rollback_executed"


def test_a_rollback_killed_mid_run_leaves_whole_files_and_is_finished_by_the_next(hosts):
    host = hosts[2]
    before = fresh(host)
    canary("--limit", host.name)
    activated = snapshot(host)
    process = start_playbook("rollback.yml", "--limit", host.name)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("TASK [model_activation : Take the lease, restore"):
            break
    time.sleep(0.5)  # in the module: restoring, or stopping and starting the engine
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    time.sleep(3)

    killed = snapshot(host)
    # Each file is the canary's or the backup's, whole; no temporary file is left.
    assert killed["env"] in (activated["env"], before["env"])
    assert killed["dropins"] in (activated["dropins"], {})
    assert host.out("find", "/etc/quantum", DROPIN_DIR, "-name", ".*.tmp") == ""
    if killed["lease"]:
        # The killed run's lease: refused until it is stale, or broken on purpose.
        assert json.loads(killed["lease"])["purpose"].startswith("rollback: ")
        refused = rollback("--limit", host.name)
        assert refused.returncode != 0
        assert "another activation holds" in refused.output

    run = rollback("--limit", host.name, "-e", "break_lock=true", "-e", "cycle=always")

    assert run.returncode == 0, run.output
    after = snapshot(host)
    assert after["env"] == before["env"] and after["dropins"] == {}
    assert after["lease"] == ""
    assert after["invocation"] not in (before["invocation"], activated["invocation"])
    assert log_records(host)[-1]["event"] == "rollback_executed"
