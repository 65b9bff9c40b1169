"""The per-model confidence histogram and agreement over time (telemetry.metrics), as the gate,
scoreboard and shadow report carry them, and their charts on the HTML pages (html_report),
with the old percentile markers kept for results without them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import jsonschema
import numpy as np
import pytest
from matplotlib.image import imread

from model_safety.judgement.gate import evaluate
from model_safety.judgement.html_report import render_html
from model_safety.judgement.scoreboard import scoreboard
from model_safety.judgement.shadow import shadow_report
from model_safety.telemetry.events import EventWindow, ModelColumns, parse_window
from model_safety.telemetry.metrics import TIME_BINS, model_metrics, time_bins
from tests.unit.test_cli_json_schemas import schema
from tests.unit.test_gate_rules import entry, event
from tests.unit.test_html_report_browser import chromium, console_lines
from tests.unit.test_reports import gate_result

NOW = datetime(2026, 1, 10, 13, 0, 5, tzinfo=UTC)
NOON_MS = 1_768_046_400_000  # 2026-01-10T12:00:00Z, a whole hour
MINUTE_MS = 60_000


def timed_window(times_ms: list[int], actions: list[str | None], confidences=None, sides=None):
    """Events at stream id times ``times_ms`` where ``cand`` (None: inactive) is the only
    voter; ``sides`` (default: its action) is the ensemble's side."""
    confidences = confidences or [0.3 + 0.6 * (i % 7) / 6 for i in range(len(actions))]
    sides = sides or [a or "HOLD" for a in actions]
    entries = []
    for ms, action, confidence, side in zip(times_ms, actions, confidences, sides, strict=True):
        payload = event(side, {"cand": entry(action, confidence, "cand")})
        entries.append((f"{ms}-0".encode(), json.dumps(payload).encode()))
    window = parse_window(entries)
    assert not window.malformed, window.malformed[:1]
    return window


# --------------------------------------------------------------------------- histogram


def test_histogram_puts_known_confidences_in_their_bins_and_sums_to_n() -> None:
    confidences = [0.0, 0.049, 0.05, 0.5, 0.51, 0.999, 1.0, 0.7]
    actions: list[str | None] = ["BUY", "SELL", "HOLD", "BUY", "SELL", "HOLD", "BUY", None]
    window = timed_window([NOON_MS + i for i in range(8)], actions, confidences)
    metrics = model_metrics(window, "cand")
    histogram = metrics["confidence_histogram"]
    assert histogram["bin_width"] == 0.05
    counts = histogram["counts"]
    assert len(counts) == 20 and sum(counts) == metrics["n"] == 7  # the inactive one is not
    expected = [0] * 20
    expected[0], expected[1], expected[10], expected[19] = 2, 1, 2, 2  # 1.0 in the last bin
    assert counts == expected


def test_a_model_without_active_events_has_empty_bins_not_nothing() -> None:
    window = timed_window([NOON_MS, NOON_MS + MINUTE_MS], [None, None])
    metrics = model_metrics(window, "cand")
    assert metrics["confidence_histogram"]["counts"] == [0] * 20
    # a minute from the first to the last event: 7 bins of 10 s (12:00:00 .. 12:01:00)
    assert [b["n"] for b in metrics["over_time"]["bins"]] == [0] * 7
    absent = model_metrics(window, "ghost")
    assert sum(absent["confidence_histogram"]["counts"]) == 0
    assert absent["over_time"]["bin_seconds"] == 10.0
    assert all(b["agreement"] is None for b in absent["over_time"]["bins"])
    empty = model_metrics(parse_window([]), "cand")
    assert empty["over_time"] == {"bin_seconds": None, "bins": []}


# --------------------------------------------------------------------------- time bins


def test_one_event_per_minute_for_an_hour_gives_twelve_bins_of_five_minutes() -> None:
    times = [NOON_MS + i * MINUTE_MS for i in range(60)]
    sides = ["BUY" if i % 5 else "SELL" for i in range(60)]  # one hard disagreement per bin
    window = timed_window(times, ["BUY"] * 60, sides=sides)
    over_time = model_metrics(window, "cand")["over_time"]
    assert over_time["bin_seconds"] == 300.0
    bins = over_time["bins"]
    assert len(bins) == TIME_BINS
    assert bins[0]["start"] == "2026-01-10T12:00:00.000Z"
    assert bins[-1]["start"] == "2026-01-10T12:55:00.000Z"
    assert {(b["n"], b["agreement"], b["hard_disagree"]) for b in bins} == {(5, 0.8, 0.2)}


def test_a_sparse_window_has_empty_bins_with_null_fractions() -> None:
    times = [NOON_MS + 30_000, NOON_MS + MINUTE_MS, NOON_MS + 47 * MINUTE_MS]
    window = timed_window(times, ["BUY", "SELL", "HOLD"], sides=["BUY", "BUY", "BUY"])
    bins = model_metrics(window, "cand")["over_time"]["bins"]
    assert [b["n"] for b in bins] == [2, 0, 0, 0, 0, 0, 0, 0, 0, 1]  # 5-minute bins
    assert (bins[0]["agreement"], bins[0]["hard_disagree"]) == (0.5, 0.5)
    assert (bins[9]["agreement"], bins[9]["hard_disagree"]) == (0.0, 0.0)
    assert bins[9]["start"] == "2026-01-10T12:45:00.000Z"
    assert all(b["agreement"] is None and b["hard_disagree"] is None for b in bins[1:9])
    single = timed_window([NOON_MS + 123], ["BUY"])
    (only,) = model_metrics(single, "cand")["over_time"]["bins"]
    assert (only["start"], only["n"], only["agreement"]) == ("2026-01-10T12:00:00.123Z", 1, 1.0)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (NOON_MS + 150_000, NOON_MS + 3_690_000, (600_000, 7)),  # 12:02:30..13:01:30: 10 min
        (0, 40 * 86_400_000, (4 * 86_400_000, 11)),  # beyond 12 h: whole days
        (0, 12 * 86_400_000 - 1, (86_400_000, 12)),
        (5, 5, (1, 1)),
    ],
)
def test_time_bins_are_round_and_at_most_twelve(low: int, high: int, expected) -> None:
    first, step, count = time_bins(np.array([low, high], dtype=np.int64))
    assert (step, count) == expected
    assert first * step <= low < high + 1 <= (first + count) * step


def dense_window(n: int, every_ms: int) -> EventWindow:
    """``n`` events ``every_ms`` apart from noon; model m: one event in 10 inactive, its
    action agrees with the side where the event index is even, else hard disagrees."""
    index = np.arange(n)
    side = (index % 2).astype(np.int8)  # BUY, SELL, ...
    action = np.where(index % 4 < 2, side, 1 - side).astype(np.int8)
    inactive = index % 10 == 9
    action[inactive] = -1
    confidence = np.where(inactive, np.nan, (index % 100) / 100 + 0.005)
    stamps = NOON_MS + index.astype(np.int64) * every_ms
    zeros = np.zeros(n, dtype=np.bool_)
    model = ModelColumns("m", ~zeros, inactive, zeros.copy(), action, confidence)
    return EventWindow(
        side=side, confidence=np.full(n, 0.6), consensus_count=np.ones(n, dtype=np.int16),
        total_models=np.ones(n, dtype=np.int16), timestamp_ms=stamps, stream_ms=stamps.copy(),
        symbol=np.zeros(n, dtype=np.int32), symbols=["BTCUSDT"], price=np.full(n, 100.0),
        payload_bytes=np.full(n, 600, dtype=np.int32), models={"m": model}, features={},
        malformed=[],
    )  # fmt: skip


def test_a_dense_hour_at_100_per_second_is_binned_whole() -> None:
    metrics = model_metrics(dense_window(360_000, 10), "m")
    assert metrics["n"] == 324_000
    # confidence k/100 + 0.005 for event k (mod 100); k = 9 (mod 10) is inactive: the odd
    # bins (k = 5b .. 5b + 4) lose one k of their five
    assert metrics["confidence_histogram"]["counts"] == [18_000, 14_400] * 10
    bins = metrics["over_time"]["bins"]
    assert len(bins) == 12 and {b["n"] for b in bins} == {27_000}
    assert sum(b["agreement"] * b["n"] for b in bins) == pytest.approx(
        metrics["agreement"] * metrics["n"]
    )
    assert sum(b["hard_disagree"] * b["n"] for b in bins) == pytest.approx(
        metrics["hard_disagree"] * metrics["n"]
    )
    assert len(json.dumps(metrics)) < 3000  # no per-event arrays in the result


def test_gate_scoreboard_and_shadow_results_carry_them() -> None:
    times = [NOON_MS + i * MINUTE_MS for i in range(60)]
    window = timed_window(times, ["BUY", "SELL", "HOLD"] * 20)
    gate = evaluate(window)["models"]["cand"]
    board = scoreboard(window)["models"]["cand"]
    shadow = shadow_report(window, "cand")["metrics"]
    for row in (gate, board, shadow):
        assert row["confidence_histogram"] == gate["confidence_histogram"]
        assert row["over_time"] == gate["over_time"]


# --------------------------------------------------------------------------- the pages


def section(page: str, section_id: str) -> str:
    match = re.search(rf'<section class="chart" id="{section_id}">(.*?)</section>', page, re.S)
    assert match, section_id
    return match.group(1)


def measured_result(kind: str) -> dict[str, Any]:
    """A real result of ``kind`` (as its JSON file holds it) over a one-hour window of two
    models, one event a minute."""
    events = []
    for i in range(60):
        breakdown = {
            "xgb": entry(["BUY", "SELL", "HOLD"][i % 3], 0.3 + (i % 13) / 20, "xgb"),
            "nhits": entry("BUY" if i % 4 else None, 0.55 + (i % 3) / 100, "nhits"),
        }
        events.append(event(["BUY", "SELL", "HOLD"][i % 3], breakdown))
    entries = [
        (f"{NOON_MS + i * MINUTE_MS}-0".encode(), json.dumps(e).encode())
        for i, e in enumerate(events)
    ]
    window = parse_window(entries)
    result = {
        "quality_gate": lambda: evaluate(window),
        "scoreboard": lambda: scoreboard(window),
        "shadow_report": lambda: shadow_report(window, "nhits"),
    }[kind]()
    return json.loads(json.dumps(result))


def panels(page: str, section_id: str) -> int:
    """How many plots (matplotlib axes) the chart of ``section_id`` has."""
    return len(re.findall(r'<g id="axes_\d+">', section(page, section_id)))


@pytest.mark.parametrize("kind", ["quality_gate", "scoreboard", "shadow_report"])
def test_pages_draw_a_histogram_and_agreement_over_time_per_model(kind: str) -> None:
    page = render_html(measured_result(kind), kind, NOW)
    models = 1 if kind == "shadow_report" else 2
    assert "<h2>Confidence histogram</h2>" in page
    assert "<h2>Agreement over time</h2>" in page
    assert (panels(page, "confidence"), panels(page, "agreement")) == (models, models)
    assert len(re.findall(r"<svg[ >]", page)) == 3


def test_a_result_without_the_new_keys_or_with_broken_bins_keeps_the_markers() -> None:
    old = render_html(gate_result(), "quality_gate", NOW)  # a JSON file of an older version
    assert "<h2>Confidence spread</h2>" in old and "<h2>Agreement</h2>" in old
    assert (panels(old, "confidence"), panels(old, "agreement")) == (1, 1)
    result = measured_result("quality_gate")
    result["models"]["xgb"]["over_time"]["bins"][0]["start"] = "not a time"
    del result["models"]["nhits"]["confidence_histogram"]
    page = render_html(result, "quality_gate", NOW)
    assert "<h2>Confidence spread</h2>" in page and "<h2>Agreement</h2>" in page
    assert "Confidence histogram" not in page and "over time" not in page


def test_chromium_draws_the_histogram_page_without_console_errors(tmp_path) -> None:
    page = tmp_path / "gate.html"
    page.write_text(render_html(measured_result("quality_gate"), "quality_gate", NOW))
    shot = tmp_path / "shot.png"
    drawn = chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert console_lines(drawn) == []
    pixels = imread(shot)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10


@pytest.mark.parametrize(
    ("kind", "schema_name"),
    [("quality_gate", "gate"), ("scoreboard", "scoreboard"), ("shadow_report", "shadow-report")],
)
def test_the_schemas_describe_the_keys_and_keep_them_optional(kind: str, schema_name: str) -> None:
    validator = jsonschema.Draft202012Validator(schema(schema_name))
    result = measured_result(kind)  # the shadow report's: BLOCKED (nhits is not in shadow)
    validator.validate(result)
    rows = result.get("models") or {"m": result["metrics"]}
    row = next(iter(rows.values()))
    row["over_time"]["bins"][0]["agreement"] = 1.5
    assert not validator.is_valid(result)
    row["over_time"]["bins"][0]["agreement"] = None
    row["confidence_histogram"]["counts"][0] = -1
    assert not validator.is_valid(result)
    for row in rows.values():
        del row["confidence_histogram"], row["over_time"]
    validator.validate(result)  # a result of an older version
