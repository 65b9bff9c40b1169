"""The canary_probe module through its main() against the fake systemctl, a real activation
log and the reference engine's telemetry in the real redis-server: one probe (service,
configuration, activation, observations since it, the rate before it), what becomes data
(a configuration the engine refuses, Redis unreachable without its password, no activation),
every option refused, and check mode (read-only: the same probe)."""

from __future__ import annotations

import json

import pytest

from tests.module_harness import (
    BASELINE,
    HOSTILE_NAMES,
    REDIS_SECRET,
    UNIT,
    fails,
    stream_id,
    succeeds,
    unreachable_redis,
)

MODULE = "canary_probe"
STARTED_AT = "2026-01-10T12:00:09.950Z"  # between event 99 and event 100
ACTIVATION = {"event": "activation", "model": "patchtst", "weight": 0.1, "started_at": STARTED_AT}
CANARY = "QSC_CANARY_MODEL=patchtst PATCHTST_SHADOW_ONLY=false"


@pytest.fixture
def probe(fake_systemd, telemetry, tmp_path) -> dict:
    """patchtst the canary by its unit's environment, 300 events, its activation at event 100."""
    fake_systemd.show(Environment=CANARY)
    telemetry.add(300)
    log = tmp_path / "qsc_canary.jsonl"
    log.write_text(json.dumps(ACTIVATION) + "\n")
    return {
        "model": "patchtst",
        "baseline": BASELINE,
        "service": UNIT,
        "activation_log": str(log),
        **telemetry.args,
        "retries": 0,
        "timeout": 5,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        *[({"model": name}, f"not a valid model name: {name!r}") for name in HOSTILE_NAMES],
        ({"timeout": 0}, "timeout must be in (0, 300] s, not 0.0"),
        ({"timeout": float("nan")}, "timeout must be in (0, 300] s, not nan"),
        ({"window_events": 0}, "window_events must be in [1, 100000], not 0"),
        ({"window_events": 100_001}, "window_events must be in [1, 100000], not 100001"),
        ({"retries": -1}, "retries must be in [0, 10], not -1"),
        ({"retries": 11}, "retries must be in [0, 10], not 11"),
        ({"baseline": "xgb"}, "argument 'baseline' is of type"),
    ],
)
def test_bad_options_are_refused_before_any_read(probe, fake_systemd, args, message) -> None:
    assert message in fails(MODULE, {**probe, **args})["msg"]
    assert fake_systemd.calls() == []


def test_model_and_baseline_are_required() -> None:
    assert "missing required arguments: baseline, model" in fails(MODULE, {})["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_one_probe_of_a_canary(probe, check_mode) -> None:
    result = succeeds(MODULE, probe, check_mode=check_mode)
    assert result["changed"] is False and result["service"]["running"]
    assert (result["config"]["canary"], result["config"]["canary_weight"]) == ("patchtst", 0.1)
    assert result["activation"]["started_at"] == result["after"] == STARTED_AT
    observations = result["observations"]
    assert (observations["first_id"], observations["last_id"]) == (stream_id(100), stream_id(299))
    assert len(observations["rows"]) == 200 and observations["malformed"] == 0
    assert result["rate"]["rate_per_s"] == pytest.approx(10, rel=0.05)
    assert result["newest_id"] == stream_id(299) and result["attempts"] == 1


def test_window_events_keeps_the_newest(probe) -> None:
    result = succeeds(MODULE, {**probe, "window_events": 10, "after": stream_id(0)})
    assert result["after"] == stream_id(0)
    assert result["observations"]["first_id"] == stream_id(290)


def test_what_goes_wrong_on_the_host_is_data(probe, fake_systemd, tmp_path) -> None:
    fake_systemd.show(Environment="QSC_CANARY_MODEL=gpt")
    probe["activation_log"] = str(tmp_path / "missing.jsonl")
    result = succeeds(MODULE, {**probe, "redis_url": unreachable_redis()})
    assert result["config_error"] == "QSC_CANARY_MODEL 'gpt' is not a configured model"
    assert result["activation"] is None
    assert "unreachable" in result["telemetry_error"]
    assert REDIS_SECRET not in json.dumps(result)  # a probe that succeeds shows none either


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ({"xgb": 2, "patchtst": 0.1}, "baseline weight of xgb must be in (0, 1]: 2"),
        ({"../xgb": 1.0}, "baseline: "),
    ],
)
def test_a_bad_baseline_is_a_config_error(probe, baseline, message) -> None:
    result = succeeds(MODULE, {**probe, "baseline": baseline})
    assert result["config_error"].startswith(message) and "config" not in result


def test_a_bad_read_position_is_data(probe) -> None:
    result = succeeds(MODULE, {**probe, "after": "yesterday\nXADD"})
    assert result["telemetry_error"].startswith("bad read position 'yesterday\\nXADD': ")


def test_an_unreadable_unit_fails(probe, fake_systemd) -> None:
    fake_systemd.set(fail={"show": "Failed to connect to bus"})
    result = fails(MODULE, probe)
    assert result["msg"].startswith(f"cannot read the state of {UNIT}: `systemctl show")


@pytest.mark.parametrize("unit", ["../x.service", "x.service\nrm"])
def test_a_bad_unit_name_fails(probe, fake_systemd, unit) -> None:
    result = fails(MODULE, {**probe, "service": unit})
    assert result["msg"].startswith(f"cannot read the state of {unit}: not a valid systemd unit")
    assert fake_systemd.calls() == []
