"""scripts/check_registered_vars.py (run by `make lint`): the real checkout passes, and trees
with a registered result read in another file, or a task file chosen at run time, fail with
the file and the variable named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check_registered_vars.py"


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


REGISTERS = """\
- name: Cycle
  quantum.cycle:
    service: x
  register: cycle_result
- name: Use it here (fine)
  ansible.builtin.debug:
    msg: "{{ cycle_result.invocation_id }}"
"""


def test_the_checkout_passes():
    result = check(REPO)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().endswith("ok")


def test_a_registered_result_read_in_another_file_fails(tmp_path):
    root = write(
        tmp_path,
        {
            "roles/cycle/tasks/main.yml": REGISTERS,
            "playbooks/site.yml": """\
- name: Site
  hosts: all
  tasks:
    - name: Read the other file's result
      ansible.builtin.debug:
        msg: "{{ cycle_result.invocation_id }}"
""",
        },
    )
    result = check(root)
    assert result.returncode == 1
    assert "playbooks/site.yml: reads cycle_result, registered in roles/cycle/tasks/main.yml" in (
        result.stdout
    )


def test_names_in_keys_comments_and_meta_do_not_count(tmp_path):
    root = write(
        tmp_path,
        {
            "roles/cycle/tasks/main.yml": REGISTERS,
            "roles/cycle/meta/argument_specs.yml": (
                "argument_specs:\n  main:\n    short_description: sets cycle_result\n"
            ),
            "roles/other/tasks/main.yml": """\
# cycle_result is not read here
- name: A key of the same name
  ansible.builtin.set_fact:
    cycle_result_copy: 1
""",
        },
    )
    result = check(root)
    assert result.returncode == 0, result.stdout


def test_a_task_file_chosen_at_run_time_fails(tmp_path):
    root = write(
        tmp_path,
        {
            "playbooks/site.yml": """\
- name: Site
  hosts: all
  tasks:
    - name: Dynamic
      ansible.builtin.include_tasks: "{{ steps }}"
    - name: Dynamic role entry
      ansible.builtin.include_role:
        name: x
        tasks_from: "{{ entry }}.yml"
""",
        },
    )
    result = check(root)
    assert result.returncode == 1
    assert "include_tasks chooses its file at run time" in result.stdout
    assert "tasks_from chooses its file at run time" in result.stdout
