"""Unit tests for model_safety.judgement.drift: PSI by hand, bins, empty bins, constant and
discrete features, missing features, references (build, write, load, every bad file) and the
thresholds' boundaries."""

from __future__ import annotations

import json
import math
import os
import stat
from typing import Any

import numpy as np
import pytest

from model_safety.judgement import drift
from model_safety.judgement.drift import (
    PSI_EPSILON,
    FeatureReferenceError,
    bin_counts,
    build_reference,
    drift_from_counts,
    feature_drift,
    load_reference,
    psi,
    quantile_edges,
    window_counts,
    write_reference,
)
from model_safety.judgement.thresholds import Thresholds
from model_safety.telemetry.events import parse_window

T0_MS = 1_768_046_400_000
DEFAULT = Thresholds()


def payload(features: dict[str, float] | None, ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    moment = np.datetime64(seconds, "s").astype(str)
    event: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "side": "HOLD",
        "confidence": 0.5,
        "consensus_count": 0,
        "total_models": 0,
        "timestamp": f"{moment}.{millis:03d}Z",
        "model_breakdown": {},
    }
    if features is not None:
        event["features"] = features
    return json.dumps(event, allow_nan=True)


def window_of(rows: list[dict[str, float] | None], step_ms: int = 1000, start_ms: int = T0_MS):
    """Events ``step_ms`` apart (60000: production's 1/min; 10: the lab's 100/s)."""
    return parse_window(
        [
            (f"{start_ms + i * step_ms}-0", payload(row, start_ms + i * step_ms))
            for i, row in enumerate(rows)
        ]
    )


def normal_rows(n: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> list[dict]:
    rng = np.random.default_rng(seed)
    a = rng.normal(shift, scale, n)
    b = rng.uniform(0.0, 1.0, n)
    return [{"a": float(x), "b": float(y)} for x, y in zip(a, b, strict=True)]


# --------------------------------------------------------------------------- the measure


def test_psi_by_hand_two_bins() -> None:
    # e = (0.5, 0.5), a = (0.8, 0.2): 0.3 ln 1.6 + (-0.3) ln 0.4
    expected = 0.3 * math.log(1.6) - 0.3 * math.log(0.4)
    assert psi(np.array([0.5, 0.5]), np.array([8, 2])) == pytest.approx(expected)
    assert psi(np.array([50, 50]), np.array([0.8, 0.2])) == pytest.approx(expected)


def test_psi_by_hand_three_bins_and_symmetry() -> None:
    e, a = np.array([0.2, 0.3, 0.5]), np.array([0.3, 0.3, 0.4])
    expected = 0.1 * math.log(1.5) + 0.0 + (-0.1) * math.log(0.8)
    assert psi(e, a) == pytest.approx(expected)
    assert psi(a, e) == pytest.approx(expected)  # PSI is symmetric in its two histograms


def test_psi_of_identical_histograms_is_zero() -> None:
    assert psi(np.array([3, 5, 2]), np.array([30, 50, 20])) == 0.0


def test_empty_bins_are_floored_at_epsilon() -> None:
    # The current window leaves bin 2 empty: its share is taken as 1e-4, not 0 (ln 0).
    e, a = np.array([0.5, 0.5]), np.array([1.0, 0.0])
    expected = (1.0 - 0.5) * math.log(1.0 / 0.5) + (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5)
    assert psi(e, a) == pytest.approx(expected)
    assert math.isfinite(psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


def test_quantile_edges_are_reference_values_deduplicated() -> None:
    values = np.arange(1.0, 101.0)
    edges = quantile_edges(values)
    assert edges.tolist() == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    counts = bin_counts(values, edges)
    # Right-closed bins: (-inf, 10] holds 1..10, ..., (90, inf) holds 91..100.
    assert counts.tolist() == [10] * 10
    discrete = np.array([0.0] * 60 + [1.0] * 40)
    assert quantile_edges(discrete).tolist() == [0.0, 1.0]
    assert bin_counts(discrete, quantile_edges(discrete)).tolist() == [60, 40, 0]


def test_constant_feature_has_two_bins() -> None:
    edges = quantile_edges(np.full(300, 0.5))
    assert edges.tolist() == [0.5]
    assert bin_counts(np.full(300, 0.5), edges).tolist() == [300, 0]
    assert bin_counts(np.full(300, 0.7), edges).tolist() == [0, 300]


# --------------------------------------------------------------------------- judging windows


def reference_of(rows: list, thresholds: Thresholds = DEFAULT, **kw: Any) -> dict:
    return build_reference(window_of(rows, **kw), stream="s", source="test", thresholds=thresholds)


def test_same_distribution_is_ok_and_near_zero() -> None:
    reference = reference_of(normal_rows(2000, seed=1))
    result = feature_drift(reference, window_of(normal_rows(1000, seed=2)))
    assert result["status"] == "ok", result
    assert (result["blockers"], result["warnings"]) == ([], [])
    # (bins - 1) * (1/2000 + 1/1000) = 0.0135 expected from sampling alone; margin 4x.
    assert all(row["psi"] < 0.06 for row in result["features"].values()), result["features"]


def test_identical_window_gives_zero() -> None:
    rows = normal_rows(500, seed=3)
    result = feature_drift(reference_of(rows), window_of(rows))
    assert {name: row["psi"] for name, row in result["features"].items()} == {"a": 0.0, "b": 0.0}


def test_disjoint_windows_block_with_the_sentence() -> None:
    reference = reference_of(normal_rows(1000, seed=4))
    result = feature_drift(reference, window_of(normal_rows(300, seed=5, shift=50.0)))
    assert result["status"] == "block"
    row = result["features"]["a"]
    assert row["status"] == "block" and row["psi"] > 5
    assert result["features"]["b"]["status"] == "ok"
    assert result["blockers"] == [
        f"feature drift: a PSI {row['psi']:.3f} > 0.25 (reference 1000 values, current 300)"
    ]


def test_moderate_shift_warns_between_the_thresholds() -> None:
    reference = reference_of(normal_rows(4000, seed=6))
    result = feature_drift(reference, window_of(normal_rows(4000, seed=7, shift=0.4)))
    row = result["features"]["a"]
    assert 0.1 < row["psi"] <= 0.25, row
    assert row["status"] == "warn" and result["status"] == "warn"
    assert result["blockers"] == []
    assert result["warnings"] == [
        f"feature drift: a PSI {row['psi']:.3f} > 0.1 (reference 4000 values, current 4000)"
    ]


BELOW = 1 - 1e-9


@pytest.mark.parametrize(
    ("warn", "block", "status"),
    [(1.0, 2.0, "ok"), (BELOW, 2.0, "warn"), (0.5, 1.0, "warn"), (0.5, BELOW, "block")],
)
def test_threshold_boundaries_hold_exactly_at_the_threshold(warn, block, status) -> None:
    """Thresholds as multiples of the measured PSI: at it nothing fires (``>``), a hair
    below it fires."""
    reference = {
        "format": drift.REFERENCE_FORMAT,
        "version": 1,
        "event_count": 1000,
        "features": {"a": {"n": 1000, "edges": [0.0], "proportions": [0.5, 0.5]}},
    }
    value = psi(np.array([0.5, 0.5]), np.array([700, 300]))
    limits = Thresholds(psi_warn=warn * value, psi_block=block * value)
    result = drift_from_counts(reference, {"a": [700, 300]}, 1000, limits)
    assert result["features"]["a"]["status"] == status
    assert result["status"] == status


def test_too_few_values_is_not_decided_in_either_window() -> None:
    reference = reference_of(normal_rows(1000, seed=8))
    short = feature_drift(reference, window_of(normal_rows(199, seed=9, shift=50.0)))
    assert short["status"] == "undecided"
    assert all(row["psi"] is None for row in short["features"].values())
    assert short["blockers"][0] == (
        "feature drift not decided: a has 199 values < 200 (reference 1000 values, current 199)"
    )
    # The monitor: not decided is never a violation, only a warning.
    watch = feature_drift(
        reference, window_of(normal_rows(199, seed=9, shift=50.0)), undecided_blocks=False
    )
    assert watch["blockers"] == [] and len(watch["warnings"]) == 2
    limits = Thresholds(psi_min_events=50)
    small_reference = reference_of(normal_rows(60, seed=10), thresholds=limits)
    undecided = feature_drift(small_reference, window_of(normal_rows(500, seed=11)))
    assert undecided["status"] == "undecided"
    assert "a has 60 values < 200" in undecided["blockers"][0]


@pytest.mark.parametrize("step_ms", [60_000, 10], ids=["1_per_min", "100_per_s"])
def test_monitor_counts_add_up_at_both_event_rates(step_ms) -> None:
    """The monitor sums each check's bin counts: at 1/min a 30 s check brings 0 or 1 event,
    at 100/s 3000; the result is the same as judging the whole window at once, not decided
    until 200 values, and never a blocker before."""
    reference = reference_of(normal_rows(1000, seed=12))
    rows = normal_rows(400, seed=13, shift=3.0)
    window = window_of(rows, step_ms=step_ms)
    per_check = 3000 if step_ms == 10 else 1
    total = {name: [0] * (len(e["edges"]) + 1) for name, e in reference["features"].items()}
    seen = 0
    for start in range(0, len(rows), per_check):
        part = window_of(rows[start : start + per_check], step_ms, T0_MS + start * step_ms)
        for name, counts in window_counts(reference, part).items():
            total[name] = [x + y for x, y in zip(total[name], counts, strict=True)]
        seen += part.n
        judged = drift_from_counts(reference, total, seen, undecided_blocks=False)
        if seen < 200:
            assert judged["status"] == "undecided" and judged["blockers"] == []
    whole = feature_drift(reference, window)
    assert judged["features"]["a"]["psi"] == whole["features"]["a"]["psi"] > 0.25
    assert judged["status"] == "block"


def test_missing_feature_blocks_and_partly_missing_counts_what_is_there() -> None:
    reference = reference_of(normal_rows(1000, seed=14))
    rows = [{"b": row["b"]} for row in normal_rows(300, seed=15)]
    result = feature_drift(reference, window_of(rows))
    assert result["features"]["a"]["status"] == "missing"
    assert result["blockers"] == [
        "feature drift: a is in the reference (1000 values) but has no finite value in the "
        "300 current events"
    ]
    rows = normal_rows(500, seed=16)
    for row in rows[::2]:
        del row["a"]
    some = feature_drift(reference, window_of(rows + [None] * 10))
    assert some["features"]["a"]["current_n"] == 250
    assert some["features"]["b"]["current_n"] == 500


def test_nan_and_inf_values_are_left_to_feature_sanity() -> None:
    rows = normal_rows(300, seed=17)
    rows[0]["a"], rows[1]["a"] = math.nan, math.inf
    window = window_of(rows)
    reference = build_reference(window, stream="s", source="test")
    assert reference["features"]["a"]["n"] == 298
    assert reference["features"]["a"]["nonfinite"] == 2


def test_a_feature_only_in_the_current_window_is_a_warning() -> None:
    reference = reference_of(normal_rows(500, seed=18))
    rows = [{**row, "c": 1.0} for row in normal_rows(500, seed=19)]
    result = feature_drift(reference, window_of(rows))
    assert "feature drift: c is not in the reference, not judged" in result["warnings"]
    assert result["blockers"] == []


def test_constant_feature_same_value_ok_other_value_blocks() -> None:
    reference = reference_of([{"k": 2.0}] * 300)
    assert feature_drift(reference, window_of([{"k": 2.0}] * 300))["status"] == "ok"
    moved = feature_drift(reference, window_of([{"k": 2.5}] * 300))
    assert moved["status"] == "block" and moved["features"]["k"]["psi"] > 10


# --------------------------------------------------------------------------- reference files


def test_build_reference_records_the_window() -> None:
    reference = reference_of(normal_rows(300, seed=20), step_ms=60_000)
    assert reference["format"] == "model-safety-feature-reference"
    assert (reference["version"], reference["event_count"], reference["bins"]) == (1, 300, 10)
    assert reference["first_ts"] == "2026-01-10T12:00:00.000Z"
    assert reference["last_ts"] == "2026-01-10T16:59:00.000Z"
    assert (reference["first_id"], reference["stream"]) == (f"{T0_MS}-0", "s")
    shares = reference["features"]["a"]["proportions"]
    assert len(shares) == 10 and sum(shares) == pytest.approx(1.0)


def test_build_reference_refuses_too_few_no_features_and_malformed() -> None:
    with pytest.raises(
        FeatureReferenceError, match=r"too few finite values .* \(< 200\): a 150, b 150"
    ):
        reference_of(normal_rows(150, seed=21))
    with pytest.raises(FeatureReferenceError, match="300 events, none with features"):
        reference_of([None] * 300)
    entries = [(f"{i + 1}-0", payload({"a": float(i)}, T0_MS)) for i in range(300)]
    entries.append(("999-0", "{not json"))
    with pytest.raises(FeatureReferenceError, match="1 malformed events"):
        build_reference(parse_window(entries), stream="s", source="test")


def test_write_and_load_round_trip_atomic_0640(tmp_path) -> None:
    reference = reference_of(normal_rows(300, seed=22))
    path = str(tmp_path / "ref.json")
    old_umask = os.umask(0)
    try:
        write_reference(path, reference)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert load_reference(path) == json.loads(json.dumps(reference))
    assert [p.name for p in tmp_path.iterdir()] == ["ref.json"]  # no temporary file left


def write_json(tmp_path, data: Any, name: str = "ref.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def good(tmp_path) -> dict:
    return json.loads(json.dumps(reference_of(normal_rows(300, seed=23))))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(version=2), "version 2 is not 1 (write it again)"),
        (lambda r: r.update(format="x"), "format 'x' is not 'model-safety-feature-reference'"),
        (lambda r: r.update(event_count=0), "event_count 0 is not a positive integer"),
        (lambda r: r.update(features={}), "features must be an object of 1 to"),
        (lambda r: r["features"].update({"bad name": {}}), "not a feature name: 'bad name'"),
        (lambda r: r["features"]["a"].update(n=10_000), "n 10000 is not an integer in"),
        (lambda r: r["features"]["a"]["edges"].reverse(), "edges are not strictly increasing"),
        (lambda r: r["features"]["a"].update(edges=["x"]), "edges is not a list of finite"),
        (lambda r: r["features"]["a"]["proportions"].pop(), "9 proportions for 9 edges"),
        (lambda r: r["features"]["a"]["proportions"].__setitem__(0, 0.5), "summing to 1"),
    ],
)
def test_bad_reference_content_is_refused_with_the_reason(tmp_path, change, message) -> None:
    data = good(tmp_path)
    change(data)
    path = write_json(tmp_path, data)
    with pytest.raises(FeatureReferenceError, match=r"feature reference .*ref\.json: ") as caught:
        load_reference(path)
    assert message in str(caught.value)


def test_unreadable_corrupt_and_huge_files_are_refused(tmp_path) -> None:
    with pytest.raises(FeatureReferenceError, match=r"missing.json: cannot be read: No such file"):
        load_reference(str(tmp_path / "missing.json"))
    with pytest.raises(FeatureReferenceError, match="cannot be read: Is a directory"):
        load_reference(str(tmp_path))
    with pytest.raises(FeatureReferenceError, match="not valid JSON"):
        load_reference(write_json(tmp_path, '{"format": '))
    with pytest.raises(FeatureReferenceError, match="not valid JSON"):
        load_reference(write_json(tmp_path, "\x00\xff"))
    with pytest.raises(FeatureReferenceError, match="not a JSON object"):
        load_reference(write_json(tmp_path, [1, 2]))
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (drift.MAX_REFERENCE_BYTES + 1))
    with pytest.raises(FeatureReferenceError, match="larger than"):
        load_reference(str(huge))
    with pytest.raises(FeatureReferenceError, match="no path given"):
        load_reference("")


def test_write_reference_refuses_an_invalid_reference(tmp_path) -> None:
    with pytest.raises(FeatureReferenceError, match="version"):
        write_reference(str(tmp_path / "r.json"), {"format": drift.REFERENCE_FORMAT})
    assert not (tmp_path / "r.json").exists()


def test_thresholds_validate_the_psi_fields() -> None:
    assert (Thresholds().psi_warn, Thresholds().psi_block, Thresholds().psi_min_events) == (
        0.1,
        0.25,
        200,
    )
    with pytest.raises(ValueError, match="psi_warn must be <= psi_block"):
        Thresholds(psi_warn=0.3, psi_block=0.2)
    with pytest.raises(ValueError, match="psi_min_events must be >= 1"):
        Thresholds(psi_min_events=0)
    with pytest.raises(ValueError, match="psi_block must be finite"):
        Thresholds(psi_block=math.inf)
