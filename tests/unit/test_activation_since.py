"""The start of a ``--since-activation`` window (model_safety.activation.since): the newest
activation, shadow or promotion record of the model in a real log file, its time, and every
refusal (bad path, no log, unreadable log, torn last line, no record of the model, no time)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from model_safety.activation import log as al
from model_safety.activation.since import ActivationStartError, activation_start, is_start_of
from model_safety.cutover import parse_cutover


@pytest.fixture
def log_path(tmp_path: Path) -> str:
    return str(tmp_path / "log" / "qsc_canary.jsonl")


def append(path: str, **record: Any) -> dict[str, Any]:
    return al.append_record(path, record)["record"]


def test_the_newest_start_record_of_the_model_wins_and_its_started_at_is_the_start(log_path):
    append(log_path, event="shadow", ts="2026-01-09T10:00:00.000Z", model="patchtst")
    append(log_path, event="activation", ts="2026-01-10T12:00:05.000Z", model="patchtst",
           weight=0.1, started_at="2026-01-10T12:00:01.250000Z")  # fmt: skip
    append(log_path, event="activation", ts="2026-01-10T13:00:00.000Z", model="nhits")
    append(log_path, event="monitoring_started", ts="2026-01-10T13:00:01.000Z", model="patchtst")
    start, record = activation_start(log_path, "patchtst")
    assert start == "2026-01-10T12:00:01.250000Z"
    assert record["action"] == "canary_activated" and record["weight"] == 0.1
    parse_cutover(start)  # usable as --after


@pytest.mark.parametrize(
    ("event", "action"),
    [("activation", "canary_activated"), ("shadow", "shadow_activated"),
     ("promotion", "promotion_step")],
)  # fmt: skip
def test_each_kind_of_start_record_counts(log_path, event, action):
    append(log_path, event="activation", ts="2026-01-10T12:00:00.000Z", model="patchtst")
    append(log_path, event=event, ts="2026-01-11T08:00:00.000Z", model="patchtst")
    start, record = activation_start(log_path, "patchtst")
    assert (start, record["action"]) == ("2026-01-11T08:00:00.000Z", action)


def test_a_rollback_or_violation_after_the_activation_does_not_move_the_start(log_path):
    append(log_path, event="activation", ts="2026-01-10T12:00:00.000Z", model="patchtst")
    append(log_path, event="violation", ts="2026-01-10T12:30:00.000Z", model="patchtst",
           rule="action_collapse", text="Action collapse")  # fmt: skip
    append(log_path, event="rollback_executed", ts="2026-01-10T12:31:00.000Z", model="patchtst")
    assert activation_start(log_path, "patchtst")[0] == "2026-01-10T12:00:00.000Z"


def test_the_log_order_decides_not_the_clocks(log_path):
    append(log_path, event="activation", ts="2026-01-12T00:00:00.000Z", model="patchtst")
    append(log_path, event="promotion", ts="2026-01-11T00:00:00.000Z", model="patchtst")
    assert activation_start(log_path, "patchtst")[1]["event"] == "promotion"


def test_a_seed_record_without_event_is_read_by_action_and_canary_model(log_path):
    os.makedirs(os.path.dirname(log_path))
    seed = {"timestamp": "2026-01-10T12:00:00Z", "action": "canary_activated",
            "canary_model": "patchtst", "canary_weight": 0.1}  # fmt: skip
    other = {"timestamp": "2026-01-10T13:00:00Z", "action": "canary_activated",
             "canary_model": "nhits"}  # fmt: skip
    Path(log_path).write_text(json.dumps(seed) + "\n" + json.dumps(other) + "\n")
    assert activation_start(log_path, "patchtst") == ("2026-01-10T12:00:00Z", seed)


def test_a_bad_started_at_falls_back_to_the_record_time(log_path):
    append(log_path, event="activation", ts="2026-01-10T12:00:05.000Z", model="patchtst",
           started_at="yesterday")  # fmt: skip
    assert activation_start(log_path, "patchtst")[0] == "2026-01-10T12:00:05.000Z"


def test_unreadable_earlier_lines_are_skipped(log_path):
    append(log_path, event="activation", ts="2026-01-10T12:00:00.000Z", model="patchtst")
    with open(log_path, "a") as handle:
        handle.write("not json\n")
    append(log_path, event="monitoring_started", ts="2026-01-10T12:00:01.000Z", model="patchtst")
    assert activation_start(log_path, "patchtst")[0] == "2026-01-10T12:00:00.000Z"


def test_start_record_matching():
    assert is_start_of({"event": "shadow", "model": "m"}, "m")
    assert not is_start_of({"event": "shadow_failed", "model": "m"}, "m")
    assert not is_start_of({"event": "activation", "model": "x", "canary_model": "m"}, "m")
    # a record with the project's event key is judged by it, not by a seed action beside it
    assert not is_start_of({"event": "violation", "action": "canary_activated",
                            "canary_model": "m"}, "m")  # fmt: skip
    assert not is_start_of(["activation", "m"], "m")


@pytest.mark.parametrize(
    ("path", "wanted"),
    [("relative/log.jsonl", "absolute"), ("/var/log/../log.jsonl", ".."), ("", "")],
)
def test_a_bad_path_is_refused(path, wanted):
    with pytest.raises(ActivationStartError, match="the log path") as caught:
        activation_start(path, "patchtst")
    assert wanted in str(caught.value)


def test_no_log(log_path):
    with pytest.raises(ActivationStartError, match=r"^no activation log at .*qsc_canary\.jsonl"):
        activation_start(log_path, "patchtst")


def test_a_log_that_cannot_be_read(tmp_path):
    with pytest.raises(ActivationStartError, match="cannot read the activation log: cannot read"):
        activation_start(str(tmp_path), "patchtst")  # a directory


def test_a_torn_last_line_is_refused_it_may_be_the_newest_record(log_path):
    append(log_path, event="activation", ts="2026-01-10T12:00:00.000Z", model="patchtst")
    with open(log_path, "a") as handle:
        handle.write('{"event": "promotion", "ts": "2026-01-1')
    with pytest.raises(ActivationStartError, match="ends in a torn line"):
        activation_start(log_path, "patchtst")


def test_no_record_of_the_model(log_path):
    append(log_path, event="activation", ts="2026-01-10T12:00:00.000Z", model="nhits")
    append(log_path, event="activation_failed", ts="2026-01-10T12:00:00.000Z", model="patchtst")
    with pytest.raises(ActivationStartError) as caught:
        activation_start(log_path, "patchtst")
    assert str(caught.value) == (
        f"{log_path} has no canary_activated, shadow_activated, promotion_step record of "
        "patchtst: it was never activated on this host (give --after with the time yourself)"
    )


def test_an_empty_log_has_no_record(log_path):
    os.makedirs(os.path.dirname(log_path))
    Path(log_path).write_text("")
    with pytest.raises(ActivationStartError, match="has no canary_activated"):
        activation_start(log_path, "patchtst")


def test_a_record_without_a_usable_time(log_path):
    os.makedirs(os.path.dirname(log_path))
    record = {"action": "canary_activated", "canary_model": "patchtst", "timestamp": "noon"}
    Path(log_path).write_text(json.dumps(record) + "\n")
    with pytest.raises(ActivationStartError, match="has no usable time in started_at, ts"):
        activation_start(log_path, "patchtst")
