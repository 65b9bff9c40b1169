"""Feature drift through the quality_gate and feature_sanity modules' main() on the reference
engine's telemetry in the real redis-server: the lab's SIM_FEATURES=shifted after a healthy
window blocks with nothing else changed (a reference file, or the events up to the cutover),
the same features pass, a bad reference file blocks with its reason, and the two reference
options exclude each other."""

from __future__ import annotations

import pytest

from model_safety.judgement.run import run_feature_reference
from tests.module_harness import fails, stream_id, succeeds

SHIFTED = ("SIM_FEATURES", "shifted")
FEATURES = ("atr_value", "return_1", "rsi_14", "volatility_factor")


@pytest.fixture
def reference_file(telemetry, tmp_path) -> str:
    """300 healthy events, their reference file (written the CLI's way), the path."""
    telemetry.add(300)
    path = str(tmp_path / "feature_reference.json")
    written = run_feature_reference(telemetry.url, telemetry.stream, out=path, count=300)
    assert written["exit_code"] == 0, written
    return path


def test_the_gate_blocks_shifted_features_against_a_reference_file(telemetry, reference_file):
    telemetry.add(300, SHIFTED, first=300)
    args = {**telemetry.args, "after": stream_id(299), "feature_reference": reference_file}
    result = fails("quality_gate", args)
    assert result["verdict"] == "FAIL" and result["event_count"] == 300
    drift = result["drift"]
    assert drift["status"] == "block" and drift["reference"]["path"] == reference_file
    assert list(drift["features"]) == list(FEATURES)
    # Every model passes its own rules: the features are the only blockers.
    assert all(model["passed"] for model in result["models"].values())
    assert [b.split(" PSI ")[0] for b in result["blockers"]] == [
        f"feature drift: {name}" for name in FEATURES
    ]
    assert "feature drift: atr_value PSI " in result["msg"]
    assert "> 0.25 (reference 300 values, current 300)" in result["blockers"][0]


def test_the_same_features_pass_and_check_mode_judges_alike(telemetry, reference_file):
    telemetry.add(300, first=300)  # the engine's same 300 healthy events again
    args = {**telemetry.args, "after": stream_id(299), "feature_reference": reference_file}
    for check_mode in (False, True):
        result = succeeds("quality_gate", args, check_mode=check_mode)
        assert result["verdict"] == "PASS" and result["drift"]["status"] == "ok"
        assert {row["psi"] for row in result["drift"]["features"].values()} == {0.0}


def test_the_events_up_to_the_cutover_are_a_reference_too(telemetry) -> None:
    telemetry.add(300)
    telemetry.add(300, SHIFTED, first=300)
    args = {**telemetry.args, "after": stream_id(299), "feature_reference_events": 300}
    result = fails("quality_gate", args)
    assert result["drift"]["reference"]["last_id"] == stream_id(299)
    assert result["drift"]["reference"]["event_count"] == 300
    assert result["drift"]["status"] == "block"
    sanity = fails("feature_sanity", args)
    assert sanity["problems"][0].startswith("feature drift: atr_value PSI ")
    assert sanity["msg"].startswith("feature sanity failed (300 events): feature drift: ")


def test_without_a_reference_drift_is_not_judged(telemetry) -> None:
    telemetry.add(300)
    telemetry.add(300, SHIFTED, first=300)
    result = succeeds("quality_gate", {**telemetry.args, "after": stream_id(299)})
    assert result["verdict"] == "PASS" and result["drift"]["status"] == "not_judged"


def test_a_corrupt_reference_file_blocks_with_its_reason(telemetry, tmp_path) -> None:
    telemetry.add(300)
    path = tmp_path / "feature_reference.json"
    path.write_text('{"format": "model-safety-feature-reference", "version": 1, "features"')
    for module in ("quality_gate", "feature_sanity"):
        result = fails(module, {**telemetry.args, "feature_reference": str(path)})
        assert f"feature drift: feature reference {path}: not valid JSON" in result["msg"]


def test_the_two_references_exclude_each_other(telemetry, reference_file) -> None:
    for module in ("quality_gate", "feature_sanity"):
        args = {
            **telemetry.args,
            "after": stream_id(299),
            "feature_reference": reference_file,
            "feature_reference_events": 300,
        }
        result = fails(module, args)
        assert result["msg"] == (
            "parameters are mutually exclusive: feature_reference|feature_reference_events"
        )


def test_reference_events_need_a_cutover(telemetry) -> None:
    telemetry.add(300)
    result = fails("quality_gate", {**telemetry.args, "feature_reference_events": 300})
    assert result["blockers"] == ["reference events are the events before the cutover: give one"]


@pytest.mark.parametrize("module", ["quality_gate", "feature_sanity"])
def test_a_relative_reference_path_is_refused(telemetry, module) -> None:
    result = fails(module, {**telemetry.args, "feature_reference": "feature_reference.json"})
    assert result["msg"] == "feature_reference is not an absolute path: 'feature_reference.json'"
