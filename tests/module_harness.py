"""Running a module of library/ in this process, as ansible-core's own module unit tests do:
the task's arguments patched in (``ansible.module_utils.testing.patch_module_args``),
``exit_json``/``fail_json`` turned into exceptions that carry the result (with the module's
no_log values masked, as Ansible masks them), and ``warn`` recorded into the result.

Also what the module tests share: a fake ``systemctl``/``journalctl`` on PATH, a real git
checkout, and the reference engine's telemetry written to the real redis-server
(tests/redis_server.py: its redis_client and redis_stream fixtures). The fixtures here are
registered by tests/unit/modules/conftest.py.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import ansible.module_utils
import pytest
import redis
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.testing import patch_module_args

from tests.redis_server import RedisServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
LIBRARY = REPO_ROOT / "library"
# The modules import their helpers as ansible.module_utils.model_safety, as on a target.
MODULE_UTILS = str(REPO_ROOT / "module_utils")
UNIT = "quantum-ai-engine.service"
INVOCATION = "0123456789abcdef0123456789abcdef"
NEW_INVOCATION = "fedcba9876543210fedcba9876543210"
# The reference engine's lab default: four models, patchtst in shadow.
BASELINE = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
# Inputs an attacker (or a typo) could put into any text option.
HOSTILE_NAMES = ["../etc/passwd", "xgb\nrm -rf /", "XGB", "x" * 33, "", "9lives", "a b"]
EVENTS_START = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
EVENTS_START_MS = 1_768_046_400_000
EVENT_STEP_MS = 100


class ModuleReturned(Exception):
    """The module returned; ``result`` is what it returned."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result)
        self.result = result


class AnsibleExitJson(ModuleReturned):
    """The module called exit_json."""


class AnsibleFailJson(ModuleReturned):
    """The module called fail_json."""


@functools.cache
def load(name: str) -> ModuleType:
    """The module ``library/<name>.py``, imported once (library/ is not a package)."""
    if MODULE_UTILS not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(MODULE_UTILS)
    spec = importlib.util.spec_from_file_location(f"library_{name}", LIBRARY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(
    name: str, args: dict[str, Any], *, check_mode: bool = False, diff: bool = False
) -> tuple[bool, dict[str, Any]]:
    """Run the module's main() with the task arguments ``args`` (in check mode, with --diff
    when asked): (succeeded, result)."""
    warnings: list[str] = []

    def returned(module: AnsibleModule, result: dict[str, Any]) -> dict[str, Any]:
        # As Ansible returns it: secrets masked, the warnings added.
        return {**remove_values(result, module.no_log_values), "warnings": warnings}

    def exit_json(module: AnsibleModule, **result: Any) -> None:
        raise AnsibleExitJson(returned(module, {"changed": False, **result}))

    def fail_json(module: AnsibleModule, msg: str, **result: Any) -> None:
        raise AnsibleFailJson(returned(module, {"failed": True, "msg": msg, **result}))

    def warn(module: AnsibleModule, warning: str, **_: Any) -> None:
        warnings.append(warning)

    task = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
    main = load(name).main
    with (
        patch_module_args(task),
        mock.patch.object(AnsibleModule, "exit_json", exit_json),
        mock.patch.object(AnsibleModule, "fail_json", fail_json),
        mock.patch.object(AnsibleModule, "warn", warn),
    ):
        try:
            main()
        except AnsibleExitJson as exit_:
            return True, exit_.result
        except AnsibleFailJson as failure:
            return False, failure.result
    raise AssertionError(f"{name} returned without exit_json or fail_json")


def succeeds(name: str, args: dict[str, Any], **options: bool) -> dict[str, Any]:
    """The result of a run of the module that must succeed."""
    succeeded, result = invoke(name, args, **options)
    assert succeeded, result
    return result


def fails(name: str, args: dict[str, Any], **options: bool) -> dict[str, Any]:
    """The result of a run of the module that must fail."""
    succeeded, result = invoke(name, args, **options)
    assert not succeeded, result
    return result


# --------------------------------------------------------------------------- fake systemd

# One program for systemctl and journalctl: it logs every argv and answers from a JSON state
# file: "show" (the unit's properties), "journal" (the invocation's lines), "fail" ({verb:
# message}: exit 1 saying it) and "on_stop"/"on_start" (the properties those verbs set, also
# when they fail); daemon-reload changes nothing. Any other systemctl verb (a restart, say)
# fails: the modules use none.
FAKE_SYSTEMD = """\
#!{python}
import json, os, sys

STATE = {state!r}
with open(STATE) as handle:
    state = json.load(handle)
program, args = os.path.basename(sys.argv[0]), sys.argv[1:]
state["calls"].append([program, *args])
verb = args[0] if program == "systemctl" else program
if verb not in ("show", "stop", "start", "daemon-reload", "journalctl"):
    sys.exit("fake systemctl: unexpected " + repr([program, *args]))
if verb in ("stop", "start"):
    state["show"].update(state["on_" + verb])
with open(STATE, "w") as handle:
    json.dump(state, handle)
if verb in state["fail"]:
    sys.exit(state["fail"][verb])
if program == "journalctl":
    print("\\n".join(state["journal"]))
elif verb == "show" and "--timestamp=us+utc" in args:
    print("ActiveEnterTimestamp=Mon 2026-11-23 18:01:02.123456 UTC")
elif verb == "show":
    wanted = next(a for a in args if a.startswith("--property=")).split("=", 1)[1]
    for key in wanted.split(","):
        if key in state["show"]:
            print(key + "=" + state["show"][key])
"""

RUNNING = {
    "Id": UNIT,
    "LoadState": "loaded",
    "ActiveState": "active",
    "SubState": "running",
    "MainPID": "100",
    "NRestarts": "0",
    "InvocationID": INVOCATION,
    "ActiveEnterTimestamp": "Mon 2026-11-23 18:01:02 UTC",
    "ActiveEnterTimestampMonotonic": "1000000",
    "Result": "success",
    "Environment": "",
    "EnvironmentFiles": "",
}


@dataclass
class FakeSystemd:
    """The fake's programs and state file: what it answers, and the argv it was run with."""

    bin_dir: Path
    state_file: Path

    @classmethod
    def under(cls, directory: Path) -> FakeSystemd:
        """The fake :func:`install_fake_systemd` puts in ``directory``."""
        return cls(directory / "fake-bin", directory / "systemd-state.json")

    def state(self) -> dict[str, Any]:
        """The whole state, with ``calls``."""
        return json.loads(self.state_file.read_text())

    def set(self, **changes: Any) -> None:
        """Replace top-level parts of the state (``show``, ``journal``, ``fail``, ...)."""
        self.state_file.write_text(json.dumps({**self.state(), **changes}))

    def show(self, **properties: str) -> None:
        """Change some of the unit's properties."""
        self.set(show={**self.state()["show"], **properties})

    def calls(self) -> list[list[str]]:
        """Every argv run so far, oldest first."""
        return self.state()["calls"]


def install_fake_systemd(directory: Path, **state: Any) -> FakeSystemd:
    """A fake ``systemctl`` and ``journalctl`` in ``directory``/fake-bin: the unit runs as
    INVOCATION and a stop+start gives it NEW_INVOCATION, unless ``state`` replaces parts of
    that (``show``, ``journal``, ``fail``, ``on_stop``, ``on_start``)."""
    fake = FakeSystemd.under(directory)
    fake.bin_dir.mkdir(parents=True)
    fake.state_file.write_text(
        json.dumps(
            {
                "show": RUNNING,
                "journal": [],
                "fail": {},
                "on_stop": {"ActiveState": "inactive", "SubState": "dead", "MainPID": "0"},
                "on_start": {
                    "ActiveState": "active",
                    "SubState": "running",
                    "MainPID": "4242",
                    "InvocationID": NEW_INVOCATION,
                },
                "calls": [],
                **state,
            }
        )
    )
    program = fake.bin_dir / "systemctl"
    program.write_text(FAKE_SYSTEMD.format(python=sys.executable, state=str(fake.state_file)))
    program.chmod(0o755)
    (fake.bin_dir / "journalctl").symlink_to(program)
    return fake


@pytest.fixture
def fake_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSystemd:
    """A fake ``systemctl`` and ``journalctl`` (:func:`install_fake_systemd`) first on PATH."""
    fake = install_fake_systemd(tmp_path)
    monkeypatch.setenv("PATH", f"{fake.bin_dir}:{os.environ['PATH']}")
    return fake


@pytest.fixture
def git_checkout(tmp_path: Path) -> tuple[Path, str]:
    """A real git checkout on branch main with one commit: (its path, the commit's SHA)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    identity = ("-c", "user.name=t", "-c", "user.email=t@example.invalid")
    for argv in (
        ("init", "-q", "-b", "main"),
        (*identity, "commit", "-q", "--allow-empty", "-m", "build"),
    ):
        subprocess.run(["git", "-C", str(checkout), *argv], check=True, capture_output=True)
    sha = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return checkout, sha


# --------------------------------------------------------------------------- telemetry


@functools.cache
def engine_payloads(count: int, env: tuple[tuple[str, str], ...] = ()) -> tuple[str, ...]:
    """``count`` events of the reference engine (JSON), 100 ms apart from EVENTS_START; the lab
    default (patchtst in shadow) changed by ``env``."""
    from ai_engine.config import load_config
    from ai_engine.engine import Engine

    engine = Engine(load_config({"ENGINE_SEED": "11", "PATCHTST_SHADOW_ONLY": "true", **dict(env)}))
    step = timedelta(milliseconds=EVENT_STEP_MS)
    return tuple(
        engine.step(i * EVENT_STEP_MS / 1000, EVENTS_START + i * step).json for i in range(count)
    )


def stream_id(index: int) -> str:
    """The id :meth:`Telemetry.add` gives the event at ``index``."""
    return f"{EVENTS_START_MS + index * EVENT_STEP_MS}-0"


# --------------------------------------------------------------------------- Redis

REDIS_SECRET = "pw-module-never-shown-9Z"


def unreachable_redis() -> str:
    """A URL with a password (REDIS_SECRET) where no server listens."""
    return f"redis://:{REDIS_SECRET}@127.0.0.1:{free_port()}/0"


def fails_without_the_password(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """The result of the module failing on ``args``, which shows no Redis password."""
    result = fails(name, args)
    assert REDIS_SECRET not in json.dumps(result), result
    return result


def json_report(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON report a module wrote (its path in ``result["reports"]``)."""
    return json.loads(Path(result["reports"]["json"]).read_text())


@dataclass
class Telemetry:
    """A stream of this test's own in the session's redis-server."""

    client: redis.Redis
    url: str
    stream: str

    @property
    def args(self) -> dict[str, str]:
        """The task arguments that read this stream."""
        return {"redis_url": self.url, "stream": self.stream}

    def add(self, count: int, *sim: tuple[str, str], first: int = 0) -> None:
        """``count`` events of the reference engine (lab default changed by the ``sim``
        variables, such as ``("SIM_XGB", "constant")``) with the ids of :func:`stream_id`."""
        pipe = self.client.pipeline(transaction=False)
        for offset, payload in enumerate(engine_payloads(count, sim)):
            pipe.xadd(self.stream, {"payload": payload}, id=stream_id(first + offset))
        pipe.execute()


@pytest.fixture
def telemetry(redis_server: RedisServer, redis_client: redis.Redis, redis_stream: str) -> Telemetry:
    """An empty stream of this test's own (tests/redis_server.py) to add engine events to."""
    return Telemetry(redis_client, redis_server.url, redis_stream)
