"""No module prints the Redis password, whatever fails first: one `ansible-playbook -vvv` run on
localhost (the modules as Ansible ships them) where each module with a ``redis_url`` fails in
argument validation, engine_status finds no redis-py, and the quality gate meets no Redis
(then it still names the redacted URL). Nothing listens on the URL's port; no Redis is needed.
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

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
SECRET = "s3cr3t-pw"
MASKED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"  # what Ansible shows of a no_log option
# Each module with a redis_url option, with an option that fails argument validation.
BAD_OPTIONS: dict[str, dict[str, Any]] = {
    "quality_gate": {"count": "abc"},
    "scoreboard": {"count": "abc"},
    "feature_sanity": {"count": "abc"},
    "shadow_report": {"model": "patchtst", "count": "abc"},
    "promotion_check": {"model": "patchtst", "current_role": "shadow", "uptime_s": "abc"},
    "canary_probe": {"model": "patchtst", "baseline": {}, "timeout": "abc"},
    "engine_status": {"sample": "abc"},
    "model_role_proof": {"model": "patchtst", "role": "voting", "after": "0-1", "min_events": "x"},
}
_FAILED = re.compile(r"^fatal: \[localhost\]: FAILED! => ", re.MULTILINE)


def task(name: str, module: str, options: dict[str, Any], **keywords: Any) -> dict[str, Any]:
    """A task whose failure is ignored, with the URL of the variable ``redis_url`` unless
    ``options`` name another (Ansible shows a failed task's lines as written in the play)."""
    return {
        "name": name,
        module: {"redis_url": "{{ redis_url }}", **options},
        "ignore_errors": True,
        **keywords,
    }


def run_play(
    tmp_path: Path, tasks: list[dict[str, Any]], variables: dict[str, str]
) -> tuple[str, list[dict[str, Any]]]:
    """Run the tasks with -vvv and extra variables; (everything printed, the failed results
    in task order)."""
    play = [{"name": "Secrets", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    inventory = {
        "all": {
            "hosts": {"localhost": {}},
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        }
    }
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_NOCOLOR": "1",
    }
    env = {k: v for k, v in env.items() if not k.startswith(("MODEL_SAFETY_", "REDISCLI"))}
    process = subprocess.run(
        [
            str(ANSIBLE_PLAYBOOK),
            "-vvv",
            "-i",
            str(tmp_path / "inventory.yml"),
            "-e",
            f"@{tmp_path / 'vars.json'}",
            str(tmp_path / "play.yml"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    printed = process.stdout + process.stderr
    decoder = json.JSONDecoder()
    failed = [decoder.raw_decode(process.stdout, m.end())[0] for m in _FAILED.finditer(printed)]
    assert len(failed) == len(tasks), printed
    return printed, failed


@pytest.fixture
def hidden_redis(tmp_path: Path) -> str:
    """A directory for PYTHONPATH whose ``redis`` cannot be imported (redis-py missing)."""
    directory = tmp_path / "no_redis"
    directory.mkdir()
    (directory / "redis.py").write_text("raise ImportError('redis-py hidden by the test')\n")
    return str(directory)


def test_no_module_prints_the_redis_password(tmp_path: Path, hidden_redis: str) -> None:
    port = free_port()
    url = f"redis://:{SECRET}@127.0.0.1:{port}/0"
    plain = f"redis://127.0.0.1:{port}/0"
    tasks = [task(f"{module} invalid", module, bad) for module, bad in BAD_OPTIONS.items()]
    tasks += [
        task("no redis-py", "engine_status", {}, environment={"PYTHONPATH": hidden_redis}),
        task("unparsable", "quality_gate", {"redis_url": "{{ unparsable_url }}"}),
        task("db path", "engine_status", {"redis_url": "{{ db_path_url }}"}),
        task("Redis unreachable", "quality_gate", {}),
        task("no password", "quality_gate", {"redis_url": plain}),
    ]
    variables = {
        "redis_url": url,
        "unparsable_url": f"redis://:{SECRET}@[::1/0",
        "db_path_url": f"redis://:{SECRET}@127.0.0.1:{port}/abc",
    }
    printed, failed = run_play(tmp_path, tasks, variables)

    assert SECRET not in printed
    invalid, missing_redis, unparsable, db_path, unreachable, no_password = (
        failed[: len(BAD_OPTIONS)],
        *failed[len(BAD_OPTIONS) :],
    )
    for module, result in zip(BAD_OPTIONS, invalid, strict=True):
        assert "unable to convert" in result["msg"], (module, result)
        assert result["invocation"]["module_args"]["redis_url"] == MASKED, module
    assert "Failed to import the required Python library (redis)" in missing_redis["msg"]
    assert unparsable["msg"] == "invalid redis_url: Invalid IPv6 URL"
    assert unparsable["invocation"]["module_args"]["redis_url"] == MASKED
    # redis-py would read db 0 (issue 12, item 9).
    expected = "invalid redis_url: the path must be a db number such as /0, not '/abc'"
    assert db_path["msg"] == expected
    # After validation only the secrets stay masked: the (redacted) URL is still reported.
    assert unreachable["source"]["redis"] == f"redis://:***@127.0.0.1:{port}/0"
    assert no_password["source"]["redis"] == plain
    for result in unreachable, no_password:
        assert f"Redis at {plain} unreachable" in result["msg"]
