"""The engine_config module through its main() against the fake systemctl and real env files:
bad baselines and unit names refused, what the unit must run (file values win over the
unit's), a start-up that differs, a missing env file, and check mode (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.module_harness import BASELINE, UNIT, fails, succeeds

MODULE = "engine_config"
CANARY_ENV = (
    "QSC_MODEL_WEIGHTS=xgb:0.25,lgbm:0.25,nhits:0.4,patchtst:0.1\n"
    "QSC_CANARY_MODEL=patchtst\nPATCHTST_SHADOW_ONLY=false\n"
)
CANARY_STARTUP = {
    "voting": {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.4, "patchtst": 0.1},
    "shadow": {},
    "canary": {
        "model": "patchtst",
        "weight": 0.1,
        "weights": {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.4, "patchtst": 0.1},
    },
}


@pytest.fixture
def env_file(tmp_path: Path, fake_systemd) -> Path:
    """The unit's env file (canary patchtst at 0.1); the unit sets PATCHTST_SHADOW_ONLY=true."""
    path = tmp_path / "ai-engine.env"
    path.write_text(CANARY_ENV + "API_KEY=never-returned\n")
    fake_systemd.show(
        Environment="PATCHTST_SHADOW_ONLY=true ENGINE_SEED=11",
        EnvironmentFiles=f"{path} (ignore_errors=no)",
    )
    return path


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ({}, "baseline must be a non-empty mapping of model to weight"),
        ({"XGB": 1.0}, "baseline: "),
        ({"../xgb": 1.0}, "baseline: "),
        ({"xgb\nnhits": 1.0}, "baseline: "),
        ({"xgb": 1.5}, "baseline weight of xgb must be in (0, 1]: 1.5"),
        ({"xgb": 0.0, "nhits": 1.0}, "baseline weight of xgb must be in (0, 1]: 0.0"),
        ({"xgb": "half", "nhits": 0.5}, "baseline weight of xgb must be in (0, 1]: 'half'"),
        ({"xgb": 0.5, "nhits": 0.4}, "baseline weights must sum to 1 (within 1e-6)"),
    ],
)
def test_a_bad_baseline_is_refused(env_file, baseline, message) -> None:
    result = fails(MODULE, {"baseline": baseline})
    assert result["msg"].startswith(f"cannot tell what {UNIT} must run: ")
    assert message in result["msg"]


@pytest.mark.parametrize("unit", ["../../etc/x.service", "a.service\nb", "-H host"])
def test_a_bad_unit_name_runs_no_systemctl(fake_systemd, unit) -> None:
    result = fails(MODULE, {"unit": unit, "baseline": BASELINE})
    assert "not a valid systemd unit name" in result["msg"]
    assert fake_systemd.calls() == []


def test_baseline_is_required() -> None:
    assert "missing required arguments: baseline" in fails(MODULE, {})["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_the_file_values_win_and_the_startup_matches(env_file, check_mode) -> None:
    args = {"baseline": BASELINE, "startup": CANARY_STARTUP}
    result = succeeds(MODULE, args, check_mode=check_mode)
    assert (result["changed"], result["differences"]) == (False, [])
    assert result["expected"]["canary"] == "patchtst"
    assert result["expected"]["shadow"] == {}  # the file's false wins over the unit's true
    assert "API_KEY" not in str(result) and "never-returned" not in str(result)
    assert result["env_files"][0]["path"] == str(env_file) and result["env_files"][0]["present"]


def test_without_startup_only_the_expectation(env_file) -> None:
    env_file.write_text("QSC_CANARY_MODEL=\n")
    result = succeeds(MODULE, {"baseline": BASELINE})
    assert result["expected"]["shadow"] == {"patchtst": 0.1}
    assert result["expected"]["canary"] is None and "differences" not in result


def test_a_startup_that_differs_fails_listing_each_difference(env_file) -> None:
    startup = {**CANARY_STARTUP, "canary": None}
    result = fails(MODULE, {"baseline": BASELINE, "startup": startup})
    assert result["msg"] == (
        f"{UNIT} does not run the model configuration of its files: "
        "canary: the files set patchtst, no [CANARY] line"
    )
    assert result["differences"] == ["canary: the files set patchtst, no [CANARY] line"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("QSC_CANARY_MODEL=gpt\n", "QSC_CANARY_MODEL 'gpt' is not a configured model"),
        ("QSC_CANARY_WEIGHT=0.1\n", "QSC_CANARY_WEIGHT is set without QSC_CANARY_MODEL"),
        (
            "PATCHTST_SHADOW_ONLY=0\nQSC_CANARY_MODEL=patchtst\nQSC_CANARY_WEIGHT=1.5\n",
            "QSC_CANARY_WEIGHT must be in (0, 1), got '1.5'",
        ),
        (
            "PATCHTST_SHADOW_ONLY=0\nQSC_CANARY_MODEL=patchtst\nQSC_CANARY_WEIGHT=nan\n",
            "QSC_CANARY_WEIGHT must be in (0, 1), got 'nan'",
        ),
        ("PATCHTST_SHADOW_ONLY=maybe\n", "PATCHTST_SHADOW_ONLY"),
        ("QSC_MODEL_WEIGHTS=xgb:-1,lgbm:1,nhits:0.5,patchtst:0.5\n", "QSC_MODEL_WEIGHTS"),
        ("GPT_SHADOW_ONLY=true\n", "GPT_SHADOW_ONLY names no configured model"),
        (
            "XGB_SHADOW_ONLY=1\nLGBM_SHADOW_ONLY=1\nNHITS_SHADOW_ONLY=1\n",
            "every model is shadow-only: no model would vote",
        ),
    ],
)
def test_a_configuration_the_engine_refuses_fails(env_file, content, message) -> None:
    env_file.write_text(content)
    result = fails(MODULE, {"baseline": BASELINE})
    assert result["msg"].startswith(f"cannot tell what {UNIT} must run: {message}")


def test_a_missing_env_file_fails_closed(env_file) -> None:
    env_file.unlink()
    result = fails(MODULE, {"baseline": BASELINE})
    assert f"environment file {env_file} of {UNIT} is missing" in result["msg"]


def test_systemctl_failing_fails(fake_systemd) -> None:
    fake_systemd.set(fail={"show": "Failed to connect to bus"})
    result = fails(MODULE, {"baseline": BASELINE})
    assert "Failed to connect to bus" in result["msg"] and result["unit"] == UNIT
