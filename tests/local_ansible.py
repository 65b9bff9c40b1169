"""Running the project's modules for real on this machine, as the *_local tests do: one
``ansible localhost -c local -m MODULE`` from the checkout (its ansible.cfg ships library/ and
module_utils/), the result read back as JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ANSIBLE_BIN = Path(sys.executable).parent
LOCAL = ("-c", "local", "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}")
_STATUS = re.compile(r"^localhost \| ([A-Z]+)!? => ", re.M)


def run_module(module: str, args: dict, *options: str) -> tuple[bool, dict, str]:
    """Run ``module`` once on localhost with ``args`` (and ansible ``options`` such as
    ``--check``): (succeeded, its result, all output)."""
    argv = [str(ANSIBLE_BIN / "ansible"), "localhost", *LOCAL, "-m", module, "-a", json.dumps(args)]
    result = subprocess.run(
        [*argv, *options],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        },
    )
    output = f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    found = _STATUS.search(result.stdout)
    assert found, output
    succeeded = found.group(1) in ("SUCCESS", "CHANGED")
    assert succeeded == (result.returncode == 0), output
    return succeeded, json.JSONDecoder().raw_decode(result.stdout[found.end() :])[0], output
