"""The feature-drift section of the gate's and feature sanity's Markdown reports."""

from __future__ import annotations

from datetime import UTC, datetime

from model_safety.judgement.drift import build_reference, failed, feature_drift, not_judged
from model_safety.judgement.drift_report import drift_section
from model_safety.judgement.gate import add_blockers, evaluate
from model_safety.judgement.reports import render_markdown
from model_safety.telemetry.features import feature_sanity
from tests.unit.test_drift import normal_rows, window_of

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
REFERENCE = build_reference(window_of(normal_rows(1000, seed=1)), stream="s", source="test")


def test_the_section_lists_each_feature_the_reference_and_the_blockers() -> None:
    drift = feature_drift(REFERENCE, window_of(normal_rows(300, seed=2, shift=2.0)), path="/r")
    lines = drift_section(drift)
    assert lines[0] == "## Feature drift: BLOCK"
    assert lines[2] == (
        "- PSI per feature: a warning above 0.1, a blocker above 0.25; not decided below 200 "
        "values in either window"
    )
    assert lines[3] == (
        "- Reference: `/r`, 1000 events 2026-01-10T12:00:00.000Z .. 2026-01-10T12:16:39.000Z of `s`"
    )
    psi = drift["features"]["a"]["psi"]
    assert f"| a | {psi:.3f} | 1000 | 300 | 10 | block |" in lines
    assert f"- {drift['blockers'][0]}" in lines


def test_not_judged_and_an_error_say_why() -> None:
    assert drift_section(not_judged("no feature reference given"))[2] == (
        "Not judged: no feature reference given."
    )
    lines = drift_section(failed("feature reference /r: not valid JSON"))
    assert lines[0] == "## Feature drift: ERROR"
    assert "- Error: feature reference /r: not valid JSON" in lines
    assert drift_section(None) == []


def test_the_gate_and_feature_sanity_reports_carry_it() -> None:
    window = window_of(normal_rows(300, seed=3, shift=2.0))
    drift = feature_drift(REFERENCE, window)
    gate = add_blockers({**evaluate(window), "drift": drift}, drift["blockers"])
    assert "## Feature drift: BLOCK" in render_markdown(gate, "quality_gate", NOW)
    sanity = {**feature_sanity(window), "drift": drift}
    assert "## Feature drift: BLOCK" in render_markdown(sanity, "feature_sanity", NOW)
