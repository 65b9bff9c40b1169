"""The engine_cycle module run by Ansible on localhost against a fake ``systemctl`` and
``journalctl`` (first on PATH, one state file per "host"): the argv it runs (stop, then start,
never restart), its results, check mode, and each failure message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from model_safety.engine.systemd import SHOW_PROPERTIES
from tests.local_ansible import host_results, play_on_local_hosts
from tests.module_harness import (
    INVOCATION,
    NEW_INVOCATION,
    UNIT,
    FakeSystemd,
    install_fake_systemd,
)

# What the unit's journal says once a start has failed.
JOURNAL = ["[ERROR] config: SIM_XGB: unknown behaviour"]
# Each scenario's changes to the fake systemd (tests/module_harness.py): a stop that is refused
# and changes nothing; a start that fails, leaving a failed unit with a new invocation.
SCENARIOS: dict[str, dict[str, Any]] = {
    "ok": {},
    "stop_fails": {"fail": {"stop": f"Failed to stop {UNIT}: Access denied"}, "on_stop": {}},
    "start_fails": {
        "fail": {
            "start": f"Job for {UNIT} failed because the control process exited with error code."
        },
        "on_start": {
            "ActiveState": "failed",
            "SubState": "failed",
            "MainPID": "0",
            "Result": "exit-code",
            "InvocationID": NEW_INVOCATION,
        },
    },
}

PLAYBOOK = """\
- name: Stop and start the engine
  hosts: all
  gather_facts: false
  tasks:
    - name: Cycle
      engine_cycle:
        unit: "{{ unit }}"
        timeout: 2
        settle: 0.5
      environment:
        PATH: "{{ fake_bin }}:{{ lookup('ansible.builtin.env', 'PATH') }}"
      check_mode: "{{ check }}"
"""


def fake_host(tmp_path: Path, name: str, scenario: str, unit: str = UNIT, check: bool = False):
    """The inventory variables of a "host" with its own fake commands, the unit running as
    invocation INVOCATION."""
    fake = install_fake_systemd(tmp_path / name, journal=JOURNAL, **SCENARIOS[scenario])
    return {"fake_bin": str(fake.bin_dir), "unit": unit, "check": check}


def calls(tmp_path: Path, name: str) -> list[list[str]]:
    return FakeSystemd.under(tmp_path / name).calls()


def run_play(tmp_path: Path, hosts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Run the playbook; ``{host: result}`` with ``status`` (SUCCESS, CHANGED or FAILED!)."""
    process = play_on_local_hosts(tmp_path, PLAYBOOK, hosts)
    found = {host: results[-1] for host, results in host_results(process.stdout).items()}
    assert set(found) == set(hosts), process.stdout + process.stderr
    return found


def test_engine_cycle_module_end_to_end(tmp_path):
    results = run_play(
        tmp_path,
        {
            "happy": fake_host(tmp_path, "happy", "ok"),
            "dry": fake_host(tmp_path, "dry", "ok", check=True),
            "start_fails": fake_host(tmp_path, "start_fails", "start_fails"),
            "stop_fails": fake_host(tmp_path, "stop_fails", "stop_fails"),
            "bad_unit": fake_host(tmp_path, "bad_unit", "ok", unit="bad unit"),
        },
    )
    show = ["systemctl", "show", UNIT, "--property=" + ",".join(SHOW_PROPERTIES)]

    happy = results["happy"]
    assert happy["status"] == "CHANGED"
    assert happy["previous_invocation_id"] == INVOCATION
    assert re.fullmatch(r"[0-9a-f]{32}", happy["invocation_id"])
    assert happy["invocation_id"] != INVOCATION
    assert happy["main_pid"] == 4242
    assert happy["started_at"] == "2026-11-23T18:01:02.123456Z"
    assert happy["started_at_epoch"] == 1795456862.123456
    assert happy["state"]["active_state"] == "active"
    assert happy["elapsed"] >= 0.5
    happy_calls = calls(tmp_path, "happy")
    assert happy_calls[:4] == [
        show,
        ["systemctl", "stop", UNIT],
        ["systemctl", "start", UNIT],
        show,
    ]
    assert happy_calls[-1] == [
        "systemctl",
        "show",
        "--timestamp=us+utc",
        "--property=ActiveEnterTimestamp",
        UNIT,
    ]
    assert not any("restart" in argv for argv in happy_calls)

    dry = results["dry"]
    assert dry["status"] == "CHANGED"
    assert dry["would_cycle"] is True
    assert (dry["invocation_id"], dry["main_pid"]) == (INVOCATION, 100)
    assert calls(tmp_path, "dry") == [show]

    start_fails = results["start_fails"]
    assert start_fails["status"] == "FAILED!"
    assert start_fails["msg"] == (
        f"stop+start of {UNIT} failed: `systemctl start {UNIT}` failed (rc 1): Job for {UNIT} "
        "failed because the control process exited with error code.; the unit is now failed/failed"
    )
    assert start_fails["journal"] == ["[ERROR] config: SIM_XGB: unknown behaviour"]
    assert (
        start_fails["journal_invocation_id"] == start_fails["state"]["invocation_id"] != INVOCATION
    )
    assert calls(tmp_path, "start_fails")[-1][:2] == ["journalctl", "--no-pager"]

    stop_fails = results["stop_fails"]
    assert stop_fails["status"] == "FAILED!"
    assert stop_fails["msg"].startswith(f"cannot stop+start {UNIT}: `systemctl stop {UNIT}` failed")
    assert "Access denied" in stop_fails["msg"]
    assert calls(tmp_path, "stop_fails") == [show, ["systemctl", "stop", UNIT]]

    bad_unit = results["bad_unit"]
    assert bad_unit["status"] == "FAILED!"
    assert "not a valid systemd unit name: 'bad unit'" in bad_unit["msg"]
    assert calls(tmp_path, "bad_unit") == []
