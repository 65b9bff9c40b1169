"""engine_change with the canary's confidence cap (issue 16 item 5) through its main(): the cap
written into the drop-in and proven from the new start's [OK] line; a start that shows another
cap fails the proof after the write (the role restores); a cap that cannot be proven is refused
before anything is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_engine.config import load_config
from ai_engine.service import ready_line, startup_lines
from model_safety.activation.change import STEP_OPTIONS
from model_safety.activation.lock import acquire
from model_safety.engine.startup_proof import STEP_ROLE
from tests.module_harness import fails, succeeds

MODULE = "engine_change"
BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
CANARY_WEIGHTS = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
CAPPED_ENVIRONMENT = {
    "QSC_CANARY_MODEL": "patchtst",
    "QSC_CANARY_WEIGHT": "0.1",
    "QSC_MODEL_WEIGHTS": "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1",
    "QSC_CANARY_CONF_CAP": "0.75",
}


@pytest.fixture
def capped(tmp_path: Path, fake_systemd, git_checkout) -> dict:
    """A host whose next start logs the capped canary's lines; the task's arguments."""
    checkout, sha = git_checkout
    env = tmp_path / "ai-engine.env"
    env.write_text("PATCHTST_SHADOW_ONLY=true\n")
    env.chmod(0o640)
    lock_path = tmp_path / "activation.lease"
    lease = acquire(str(lock_path), "alice", "canary patchtst", 600)
    config = load_config({**CAPPED_ENVIRONMENT, "PATCHTST_SHADOW_ONLY": "false"})
    fake_systemd.show(
        Environment=" ".join(f"{key}={value}" for key, value in CAPPED_ENVIRONMENT.items()),
        EnvironmentFiles=f"{env} (ignore_errors=no)",
    )
    fake_systemd.set(
        journal=[f"AI_ENGINE_BUILD: {sha[:7]}", *startup_lines(config), ready_line(config)]
    )
    return {
        "dropin": tmp_path / "engine.service.d" / "qsc_canary.conf",
        "args": {
            "env_changes": {"PATCHTST_SHADOW_ONLY": "false"},
            "env_file": str(env),
            "dropin_state": "present",
            "dropin_purpose": "canary patchtst",
            "dropin_environment": CAPPED_ENVIRONMENT,
            "dropin_dir": str(tmp_path / "engine.service.d"),
            "baseline": BASELINE,
            "token": lease["token"],
            "lock_path": str(lock_path),
            "checkout": str(checkout),
            "model": "patchtst",
            "weight": 0.1,
            "weights": CANARY_WEIGHTS,
            "canary": True,
            "conf_cap": 0.75,
            "settle": 0,
            "journal_timeout": 0.2,
        },
    }


def test_the_cap_is_written_and_proven(capped) -> None:
    result = succeeds(MODULE, capped["args"])
    assert 'Environment="QSC_CANARY_CONF_CAP=0.75"\n' in capped["dropin"].read_text()
    assert result["proof"]["startup"]["conf_caps"] == {"patchtst": 0.75}
    assert result["proof"]["config"]["canary_conf_cap"] == 0.75
    assert "patchtst confidence capped at 0.75" in result["proof"]["statements"]


def test_a_start_with_another_cap_fails_the_proof_after_the_write(capped) -> None:
    result = fails(MODULE, {**capped["args"], "conf_cap": 0.6})
    assert result["step"] == STEP_ROLE
    assert "patchtst does not show conf_cap=0.6 in its [OK] line: conf_cap=0.75" in result["msg"]
    assert result["touched"] is True and result["dropin"]["written"] is True


@pytest.mark.parametrize("cap", [0.0, 1.5])
def test_a_cap_that_cannot_be_proven_touches_nothing(capped, fake_systemd, cap) -> None:
    result = fails(MODULE, {**capped["args"], "conf_cap": cap})
    assert result["step"] == STEP_OPTIONS and "conf_cap must be in (0, 1]" in result["msg"]
    assert not capped["dropin"].exists() and fake_systemd.calls() == []
