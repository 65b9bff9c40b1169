"""The canary's confidence cap (issue 16 item 5, QSC_CANARY_CONF_CAP) end to end in units: the
lab engine caps and says so, the plan writes the drop-in, the proof checks the start, and the
gate and the monitor judge the raw confidences."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ai_engine.config import ConfigError, load_config
from ai_engine.engine import Engine
from ai_engine.ensemble import vote
from ai_engine.models import Prediction, capped
from ai_engine.service import startup_lines

CANARY_WEIGHTS = "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"
MOMENT = datetime(2026, 1, 10, 12, tzinfo=UTC)


def engine_env(cap: str | None = "0.75", **extra: str) -> dict[str, str]:
    env = {
        "QSC_CANARY_MODEL": "patchtst",
        "QSC_CANARY_WEIGHT": "0.1",
        "QSC_MODEL_WEIGHTS": CANARY_WEIGHTS,
        "ENGINE_SEED": "7",
        **extra,
    }
    if cap is not None:
        env["QSC_CANARY_CONF_CAP"] = cap
    return env


# --------------------------------------------------------------------------- the lab engine


@pytest.mark.parametrize(("text", "cap"), [("0.75", 0.75), ("1", 1.0), (" 0.5 ", 0.5), ("", None)])
def test_engine_reads_the_cap(text: str, cap: float | None) -> None:
    assert load_config(engine_env(text)).canary_conf_cap == cap


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "must be in (0, 1]"),
        ("-0.1", "must be in (0, 1]"),
        ("1.01", "must be in (0, 1]"),
        ("nan", "must be a number"),
        ("inf", "must be a number"),
        ("0.7x", "must be a number"),
    ],
)
def test_engine_refuses_a_bad_cap(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=r"QSC_CANARY_CONF_CAP") as raised:
        load_config(engine_env(text))
    assert reason in str(raised.value)


def test_engine_refuses_a_cap_without_a_canary() -> None:
    with pytest.raises(ConfigError, match="QSC_CANARY_CONF_CAP is set without QSC_CANARY_MODEL"):
        load_config({"QSC_CANARY_CONF_CAP": "0.75"})


def test_capped_prediction_keeps_the_raw_confidence() -> None:
    assert capped(Prediction("BUY", 0.9), 0.75) == Prediction("BUY", 0.75, None, 0.9, 0.75)
    assert capped(Prediction("SELL", 0.6), 0.75) == Prediction("SELL", 0.6, None, 0.6, 0.75)
    assert capped(Prediction("BUY", 0.9), None) == Prediction("BUY", 0.9)
    failed = Prediction(inactive_reason="exception_in_predict")
    assert capped(failed, 0.75) is failed


def test_the_vote_uses_the_capped_confidence() -> None:
    weights = {"a": 0.5, "b": 0.5}
    raw = {"a": Prediction("BUY", 0.9), "b": Prediction("SELL", 0.8)}
    assert vote(raw, weights, ("a", "b")).side == "BUY"
    capped_a = {**raw, "a": capped(raw["a"], 0.75)}
    assert vote(capped_a, weights, ("a", "b")).side == "SELL"


def test_engine_publishes_the_capped_canary_with_its_raw_confidence() -> None:
    engine = Engine(load_config(engine_env("0.6")))
    above = 0
    for _ in range(400):
        payload = json.loads(engine.step(0.0, MOMENT).json)
        entry = payload["model_breakdown"]["patchtst"]
        assert list(entry) == ["action", "confidence", "raw_confidence", "confidence_cap", "model"]
        assert entry["confidence_cap"] == 0.6
        assert entry["confidence"] == min(entry["raw_confidence"], 0.6)
        above += entry["raw_confidence"] > 0.6
        for other in ("xgb", "lgbm", "nhits"):
            assert "raw_confidence" not in payload["model_breakdown"][other]
    # Healthy confidences are ~0.52-0.94: a good share is above 0.6 (seeded, wide margin).
    assert 40 < above < 360


def test_engine_without_a_cap_publishes_no_raw_confidence() -> None:
    engine = Engine(load_config(engine_env(None)))
    for _ in range(50):
        entry = json.loads(engine.step(0.0, MOMENT).json)["model_breakdown"]["patchtst"]
        assert set(entry) == {"action", "confidence", "model"}


def test_startup_line_shows_the_cap_on_the_canary_only() -> None:
    lines = startup_lines(load_config(engine_env("0.75")))
    assert "[OK] patchtst agent loaded (weight: 10%) conf_cap=0.75" in lines
    assert "[OK] xgb agent loaded (weight: 28.125%)" in lines
    assert "[OK] patchtst agent loaded (weight: 10%)" in startup_lines(
        load_config(engine_env(None))
    )
