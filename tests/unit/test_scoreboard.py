"""Unit tests for model_safety.judgement.scoreboard: GO / WAIT / NO-GO and their edges."""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_safety.judgement.scoreboard import scoreboard, status_of
from model_safety.judgement.thresholds import Thresholds
from model_safety.telemetry.events import parse_window

N = 400
OPPOSITE = {"BUY": "SELL", "SELL": "BUY"}


def entry(action: str, confidence: float, name: str, shadow: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {"action": action, "confidence": confidence, "model": name}
    if shadow:
        item.update(model=f"{name}_shadow", shadow=True)
    return item


def window_with(agree: int, hard: int, events: int = N, malformed: int = 0):
    """Voter v decides the side; shadow m agrees in ``agree`` events, hard-disagrees in
    ``hard`` (BUY vs SELL) and softly disagrees (HOLD vs BUY/SELL) in the others."""
    payloads = []
    for i in range(events):
        conf = round(0.3 + 0.6 * ((i * 37) % 100) / 99, 4)
        if i < agree:
            side = ("BUY", "SELL", "HOLD")[i % 3]
            mine = side
        elif i < agree + hard:
            side = ("BUY", "SELL")[i % 2]
            mine = OPPOSITE[side]
        else:
            side = ("BUY", "SELL", "HOLD")[i % 3]
            mine = "HOLD" if side != "HOLD" else ("BUY", "SELL")[i % 2]
        breakdown = {"v": entry(side, conf, "v"), "m": entry(mine, conf, "m", shadow=True)}
        payloads.append(
            {
                "symbol": "BTCUSDT",
                "side": side,
                "confidence": 0.6,
                "consensus_count": 1,
                "total_models": 1,
                "timestamp": "2026-01-10T12:00:00.000Z",
                "model_breakdown": breakdown,
            }
        )
    entries = [(f"{i + 1}-0", json.dumps(p)) for i, p in enumerate(payloads)]
    entries += [(f"{events + i + 1}-0", "oops") for i in range(malformed)]
    return parse_window(entries)


def status(window) -> dict[str, Any]:
    return scoreboard(window)["models"]["m"]


@pytest.mark.parametrize(
    ("agree", "expected"),
    [(218, "WAIT"), (220, "GO"), (320, "GO"), (322, "WAIT")],
)
def test_agreement_edges(agree: int, expected: str) -> None:
    # 220 / 400 = 55.0 %, 320 / 400 = 80.0 %: both inclusive
    result = status(window_with(agree, 20))
    assert result["passed"] is True
    assert result["status"] == expected
    assert result["agreement"] == agree / N


def test_wait_reasons_name_the_value_and_the_range() -> None:
    assert status(window_with(218, 20))["reasons"] == ["agreement 54.5% outside [55.0%, 80.0%]"]
    assert status(window_with(322, 20))["reasons"] == ["agreement 80.5% outside [55.0%, 80.0%]"]


@pytest.mark.parametrize(("hard", "expected"), [(78, "GO"), (79, "GO"), (80, "WAIT")])
def test_hard_disagreement_edges(hard: int, expected: str) -> None:
    # 80 / 400 = 20.0 % is not < 20 %
    result = status(window_with(240, hard))
    assert result["hard_disagree"] == hard / N
    assert result["status"] == expected
    if expected == "WAIT":
        assert result["reasons"] == ["hard disagreement 20.0% >= 20.0%"]


def test_gate_failure_is_no_go() -> None:
    board = scoreboard(window_with(240, 20, events=199))
    model = board["models"]["m"]
    assert model["status"] == "NO-GO"
    assert model["passed"] is False
    assert "window: 199 events < 200 required (canary)" in model["blockers"]
    assert "199 events < 200 required (canary)" in model["blockers"]


def test_malformed_events_make_every_model_no_go() -> None:
    board = scoreboard(window_with(240, 20, malformed=1))
    assert {m["status"] for m in board["models"].values()} == {"NO-GO"}
    assert board["blockers"] == ["window: 1 malformed event (first 401-0: unparsable JSON)"]
    assert board["counts"] == {"GO": 0, "WAIT": 0, "NO-GO": 2}


def test_every_model_is_listed_with_its_shadow_flag() -> None:
    board = scoreboard(window_with(240, 20))
    assert set(board["models"]) == {"v", "m"}
    assert board["models"]["m"]["shadow"] is True
    assert board["models"]["v"]["shadow"] is False
    # v agrees with itself: 100 % is outside [55 %, 80 %]
    assert board["models"]["v"]["status"] == "WAIT"
    assert board["exit_code"] == 0
    assert board["mode"] == "canary"
    assert json.dumps(board, allow_nan=False)


def test_collection_mode_needs_fewer_events() -> None:
    window = window_with(100, 10, events=150)
    assert scoreboard(window)["models"]["m"]["status"] == "NO-GO"
    assert scoreboard(window, mode="collection")["models"]["m"]["status"] == "GO"


def test_empty_window() -> None:
    board = scoreboard(parse_window([]))
    assert board["models"] == {}
    assert board["blockers"] == ["window: empty (no events)"]
    assert board["exit_code"] == 0


def test_status_of() -> None:
    t = Thresholds()
    assert status_of(True, 0.6, 0.1, t) == ("GO", [])
    assert status_of(False, 0.6, 0.1, t) == ("NO-GO", ["gate failed"])
    assert status_of(True, None, None, t)[0] == "NO-GO"
    assert status_of(True, 0.9, 0.25, t) == (
        "WAIT",
        ["agreement 90.0% outside [55.0%, 80.0%]", "hard disagreement 25.0% >= 20.0%"],
    )
