"""The env file filters in a real playbook on localhost, the way the roles use them: ``slurp``
the current file, then ``ansible.builtin.template`` with ``{{ current_text |
qsc_env_render(changes) }}``; ``--check --diff`` shows exactly the changed line and writes
nothing, a real run writes it (every other byte kept), a second run changes nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LAB_ENV = ROOT / "lab" / "engine" / "ai-engine.env"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
SECRET = "pw-Zq8xV3-never-printed"

PLAYBOOK = """\
- name: Change the engine's environment file in place
  hosts: all
  gather_facts: false
  tasks:
    - name: Read the current file
      ansible.builtin.slurp:
        src: "{{ env_path }}"
      register: current

    - name: Report what would change
      ansible.builtin.set_fact:
        env_changed: "{{ current.content | b64decode | qsc_env_changed(changes) }}"
        env_values: "{{ current.content | b64decode | qsc_env_values }}"

    - name: Render the file with only those keys changed
      ansible.builtin.template:
        src: ai-engine.env.j2
        dest: "{{ env_path }}"
        mode: "0640"
      vars:
        current_text: "{{ current.content | b64decode }}"
"""
# No newline at the end: Ansible adds the template's trailing newlines to a result that lacks
# them, which would give a file without a final newline one.
TEMPLATE = "{{ current_text | qsc_env_render(changes) }}"
TASKS = ("read", "report", "render")
_RESULT = re.compile(r"^([a-z_]+) \| (SUCCESS|CHANGED|FAILED!) => ", re.MULTILINE)


def results(stdout: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{host: {task: result}}`` from the minimal callback's output (tasks by TASKS name);
    each result gets ``status`` (SUCCESS, CHANGED or FAILED!)."""
    decoder = json.JSONDecoder()
    by_host: dict[str, list[dict[str, Any]]] = {}
    for match in _RESULT.finditer(stdout):
        result = decoder.raw_decode(stdout, match.end())[0]
        by_host.setdefault(match.group(1), []).append({**result, "status": match.group(2)})
    return {host: dict(zip(TASKS, found, strict=False)) for host, found in by_host.items()}


def diff_lines(stdout: str) -> list[str]:
    """The removed and added lines of the --diff output (headers left out)."""
    return [
        line
        for line in stdout.splitlines()
        if line.startswith(("+", "-")) and not line.startswith(("--- before", "+++ after"))
    ]


def play(
    tmp_path: Path, hosts: dict[str, dict[str, Any]], *options: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, dict[str, Any]]]]:
    """Run the playbook on local "hosts", each with its own ``env_path`` and ``changes``
    (inventory variables, so a YAML ``false`` stays a boolean); the process and the results."""
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "ai-engine.env.j2").write_text(TEMPLATE)
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
        [
            str(ANSIBLE_PLAYBOOK),
            "-i",
            str(tmp_path / "inventory.yml"),
            *options,
            str(tmp_path / "play.yml"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return process, results(process.stdout)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o640)
    return path


def test_check_diff_then_write_then_nothing_to_do(tmp_path):
    original = LAB_ENV.read_text()
    canary = write(tmp_path / "canary.env", original)
    untouched = write(tmp_path / "untouched.env", "# no final newline\nA=1\nB=x = y")
    boolean = write(tmp_path / "boolean.env", original)
    broken = write(tmp_path / "broken.env", f"A=1\nREDIS_PASSWORD = {SECRET}\n")
    hosts = {
        "canary": {"env_path": str(canary), "changes": {"PATCHTST_SHADOW_ONLY": "false"}},
        "untouched": {"env_path": str(untouched), "changes": {}},
        "boolean": {"env_path": str(boolean), "changes": {"PATCHTST_SHADOW_ONLY": False}},
        "broken": {"env_path": str(broken), "changes": {"A": "2"}},
    }

    # --check --diff: the one changed line, reported and shown, nothing written.
    process, output = play(tmp_path, hosts, "--check", "--diff", "--limit", "canary")
    assert process.returncode == 0, process.stdout + process.stderr
    assert output["canary"]["render"]["status"] == "CHANGED"
    assert diff_lines(process.stdout) == [
        "-PATCHTST_SHADOW_ONLY=true",
        "+PATCHTST_SHADOW_ONLY=false",
    ]
    facts = output["canary"]["report"]["ansible_facts"]
    assert facts["env_changed"] == {"PATCHTST_SHADOW_ONLY": {"before": "true", "after": "false"}}
    assert facts["env_values"]["SIM_XGB"] == "healthy"
    assert canary.read_text() == original

    # A real run writes that line only; nothing else is touched, errors never show values.
    process, output = play(tmp_path, hosts)
    assert process.returncode == 2, process.stdout + process.stderr
    assert output["canary"]["render"]["status"] == "CHANGED"
    assert canary.read_text() == original.replace(
        "PATCHTST_SHADOW_ONLY=true\n", "PATCHTST_SHADOW_ONLY=false\n"
    )
    assert canary.stat().st_mode & 0o777 == 0o640
    assert output["untouched"]["render"]["status"] == "SUCCESS"
    assert untouched.read_text() == "# no final newline\nA=1\nB=x = y"
    assert output["boolean"]["report"]["status"] == "FAILED!"
    assert (
        "value of PATCHTST_SHADOW_ONLY must be a string, not bool"
        in (output["boolean"]["report"]["msg"])
    )
    assert "render" not in output["boolean"]
    assert boolean.read_text() == original
    assert output["broken"]["report"]["status"] == "FAILED!"
    assert "line 2: not KEY=VALUE (whitespace around '=')" in output["broken"]["report"]["msg"]
    assert SECRET not in process.stdout + process.stderr
    assert broken.read_text() == f"A=1\nREDIS_PASSWORD = {SECRET}\n"

    # The same change again changes nothing.
    process, output = play(tmp_path, hosts, "--limit", "canary")
    assert process.returncode == 0, process.stdout + process.stderr
    assert output["canary"]["render"]["status"] == "SUCCESS"
    assert output["canary"]["report"]["ansible_facts"]["env_changed"] == {}
