"""The engine_change module through its main() against the fake systemctl/journalctl, a real
git checkout and real env file, drop-in and lease: its options refused before anything runs, a
canary written, restarted and proven with both diffs, check mode, and each refusal named by its
step, with no secret of the env file or of the changes in any result."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ai_engine.config import load_config
from ai_engine.service import ready_line, startup_lines
from model_safety.activation.change import STEP_DROPIN, STEP_ENV, STEP_LEASE, STEP_OPTIONS
from model_safety.activation.lock import acquire
from model_safety.engine.cycle import STEP_CYCLE
from model_safety.engine.envfile import env_values
from model_safety.engine.startup_proof import STEP_ROLE
from tests.module_harness import INVOCATION, NEW_INVOCATION, UNIT, fails, succeeds

MODULE = "engine_change"
BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
FILE_SECRET = "never-shown-file-secret"
CHANGE_SECRET = "never-shown-change-secret"
PRISTINE = f"PATCHTST_SHADOW_ONLY=true\nENGINE_RATE=100\nAPI_KEY={FILE_SECRET}\n"
CANARY_ENV = PRISTINE.replace("PATCHTST_SHADOW_ONLY=true", "PATCHTST_SHADOW_ONLY=false")
CANARY_WEIGHTS = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
CANARY_ENVIRONMENT = {
    "QSC_CANARY_MODEL": "patchtst",
    "QSC_CANARY_WEIGHT": "0.1",
    "QSC_MODEL_WEIGHTS": "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1",
}


@pytest.fixture
def host(tmp_path: Path, fake_systemd, git_checkout) -> dict:
    """A host running its pristine files whose next start logs the canary's configuration
    with the checkout's build, a lease this activation holds; the task's arguments."""
    checkout, sha = git_checkout
    env = tmp_path / "etc" / "ai-engine.env"
    env.parent.mkdir()
    env.write_text(PRISTINE)
    env.chmod(0o640)
    dropins = tmp_path / "etc" / "engine.service.d"
    lock_path = tmp_path / "lease" / "activation.lease"
    lease = acquire(str(lock_path), "alice", "canary patchtst", 600)
    config = load_config({**CANARY_ENVIRONMENT, **env_values(CANARY_ENV)})
    fake_systemd.show(
        Environment=" ".join(f"{key}={value}" for key, value in CANARY_ENVIRONMENT.items()),
        EnvironmentFiles=f"{env} (ignore_errors=no)",
    )
    fake_systemd.set(
        journal=[f"AI_ENGINE_BUILD: {sha[:7]}", *startup_lines(config), ready_line(config)]
    )
    return {
        "env": env,
        "dropin": dropins / "qsc_canary.conf",
        "lease": lock_path,
        "sha": sha,
        "args": {
            "env_changes": {"PATCHTST_SHADOW_ONLY": "false"},
            "env_file": str(env),
            "dropin_state": "present",
            "dropin_purpose": "canary patchtst",
            "dropin_environment": CANARY_ENVIRONMENT,
            "dropin_dir": str(dropins),
            "baseline": BASELINE,
            "token": lease["token"],
            "lock_path": str(lock_path),
            "checkout": str(checkout),
            "model": "patchtst",
            "role": "voting",
            "weight": 0.1,
            "weights": CANARY_WEIGHTS,
            "canary": True,
            "settle": 0,
            "journal_timeout": 0.2,
        },
    }


def verbs(fake_systemd) -> list[str]:
    """The systemctl verbs that change something, in order."""
    return [
        argv[1] for argv in fake_systemd.calls() if argv[0] == "systemctl" and argv[1] != "show"
    ]


def untouched(host: dict, fake_systemd) -> bool:
    """Whether the env file is as it was, there is no drop-in and nothing ran."""
    return (
        host["env"].read_text() == PRISTINE
        and not host["dropin"].exists()
        and fake_systemd.calls() == []
    )


@pytest.mark.parametrize("missing", ["env_changes", "dropin_state", "baseline"])
def test_required_options(host, fake_systemd, missing) -> None:
    args = {k: v for k, v in host["args"].items() if k != missing}
    assert f"missing required arguments: {missing}" in fails(MODULE, args)["msg"]
    assert untouched(host, fake_systemd)


def test_dropin_state_has_two_choices(host, fake_systemd) -> None:
    result = fails(MODULE, {**host["args"], "dropin_state": "disabled"})
    assert "value of dropin_state must be one of: present, absent" in result["msg"]
    assert untouched(host, fake_systemd)


def test_a_canary_is_written_restarted_and_proven(host, fake_systemd) -> None:
    result = succeeds(MODULE, host["args"])

    assert result["changed"] is True
    assert host["env"].read_text() == CANARY_ENV
    assert stat.S_IMODE(host["env"].stat().st_mode) == 0o640
    assert host["dropin"].read_text() == result["dropin"]["diff"]["after"]
    assert 'Environment="QSC_CANARY_WEIGHT=0.1"\n' in host["dropin"].read_text()
    assert verbs(fake_systemd) == ["daemon-reload", "stop", "start"]
    assert result["start"]["previous_invocation_id"] == INVOCATION
    assert result["start"]["invocation_id"] == NEW_INVOCATION
    assert result["proof"]["build"] == host["sha"][:7]
    assert result["proof"]["statements"][2] == "patchtst loaded as a voter at 0.1"
    assert (result["env"]["written"], result["dropin"]["written"]) == (True, True)
    assert "secrets" not in result
    env_diff, dropin_diff = result["diff"]
    assert env_diff == result["env"]["diff"] and dropin_diff == result["dropin"]["diff"]
    assert env_diff["before_header"].startswith(f"{host['env']} (changed keys only")
    assert "PATCHTST_SHADOW_ONLY=false" in env_diff["after"]
    assert FILE_SECRET not in json.dumps(result)


def test_a_secret_change_is_written_and_never_shown(host) -> None:
    args = {**host["args"], "env_changes": {"PATCHTST_SHADOW_ONLY": "false"}}
    args["env_changes"]["API_KEY"] = CHANGE_SECRET
    # The journal is the canary's either way: the engine does not log its API key.
    result = succeeds(MODULE, args, diff=True)
    assert f"API_KEY={CHANGE_SECRET}\n" in host["env"].read_text()
    assert "API_KEY" in result["env"]["changed_keys"]
    shown = json.dumps(result)
    assert CHANGE_SECRET not in shown and FILE_SECRET not in shown


def test_check_mode_writes_nothing_and_needs_no_token(host, fake_systemd) -> None:
    args = {k: v for k, v in host["args"].items() if k != "token"}
    lease = host["lease"].read_text()

    result = succeeds(MODULE, args, check_mode=True, diff=True)

    assert host["env"].read_text() == PRISTINE and not host["dropin"].exists()
    assert host["lease"].read_text() == lease
    assert [argv[1] for argv in fake_systemd.calls()] == ["show"]
    assert result["start"]["would_cycle"] is True
    assert result["start"]["invocation_id"] == INVOCATION
    assert "proof" not in result
    assert (result["env"]["written"], result["dropin"]["written"]) == (False, False)
    assert len(result["diff"]) == 2
    assert FILE_SECRET not in json.dumps(result)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("settle", 3601, "settle must be in 0..3600 s"),
        ("unit", "../../etc/passwd", "not a valid systemd unit name"),
        ("baseline", {"xgb": 0.5}, "baseline weights must sum to 1"),
        ("weights", {}, "a canary is proven as a voter with the full weights"),
    ],
)
def test_a_bad_option_touches_nothing(host, fake_systemd, option, value, message) -> None:
    lease = host["lease"].read_text()
    result = fails(MODULE, {**host["args"], option: value})
    assert result["msg"].startswith(f"{STEP_OPTIONS}: ") and message in result["msg"]
    assert result["step"] == STEP_OPTIONS
    assert untouched(host, fake_systemd) and host["lease"].read_text() == lease


def test_a_token_that_does_not_hold_the_lease_is_refused(host, fake_systemd) -> None:
    result = fails(MODULE, {**host["args"], "token": "f" * 32})
    assert result["msg"].startswith(f"{STEP_LEASE}: activation lease {host['lease']}: ")
    assert "is held by alice for canary patchtst" in result["msg"]
    assert result["step"] == STEP_LEASE and result["holder"]["owner"] == "alice"
    assert untouched(host, fake_systemd)


def test_no_token_is_refused_outside_check_mode(host, fake_systemd) -> None:
    args = {k: v for k, v in host["args"].items() if k != "token"}
    result = fails(MODULE, args)
    assert result["msg"] == f"{STEP_LEASE}: no lease token: the change needs the lease"
    assert untouched(host, fake_systemd)


def test_a_refused_env_change_never_shows_its_secret(host, fake_systemd) -> None:
    # The invalid name must not look secret (KEY, PASS, ...): Ansible would mask its value
    # everywhere, even inside the paths the message names.
    changes = {"API_KEY": CHANGE_SECRET, "bad name": "ordinary-value"}
    result = fails(MODULE, {**host["args"], "env_changes": changes})
    assert result["msg"].startswith(f"{STEP_ENV}: {host['env']}: ")
    assert result["step"] == STEP_ENV and "secrets" not in result
    shown = json.dumps(result)
    assert CHANGE_SECRET not in shown and FILE_SECRET not in shown
    assert untouched(host, fake_systemd)


def test_a_refused_dropin_never_shows_a_secret_and_writes_no_env_file(host, fake_systemd) -> None:
    args = {
        **host["args"],
        "env_changes": {"PATCHTST_SHADOW_ONLY": "false", "API_KEY": CHANGE_SECRET},
        "dropin_environment": {"QSC_CANARY_WEIGHT": "0.1 $HOME"},
    }
    result = fails(MODULE, args)
    assert result["msg"].startswith(f"{STEP_DROPIN}: invalid drop-in environment: ")
    assert result["step"] == STEP_DROPIN
    shown = json.dumps(result)
    assert CHANGE_SECRET not in shown and FILE_SECRET not in shown
    assert untouched(host, fake_systemd)


def test_a_dropin_directory_that_is_a_file_is_refused_by_step(host, fake_systemd) -> None:
    not_a_directory = host["env"].parent / "not-a-directory"
    not_a_directory.write_text("")
    result = fails(MODULE, {**host["args"], "dropin_dir": str(not_a_directory)})
    assert result["msg"].startswith(f"{STEP_DROPIN}: ") and result["step"] == STEP_DROPIN
    assert host["env"].read_text() == PRISTINE and fake_systemd.calls() == []


def test_a_start_that_fails_says_what_was_written(host, fake_systemd) -> None:
    fake_systemd.set(
        fail={"start": f"Job for {UNIT} failed."},
        on_start={"ActiveState": "failed", "SubState": "failed", "InvocationID": NEW_INVOCATION},
        journal=["[ERROR] simulated start failure (SIM_FAIL_START=1)"],
    )

    result = fails(MODULE, host["args"])

    assert result["msg"].startswith(f"{STEP_CYCLE}: stop+start of {UNIT} failed: ")
    assert result["step"] == STEP_CYCLE
    assert result["state"]["active_state"] == "failed"
    assert result["journal"] == ["[ERROR] simulated start failure (SIM_FAIL_START=1)"]
    assert (result["env"]["written"], result["dropin"]["written"]) == (True, True)
    assert host["env"].read_text() == CANARY_ENV and host["dropin"].exists()
    assert "secrets" not in result and FILE_SECRET not in json.dumps(result)


def test_a_start_in_another_role_fails_the_proof(host, fake_systemd) -> None:
    result = fails(MODULE, {**host["args"], "weight": 0.2})
    assert result["msg"].startswith(f"{STEP_ROLE}: patchtst is not voting at 0.2: ")
    assert result["step"] == STEP_ROLE and result["differences"]
    assert result["env"]["written"] is True
    assert verbs(fake_systemd) == ["daemon-reload", "stop", "start"]
