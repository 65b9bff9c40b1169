"""Unit tests for the engine simulator's events: DESIGN.md schema, timestamps, features, market."""

import itertools
import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ai_engine.config import load_config
from ai_engine.engine import Engine, benchmark
from ai_engine.ensemble import model_source
from ai_engine.events import format_timestamp
from ai_engine.market import FEATURE_NAMES, Market
from model_safety.telemetry.events import VOTER_REASON, parse_window

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TOP_KEYS = [
    "symbol",
    "side",
    "confidence",
    "price",
    "consensus_count",
    "total_models",
    "timestamp",
    "model_breakdown",
    "features",
]
MOMENT = datetime(2026, 1, 10, 12, 0, 0, 123456, tzinfo=UTC)


def engine_events(count: int, **env: str) -> list[dict[str, Any]]:
    config = load_config({"ENGINE_SEED": "11", **env})
    engine = Engine(config)
    return [json.loads(engine.step(0.0, MOMENT).json) for _ in range(count)]


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_schema(event: dict[str, Any], shadow: set[str], voters: set[str]) -> None:
    assert list(event) == TOP_KEYS
    assert event["symbol"] in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
    assert event["side"] in ("BUY", "SELL", "HOLD")
    assert is_number(event["confidence"])
    assert 0.0 <= event["confidence"] <= 1.0
    assert is_number(event["price"])
    assert event["price"] > 0
    assert type(event["consensus_count"]) is int
    assert type(event["total_models"]) is int
    assert 0 <= event["consensus_count"] <= event["total_models"] <= len(voters)
    assert TIMESTAMP_RE.match(event["timestamp"])
    breakdown = event["model_breakdown"]
    assert list(breakdown) == ["xgb", "lgbm", "nhits", "patchtst"]
    agreeing = total = 0
    for name, entry in breakdown.items():
        tag = {"model": f"{name}_shadow", "shadow": True} if name in shadow else {"model": name}
        if entry.get("inactive"):
            assert entry == {"inactive": True, "inactive_reason": "exception_in_predict", **tag}
            continue
        assert entry == {"action": entry["action"], "confidence": entry["confidence"], **tag}
        assert list(entry)[:2] == ["action", "confidence"]
        assert entry["action"] in ("BUY", "SELL", "HOLD")
        assert is_number(entry["confidence"])
        assert 0.0 <= entry["confidence"] <= 1.0
        if name in voters:
            total += 1
            agreeing += entry["action"] == event["side"]
    assert (event["consensus_count"], event["total_models"]) == (agreeing, total)
    features = event["features"]
    assert list(features) == list(FEATURE_NAMES)
    assert all(is_number(v) and math.isfinite(v) for v in features.values())
    assert features["atr_value"] > 0
    assert features["volatility_factor"] > 0
    assert 0 <= features["rsi_14"] <= 100


def test_events_match_the_design_schema() -> None:
    for event in engine_events(400):
        check_schema(event, shadow=set(), voters={"xgb", "lgbm", "nhits", "patchtst"})
        assert event["timestamp"] == "2026-01-10T12:00:00.123Z"


def test_shadow_and_inactive_models_in_events() -> None:
    events = engine_events(400, PATCHTST_SHADOW_ONLY="true", SIM_LGBM="flaky")
    for event in events:
        check_schema(event, shadow={"patchtst"}, voters={"xgb", "lgbm", "nhits"})
        assert event["total_models"] in (2, 3)
    assert any(e["model_breakdown"]["lgbm"].get("inactive") for e in events)
    assert any(e["total_models"] == 3 for e in events)


def test_inactive_shadow_model_entry() -> None:
    event = engine_events(1, PATCHTST_SHADOW_ONLY="1", SIM_PATCHTST="inactive")[0]
    assert event["model_breakdown"]["patchtst"] == {
        "inactive": True,
        "inactive_reason": "exception_in_predict",
        "model": "patchtst_shadow",
        "shadow": True,
    }


def test_every_voter_inactive_gives_an_empty_hold() -> None:
    env = {f"SIM_{m.upper()}": "inactive" for m in ("xgb", "lgbm", "nhits", "patchtst")}
    for event in engine_events(20, **env):
        assert (event["side"], event["confidence"]) == ("HOLD", 0.0)
        assert (event["consensus_count"], event["total_models"]) == (0, 0)


def test_payload_json_is_compact_and_round_trips() -> None:
    config = load_config({"ENGINE_SEED": "3"})
    event = Engine(config).step(0.0, MOMENT)
    assert " " not in event.json
    assert json.loads(event.json) == event.payload


def stream_entries(payloads: list[str]) -> list[tuple[bytes, bytes]]:
    return [(f"1768046400{i:03d}-0".encode(), text.encode()) for i, text in enumerate(payloads)]


def test_shadow_leak_counts_the_shadow_model_in_the_published_counts_only() -> None:
    env = {"ENGINE_SEED": "11", "PATCHTST_SHADOW_ONLY": "true"}
    honest = Engine(load_config(env))
    leaky = Engine(load_config({**env, "SIM_SHADOW_LEAK": "true"}))
    agreeing_seen = disagreeing_seen = 0
    for _ in range(300):
        clean, leaked = honest.step(0.0, MOMENT), leaky.step(0.0, MOMENT)
        assert leaked.decision == clean.decision
        assert model_source(leaked.decision) == model_source(clean.decision)
        assert "patchtst" not in model_source(leaked.decision)
        shadow = leaked.payload["model_breakdown"]["patchtst"]
        assert shadow == clean.payload["model_breakdown"]["patchtst"]
        assert (shadow["model"], shadow["shadow"]) == ("patchtst_shadow", True)
        agrees = shadow["action"] == leaked.decision.side
        agreeing_seen += agrees
        disagreeing_seen += not agrees
        assert leaked.payload == {
            **clean.payload,
            "consensus_count": clean.payload["consensus_count"] + agrees,
            "total_models": clean.payload["total_models"] + 1,
        }
        assert list(leaked.payload) == TOP_KEYS
    assert agreeing_seen > 50
    assert disagreeing_seen > 50


def test_shadow_leak_does_not_count_an_inactive_shadow_model() -> None:
    env = {"PATCHTST_SHADOW_ONLY": "1", "SIM_PATCHTST": "inactive"}
    for leaked, clean in zip(
        engine_events(50, **env, SIM_SHADOW_LEAK="1"), engine_events(50, **env), strict=True
    ):
        assert leaked == clean


def test_shadow_leak_without_shadow_models_changes_nothing() -> None:
    assert engine_events(50, SIM_SHADOW_LEAK="1") == engine_events(50)


def test_the_gate_parses_a_leaked_event_as_the_shadow_voter_problem() -> None:
    config = load_config(
        {"ENGINE_SEED": "11", "PATCHTST_SHADOW_ONLY": "true", "SIM_SHADOW_LEAK": "true"}
    )
    engine = Engine(config)
    window = parse_window(stream_entries([engine.step(0.0, MOMENT).json for _ in range(40)]))
    assert window.n == 0
    assert len(window.malformed) == 40
    for malformed in window.malformed:
        assert malformed.reason.startswith(f"{VOTER_REASON} (patchtst): total_models 4")
        assert malformed.models == ("patchtst",)


def test_the_gate_accepts_the_same_events_without_the_leak() -> None:
    config = load_config({"ENGINE_SEED": "11", "PATCHTST_SHADOW_ONLY": "true"})
    engine = Engine(config)
    window = parse_window(stream_entries([engine.step(0.0, MOMENT).json for _ in range(40)]))
    assert (window.n, window.malformed) == (40, [])


@pytest.mark.parametrize("pad", [1, 1500, 100_000])
def test_payload_pad_appends_a_last_top_level_field(pad: int) -> None:
    config = load_config({"ENGINE_SEED": "11"})
    padded_config = load_config({"ENGINE_SEED": "11", "SIM_PAYLOAD_PAD": str(pad)})
    clean = Engine(config).step(0.0, MOMENT)
    padded = Engine(padded_config).step(0.0, MOMENT)
    assert list(padded.payload) == [*TOP_KEYS, "pad"]
    assert padded.payload == {**clean.payload, "pad": "x" * pad}
    assert padded.json == clean.json[:-1] + ',"pad":"' + "x" * pad + '"}'
    assert len(padded.json) == len(clean.json) + len(',"pad":""') + pad


def test_payload_pad_zero_adds_no_field() -> None:
    assert engine_events(20, SIM_PAYLOAD_PAD="0") == engine_events(20)


def test_the_gate_accepts_padded_events_and_counts_their_size() -> None:
    env = {"ENGINE_SEED": "11", "PATCHTST_SHADOW_ONLY": "true"}
    clean_engine = Engine(load_config(env))
    padded_engine = Engine(load_config({**env, "SIM_PAYLOAD_PAD": "1500"}))
    clean = [clean_engine.step(0.0, MOMENT).json for _ in range(30)]
    padded = [padded_engine.step(0.0, MOMENT).json for _ in range(30)]
    clean_window = parse_window(stream_entries(clean))
    window = parse_window(stream_entries(padded))
    assert (window.n, window.malformed) == (30, [])
    assert window.payload_bytes.tolist() == [len(text) for text in padded]
    assert all(size >= 1500 for size in window.payload_bytes.tolist())
    assert window.side.tolist() == clean_window.side.tolist()
    assert window.confidence.tolist() == clean_window.confidence.tolist()
    assert window.total_models.tolist() == clean_window.total_models.tolist()


def test_symbols_round_robin() -> None:
    events = engine_events(8, ENGINE_SYMBOLS="BTCUSDT,DOGEUSDT")
    assert [e["symbol"] for e in events] == ["BTCUSDT", "DOGEUSDT"] * 4


def test_engine_is_deterministic_for_a_seed() -> None:
    assert engine_events(50) == engine_events(50)
    assert engine_events(50) != engine_events(50, ENGINE_SEED="12")


def test_flatline_features() -> None:
    events = engine_events(30, SIM_FEATURES="flatline")
    flat = {"atr_value": 0.01, "volatility_factor": 1.0, "rsi_14": 50.0, "return_1": 0.0}
    assert all(e["features"] == flat for e in events)


def reject_constant(token: str) -> float:
    raise ValueError(f"non-JSON constant {token}")


def test_nan_features_are_written_as_bare_nan_tokens() -> None:
    config = load_config({"ENGINE_SEED": "5", "SIM_FEATURES": "nan"})
    event = Engine(config).step(0.0, MOMENT)
    assert '"features":{"atr_value":NaN,"volatility_factor":NaN,"rsi_14":NaN,' in event.json
    assert math.isnan(json.loads(event.json)["features"]["return_1"])
    with pytest.raises(ValueError, match="non-JSON constant NaN"):
        json.loads(event.json, parse_constant=reject_constant)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 1, 10, 12, 0, 0, 123456, tzinfo=UTC), "2026-01-10T12:00:00.123Z"),
        (datetime(2026, 1, 10, 12, 0, 0, 999999, tzinfo=UTC), "2026-01-10T12:00:00.999Z"),
        (datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC), "2026-01-10T12:00:00.000Z"),
        (
            datetime(2026, 1, 10, 14, 30, 5, 7000, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-10T12:30:05.007Z",
        ),
    ],
)
def test_format_timestamp(moment: datetime, text: str) -> None:
    assert format_timestamp(moment) == text


def test_market_paths_are_plausible() -> None:
    market = Market(("BTCUSDT", "ETHUSDT", "SOLUSDT", "XYZUSDT"), 9)
    prices: dict[str, list[float]] = {}
    regimes = set()
    for _ in range(20_000):
        tick = market.next_tick()
        prices.setdefault(tick.symbol, []).append(tick.price)
        regimes.add(tick.regime)
        assert all(math.isfinite(v) for v in tick.features.values())
        assert tick.features["atr_value"] > 0
        assert 0.2 < tick.features["volatility_factor"] < 5
    assert regimes == {"trend_up", "trend_down", "range"}
    starts = {"BTCUSDT": 43000, "ETHUSDT": 2300, "SOLUSDT": 100, "XYZUSDT": 50}
    for symbol, start in starts.items():
        series = prices[symbol]
        assert 0.9 * start < series[0] < 1.1 * start
        assert 0.3 * start < min(series) <= max(series) < 3 * start
        moves = [abs(b / a - 1) for a, b in itertools.pairwise(series)]
        assert 0.0002 < sum(moves) / len(moves) < 0.005


def test_benchmark_reports_a_rate() -> None:
    assert benchmark(load_config({"ENGINE_SEED": "1"}), 300) > 100


def test_shifted_features_are_the_healthy_ones_moved_out_of_distribution() -> None:
    healthy = engine_events(30)
    shifted = engine_events(30, SIM_FEATURES="shifted")
    offsets = {"atr_value": 0.05, "volatility_factor": 2.0, "rsi_14": 100.0, "return_1": 0.05}
    for normal, moved in zip(healthy, shifted, strict=True):
        assert moved["features"] == {
            name: value + offsets[name] for name, value in normal["features"].items()
        }
        assert {k: v for k, v in moved.items() if k != "features"} == {
            k: v for k, v in normal.items() if k != "features"
        }
