"""Unit tests for model_safety.telemetry.features: NaN, Inf, flatline, missing, duplicates."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from model_safety.telemetry.events import parse_window
from model_safety.telemetry.features import duplicate_share, feature_sanity


def payload(features: dict[str, float] | None) -> str:
    event: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "side": "HOLD",
        "confidence": 0.5,
        "consensus_count": 0,
        "total_models": 0,
        "timestamp": "2026-01-10T12:00:00.000Z",
        "model_breakdown": {},
    }
    if features is not None:
        event["features"] = features
    return json.dumps(event, allow_nan=True)


def window_of(rows: list[dict[str, float] | None]):
    return parse_window([(f"{i + 1}-0", payload(row)) for i, row in enumerate(rows)])


def moving(i: int) -> dict[str, float]:
    return {"a": 0.001 * i, "b": 10.0 + (i % 7) * 0.25}


def test_healthy_features() -> None:
    result = feature_sanity(window_of([moving(i) for i in range(100)]))
    assert (result["problems"], result["warnings"], result["exit_code"]) == ([], [], 0)
    a = result["features"]["a"]
    assert (a["nan"], a["inf"], a["count"], a["missing"], a["flatline"]) == (0, 0, 100, 0, False)
    assert a["min"] == 0.0
    assert a["max"] == pytest.approx(0.099)
    assert a["mean"] == pytest.approx(0.0495)
    assert a["std"] == pytest.approx(
        (sum((0.001 * i - 0.0495) ** 2 for i in range(100)) / 100) ** 0.5
    )
    assert result["duplicates"]["share"] == 0.0
    assert result["duplicates"]["compared"] == 50
    assert json.dumps(result, allow_nan=False)


def test_nan_values_fail() -> None:
    rows = [moving(i) for i in range(20)]
    rows[3] = {"a": math.nan, "b": 1.0}
    result = feature_sanity(window_of(rows))
    assert result["problems"] == ["a: 1 NaN values of 20"]
    assert result["features"]["a"]["finite"] == 19
    assert result["exit_code"] == 2


def test_inf_values_fail() -> None:
    rows = [moving(i) for i in range(20)]
    rows[4] = {"a": 1.0, "b": -math.inf}
    result = feature_sanity(window_of(rows))
    assert result["problems"] == ["b: 1 Inf values of 20"]
    assert result["exit_code"] == 2


def test_all_nan_feature_has_no_statistics() -> None:
    result = feature_sanity(window_of([{"a": math.nan} for _ in range(5)]))
    a = result["features"]["a"]
    assert (a["mean"], a["std"], a["min"], a["max"], a["flatline"]) == (None,) * 5
    assert result["problems"] == ["a: 5 NaN values of 5"]


@pytest.mark.parametrize(("step", "flat"), [(0.0, True), (1e-7, True), (1e-5, False)])
def test_flatline(step: float, flat: bool) -> None:
    rows = [{"a": 5.0 + step * (i % 2), "b": float(i)} for i in range(60)]
    result = feature_sanity(window_of(rows))
    assert result["features"]["a"]["flatline"] is flat
    assert (result["exit_code"] == 2) is flat
    if flat:
        assert result["problems"][0].startswith("a: flatline: std ")
        assert result["problems"][0].endswith(" < 1e-06")


def test_missing_features_fail() -> None:
    rows: list[dict[str, float] | None] = [moving(i) for i in range(10)]
    rows[2] = {"a": 1.0}
    rows[5] = None
    result = feature_sanity(window_of(rows))
    assert result["problems"] == [
        "window: 1 events carry no features",
        "b: missing in 1 events that carry features",
    ]
    assert result["features"]["b"]["count"] == 8
    assert result["events_without_features"] == 1


def test_no_features_and_empty_windows_fail() -> None:
    none = feature_sanity(window_of([None, None]))
    assert (none["problems"], none["exit_code"]) == (["window: no features in any event"], 2)
    empty = feature_sanity(parse_window([]))
    assert (empty["problems"], empty["exit_code"]) == (["window: no valid events"], 2)


def test_malformed_events_fail() -> None:
    entries = [(f"{i + 1}-0", payload(moving(i))) for i in range(10)]
    entries.append(("11-0", "{"))
    result = feature_sanity(parse_window(entries))
    assert result["problems"] == [
        "window: 1 malformed events, their features are unknown (first 11-0: unparsable JSON)"
    ]
    assert result["exit_code"] == 2


def duplicates_rows(repeats: int, total: int = 120) -> list[dict[str, float]]:
    """The last 50 rows hold ``repeats`` copies of one vector beyond its first occurrence."""
    rows = [moving(i) for i in range(total)]
    for k in range(repeats):
        rows[total - 1 - k] = dict(rows[total - 50])
    return rows


@pytest.mark.parametrize(("repeats", "warned"), [(25, False), (26, True)])
def test_duplicate_warning_above_50_percent_of_the_last_50(repeats: int, warned: bool) -> None:
    result = feature_sanity(window_of(duplicates_rows(repeats)))
    assert result["duplicates"]["share"] == pytest.approx(repeats / 50)
    assert bool(result["warnings"]) is warned
    assert result["exit_code"] == 0  # a warning only
    if warned:
        assert result["warnings"] == [
            "duplicate feature vectors: 52.0% of the last 50 events > 50.0%"
        ]


def test_duplicates_are_compared_rounded_to_4_decimals() -> None:
    rows = [{"a": 1.0 + (i % 2) * 0.00004, "b": 2.0} for i in range(50)]
    share, compared = duplicate_share(window_of(rows), 50)
    assert (share, compared) == (1 - 1 / 50, 50)
    rows = [{"a": 1.0 + (i % 2) * 0.0001, "b": 2.0} for i in range(50)]
    assert duplicate_share(window_of(rows), 50)[0] == 1 - 2 / 50
    rows = [{"a": -0.00001 if i % 2 else 0.00001} for i in range(10)]
    assert duplicate_share(window_of(rows), 50) == (0.9, 10)


def test_duplicates_only_look_at_the_last_events() -> None:
    rows = [{"a": 1.0} for _ in range(100)] + [moving(i) for i in range(50)]
    assert duplicate_share(window_of(rows), 50) == (0.0, 50)


def test_engine_flatline_and_nan_modes() -> None:
    from datetime import UTC, datetime

    from ai_engine.config import load_config
    from ai_engine.engine import Engine

    moment = datetime(2026, 1, 10, tzinfo=UTC)
    for mode, expected in (("flatline", "flatline"), ("nan", "NaN"), ("healthy", None)):
        engine = Engine(load_config({"ENGINE_SEED": "3", "SIM_FEATURES": mode}))
        entries = [(f"{i + 1}-0", engine.step(0.0, moment).json) for i in range(120)]
        result = feature_sanity(parse_window(entries))
        if expected is None:
            assert (result["problems"], result["warnings"], result["exit_code"]) == ([], [], 0)
        else:
            assert result["exit_code"] == 2
            assert all(expected in p for p in result["problems"])
            assert len(result["problems"]) == 4
    flat = Engine(load_config({"ENGINE_SEED": "3", "SIM_FEATURES": "flatline"}))
    entries = [(f"{i + 1}-0", flat.step(0.0, moment).json) for i in range(120)]
    assert feature_sanity(parse_window(entries))["warnings"] == [
        "duplicate feature vectors: 98.0% of the last 50 events > 50.0%"
    ]
