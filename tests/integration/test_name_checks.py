"""The name checks of the playbooks and roles match whole strings: a trailing newline, which a
Jinja ``match('^...$')`` lets through, is refused (issue 12, item 9). Real `ansible-playbook
--check` runs on localhost: playbooks/monitor.yml, roles/model_activation/tasks/model_file.yml
and the role ai_engine_dropin, each with a valid value as the control.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
MODEL_PATH_CHECK = "Refuse a model path that is not a plain absolute path"
DROPIN_CHECK = "Install or remove the drop-in (names and values validated)"
_OUTCOME = re.compile(r'"OUTCOME (\d+): ([^"]*)"')


def playbook(tmp_path: Path, play: str, *extra_vars: dict[str, Any]) -> str:
    """Run a playbook in check mode on localhost; what it printed."""
    inventory = {
        "all": {
            "hosts": {"localhost": {}},
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        }
    }
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    argv = [str(ANSIBLE_PLAYBOOK), "--check", "-i", str(tmp_path / "inventory.yml"), play]
    for variables in extra_vars:
        argv += ["-e", json.dumps(variables)]
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
    }
    process = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    return process.stdout + process.stderr


def outcomes(tmp_path: Path, cases: list[dict[str, Any]]) -> list[str]:
    """Run one task per case (``{"vars": ..., <include task>}``) in a block of its own; for
    each, "passed" or "failed: <the task that failed>"."""
    blocks = [
        {
            "name": f"Case {index}",
            "vars": case["vars"],
            "block": [
                {key: value for key, value in case.items() if key != "vars"},
                {"name": "Passed", "ansible.builtin.debug": {"msg": f"OUTCOME {index}: passed"}},
            ],
            "rescue": [
                {
                    "name": "Failed",
                    "ansible.builtin.debug": {
                        "msg": f"OUTCOME {index}: failed: {{{{ ansible_failed_task.name }}}}"
                    },
                }
            ],
        }
        for index, case in enumerate(cases)
    ]
    play = [{"name": "Cases", "hosts": "localhost", "gather_facts": False, "tasks": blocks}]
    (tmp_path / "cases.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    printed = playbook(tmp_path, str(tmp_path / "cases.yml"))
    found = dict(_OUTCOME.findall(printed))
    assert len(found) == len(cases), printed
    return [found[str(index)] for index in range(len(cases))]


def test_model_file_paths_are_matched_whole(tmp_path: Path) -> None:
    include = {
        "ansible.builtin.include_tasks": str(ROOT / "roles/model_activation/tasks/model_file.yml")
    }
    paths = ["/opt/quantum/models/patchtst.pth\n", str(tmp_path / "missing.pth")]
    cases = [{"vars": {"model_activation_model_path": path}, **include} for path in paths]
    refused, control = outcomes(tmp_path, cases)
    assert refused == f"failed: {MODEL_PATH_CHECK}"
    # The valid path passes the check and fails on the file that is not there.
    assert control == "failed: Refuse a model file that is missing or not a regular file"


def test_dropin_names_and_values_are_matched_whole(tmp_path: Path) -> None:
    (tmp_path / "dropin.d").mkdir()
    good = {
        "ai_engine_dropin_dir": str(tmp_path / "dropin.d"),
        "ai_engine_dropin_name": "qsc_test.conf",
        "ai_engine_dropin_environment": {"QSC_CANARY_MODEL": "patchtst"},
    }
    changes = [
        {"ai_engine_dropin_name": "qsc_test.conf\n"},
        {"ai_engine_dropin_environment": {"QSC_CANARY_MODEL\n": "patchtst"}},
        {"ai_engine_dropin_environment": {"QSC_CANARY_MODEL": "patchtst\n"}},
        {"ai_engine_dropin_environment": {"QSC_CANARY_WEIGHT": True}},
        {"ai_engine_dropin_purpose": "canary\n[Service]"},
        {},
    ]
    include = {"ansible.builtin.include_role": {"name": "ai_engine_dropin"}}
    results = outcomes(tmp_path, [{"vars": {**good, **change}, **include} for change in changes])
    assert results == [f"failed: {DROPIN_CHECK}"] * 5 + ["passed"]
    assert not list((tmp_path / "dropin.d").iterdir())  # check mode wrote nothing


@pytest.mark.parametrize(
    ("variables", "refused"),
    [
        ({"model": "patchtst\n"}, "monitor_model"),
        ({"model": "patchtst", "monitor_unit": "quantum-qsc-monitor.service\n"}, "monitor_unit"),
        ({"model": "patchtst", "monitor_duration": "6h\n"}, "monitor_duration"),
        ({"model": "patchtst", "monitor_interval": "30s\n"}, "monitor_interval"),
        ({"model": "patchtst"}, None),
    ],
)
def test_monitor_request_is_matched_whole(
    tmp_path: Path, variables: dict[str, str], refused: str | None
) -> None:
    printed = playbook(tmp_path, str(ROOT / "playbooks/monitor.yml"), variables)
    validation = printed.partition("TASK [Validate the request]")[2].partition("TASK [")[0]
    failed = validation.partition("fatal: [localhost]: FAILED! => ")[2]
    if refused is None:
        assert not failed and "ok: [localhost]" in validation, printed
    else:
        assert refused in json.JSONDecoder().raw_decode(failed)[0]["assertion"], printed
