"""Unit tests of the stop + start cycle (model_safety.engine.cycle): a fake runner scripted per
argv answers systemctl and journalctl, a fake clock makes the polling instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from model_safety.engine import cycle as sc
from model_safety.engine.commands import CommandError, EngineStateError
from model_safety.engine.systemd import (
    SHOW_PROPERTIES,
    parse_systemctl_show,
    service_state_from_properties,
)
from tests.fake_clock import FakeClock
from tests.systemd_fakes import journal_argv

UNIT = "quantum-ai-engine.service"
OLD = "0123456789abcdef0123456789abcdef"
NEW = "fedcba9876543210fedcba9876543210"
NEWER = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
SHOW = ["systemctl", "show", UNIT, "--property=" + ",".join(SHOW_PROPERTIES)]
STOP = ["systemctl", "stop", UNIT]
START = ["systemctl", "start", UNIT]
STARTED_AT = ["systemctl", "show", "--timestamp=us+utc", "--property=ActiveEnterTimestamp", UNIT]
STAMP = "ActiveEnterTimestamp=Mon 2026-11-23 18:01:02.123456 UTC\n"


def show(
    active: str = "active",
    sub: str = "running",
    pid: int = 100,
    restarts: int = 0,
    invocation: str = OLD,
    result: str = "success",
) -> tuple[int, str, str]:
    properties = {
        "Id": UNIT,
        "LoadState": "loaded",
        "ActiveState": active,
        "SubState": sub,
        "MainPID": str(pid),
        "NRestarts": str(restarts),
        "InvocationID": invocation,
        "ActiveEnterTimestamp": "Mon 2026-11-23 18:01:02 UTC",
        "ActiveEnterTimestampMonotonic": "123456789",
        "Result": result,
    }
    return 0, "".join(f"{key}={value}\n" for key, value in properties.items()), ""


OK = (0, "", "")


class Script:
    """Answers each argv from its own queue (the last answer repeats); records every call."""

    def __init__(self, answers: dict[tuple[str, ...], list[tuple[int, str, str]]]) -> None:
        self.answers = {key: list(value) for key, value in answers.items()}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        assert isinstance(argv, list), "argv lists only, never shell strings"
        assert all(isinstance(arg, str) for arg in argv)
        assert "restart" not in argv, "never systemctl restart"
        self.calls.append(argv)
        queue = self.answers.get(tuple(argv))
        assert queue, f"unexpected command {argv}"
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def commands(self) -> list[str]:
        """The calls, shortened to stop/start/show/started_at/journal."""
        names = {tuple(SHOW): "show", tuple(STOP): "stop", tuple(START): "start"}
        names[tuple(STARTED_AT)] = "started_at"
        return [names.get(tuple(argv), argv[0]) for argv in self.calls]


def script(shows: list[tuple[int, str, str]], **extra: list[tuple[int, str, str]]) -> Script:
    answers = {
        tuple(SHOW): shows,
        tuple(STOP): extra.get("stop", [OK]),
        tuple(START): extra.get("start", [OK]),
        tuple(STARTED_AT): extra.get("started_at", [(0, STAMP, "")]),
        tuple(journal_argv(UNIT, NEW)): extra.get("journal", [(0, "", "")]),
        tuple(journal_argv(UNIT, NEWER)): extra.get("journal", [(0, "", "")]),
    }
    return Script(answers)


def cycle(run: Script, clock: FakeClock, **kwargs):
    return sc.cycle_service(run, UNIT, sleep=clock.sleep, clock=clock, **kwargs)


# --------------------------------------------------------------------------- happy path


def test_stop_then_start_then_a_new_stable_invocation():
    run = script([show(invocation=OLD, pid=50), show(invocation=NEW, pid=100)])
    clock = FakeClock()
    result = cycle(run, clock, settle=3.0)
    assert result == {
        "unit": UNIT,
        "previous_invocation_id": OLD,
        "invocation_id": NEW,
        "main_pid": 100,
        "n_restarts": 0,
        "started_at": "2026-11-23T18:01:02.123456Z",
        "started_at_epoch": datetime(2026, 11, 23, 18, 1, 2, 123456, tzinfo=UTC).timestamp(),
        "stop_seconds": 0.0,
        "start_seconds": 0.0,
        "elapsed": 3.0,
        "state": service_state_from_properties(
            UNIT, parse_systemctl_show(show(invocation=NEW, pid=100)[1])
        ).as_dict(),
    }
    # One read before, stop, start, one read that sees it running, six settle reads (0.5 s).
    assert run.commands() == ["show", "stop", "start", "show"] + ["show"] * 6 + ["started_at"]
    assert clock.sleeps == [0.5] * 6


def test_waits_for_the_new_invocation_to_run():
    run = script(
        [
            show(invocation=OLD),
            show(active="activating", sub="start", invocation=NEW),
            show(invocation=OLD),  # still the old one: systemctl show raced the start
            show(invocation=NEW, pid=101),
        ]
    )
    clock = FakeClock()
    result = cycle(run, clock, settle=0)
    assert result["invocation_id"] == NEW
    assert result["main_pid"] == 101
    assert clock.sleeps == [0.5, 0.5]
    assert run.commands() == ["show", "stop", "start", "show", "show", "show", "started_at"]


def test_a_unit_that_was_stopped_is_started():
    run = script([show(active="inactive", sub="dead", pid=0, invocation=""), show(invocation=NEW)])
    result = cycle(run, FakeClock(), settle=0)
    assert result["previous_invocation_id"] == ""
    assert result["invocation_id"] == NEW


def test_durations_are_measured_around_each_step():
    clock = FakeClock()
    run = script([show(), show(invocation=NEW)])
    real_call = run.__call__

    def slow(argv):
        clock.now += {"stop": 1.25, "start": 2.5}.get(argv[1], 0.0)
        return real_call(argv)

    result = sc.cycle_service(slow, UNIT, settle=1.0, sleep=clock.sleep, clock=clock)
    assert (result["stop_seconds"], result["start_seconds"], result["elapsed"]) == (1.25, 2.5, 4.75)


# --------------------------------------------------------------------------- failures


def test_failed_stop_raises_with_stderr_and_never_starts():
    run = script([show()], stop=[(1, "", "Failed to stop unit: Access denied\n")])
    with pytest.raises(EngineStateError, match="Access denied") as caught:
        cycle(run, FakeClock())
    assert not isinstance(caught.value, sc.CycleError)
    assert run.commands() == ["show", "stop"]


def test_failed_start_carries_state_and_journal_tail_of_the_new_invocation():
    lines = [f"line {n}" for n in range(80)] + ["[ERROR] config: SIM_XGB: unknown behaviour"]
    run = script(
        [show(), show(active="failed", sub="failed", pid=0, invocation=NEW, result="exit-code")],
        start=[(1, "", "Job for quantum-ai-engine.service failed.\n")],
        journal=[(0, "\n".join(lines) + "\n", "")],
    )
    with pytest.raises(sc.CycleError) as caught:
        cycle(run, FakeClock())
    error = caught.value
    assert "`systemctl start quantum-ai-engine.service` failed (rc 1): Job for" in error.reason
    assert error.state.active_state == "failed"
    assert error.journal_invocation_id == NEW
    assert len(error.journal) == sc.JOURNAL_TAIL
    assert error.journal == lines[-50:]
    assert run.commands() == ["show", "stop", "start", "show", "journalctl"]
    assert sc.cycle_failure_message(UNIT, error) == (
        f"stop+start of {UNIT} failed: {error.reason}; the unit is now failed/failed"
    )


@pytest.mark.parametrize("after", ["", OLD])
def test_failed_start_without_a_new_invocation_has_no_journal(after):
    run = script(
        [show(), show(active="inactive", sub="dead", pid=0, invocation=after)],
        start=[(5, "", "Unit quantum-ai-engine.service not found.\n")],
    )
    with pytest.raises(sc.CycleError) as caught:
        cycle(run, FakeClock())
    assert caught.value.journal == []
    assert caught.value.journal_invocation_id is None
    assert "journalctl" not in run.commands()


def test_failed_start_with_unreadable_state_says_so():
    run = script([show(), (1, "", "Failed to connect to bus\n")], start=[(1, "", "boom\n")])
    with pytest.raises(sc.CycleError) as caught:
        cycle(run, FakeClock())
    error = caught.value
    assert error.state is None
    assert "state is unreadable" in error.reason
    assert "Failed to connect to bus" in error.reason
    assert sc.cycle_failure_message(UNIT, error).endswith("; the unit is in an unknown state")


def test_unreadable_journal_is_reported_not_hidden():
    run = script(
        [show(), show(active="failed", sub="failed", invocation=NEW)],
        start=[(1, "", "failed\n")],
        journal=[(1, "", "No journal files were found.\n")],
    )
    with pytest.raises(sc.CycleError) as caught:
        cycle(run, FakeClock())
    assert caught.value.journal[0].startswith("(journal unreadable:")
    assert "No journal files were found." in caught.value.journal[0]


def test_never_active_times_out_with_the_fake_clock():
    run = script(
        [show(), show(active="activating", sub="auto-restart", pid=0, invocation=NEW)],
        journal=[(0, "[FATAL] cannot load model\n", "")],
    )
    clock = FakeClock()
    with pytest.raises(sc.CycleError, match="no new invocation active and running after 2 s"):
        cycle(run, clock, timeout=2)
    assert clock.now == 1002.0
    assert clock.sleeps == [0.5] * 4
    with pytest.raises(sc.CycleError) as caught:
        cycle(script([show(), show(active="activating", sub="start", invocation=NEW)]), FakeClock())
    assert "ActiveState=activating, SubState=start" in caught.value.reason


def test_old_invocation_still_running_is_never_taken_for_the_new_one():
    run = script([show(), show(invocation=OLD)])
    with pytest.raises(sc.CycleError, match="InvocationID=" + OLD) as caught:
        cycle(run, FakeClock(), timeout=1)
    assert caught.value.journal == []  # the old invocation's journal proves nothing


def test_a_failed_unit_fails_at_once():
    run = script(
        [show(), show(active="failed", sub="failed", invocation=NEW, result="exit-code")],
        journal=[(0, "[ERROR] config: ENGINE_RATE: not a number\n", "")],
    )
    clock = FakeClock()
    with pytest.raises(sc.CycleError, match=r"the unit failed \(Result=exit-code\)") as caught:
        cycle(run, clock)
    assert clock.sleeps == []
    assert caught.value.journal == ["[ERROR] config: ENGINE_RATE: not a number"]


@pytest.mark.parametrize(
    ("later", "what"),
    [
        (show(invocation=NEW, restarts=1, pid=100), "NRestarts 0 -> 1"),
        (show(invocation=NEWER, restarts=1, pid=200), f"InvocationID {NEW} -> {NEWER}"),
        (show(invocation=NEW, pid=300), "MainPID 100 -> 300"),
        (show(active="activating", sub="auto-restart", pid=0, invocation=NEW), "MainPID 100 -> -"),
        (show(active="deactivating", sub="stop-sigterm", invocation=NEW), "deactivating/stop-"),
    ],
)
def test_crash_loop_during_settle(later, what):
    run = script([show(), show(invocation=NEW, pid=100), show(invocation=NEW, pid=100), later])
    clock = FakeClock()
    with pytest.raises(sc.CycleError, match="did not stay up for 3 s") as caught:
        cycle(run, clock, settle=3)
    assert what in caught.value.reason
    assert clock.sleeps == [0.5, 0.5]
    assert "started_at" not in run.commands()


def test_crash_loop_reports_the_newest_invocation_journal():
    run = script(
        [show(), show(invocation=NEW), show(invocation=NEWER, restarts=1, pid=7)],
        journal=[(0, "[FATAL] boom\n", "")],
    )
    with pytest.raises(sc.CycleError) as caught:
        cycle(run, FakeClock())
    assert caught.value.journal_invocation_id == NEWER
    assert caught.value.state.invocation_id == NEWER


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": -1}, "timeout must be in 0..3600"),
        ({"timeout": float("nan")}, "timeout must be in 0..3600"),
        ({"settle": 3601}, "settle must be in 0..3600"),
        ({"settle": True}, "settle must be a number"),
        ({"timeout": "60"}, "timeout must be a number"),
    ],
)
def test_bad_durations_run_nothing(kwargs, message):
    run = script([show()])
    with pytest.raises(EngineStateError, match=message):
        cycle(run, FakeClock(), **kwargs)
    assert run.calls == []


@pytest.mark.parametrize("unit", ["quantum-ai-engine", "a b.service", "--all.service", ""])
def test_bad_unit_runs_nothing(unit):
    run = script([show()])
    with pytest.raises(EngineStateError, match="not a valid systemd unit name"):
        sc.cycle_service(run, unit)
    assert run.calls == []


# --------------------------------------------------------------------------- start time


def test_read_started_at_parses_utc_with_microseconds():
    run = script([show()])
    moment = sc.read_started_at(run, UNIT)
    assert moment == datetime(2026, 11, 23, 18, 1, 2, 123456, tzinfo=UTC)
    assert sc.format_utc(moment) == "2026-11-23T18:01:02.123456Z"
    assert run.calls == [STARTED_AT]


def test_read_started_at_fails_on_a_failed_command():
    run = script([show()], started_at=[(1, "", "Failed to get properties\n")])
    with pytest.raises(CommandError, match="Failed to get properties"):
        sc.read_started_at(run, UNIT)


def test_format_utc_converts_and_keeps_zero_microseconds():
    moment = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    assert sc.format_utc(moment) == "2026-01-10T12:00:00.000000Z"


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("ActiveEnterTimestamp=\n", "empty"),
        ("ActiveEnterTimestamp=Mon 2026-11-23 18:01:02 UTC\n", "not 'Day"),
        ("ActiveEnterTimestamp=Mon 2026-11-23 18:01:02.123456 CET\n", "not 'Day"),
        ("ActiveEnterTimestamp=2026-11-23 18:01:02.123456 UTC\n", "not 'Day"),
        ("ActiveEnterTimestamp=Mon 2026-11-23 18:01:02.123456 UTC junk\n", "not 'Day"),
        ("ActiveEnterTimestamp=Tue 2026-11-23 18:01:02.123456 UTC\n", "wrong weekday"),
        ("ActiveEnterTimestamp=Mon 2026-02-30 18:01:02.123456 UTC\n", "not a valid date"),
        ("ActiveEnterTimestamp=Mon 2026-11-23 25:01:02.123456 UTC\n", "not a valid date"),
        ("", "expected only ActiveEnterTimestamp"),
        (STAMP + "InvocationID=" + NEW + "\n", "expected only ActiveEnterTimestamp"),
        ("garbage\n", "unexpected line"),
    ],
)
def test_malformed_timestamps_are_refused(output, message):
    with pytest.raises(EngineStateError, match=message):
        sc.parse_active_enter_timestamp(output)


def test_a_malformed_start_time_fails_the_cycle():
    run = script([show(), show(invocation=NEW)], started_at=[(0, "ActiveEnterTimestamp=\n", "")])
    with pytest.raises(EngineStateError, match="empty"):
        cycle(run, FakeClock(), settle=0)
