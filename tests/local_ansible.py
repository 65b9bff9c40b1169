"""Running Ansible from the checkout as the tests do: the venv's ``ansible`` and
``ansible-playbook`` with the checkout's ansible.cfg (it ships library/, module_utils/ and
roles/); a module run once on localhost (``ansible localhost -c local -m MODULE``); a play on
inventory hosts that are all this machine; their results read back as JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
ANSIBLE_BIN = Path(sys.executable).parent
LOCAL = ("-c", "local", "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}")
# One line a result, "<host> | <STATUS> => <JSON>", without colour codes to parse around.
JSON_RESULTS = {
    "ANSIBLE_STDOUT_CALLBACK": "minimal",
    "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
    "ANSIBLE_NOCOLOR": "1",
}
_RESULT = re.compile(r"^([\w.-]+) \| ([A-Z]+!?) => ", re.MULTILINE)


def ansible(
    program: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the venv's ``program`` (``ansible``, ``ansible-playbook``) with ``args`` from the
    checkout with its ansible.cfg, ``env`` added to the environment (a failed run is returned,
    not raised)."""
    return subprocess.run(
        [str(ANSIBLE_BIN / program), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=timeout,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), **(env or {})},
    )


def printed(process: subprocess.CompletedProcess[str]) -> str:
    """Everything a run printed, after its exit code (for assertion messages)."""
    return f"rc={process.returncode}\n{process.stdout}\n{process.stderr}"


def host_results(stdout: str) -> dict[str, list[dict[str, Any]]]:
    """Each host's results in task order, from output in the JSON_RESULTS format; each result
    gets ``status`` (SUCCESS, CHANGED, FAILED!, ...)."""
    decoder = json.JSONDecoder()
    by_host: dict[str, list[dict[str, Any]]] = {}
    for match in _RESULT.finditer(stdout):
        result = decoder.raw_decode(stdout, match.end())[0]
        by_host.setdefault(match.group(1), []).append({**result, "status": match.group(2)})
    return by_host


def run_module(module: str, args: dict, *options: str) -> tuple[bool, dict, str]:
    """Run ``module`` once on localhost with ``args`` (and ansible ``options`` such as
    ``--check``): (succeeded, its result, all output)."""
    process = ansible(
        "ansible",
        "localhost",
        *LOCAL,
        "-m",
        module,
        "-a",
        json.dumps(args),
        *options,
        env=JSON_RESULTS,
        timeout=120,
    )
    output = printed(process)
    results = host_results(process.stdout).get("localhost")
    assert results, output
    result = results[0]
    succeeded = result.pop("status") in ("SUCCESS", "CHANGED")
    assert succeeded == (process.returncode == 0), output
    return succeeded, result, output


def play_on_local_hosts(
    tmp_path: Path, playbook: str, hosts: dict[str, dict[str, Any]], *options: str
) -> subprocess.CompletedProcess[str]:
    """Run ``playbook`` (its YAML text, written to tmp_path) with ``options`` on ``hosts``,
    each this machine with its own inventory variables (so a YAML ``false`` stays a boolean);
    the results in the JSON_RESULTS format."""
    (tmp_path / "play.yml").write_text(playbook)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"hosts": hosts, "vars": local}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    return ansible(
        "ansible-playbook",
        "-i",
        str(tmp_path / "inventory.yml"),
        *options,
        str(tmp_path / "play.yml"),
        env=JSON_RESULTS,
        timeout=120,
    )
