"""The engine_proof module through its main() against the fake systemctl/journalctl and a real
git checkout: a start proven (build, the files' config, the model's role) in normal and check
mode, each failing step named in the result, and the options it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_engine.config import load_config
from ai_engine.service import ready_line, startup_lines
from model_safety.engine.envfile import env_values
from model_safety.engine.startup_proof import STEP_BUILD, STEP_ROLE
from tests.module_harness import INVOCATION, fails, succeeds

MODULE = "engine_proof"
BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
PRISTINE = "PATCHTST_SHADOW_ONLY=true\nENGINE_RATE=100\nAPI_KEY=never-shown\n"


@pytest.fixture
def args(tmp_path: Path, fake_systemd, git_checkout) -> dict:
    """A host whose running start logged the pristine files' config with the checkout's
    build; the task's arguments to prove it."""
    checkout, sha = git_checkout
    env = tmp_path / "ai-engine.env"
    env.write_text(PRISTINE)
    config = load_config(env_values(PRISTINE))
    fake_systemd.show(EnvironmentFiles=f"{env} (ignore_errors=no)")
    fake_systemd.set(
        journal=[f"AI_ENGINE_BUILD: {sha[:7]}", *startup_lines(config), ready_line(config)]
    )
    return {
        "invocation_id": INVOCATION,
        "checkout": str(checkout),
        "baseline": BASELINE,
        "journal_timeout": 0.2,
    }


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_start_is_proven(args, check_mode) -> None:
    result = succeeds(MODULE, {**args, "model": "xgb", "weight": 0.25}, check_mode=check_mode)
    assert result["changed"] is False and result["invocation_id"] == INVOCATION
    assert result["config"]["shadow"] == {"patchtst": 0.2}
    assert result["statements"][-1] == "xgb loaded as a voter at 0.25"
    assert "never-shown" not in str(result)


def test_a_wrong_weight_fails_at_the_role_step(args) -> None:
    result = fails(MODULE, {**args, "model": "xgb", "weight": 0.3})
    assert result["step"] == STEP_ROLE
    assert result["msg"].startswith(f"{STEP_ROLE}: xgb is not voting at 0.3: ")
    assert result["differences"] == [result["msg"].removeprefix(f"{STEP_ROLE}: ")]


def test_a_start_of_another_build_fails_at_the_build_step(args, fake_systemd) -> None:
    journal = fake_systemd.state()["journal"]
    fake_systemd.set(journal=["AI_ENGINE_BUILD: deadbee", *journal[1:]])
    result = fails(MODULE, args)
    assert result["step"] == STEP_BUILD
    assert result["msg"].startswith(f"{STEP_BUILD}: invocation {INVOCATION} runs build deadbee")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"role": "primary"}, "value of role must be one of: voting, shadow"),
        ({"model": "xgb", "canary": True}, "a canary is proven as a voter with the full weights"),
        ({"invocation_id": "../x"}, "invocation"),
        ({"unit": "-H host"}, "not a valid systemd unit name"),
    ],
)
def test_a_bad_option_is_refused(args, fake_systemd, changes, message) -> None:
    assert message in fails(MODULE, {**args, **changes})["msg"]
    assert [argv for argv in fake_systemd.calls() if argv[0] != "git"] == []


def test_invocation_id_is_required(args) -> None:
    del args["invocation_id"]
    assert "missing required arguments: invocation_id" in fails(MODULE, args)["msg"]
