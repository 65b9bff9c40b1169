"""The env_file module in a real playbook on localhost, the way the ai_engine_env role runs it:
``--check --diff`` shows exactly the changed keys (secrets masked, at -vvv too) and writes
nothing, a real run writes them (every other byte kept), a second run changes nothing, and bad
files, values and modes are refused without showing a value."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.local_ansible import REPO_ROOT, host_results, play_on_local_hosts

LAB_ENV = REPO_ROOT / "lab" / "engine" / "ai-engine.env"
SECRET = "pw-Zq8xV3-never-printed"

PASSWORD = "s3cr3t-pw"
URL_PASSWORD = "url-Pw-9d"
TOKEN = "tok-41aa-never-shown"
# An env file with secrets beside the key a canary changes.
SECRET_ENV = (
    "# engine settings\n"
    f"REDIS_PASSWORD={PASSWORD}\n"
    "PATCHTST_SHADOW_ONLY=true\n"
    f"BROKER_URL=https://trader:{URL_PASSWORD}@broker.example/api\n"
    "SIM_XGB=healthy\n"
)

PLAYBOOK = """\
- name: Change the engine's environment file in place
  hosts: all
  gather_facts: false
  tasks:
    - name: Change only the requested keys
      env_file:
        path: "{{ env_path }}"
        changes: "{{ changes }}"
        mode: "{{ env_mode | default('0640') }}"
"""
TASKS = ("change",)


def results(stdout: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{host: {task: result}}`` from the play's output (tasks by TASKS name); each result
    has ``status`` (SUCCESS, CHANGED or FAILED!)."""
    return {
        host: dict(zip(TASKS, found, strict=False)) for host, found in host_results(stdout).items()
    }


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
    process = play_on_local_hosts(tmp_path, PLAYBOOK, hosts, *options)
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
    assert output["canary"]["change"]["status"] == "CHANGED"
    assert diff_lines(process.stdout) == [
        "-PATCHTST_SHADOW_ONLY=true",
        "+PATCHTST_SHADOW_ONLY=false",
    ]
    assert output["canary"]["change"]["changed_keys"] == {
        "PATCHTST_SHADOW_ONLY": {"before": "true", "after": "false"}
    }
    assert canary.read_text() == original

    # A real run writes that line only; nothing else is touched, errors never show values.
    process, output = play(tmp_path, hosts)
    assert process.returncode == 2, process.stdout + process.stderr
    assert output["canary"]["change"]["status"] == "CHANGED"
    assert canary.read_text() == original.replace(
        "PATCHTST_SHADOW_ONLY=true\n", "PATCHTST_SHADOW_ONLY=false\n"
    )
    assert canary.stat().st_mode & 0o777 == 0o640
    assert output["untouched"]["change"]["status"] == "SUCCESS"
    assert untouched.read_text() == "# no final newline\nA=1\nB=x = y"
    assert output["boolean"]["change"]["status"] == "FAILED!"
    assert (
        "value of PATCHTST_SHADOW_ONLY must be a string, not bool"
        in (output["boolean"]["change"]["msg"])
    )
    assert boolean.read_text() == original
    assert output["broken"]["change"]["status"] == "FAILED!"
    assert "line 2: not KEY=VALUE (whitespace around '=')" in output["broken"]["change"]["msg"]
    assert SECRET not in process.stdout + process.stderr
    assert broken.read_text() == f"A=1\nREDIS_PASSWORD = {SECRET}\n"

    # The same change again changes nothing.
    process, output = play(tmp_path, hosts, "--limit", "canary")
    assert process.returncode == 0, process.stdout + process.stderr
    assert output["canary"]["change"]["status"] == "SUCCESS"
    assert output["canary"]["change"]["changed_keys"] == {}


def test_diff_shows_only_changed_keys_and_never_a_secret_at_vvv(tmp_path):
    """The audit's case: a password next to the key a canary changes, ``--check --diff -vvv``;
    and secrets in the changes themselves, on a real run at -vvv."""
    secrets_file = write(tmp_path / "secrets.env", SECRET_ENV)
    hosts = {
        "canary": {"env_path": str(secrets_file), "changes": {"PATCHTST_SHADOW_ONLY": "false"}},
        "rotate": {
            "env_path": str(write(tmp_path / "rotate.env", SECRET_ENV)),
            "changes": {
                "REDIS_PASSWORD": "new-pw-77",
                "API_TOKEN": TOKEN,
                "BROKER_URL": "https://trader:new-url-pw@broker.example/api",
            },
        },
    }
    process, output = play(tmp_path, hosts, "--check", "--diff", "-vvv", "--limit", "canary")
    printed = process.stdout + process.stderr
    assert process.returncode == 0, printed
    for secret in (PASSWORD, URL_PASSWORD):
        assert secret not in printed
    assert diff_lines(process.stdout) == [
        "-PATCHTST_SHADOW_ONLY=true",
        "+PATCHTST_SHADOW_ONLY=false",
    ]
    assert secrets_file.read_text() == SECRET_ENV

    process, output = play(tmp_path, hosts, "--diff", "-vvv", "--limit", "rotate")
    printed = process.stdout + process.stderr
    assert process.returncode == 0, printed
    for secret in (PASSWORD, URL_PASSWORD, "new-pw-77", TOKEN, "new-url-pw"):
        assert secret not in printed
    assert diff_lines(process.stdout) == [
        "-REDIS_PASSWORD=<hidden>",
        "-BROKER_URL=https://***@broker.example/api",
        "+REDIS_PASSWORD=<hidden>  # changed, value hidden",
        "+API_TOKEN=<hidden>",
        "+BROKER_URL=https://***@broker.example/api  # changed, value hidden",
    ]
    assert output["rotate"]["change"]["changed_keys"]["API_TOKEN"] == {
        "before": None,
        "after": "<hidden>",
    }
    assert f"API_TOKEN={TOKEN}\n" in (tmp_path / "rotate.env").read_text()


def test_missing_file_and_unsafe_modes_are_refused(tmp_path):
    env = write(tmp_path / "ok.env", "A=1\n")
    hosts = {
        "missing": {"env_path": str(tmp_path / "nope.env"), "changes": {"A": "2"}},
        "readable": {"env_path": str(env), "changes": {"A": "2"}, "env_mode": "0644"},
        "garbage": {"env_path": str(env), "changes": {"A": "2"}, "env_mode": "rw-r"},
    }
    process, output = play(tmp_path, hosts)
    assert process.returncode == 2, process.stdout + process.stderr
    assert "does not exist" in output["missing"]["change"]["msg"]
    assert not (tmp_path / "nope.env").exists()
    assert "mode 0644 refused" in output["readable"]["change"]["msg"]
    assert "octal string" in output["garbage"]["change"]["msg"]
    assert env.read_text() == "A=1\n"


def test_a_refused_change_never_shows_a_secret_it_was_given_at_vvv(tmp_path):
    """Ansible prints a failed task's options at -vvv: the secrets of the changes are masked
    whatever refuses them, before or after the file is read."""
    env = write(tmp_path / "secrets.env", SECRET_ENV)
    hosts = {
        "readable": {"env_path": str(env), "changes": {"API_TOKEN": TOKEN}, "env_mode": "0644"},
        "missing": {"env_path": str(tmp_path / "nope.env"), "changes": {"API_TOKEN": TOKEN}},
        "invalid": {"env_path": str(env), "changes": {"API_TOKEN": TOKEN, "SIM_XGB": False}},
    }
    process, output = play(tmp_path, hosts, "-vvv")
    printed = process.stdout + process.stderr
    assert process.returncode == 2, printed
    assert "mode 0644 refused" in output["readable"]["change"]["msg"]
    assert "does not exist" in output["missing"]["change"]["msg"]
    assert "value of SIM_XGB must be a string" in output["invalid"]["change"]["msg"]
    # The options were printed (the key is there), the value masked.
    assert "API_TOKEN" in printed
    for secret in (TOKEN, PASSWORD, URL_PASSWORD):
        assert secret not in printed
    assert env.read_text() == SECRET_ENV
