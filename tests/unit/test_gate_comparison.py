"""The paired comparison in the quality gate's result (issue 16 item 1): with ``--model M`` the
gate's result has a ``comparison`` of M on the window the gate read (compare.gate_comparison,
horizon and alpha from the gate's thresholds compare_horizon_s and compare_alpha), without a
model none; it informs and never changes the verdict (no prices: not decided; a model without
a weight: not compared, with the reason)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from model_safety.judgement.compare import compare, gate_comparison
from model_safety.judgement.reports import render_markdown
from model_safety.judgement.run import run_gate
from tests.module_harness import engine_payloads, stream_id
from tests.unit.test_compare import WEIGHTS, rising, window

CONTRARIAN = ("SIM_PATCHTST", "contrarian")
NOW = datetime(2026, 1, 10, 13, 0, 0, tzinfo=UTC)


def fill(client: Any, stream: str, count: int, *sim: tuple[str, str], price: bool = True) -> None:
    pipe = client.pipeline(transaction=False)
    for index, text in enumerate(engine_payloads(count, sim)):
        payload = json.loads(text)
        if not price:
            payload.pop("price", None)
        pipe.xadd(stream, {"payload": json.dumps(payload)}, id=stream_id(index))
    pipe.execute()


def test_the_gate_of_one_model_carries_its_comparison(redis_client, redis_stream) -> None:
    fill(redis_client, redis_stream, 600, CONTRARIAN)
    overrides = {"compare_horizon_s": 1.0}
    gated = run_gate(redis_client, redis_stream, model="patchtst", count=600, thresholds=overrides)
    comparison = gated["comparison"]
    assert (comparison["model"], comparison["decided"], comparison["events"]) == (
        "patchtst",
        True,
        gated["event_count"],
    )
    assert (comparison["horizon_s"], comparison["alpha"]) == (1.0, 0.05)
    assert "ensemble without patchtst" in comparison["canary_worse_than"]
    # The contrarian shadow model passes the gate's rules: the comparison did not change that.
    assert gated["verdict"] == "PASS", gated["blockers"]


def test_the_gate_of_every_model_has_no_comparison(redis_client, redis_stream) -> None:
    fill(redis_client, redis_stream, 300)
    assert "comparison" not in run_gate(redis_client, redis_stream, count=300)


def test_a_window_without_prices_is_not_decided_and_the_verdict_stands(
    redis_client, redis_stream
) -> None:
    fill(redis_client, redis_stream, 300, price=False)
    gated = run_gate(redis_client, redis_stream, model="patchtst", count=300)
    assert gated["verdict"] == "PASS", gated["blockers"]
    comparison = gated["comparison"]
    assert (comparison["decided"], comparison["events_with_price"]) == (False, 0)
    assert comparison["reason"] == "patchtst made no directional call with an outcome"


def test_the_default_horizon_on_a_short_window_is_not_decided(redis_client, redis_stream) -> None:
    fill(redis_client, redis_stream, 300)  # 30 s of events, a 300 s horizon
    comparison = run_gate(redis_client, redis_stream, model="patchtst", count=300)["comparison"]
    assert (comparison["decided"], comparison["horizon_s"]) == (False, 300.0)


def test_a_gate_error_has_no_comparison(redis_client, redis_stream) -> None:
    gated = run_gate(redis_client, redis_stream, model="patchtst", after="not a time")
    assert gated["verdict"] == "FAIL" and "comparison" not in gated


def test_gate_comparison_is_compare_with_the_baseline() -> None:
    events = window(rising(30, 60, {"xgb": ("BUY", 0.7), "patchtst": ("SELL", 0.9)}))
    assert gate_comparison(events, "patchtst", horizon_s=60) == compare(
        events, "patchtst", WEIGHTS, horizon_s=60
    )


def test_gate_comparison_never_raises_it_says_why_it_did_not_compare() -> None:
    events = window(
        rising(30, 60, {"xgb": ("BUY", 0.7), "lgbm": ("BUY", 0.6), "patchtst": ("SELL", 0.9)})
    )
    assert gate_comparison(events, "patchtst", {"xgb": 0.5, "patchtst": 0.5}, 60) == {
        "model": "patchtst",
        "decided": False,
        "reason": "not compared: no baseline weight for voting model 'lgbm'",
    }
    unknown = gate_comparison(events, "tft")
    assert unknown["decided"] is False
    assert unknown["reason"].startswith("not compared: unknown model 'tft'")


def test_the_gate_report_has_the_comparison_section(redis_client, redis_stream) -> None:
    fill(redis_client, redis_stream, 600, CONTRARIAN)
    overrides = {"compare_horizon_s": 1.0}
    gated = run_gate(redis_client, redis_stream, model="patchtst", count=600, thresholds=overrides)
    text = render_markdown(gated, "quality_gate", NOW)
    section = text[text.index("## Paired comparison: `patchtst` against the baseline") :]
    assert section.startswith(
        "## Paired comparison: `patchtst` against the baseline\n\n"
        "Information on the same events: it never changes the verdict.\n\n"
        "Horizon 1 s, later price at most 1 s past it; 600 events, 600 with a price, "
    )
    assert "| ensemble without patchtst | " in section and "### Calibration" in section
    assert text.index("## Paired comparison") < text.index("## Thresholds")


def test_the_gate_report_says_not_decided_without_prices(redis_client, redis_stream) -> None:
    fill(redis_client, redis_stream, 300, price=False)
    gated = run_gate(redis_client, redis_stream, model="patchtst", count=300)
    text = render_markdown(gated, "quality_gate", NOW)
    assert "## Verdict: PASS" in text
    assert "**Not decided**: patchtst made no directional call with an outcome." in text
    assert "0 with a price" in text


def test_a_gate_report_without_a_comparison_has_no_section(redis_client, redis_stream) -> None:
    fill(redis_client, redis_stream, 300)
    text = render_markdown(run_gate(redis_client, redis_stream, count=300), "quality_gate", NOW)
    assert "Paired comparison" not in text


def test_a_comparison_not_made_is_said_in_the_gate_report() -> None:
    result = {
        "verdict": "PASS",
        "mode": "canary",
        "comparison": {"model": "tft", "decided": False, "reason": "not compared: unknown"},
    }
    text = render_markdown(result, "quality_gate", NOW)
    assert "## Paired comparison: `tft` against the baseline" in text
    assert "**Not decided**: not compared: unknown." in text
