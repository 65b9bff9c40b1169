"""What the five analytics modules (quality_gate, scoreboard, feature_sanity, shadow_report,
promotion_check) share through ansible_support, run through each one's main(): the common
options refused with the same messages, a bad model name, Redis unreachable without its
password, and the reports (written when asked, never in check mode). Each module's own
verdicts: its test_<module>.py."""

from __future__ import annotations

import pytest

from tests.module_harness import (
    HOSTILE_NAMES,
    fails_without_the_password,
    json_report,
    succeeds,
    unreachable_redis,
)

# Each module with the arguments it requires besides the telemetry's.
ANALYTICS = {
    "quality_gate": {},
    "scoreboard": {},
    "feature_sanity": {},
    "shadow_report": {"model": "patchtst"},
    "promotion_check": {"model": "patchtst", "current_role": "shadow", "uptime_s": 172800},
}
WITH_MODEL = ["quality_gate", "shadow_report", "promotion_check"]
REFUSALS = [
    ({"count": 0}, "count must be at least 1, not 0"),
    ({"count": "all"}, "argument 'count' is of type"),
    ({"thresholds": {"max_action_shar": 0.5}}, "invalid thresholds: bad thresholds: unknown"),
    ({"thresholds": {"max_action_share": 7}}, "invalid thresholds: bad thresholds: threshold"),
    ({"thresholds": {"min_spread": float("nan")}}, "invalid thresholds: bad thresholds: thres"),
    ({"thresholds": {"min_spread": "0.1\n"}}, "invalid thresholds: bad thresholds: threshold"),
    ({"thresholds": "max_action_shar=0.5"}, "invalid thresholds: bad thresholds: unknown"),
]


@pytest.mark.parametrize("module", ANALYTICS)
@pytest.mark.parametrize(("args", "message"), REFUSALS)
def test_the_common_options_are_refused(telemetry, module, args, message) -> None:
    result = fails_without_the_password(module, {**telemetry.args, **ANALYTICS[module], **args})
    assert result["msg"].startswith(message)


@pytest.mark.parametrize("module", ANALYTICS)
def test_a_redis_url_that_does_not_parse_is_refused(telemetry, module) -> None:
    url = unreachable_redis().replace("127.0.0.1", "[::1")
    result = fails_without_the_password(module, {**ANALYTICS[module], "redis_url": url})
    assert result["msg"] == "invalid redis_url: Invalid IPv6 URL"


@pytest.mark.parametrize("module", WITH_MODEL)
@pytest.mark.parametrize("model", [name for name in HOSTILE_NAMES if name])
def test_a_bad_model_name_is_refused(telemetry, module, model) -> None:
    args = {**telemetry.args, **ANALYTICS[module], "model": model}
    result = fails_without_the_password(module, args)
    assert result["msg"] == f"not a valid model name (^[a-z][a-z0-9_]{{0,31}}$): {model!r}"


@pytest.mark.parametrize("module", ANALYTICS)
def test_redis_unreachable_fails_without_the_password(telemetry, module) -> None:
    args = {**telemetry.args, **ANALYTICS[module], "redis_url": unreachable_redis()}
    assert "unreachable" in fails_without_the_password(module, args)["msg"]


@pytest.mark.parametrize("module", ANALYTICS)
def test_the_reports_are_written_when_asked_and_never_in_check_mode(
    telemetry, tmp_path, module
) -> None:
    telemetry.add(300)
    args = {**telemetry.args, **ANALYTICS[module], "report_only": True}
    checked = succeeds(module, {**args, "report_dir": str(tmp_path / "checked")}, check_mode=True)
    assert "reports" not in checked and not (tmp_path / "checked").exists()
    written = succeeds(module, {**args, "report_dir": str(tmp_path / "written")})
    assert json_report(written)["exit_code"] == written["exit_code"] == checked["exit_code"]
    assert written["changed"] is False
