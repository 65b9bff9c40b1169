"""The engine_cycle module run by Ansible on localhost against a fake ``systemctl`` and
``journalctl`` (first on PATH, one state file per "host"): the argv it runs (stop, then start,
never restart), its results, check mode, and each failure message."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from model_safety.engine.systemd import SHOW_PROPERTIES

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
UNIT = "quantum-ai-engine.service"
OLD = "0123456789abcdef0123456789abcdef"

# One program for both commands; it logs every argv and keeps the unit's state in a JSON file.
FAKE = """\
#!{python}
import json, os, sys, uuid

STATE, LOG = {state!r}, {log!r}
with open(STATE) as handle:
    state = json.load(handle)
argv = [os.path.basename(sys.argv[0]), *sys.argv[1:]]
with open(LOG, "a") as handle:
    handle.write(json.dumps(argv) + "\\n")


def save(**changes):
    state.update(changes)
    with open(STATE, "w") as handle:
        json.dump(state, handle)


if argv[0] == "journalctl":
    print("[ERROR] config: SIM_XGB: unknown behaviour")
elif argv[1:3] == ["show", "--timestamp=us+utc"]:
    print("ActiveEnterTimestamp=Mon 2026-11-23 18:01:02.123456 UTC")
elif argv[1] == "show":
    print("Id=" + argv[2])
    print("LoadState=loaded")
    print("ActiveState=" + state["active"])
    print("SubState=" + state["sub"])
    print("MainPID=" + str(state["pid"]))
    print("NRestarts=0")
    print("InvocationID=" + state["invocation"])
    print("ActiveEnterTimestamp=Mon 2026-11-23 18:01:02 UTC")
    print("ActiveEnterTimestampMonotonic=123456789")
    print("Result=" + state["result"])
elif argv[1] == "stop" and state["scenario"] == "stop_fails":
    sys.exit("Failed to stop " + argv[2] + ": Access denied")
elif argv[1] == "stop":
    save(active="inactive", sub="dead", pid=0)
elif argv[1] == "start" and state["scenario"] == "start_fails":
    save(active="failed", sub="failed", pid=0, result="exit-code", invocation=uuid.uuid4().hex)
    sys.exit("Job for " + argv[2] + " failed because the control process exited with error code.")
elif argv[1] == "start":
    save(active="active", sub="running", pid=4242, invocation=uuid.uuid4().hex)
else:
    sys.exit("fake systemctl: unexpected " + repr(argv))
"""

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
_RESULT = re.compile(r"^([a-z_]+) \| (SUCCESS|CHANGED|FAILED!) => ", re.MULTILINE)


def fake_host(tmp_path: Path, name: str, scenario: str, unit: str = UNIT, check: bool = False):
    """A directory with the fake commands and the unit running as invocation OLD."""
    home = tmp_path / name
    (home / "bin").mkdir(parents=True)
    state, log = home / "state.json", home / "calls.jsonl"
    state.write_text(
        json.dumps(
            {
                "scenario": scenario,
                "active": "active",
                "sub": "running",
                "pid": 100,
                "invocation": OLD,
                "result": "success",
            }
        )
    )
    log.write_text("")
    program = home / "bin" / "systemctl"
    program.write_text(FAKE.format(python=sys.executable, state=str(state), log=str(log)))
    program.chmod(0o755)
    (home / "bin" / "journalctl").symlink_to(program)
    return {"fake_bin": str(home / "bin"), "unit": unit, "check": check}


def calls(tmp_path: Path, name: str) -> list[list[str]]:
    lines = (tmp_path / name / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def run_play(tmp_path: Path, hosts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Run the playbook; ``{host: result}`` with ``status`` (SUCCESS, CHANGED or FAILED!)."""
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    inventory = {
        "all": {
            "hosts": hosts,
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        }
    }
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "minimal",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_NOCOLOR": "1",
    }
    process = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    decoder = json.JSONDecoder()
    found = {
        match.group(1): {
            **decoder.raw_decode(process.stdout, match.end())[0],
            "status": match.group(2),
        }
        for match in _RESULT.finditer(process.stdout)
    }
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
    assert happy["previous_invocation_id"] == OLD
    assert re.fullmatch(r"[0-9a-f]{32}", happy["invocation_id"])
    assert happy["invocation_id"] != OLD
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
    assert (dry["invocation_id"], dry["main_pid"]) == (OLD, 100)
    assert calls(tmp_path, "dry") == [show]

    start_fails = results["start_fails"]
    assert start_fails["status"] == "FAILED!"
    assert start_fails["msg"] == (
        f"stop+start of {UNIT} failed: `systemctl start {UNIT}` failed (rc 1): Job for {UNIT} "
        "failed because the control process exited with error code.; the unit is now failed/failed"
    )
    assert start_fails["journal"] == ["[ERROR] config: SIM_XGB: unknown behaviour"]
    assert start_fails["journal_invocation_id"] == start_fails["state"]["invocation_id"] != OLD
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
