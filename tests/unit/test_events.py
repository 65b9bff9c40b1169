"""Unit tests for model_safety.telemetry.events: fail-closed parsing into a columnar EventWindow."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from ai_engine.config import load_config
from ai_engine.engine import Engine
from ai_engine.models import BEHAVIOURS
from model_safety.telemetry.events import (
    HOLD,
    MAX_FEATURES,
    MAX_MODELS,
    NO_ACTION,
    SELL,
    VOTER_REASON,
    WindowBuilder,
    empty_window,
    parse_window,
)

START = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)


def good_event(**top: Any) -> dict[str, Any]:
    """A valid DESIGN event: xgb/lgbm/nhits vote, patchtst is shadow."""
    event = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "confidence": 0.64,
        "price": 43125.5,
        "consensus_count": 2,
        "total_models": 3,
        "timestamp": "2026-01-10T12:00:00.123Z",
        "model_breakdown": {
            "xgb": {"action": "BUY", "confidence": 0.71, "model": "xgb"},
            "lgbm": {"action": "SELL", "confidence": 0.55, "model": "lgbm"},
            "nhits": {"action": "BUY", "confidence": 0.60, "model": "nhits"},
            "patchtst": {
                "action": "BUY",
                "confidence": 0.62,
                "model": "patchtst_shadow",
                "shadow": True,
            },
        },
        "features": {"atr_value": 0.0123, "volatility_factor": 1.02},
    }
    event.update(top)
    return event


def encode(event: Any) -> bytes:
    return json.dumps(event, allow_nan=True).encode()


def one(payload: Any, stream_id: Any = b"1700000000000-0"):
    """Parse a single entry; payload may be an event dict, bytes, str or None."""
    if isinstance(payload, dict | list):
        payload = encode(payload)
    return parse_window([(stream_id, payload)])


def reason_of(payload: Any, stream_id: Any = b"1700000000000-0") -> str:
    window = one(payload, stream_id)
    assert window.n == 0, "expected a malformed entry"
    assert len(window.malformed) == 1
    return window.malformed[0].reason


def mutated(path: tuple, value: Any = None, delete: bool = False) -> dict[str, Any]:
    """good_event() with the value at ``path`` replaced (or deleted)."""
    event = copy.deepcopy(good_event())
    target = event
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return event


# -- valid events ---------------------------------------------------------------------------


def test_a_valid_event_becomes_columns() -> None:
    window = one(good_event())
    assert (window.n, window.total, window.malformed) == (1, 1, [])
    assert window.side.tolist() == [0]
    assert window.confidence.tolist() == [0.64]
    assert window.consensus_count.tolist() == [2]
    assert window.total_models.tolist() == [3]
    expected_ms = int(datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC).timestamp()) * 1000 + 123
    assert window.timestamp_ms.tolist() == [expected_ms]
    assert window.stream_ms.tolist() == [1700000000000]
    assert window.symbols == ["BTCUSDT"]
    assert window.symbol.tolist() == [0]
    assert window.price.tolist() == [43125.5]
    assert window.payload_bytes.tolist() == [len(encode(good_event()))]
    assert list(window.models) == ["xgb", "lgbm", "nhits", "patchtst"]
    lgbm = window.models["lgbm"]
    assert lgbm.action.tolist() == [SELL]
    assert lgbm.confidence.tolist() == [0.55]
    assert lgbm.present.tolist() == [True]
    assert lgbm.shadow.tolist() == [False]
    assert window.models["patchtst"].shadow.tolist() == [True]
    assert window.features["atr_value"].tolist() == [0.0123]
    assert window.feature_present["volatility_factor"].tolist() == [True]
    assert (window.first_id, window.last_id) == ("1700000000000-0", "1700000000000-0")


def test_column_dtypes() -> None:
    window = one(good_event())
    assert window.side.dtype == np.int8
    assert window.confidence.dtype == np.float64
    assert window.consensus_count.dtype == np.int16
    assert window.total_models.dtype == np.int16
    assert window.timestamp_ms.dtype == np.int64
    assert window.stream_ms.dtype == np.int64
    assert window.symbol.dtype == np.int32
    assert window.price.dtype == np.float64
    assert window.payload_bytes.dtype == np.int32
    xgb = window.models["xgb"]
    assert xgb.action.dtype == np.int8
    assert xgb.confidence.dtype == np.float64
    assert xgb.present.dtype == np.bool_
    assert window.features["atr_value"].dtype == np.float64


def test_inactive_model_entry() -> None:
    event = good_event(consensus_count=1, total_models=2)
    event["model_breakdown"]["xgb"] = {
        "inactive": True,
        "inactive_reason": "exception_in_predict",
        "model": "xgb",
    }
    window = one(event)
    assert window.malformed == []
    xgb = window.models["xgb"]
    assert xgb.inactive.tolist() == [True]
    assert xgb.present.tolist() == [True]
    assert xgb.action.tolist() == [NO_ACTION]
    assert math.isnan(xgb.confidence[0])
    assert xgb.active.tolist() == [False]


def test_optional_price_and_features_and_extra_keys() -> None:
    event = good_event(extra={"anything": [1, 2]})
    del event["price"]
    del event["features"]
    window = one(event)
    assert window.malformed == []
    assert math.isnan(window.price[0])
    assert window.features == {}


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-01-10T12:00:00.123Z", datetime(2026, 1, 10, 12, 0, 0, 123000, tzinfo=UTC)),
        ("2026-01-10T12:00:00Z", datetime(2026, 1, 10, 12, tzinfo=UTC)),
        ("2026-01-10T14:00:00.5+02:00", datetime(2026, 1, 10, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-01-10T12:00:00.000001+00:00", datetime(2026, 1, 10, 12, tzinfo=UTC)),
    ],
)
def test_timestamps(stamp: str, expected: datetime) -> None:
    window = one(good_event(timestamp=stamp))
    assert window.malformed == []
    assert window.timestamp_ms.tolist() == [round(expected.timestamp() * 1000)]


def test_whitespace_around_json_and_str_inputs_are_accepted() -> None:
    text = "  " + json.dumps(good_event()) + "\n"
    window = parse_window([("1700000000000-5", text)])
    assert (window.n, window.malformed) == (1, [])
    assert window.payload_bytes.tolist() == [len(text)]


def test_payload_size_counts_utf8_bytes() -> None:
    event = good_event(symbol="ÄÖÜ")
    text = json.dumps(event, ensure_ascii=False)
    window = parse_window([("1-0", text)])
    assert window.symbols == ["ÄÖÜ"]
    assert window.payload_bytes.tolist() == [len(text.encode())]


def test_nan_features_are_not_malformed() -> None:
    window = one(good_event(features={"atr_value": math.nan, "x": math.inf}))
    assert window.malformed == []
    assert math.isnan(window.features["atr_value"][0])
    assert math.isinf(window.features["x"][0])


def test_int_values_are_accepted_as_numbers() -> None:
    event = good_event(confidence=1, price=43000, features={"f": 3})
    event["model_breakdown"]["xgb"]["confidence"] = 0
    window = one(event)
    assert window.malformed == []
    assert window.confidence.tolist() == [1.0]
    assert window.price.tolist() == [43000.0]
    assert window.models["xgb"].confidence.tolist() == [0.0]


def test_inactive_false_is_an_active_entry() -> None:
    event = good_event()
    event["model_breakdown"]["xgb"]["inactive"] = False
    assert one(event).malformed == []


def test_empty_model_breakdown_with_zero_counts_is_valid() -> None:
    window = one(good_event(model_breakdown={}, consensus_count=0, total_models=0))
    assert (window.n, window.models) == (1, {})


# -- malformed entries: one per kind, with the reason ----------------------------------------

MALFORMED = [
    ("no payload field", None, "missing field payload"),
    ("invalid UTF-8", b'{"side": "\xff"}', "payload is not valid UTF-8"),
    ("unparsable JSON", b'{"side": "BUY",', "unparsable JSON"),
    ("trailing garbage", encode(good_event()) + b"x", "unparsable JSON"),
    ("two JSON values", encode(good_event()) + b" {}", "unparsable JSON"),
    ("deep nesting", b"[" * 200_000, "unparsable JSON"),
    ("huge integer literal", b'{"side": ' + b"9" * 5000 + b"}", "unparsable JSON"),
    ("control character in string", b'{"symbol": "a\nb"}', "unparsable JSON"),
    ("leading zero", b'{"confidence": 01}', "unparsable JSON"),
    ("byte order mark", b"\xef\xbb\xbf" + encode(good_event()), "unparsable JSON"),
    ("not an object", encode([good_event()]), "payload is not a JSON object"),
    ("bare string", b'"BUY"', "payload is not a JSON object"),
    ("missing side", mutated(("side",), delete=True), "missing field side"),
    ("unknown side", mutated(("side",), "UP"), "unknown side 'UP' (not BUY, SELL or HOLD)"),
    ("lower-case side", mutated(("side",), "buy"), "unknown side 'buy'"),
    ("side not a string", mutated(("side",), 1), "unknown side 1"),
    ("missing confidence", mutated(("confidence",), delete=True), "missing field confidence"),
    ("confidence > 1", mutated(("confidence",), 1.2), "confidence 1.2 not in [0, 1]"),
    ("confidence < 0", mutated(("confidence",), -0.1), "confidence -0.1 not in [0, 1]"),
    ("confidence NaN", mutated(("confidence",), math.nan), "confidence nan is not finite"),
    ("confidence Inf", mutated(("confidence",), math.inf), "confidence inf is not finite"),
    ("confidence bool", mutated(("confidence",), True), "confidence True is not a number"),
    ("confidence text", mutated(("confidence",), "0.5"), "confidence '0.5' is not a number"),
    ("confidence null", mutated(("confidence",), None), "confidence None is not a number"),
    (
        "missing consensus_count",
        mutated(("consensus_count",), delete=True),
        "missing field consensus_count",
    ),
    (
        "negative consensus_count",
        mutated(("consensus_count",), -1),
        "consensus_count -1 is not an integer >= 0",
    ),
    (
        "float consensus_count",
        mutated(("consensus_count",), 2.0),
        "consensus_count 2.0 is not an integer >= 0",
    ),
    (
        "bool total_models",
        mutated(("total_models",), True),
        "total_models True is not an integer >= 0",
    ),
    ("missing total_models", mutated(("total_models",), delete=True), "missing field total_models"),
    (
        "total_models too high",
        mutated(("total_models",), 5),
        "total_models 5 != 3 voting models (active, not shadow)",
    ),
    (
        "total_models too low",
        mutated(("total_models",), 2),
        "total_models 2 != 3 voting models (active, not shadow)",
    ),
    (
        "consensus_count wrong",
        mutated(("consensus_count",), 1),
        "consensus_count 1 != 2 voting models agreeing with side BUY",
    ),
    ("missing timestamp", mutated(("timestamp",), delete=True), "missing field timestamp"),
    ("timestamp not text", mutated(("timestamp",), 1700000000), "timestamp 1700000000 is not a"),
    ("timestamp junk", mutated(("timestamp",), "yesterday"), "timestamp 'yesterday' is not ISO"),
    (
        "timestamp without zone",
        mutated(("timestamp",), "2026-01-10T12:00:00.123"),
        "is not ISO-8601 with a time zone",
    ),
    (
        "timestamp impossible date",
        mutated(("timestamp",), "2026-02-30T12:00:00.000Z"),
        "timestamp '2026-02-30T12:00:00.000Z' is not ISO-8601",
    ),
    (
        "timestamp 24h",
        mutated(("timestamp",), "2026-01-10T24:00:00.000Z"),
        "is not ISO-8601 with a time zone",
    ),
    ("missing symbol", mutated(("symbol",), delete=True), "missing field symbol"),
    ("empty symbol", mutated(("symbol",), ""), "symbol '' is not a non-empty string"),
    ("symbol not text", mutated(("symbol",), 5), "symbol 5 is not a non-empty string"),
    ("price NaN", mutated(("price",), math.nan), "price nan is not a finite number > 0"),
    ("price Inf", mutated(("price",), math.inf), "price inf is not a finite number > 0"),
    ("price negative", mutated(("price",), -1.0), "price -1.0 is not a finite number > 0"),
    ("price zero", mutated(("price",), 0), "price 0 is not a finite number > 0"),
    ("price text", mutated(("price",), "1"), "price '1' is not a finite number > 0"),
    ("price null", mutated(("price",), None), "price None is not a finite number > 0"),
    ("price huge int", mutated(("price",), 10**400), "is not a finite number > 0"),
    (
        "missing model_breakdown",
        mutated(("model_breakdown",), delete=True),
        "missing field model_breakdown",
    ),
    ("model_breakdown list", mutated(("model_breakdown",), []), "model_breakdown is not an object"),
    (
        "model entry not an object",
        mutated(("model_breakdown", "xgb"), "BUY"),
        "model xgb: entry is not an object",
    ),
    (
        "model entry without model",
        mutated(("model_breakdown", "xgb", "model"), delete=True),
        "model xgb: missing field model",
    ),
    (
        "model entry model not text",
        mutated(("model_breakdown", "xgb", "model"), 1),
        "model xgb: model 1 is not a string",
    ),
    (
        "unknown model action",
        mutated(("model_breakdown", "xgb", "action"), "STRONG_BUY"),
        "model xgb: unknown action 'STRONG_BUY'",
    ),
    (
        "missing model action",
        mutated(("model_breakdown", "xgb", "action"), delete=True),
        "model xgb: missing field action",
    ),
    (
        "model confidence > 1",
        mutated(("model_breakdown", "xgb", "confidence"), 1.5),
        "model xgb: confidence 1.5 not in [0, 1]",
    ),
    (
        "model confidence NaN",
        mutated(("model_breakdown", "nhits", "confidence"), math.nan),
        "model nhits: confidence nan is not finite",
    ),
    (
        "model confidence missing",
        mutated(("model_breakdown", "lgbm", "confidence"), delete=True),
        "model lgbm: missing field confidence",
    ),
    (
        "model confidence bool",
        mutated(("model_breakdown", "lgbm", "confidence"), False),
        "model lgbm: confidence False is not a number",
    ),
    (
        "shadow not a boolean",
        mutated(("model_breakdown", "patchtst", "shadow"), "true"),
        "model patchtst: shadow 'true' is not a boolean",
    ),
    (
        "inactive not a boolean",
        mutated(("model_breakdown", "xgb", "inactive"), 1),
        "model xgb: inactive 1 is not a boolean",
    ),
    (
        "invalid model name",
        mutated(("model_breakdown", "XGB"), {"action": "BUY", "confidence": 0.5, "model": "x"}),
        "invalid model name 'XGB'",
    ),
    ("features not an object", mutated(("features",), [1.0]), "features is not an object"),
    (
        "feature text",
        mutated(("features", "atr_value"), "0.1"),
        "feature 'atr_value': '0.1' is not a number",
    ),
    (
        "feature null",
        mutated(("features", "atr_value"), None),
        "feature 'atr_value': None is not a number",
    ),
    (
        "feature bool",
        mutated(("features", "atr_value"), True),
        "feature 'atr_value': True is not a number",
    ),
    ("feature huge int", mutated(("features", "f"), 10**400), "feature 'f': "),
    ("invalid feature name", mutated(("features", "a b"), 1.0), "invalid feature name 'a b'"),
    (
        "feature name with a trailing newline",
        mutated(("features", "atr_value\n"), 1.0),
        "invalid feature name 'atr_value\\n'",
    ),
]


@pytest.mark.parametrize(
    ("payload", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_payloads(payload: Any, reason: str) -> None:
    assert reason in reason_of(payload)


@pytest.mark.parametrize(
    "stream_id",
    [b"1700000000000", b"abc-0", b"1-", b"-1", b"1-0-0", "\uff11-0", b"1" * 19 + b"-0", 5, None],
)
def test_invalid_stream_ids(stream_id: Any) -> None:
    assert reason_of(good_event(), stream_id).startswith("invalid stream id")


def test_payload_of_another_type() -> None:
    assert reason_of(bytearray(encode(good_event()))) == "payload is not bytes or text"


def test_inactive_entry_with_an_action_or_a_confidence() -> None:
    for extra in ({"action": "BUY"}, {"confidence": 0.5}):
        event = good_event(consensus_count=1, total_models=2)
        event["model_breakdown"]["xgb"] = {
            "inactive": True,
            "inactive_reason": "degenerate_output",
            "model": "xgb",
            **extra,
        }
        assert reason_of(event) == "model xgb: inactive with action or confidence"


@pytest.mark.parametrize("reason", [None, "", 5])
def test_inactive_entry_without_a_reason(reason: Any) -> None:
    event = good_event(consensus_count=1, total_models=2)
    entry: dict[str, Any] = {"inactive": True, "model": "xgb"}
    if reason is not None:
        entry["inactive_reason"] = reason
    event["model_breakdown"]["xgb"] = entry
    assert reason_of(event) == "model xgb: inactive without inactive_reason"


@pytest.mark.parametrize(
    ("consensus", "total"),
    [(3, 4), (2, 4), (3, 3)],
)
def test_shadow_model_counted_as_voter(consensus: int, total: int) -> None:
    window = one(good_event(consensus_count=consensus, total_models=total))
    (bad,) = window.malformed
    assert bad.reason.startswith(f"{VOTER_REASON} (patchtst): ")
    assert bad.models == ("patchtst",)


def test_inconsistent_counts_without_shadow_are_not_called_voter_problems() -> None:
    event = good_event(consensus_count=3, total_models=4)
    del event["model_breakdown"]["patchtst"]
    assert reason_of(event) == "total_models 4 != 3 voting models (active, not shadow)"


def test_long_values_are_cut_in_reasons() -> None:
    reason = reason_of(mutated(("side",), "X" * 10_000))
    assert len(reason) < 100
    assert "..." in reason


def test_too_many_models_in_a_window() -> None:
    def event_with(name: str) -> dict[str, Any]:
        return good_event(
            model_breakdown={name: {"action": "BUY", "confidence": 0.5, "model": name}},
            consensus_count=1,
            total_models=1,
        )

    entries = [(f"{i + 1}-0", encode(event_with(f"m{i}"))) for i in range(MAX_MODELS + 1)]
    window = parse_window(entries)
    assert window.n == MAX_MODELS
    assert [m.reason for m in window.malformed] == [
        f"more than {MAX_MODELS} distinct models in the window"
    ]


def test_too_many_features_in_a_window() -> None:
    features = {f"f{i}": 1.0 for i in range(MAX_FEATURES + 1)}
    reason = reason_of(good_event(features=features))
    assert reason == f"more than {MAX_FEATURES} distinct features in the window"


def test_malformed_entries_keep_stream_order_and_ids() -> None:
    entries = [
        (b"1-0", encode(good_event())),
        (b"2-0", b"junk"),
        (b"3-0", encode(good_event())),
        (b"4-0", None),
    ]
    window = parse_window(entries)
    assert window.n == 2
    assert [(m.stream_id, m.reason) for m in window.malformed] == [
        ("2-0", "unparsable JSON"),
        ("4-0", "missing field payload"),
    ]
    assert window.stream_ms.tolist() == [1, 3]
    assert (window.first_id, window.last_id, window.total) == ("1-0", "4-0", 4)


def test_window_bounds_include_malformed_entries() -> None:
    window = parse_window([(b"7-1", b"junk"), (b"8-0", encode(good_event())), (b"9-0", b"x")])
    assert (window.first_id, window.last_id) == ("7-1", "9-0")


def test_empty_window() -> None:
    window = empty_window()
    assert (window.n, window.total, window.first_id, window.last_id) == (0, 0, None, None)
    assert window.side.shape == (0,)
    assert parse_window([]).n == 0


# -- pages ---------------------------------------------------------------------------------


def paged_entries() -> list[tuple[bytes, bytes]]:
    entries = []
    for i in range(30):
        event = good_event(symbol=f"S{i % 4}", price=100.0 + i)
        if i < 10:  # lgbm and the features only show up later in the stream
            del event["model_breakdown"]["lgbm"]
            event["consensus_count"], event["total_models"] = 2, 2
            event["features"] = {"late": 1.0} if i == 5 else {}
        if i == 17:
            entries.append((f"{1000 + i}-1".encode(), b"not json"))
        entries.append((f"{1000 + i}-0".encode(), encode(event)))
    return entries


def assert_same_window(a, b) -> None:
    for name in (
        "side",
        "confidence",
        "consensus_count",
        "total_models",
        "timestamp_ms",
        "stream_ms",
        "symbol",
        "price",
        "payload_bytes",
    ):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert a.symbols == b.symbols
    assert list(a.models) == list(b.models)
    for name, cols in a.models.items():
        other = b.models[name]
        for field in ("present", "inactive", "shadow", "action", "confidence"):
            assert np.array_equal(getattr(cols, field), getattr(other, field), equal_nan=True)
    assert list(a.features) == list(b.features)
    for name, values in a.features.items():
        assert np.array_equal(values, b.features[name], equal_nan=True)
        assert np.array_equal(a.feature_present[name], b.feature_present[name])
    assert a.malformed == b.malformed
    assert (a.first_id, a.last_id) == (b.first_id, b.last_id)


def test_pages_give_the_same_window_as_one_page() -> None:
    entries = paged_entries()
    whole = parse_window(entries)
    builder = WindowBuilder()
    for start in range(0, len(entries), 7):
        builder.add(entries[start : start + 7])
    assert_same_window(builder.build(), whole)
    lgbm = whole.models["lgbm"]
    assert lgbm.present.tolist() == [False] * 10 + [True] * 20
    assert lgbm.action[:10].tolist() == [NO_ACTION] * 10
    assert np.isnan(lgbm.confidence[:10]).all()
    assert whole.feature_present["late"].tolist() == [i == 5 for i in range(30)]
    assert whole.feature_present["atr_value"].tolist() == [False] * 10 + [True] * 20
    assert np.isnan(whole.features["atr_value"][:10]).all()
    assert whole.symbols == ["S0", "S1", "S2", "S3"]
    assert len(whole.malformed) == 1


def test_newest_first_pages_build_the_window_oldest_first() -> None:
    entries = paged_entries()
    newest_first = entries[::-1]
    builder = WindowBuilder(newest_first=True)
    for start in range(0, len(newest_first), 8):
        builder.add(newest_first[start : start + 8])
    window = builder.build()
    whole = parse_window(entries)
    assert window.stream_ms.tolist() == whole.stream_ms.tolist()
    assert (window.first_id, window.last_id) == ("1000-0", "1029-0")
    assert window.malformed == whole.malformed
    assert window.models["lgbm"].present.tolist() == whole.models["lgbm"].present.tolist()


def test_builder_goes_on_after_build() -> None:
    entries = paged_entries()
    builder = WindowBuilder()
    builder.add(entries[:12])
    first = builder.build()
    assert first.n == 12
    builder.add(entries[12:])
    assert_same_window(builder.build(), parse_window(entries))


def test_builder_accepts_generators() -> None:
    entries = paged_entries()
    window = parse_window(iter(entries))
    assert window.total == len(entries)


# -- the reference engine ------------------------------------------------------------------


def engine_entries(count: int, **env: str) -> list[tuple[bytes, bytes]]:
    config = load_config({"ENGINE_SEED": "7", **env})
    engine = Engine(config)
    return [
        (
            f"{1_768_000_000_000 + i}-0".encode(),
            engine.step(0.0, START + timedelta(milliseconds=250 * i)).json.encode(),
        )
        for i in range(count)
    ]


ENGINE_CASES = [
    {},
    {"PATCHTST_SHADOW_ONLY": "true"},
    {"PATCHTST_SHADOW_ONLY": "true", "SIM_PATCHTST": "inactive"},
    {"SIM_FEATURES": "nan"},
    {"SIM_FEATURES": "flatline", "ENGINE_SYMBOLS": "BTCUSDT"},
    {f"SIM_{m.upper()}": "inactive" for m in ("xgb", "lgbm", "nhits", "patchtst")},
    *({"SIM_NHITS": behaviour} for behaviour in BEHAVIOURS),
    *({"SIM_PATCHTST": b, "PATCHTST_SHADOW_ONLY": "1"} for b in BEHAVIOURS),
    {"SIM_LGBM": "flaky", "SIM_XGB": "noisy", "PATCHTST_SHADOW_ONLY": "1"},
]


@pytest.mark.parametrize("env", ENGINE_CASES, ids=[str(sorted(e.items())) for e in ENGINE_CASES])
def test_every_engine_event_parses(env: dict[str, str]) -> None:
    entries = engine_entries(150, **env)
    window = parse_window(entries)
    assert window.malformed == []
    assert window.n == 150
    assert list(window.models) == ["xgb", "lgbm", "nhits", "patchtst"]
    payloads = [json.loads(p) for _, p in entries]
    assert window.total_models.tolist() == [p["total_models"] for p in payloads]
    assert window.confidence.tolist() == [p["confidence"] for p in payloads]
    assert window.price.tolist() == [p["price"] for p in payloads]
    for name, cols in window.models.items():
        entries_of = [p["model_breakdown"][name] for p in payloads]
        assert cols.inactive.tolist() == [bool(e.get("inactive")) for e in entries_of]
        assert cols.shadow.tolist() == [bool(e.get("shadow")) for e in entries_of]
        assert cols.action.tolist() == [
            {"BUY": 0, "SELL": 1, "HOLD": 2}.get(e.get("action"), NO_ACTION) for e in entries_of
        ]


def test_engine_events_across_pages_and_timestamps() -> None:
    entries = engine_entries(500, PATCHTST_SHADOW_ONLY="1", SIM_LGBM="flaky")
    builder = WindowBuilder()
    for start in range(0, 500, 64):
        builder.add(entries[start : start + 64])
    window = builder.build()
    assert window.malformed == []
    steps = np.diff(window.timestamp_ms)
    assert steps.tolist() == [250] * 499
    assert window.timestamp_ms[0] == int(START.timestamp() * 1000)
    assert window.models["lgbm"].inactive.any()
    assert window.models["patchtst"].shadow.all()
    assert (window.side == HOLD).any()


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize("merge_pages", [2, 3, 32])
def test_merging_pages_keeps_the_window(
    monkeypatch: pytest.MonkeyPatch, newest_first: bool, merge_pages: int
) -> None:
    monkeypatch.setattr("model_safety.telemetry.events.MERGE_PAGES", merge_pages)
    entries = paged_entries()
    feed = entries[::-1] if newest_first else entries
    builder = WindowBuilder(newest_first=newest_first)
    for start in range(0, len(feed), 2):
        builder.add(feed[start : start + 2])
        if start == 20:
            assert builder.build().total == 22  # a build in the middle changes nothing
    assert_same_window(builder.build(), parse_window(entries))
