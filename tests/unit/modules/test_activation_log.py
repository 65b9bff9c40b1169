"""The activation_log module through its main(): bad records and options refused with nothing
written, one record appended (and a torn last line repaired) in a real file, and check mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.module_harness import fails, succeeds

MODULE = "activation_log"
EVENTS = "event must be one of activation, activation_failed, rollback_executed,"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Where the log goes (its directory is created by the module)."""
    return tmp_path / "quantum" / "qsc_canary.jsonl"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"record": {"model": "patchtst"}}, f"{EVENTS}"),
        ({"record": {"event": "drop_tables"}}, f"{EVENTS}"),
        ({"record": {"event": "activation\nx"}}, f"{EVENTS}"),
        ({"record": {"event": "activation", "ts": "yesterday"}}, "ts must be a UTC time like"),
        ({"record": {"event": "activation", "weight": float("nan")}}, "not loggable as JSON"),
        ({"record": {"event": "activation"}, "mode": "0666"}, "mode 0666 would let anyone write"),
        ({"record": {"event": "activation"}, "mode": "rw-r"}, "mode must be octal permission"),
        ({"record": {"event": "activation"}, "group": "no-such-group-x"}, "no such group"),
    ],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_bad_record_or_option_writes_nothing(log, args, message, check_mode) -> None:
    result = fails(MODULE, {"path": str(log), **args}, check_mode=check_mode)
    assert result["msg"].startswith(f"activation log {log}: ")
    assert message in result["msg"]
    assert not log.parent.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "missing required arguments: record"),
        ({"record": "[1, 2"}, "argument 'record' is of type str"),
    ],
)
def test_the_spec_refuses_a_missing_or_unparsable_record(log, args, message) -> None:
    assert message in fails(MODULE, {"path": str(log), **args})["msg"]


def test_a_record_is_appended_with_the_seed_keys(log) -> None:
    record = {"event": "activation", "model": "patchtst", "weight": 0.1}
    result = succeeds(MODULE, {"path": str(log), "record": record})
    assert (result["changed"], result["created"], result["repaired"]) == (True, True, False)
    logged = json.loads(log.read_text())
    assert logged == result["record"]
    assert logged["action"] == "canary_activated" and logged["canary_weight"] == 0.1
    assert log.read_text() == result["line"] + "\n"
    assert log.stat().st_mode & 0o777 == 0o640


def test_a_torn_last_line_is_ended_before_the_record(log) -> None:
    log.parent.mkdir()
    log.write_text('{"event":"activation","model":"x"}\n{"event":"rollb')
    result = succeeds(MODULE, {"path": str(log), "record": {"event": "rollback_executed"}})
    assert (result["created"], result["repaired"]) == (False, True)
    lines = log.read_text().splitlines()
    assert lines[1] == '{"event":"rollb' and json.loads(lines[2])["event"] == "rollback_executed"


def test_check_mode_returns_the_line_and_writes_nothing(log) -> None:
    record = {"event": "shadow", "model": "patchtst", "ts": "2026-01-10T12:00:00.123Z"}
    result = succeeds(MODULE, {"path": str(log), "record": record}, check_mode=True)
    assert (result["changed"], result["created"]) == (True, False)
    assert json.loads(result["line"])["action"] == "shadow_activated"
    assert not log.parent.exists()


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("quantum/qsc_canary.jsonl", "is not an absolute path"),
        ("/var/log/quantum/../qsc_canary.jsonl", "contains '..'"),
        ("/var/log//quantum/qsc_canary.jsonl", "is not a normalised absolute path"),
    ],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_relative_or_climbing_path_is_refused(path, problem, check_mode) -> None:
    result = fails(MODULE, {"path": path, "record": {"event": "activation"}}, check_mode=check_mode)
    assert result["msg"] == f"activation log {path}: the log path {path!r} {problem}"
