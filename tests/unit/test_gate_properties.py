"""Property tests (hypothesis) for the gate: malformed input never passes, and the verdict is
exactly what the rules say, checked against a plain-Python reference implementation."""

from __future__ import annotations

import json
import math
import random
import re
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from ai_engine.config import load_config
from ai_engine.engine import Engine
from model_safety.judgement.gate import evaluate, exit_code
from model_safety.telemetry.events import parse_window
from tests import event_schema

ACTIONS = ("BUY", "SELL", "HOLD")
SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


# -- a window that passes, to be broken ------------------------------------------------------


def engine_entries(count: int) -> list[tuple[bytes, bytes]]:
    engine = Engine(load_config({"ENGINE_SEED": "21", "PATCHTST_SHADOW_ONLY": "1"}))
    start = datetime(2026, 1, 10, tzinfo=UTC)
    return [
        (
            f"{1_768_000_000_000 + i}-0".encode(),
            engine.step(0.0, start + timedelta(milliseconds=300 * i)).json.encode(),
        )
        for i in range(count)
    ]


BASE = engine_entries(220)


def test_the_base_window_passes() -> None:
    result = evaluate(parse_window(BASE))
    assert (result["verdict"], result["blockers"]) == ("PASS", [])


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["BUY", "SELL", "HOLD", "", "2026-01-10T12:00:00Z", "xgb", "patchtst"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
# Every key of the DESIGN event, and one it does not know.
TOP_KEYS = [*sorted(event_schema.TOP_KEYS | event_schema.OPTIONAL_KEYS), "extra"]
ENTRY_KEYS = ["action", "confidence", "model", "shadow", "inactive", "inactive_reason", "x"]


@st.composite
def json_mutation(draw: st.DrawFn, payload: bytes) -> bytes:
    """Replace or delete one value somewhere in the event (top level, a model entry, a
    feature, a model name)."""
    event = json.loads(payload)
    where = draw(
        st.sampled_from(["retype", "top", "entry", "retype", "feature", "rename", "counts"])
    )
    value = draw(JSONISH)
    delete = draw(st.booleans())
    if where == "top":
        key = draw(st.sampled_from(TOP_KEYS))
        if delete:
            event.pop(key, None)
        else:
            event[key] = value
    elif where == "entry":
        name = draw(st.sampled_from(sorted(event["model_breakdown"])))
        key = draw(st.sampled_from(ENTRY_KEYS))
        entry = event["model_breakdown"][name]
        if delete:
            entry.pop(key, None)
        else:
            entry[key] = value
    elif where == "feature":
        key = draw(st.sampled_from([*sorted(event["features"]), "new"]))
        if delete:
            event["features"].pop(key, None)
        else:
            event["features"][key] = value
    elif where == "rename":
        old = draw(st.sampled_from(sorted(event["model_breakdown"])))
        new = draw(st.text(max_size=8) | st.sampled_from(["Xgb", "patchtst", "a" * 33, "ok_2"]))
        event["model_breakdown"][new] = event["model_breakdown"].pop(old)
    elif where == "counts":
        key = draw(st.sampled_from(["consensus_count", "total_models"]))
        event[key] = event[key] + draw(st.sampled_from([-1, 1, 2]))
    else:  # the same value with another JSON type: 2 -> 2.0, 0.5 -> "0.5", true -> 1, ...
        name = draw(st.sampled_from(sorted(event["model_breakdown"])))
        holder, key = draw(
            st.sampled_from(
                [(event, k) for k in ("consensus_count", "total_models", "confidence", "price")]
                + [(event["model_breakdown"][name], k) for k in ("confidence", "shadow")]
            )
        )
        if key in holder:
            old = holder[key]
            convert = draw(st.sampled_from([float, str, int, bool, lambda v: [v]]))
            holder[key] = convert(old)
    return json.dumps(event, allow_nan=True).encode()


@st.composite
def byte_mutation(draw: st.DrawFn, payload: bytes) -> bytes:
    kind = draw(st.sampled_from(["replace", "flip", "delete", "insert", "truncate"]))
    if kind == "replace":
        return draw(st.binary(max_size=80))
    at = draw(st.integers(0, len(payload) - 1))
    if kind == "flip":
        return payload[:at] + bytes([draw(st.integers(0, 255))]) + payload[at + 1 :]
    if kind == "delete":
        return payload[:at] + payload[at + 1 :]
    if kind == "insert":
        return payload[:at] + draw(st.binary(min_size=1, max_size=4)) + payload[at:]
    return payload[:at]


@st.composite
def mutated_entries(draw: st.DrawFn) -> tuple[list[tuple[Any, Any]], list[int]]:
    entries: list[tuple[Any, Any]] = list(BASE)
    positions = draw(st.lists(st.integers(0, len(BASE) - 1), min_size=1, max_size=12, unique=True))
    for at in positions:
        stream_id, payload = entries[at]
        how = draw(st.sampled_from(["json", "json", "json", "bytes", "id", "none"]))
        if how == "json":
            entries[at] = (stream_id, draw(json_mutation(payload)))
        elif how == "bytes":
            entries[at] = (stream_id, draw(byte_mutation(payload)))
        elif how == "id":
            entries[at] = (draw(st.binary(max_size=25) | st.text(max_size=25)), payload)
        else:
            entries[at] = (stream_id, None)
    return entries, positions


# -- an independent, plain reference of "valid event" ----------------------------------------

ID_RE = re.compile(r"[0-9]{1,18}-[0-9]+")
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
FEATURE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_confidence(value: Any) -> bool:
    return is_number(value) and 0 <= value <= 1  # NaN and +-Inf fail the comparison


def reference_valid(stream_id: Any, payload: Any) -> bool:
    if isinstance(stream_id, bytes):
        stream_id = stream_id.decode("ascii", "replace")
    if not isinstance(stream_id, str) or not ID_RE.fullmatch(stream_id):
        return False
    if not isinstance(payload, bytes | str):
        return False
    try:
        text = payload.decode() if isinstance(payload, bytes) else payload
        event = json.loads(text)
    except (ValueError, RecursionError):
        return False
    if not isinstance(event, dict):
        return False
    if event.get("side") not in ACTIONS or not isinstance(event.get("side"), str):
        return False
    if not is_confidence(event.get("confidence")):
        return False
    for key in ("consensus_count", "total_models"):
        if type(event.get(key)) is not int or event[key] < 0:
            return False
    stamp = event.get("timestamp")
    if not isinstance(stamp, str):
        return False
    try:
        moment = datetime.fromisoformat(stamp[:-1] + "+00:00" if stamp.endswith("Z") else stamp)
    except ValueError:
        return False
    if moment.tzinfo is None:
        return False
    if not isinstance(event.get("symbol"), str) or not event["symbol"]:
        return False
    if "price" in event:
        price = event["price"]
        if not is_number(price):
            return False
        try:
            if not (math.isfinite(float(price)) and price > 0):
                return False
        except OverflowError:
            return False
    breakdown = event.get("model_breakdown")
    if not isinstance(breakdown, dict):
        return False
    voting = agreeing = 0
    for name, entry in breakdown.items():
        if not NAME_RE.fullmatch(name) or not isinstance(entry, dict):
            return False
        if not isinstance(entry.get("model"), str):
            return False
        if entry.get("shadow", False) not in (True, False) or not isinstance(
            entry.get("shadow", False), bool
        ):
            return False
        inactive = entry.get("inactive", False)
        if not isinstance(inactive, bool):
            return False
        if inactive:
            reason = entry.get("inactive_reason")
            if not isinstance(reason, str) or not reason:
                return False
            if "action" in entry or "confidence" in entry:
                return False
            continue
        if entry.get("action") not in ACTIONS or not isinstance(entry.get("action"), str):
            return False
        if not is_confidence(entry.get("confidence")):
            return False
        if not entry.get("shadow", False):
            voting += 1
            agreeing += entry["action"] == event["side"]
    if (event["total_models"], event["consensus_count"]) != (voting, agreeing):
        return False
    if "features" in event:
        features = event["features"]
        if not isinstance(features, dict):
            return False
        for name, value in features.items():
            if not FEATURE_RE.fullmatch(name) or not is_number(value):
                return False
            try:
                float(value)
            except OverflowError:
                return False
    return True


@SETTINGS
@given(mutated_entries())
def test_malformed_input_never_passes(case: tuple[list[tuple[Any, Any]], list[int]]) -> None:
    entries, positions = case
    window = parse_window(entries)
    assert window.total == len(entries)
    event(f"malformed entries: {len(window.malformed)}")
    for at in positions:
        single = parse_window([entries[at]])
        assert (single.n == 1) is reference_valid(*entries[at]), (entries[at], single.malformed)
    for mode in ("canary", "collection"):
        result = evaluate(window, mode=mode)
        if window.malformed:
            assert result["verdict"] != "PASS"
            assert exit_code(result) != 0
            assert result["blockers"][0].startswith(f"window: {len(window.malformed)} malformed")
        if mode == "collection":
            assert result["verdict"] == "COLLECTION"
            assert exit_code(result) == 3


@SETTINGS
@given(st.binary(max_size=300), st.binary(max_size=30))
def test_arbitrary_bytes_never_pass(payload: bytes, stream_id: bytes) -> None:
    entries = [*BASE, (stream_id, payload)]
    window = parse_window(entries)
    result = evaluate(window)
    if window.malformed:
        assert result["verdict"] == "FAIL"
    assert (window.n == len(BASE) + 1) is reference_valid(stream_id, payload)


# -- generated valid windows against a reference gate ----------------------------------------

MODEL_NAMES = ("alpha", "beta", "gamma")


def model_spec(rng: random.Random) -> dict[str, Any]:
    """Most models are healthy (voters or shadows); the others break rules in many ways."""
    if rng.random() < 0.7:
        return {
            "weights": (1, 1, 1),
            "conf": ("uniform", 0.3, 0.9),
            "inactive": rng.choice([0.0, 0.0, 0.03]),
            "absent": 0.0,
            "shadow": rng.random() < 0.3,
        }
    kind = rng.choice(["uniform", "constant", "narrow"])
    if kind == "uniform":
        conf = ("uniform", rng.uniform(0, 0.5), rng.uniform(0.5, 1))
    elif kind == "constant":
        conf = ("constant", rng.choice([0.5, 0.45, rng.random()]), 0.0)
    else:
        conf = ("narrow", rng.uniform(0.2, 0.8), rng.choice([0.005, 0.02, 0.04, 0.06, 0.1]))
    return {
        "weights": rng.choice([(1, 1, 1), (8, 1, 1), (1, 8, 1), (1, 1, 9), (7, 2, 1), (0, 0, 1)]),
        "conf": conf,
        "inactive": rng.choice([0.0, 0.0, 0.02, 0.05, 0.08, 0.5]),
        "absent": rng.choice([0.0, 0.0, 0.0, 0.04]),
        "shadow": rng.random() < 0.3,
    }


@st.composite
def generated_window(draw: st.DrawFn) -> dict[str, Any]:
    """A valid window drawn from one seed (so the mix of cases is ours, not the shrinker's)."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    count = rng.choice([200, 201, 220, 230, 250, 250, 250, 0, 1, 99, 100, 199, rng.randint(0, 260)])
    specs = {name: model_spec(rng) for name in MODEL_NAMES[: rng.randint(1, len(MODEL_NAMES))]}
    rows = []
    for _ in range(count):
        row: dict[str, Any] = {"side": rng.choice(ACTIONS), "models": {}}
        for name, spec in specs.items():
            if rng.random() < spec["absent"]:
                continue
            if rng.random() < spec["inactive"]:
                row["models"][name] = None
                continue
            action = rng.choices(ACTIONS, weights=spec["weights"])[0]
            kind, a, b = spec["conf"]
            if kind == "uniform":
                conf = rng.uniform(a, b)
            elif kind == "constant":
                conf = a
            else:
                conf = min(1.0, max(0.0, rng.gauss(a, b)))
            row["models"][name] = (action, round(conf, 4))
        rows.append(row)
    mode = rng.choice(["canary", "canary", "collection"])
    model = rng.choice([None, None, None, None, *specs, "absent"])
    return {"rows": rows, "specs": specs, "mode": mode, "model": model}


def to_entries(rows: list[dict[str, Any]], specs: dict[str, Any]) -> list[tuple[str, str]]:
    entries = []
    for i, row in enumerate(rows):
        breakdown = {}
        voting = agreeing = 0
        for name, value in row["models"].items():
            shadow = specs[name]["shadow"]
            if value is None:
                entry: dict[str, Any] = {
                    "inactive": True,
                    "inactive_reason": "exception_in_predict",
                }
            else:
                entry = {"action": value[0], "confidence": value[1]}
                if not shadow:
                    voting += 1
                    agreeing += value[0] == row["side"]
            entry["model"] = f"{name}_shadow" if shadow else name
            if shadow:
                entry["shadow"] = True
            breakdown[name] = entry
        event = {
            "symbol": "BTCUSDT",
            "side": row["side"],
            "confidence": 0.5,
            "consensus_count": agreeing,
            "total_models": voting,
            "timestamp": "2026-01-10T12:00:00.000Z",
            "model_breakdown": breakdown,
        }
        entries.append((f"{i + 1}-0", json.dumps(event)))
    return entries


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def clear_of(value: float, *thresholds: float) -> bool:
    """Float noise (numpy vs this reference) cannot flip a comparison with these."""
    return all(abs(value - t) > 1e-9 for t in thresholds)


def reference_rules(name: str, rows: list[dict[str, Any]], min_events: int) -> set[str]:
    """The rules model ``name`` breaks, by DESIGN.md, in plain Python."""
    total = len(rows)
    outputs = [row["models"][name] for row in rows if row["models"].get(name) is not None]
    reported = sum(1 for row in rows if name in row["models"])
    if reported == 0:
        return {"absent"}
    broken = set()
    n = len(outputs)
    if n < min_events:
        broken.add("min_events")
    if (total - n) / total > 0.05:
        broken.add("inactive")
    if n == 0:
        return broken | {"nothing"}
    confidences = [c for _, c in outputs]
    for action in ACTIONS:
        if sum(1 for a, _ in outputs if a == action) / n > 0.70:
            broken.add(f"collapse {action}")
    std = statistics.pstdev(confidences)
    p10, p50, p90 = (percentile(confidences, q) for q in (10, 50, 90))
    assume(clear_of(std, 0.05, 0.01))
    assume(clear_of(p90 - p10, 0.12))
    assume(p90 - p10 == 0 or p90 - p10 > 1e-9)
    assume(clear_of(p50, 0.40, 0.60))
    if std < 0.05:
        broken.add("conf_std")
    if p90 - p10 < 0.12:
        broken.add("spread")
    if std < 0.01:
        broken.add("constant std")
    if p10 == p90:
        broken.add("constant p10 == p90")
    hold = sum(1 for a, _ in outputs if a == "HOLD") / n
    if hold > 0.85 and 0.40 <= p50 <= 0.60:
        broken.add("hold collapse")
    return broken


def rules_from_blockers(blockers: list[str]) -> set[str]:
    patterns = [
        ("absent", "not in the window"),
        ("min_events", " events < "),
        ("inactive", "model inactive"),
        ("nothing", "no active events"),
        ("conf_std", "conf_std "),
        ("spread", "spread p90-p10"),
        ("constant std", "constant output: conf_std"),
        ("constant p10 == p90", "constant output: p10 == p90"),
        ("hold collapse", "HOLD collapse"),
    ]
    found = set()
    for blocker in blockers:
        if blocker.startswith("action collapse: "):
            found.add("collapse " + blocker.split()[2])
            continue
        for rule, text in patterns:
            if blocker.startswith(text) or (text == " events < " and text in blocker):
                if rule == "conf_std" and blocker.startswith("constant"):
                    continue
                found.add(rule)
    return found


@SETTINGS
@given(generated_window())
def test_verdict_is_pass_iff_every_judged_model_satisfies_every_rule(case: dict[str, Any]) -> None:
    rows, specs, mode, model = case["rows"], case["specs"], case["mode"], case["model"]
    min_events = {"canary": 200, "collection": 100}[mode]
    in_window = [name for name in specs if any(name in row["models"] for row in rows)]
    expected = {name: reference_rules(name, rows, min_events) for name in in_window}
    if model is not None and model not in expected:
        expected[model] = {"absent"}
    if model is not None:
        judged = [model]
    else:
        judged = [name for name in in_window if not specs[name]["shadow"]]
    window_ok = len(rows) >= min_events
    should_pass = window_ok and bool(judged) and all(not expected[name] for name in judged)

    result = evaluate(parse_window(to_entries(rows, specs)), mode=mode, model=model)
    event(f"{mode}: reference {'pass' if should_pass else 'fail'}")
    for name, rules in expected.items():
        assert rules_from_blockers(result["models"][name]["blockers"]) == rules, name
        assert result["models"][name]["passed"] is (not rules)
    assert result["judged"] == judged
    if mode == "canary":
        assert (result["verdict"] == "PASS") is should_pass
        assert exit_code(result) == (0 if should_pass else 2)
    else:
        assert result["verdict"] == "COLLECTION"
        assert (not result["blockers"]) is should_pass
