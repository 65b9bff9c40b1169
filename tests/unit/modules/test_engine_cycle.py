"""The engine_cycle module through its main() against the fake systemctl/journalctl: bad unit
names and durations refused before any command runs, stop then start (never restart) with the
new invocation proven, each failure's message, and check mode."""

from __future__ import annotations

import pytest

from tests.module_harness import INVOCATION, NEW_INVOCATION, UNIT, fails, succeeds

MODULE = "engine_cycle"
FAST = {"unit": UNIT, "timeout": 2, "settle": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"unit": "../../etc/passwd"}, "not a valid systemd unit name: '../../etc/passwd'"),
        ({"unit": "engine.service\nsystemctl poweroff"}, "not a valid systemd unit name"),
        ({"unit": "--force.service"}, "not a valid systemd unit name"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": 3601}, "timeout"),
        ({"settle": float("nan")}, "settle"),
    ],
)
def test_bad_options_run_no_command(fake_systemd, args, message) -> None:
    result = fails(MODULE, {**FAST, **args})
    assert message in result["msg"]
    assert fake_systemd.calls() == []


def test_timeout_must_be_a_number(fake_systemd) -> None:
    assert "argument 'timeout' is of type" in fails(MODULE, {**FAST, "timeout": "long"})["msg"]


def test_stop_then_start_proves_a_new_invocation(fake_systemd) -> None:
    result = succeeds(MODULE, FAST)
    assert result["changed"]
    assert (result["previous_invocation_id"], result["invocation_id"]) == (
        INVOCATION,
        NEW_INVOCATION,
    )
    assert (result["main_pid"], result["started_at"]) == (4242, "2026-11-23T18:01:02.123456Z")
    verbs = [argv[1] for argv in fake_systemd.calls() if argv[1] in ("stop", "start", "restart")]
    assert verbs == ["stop", "start"]


def test_check_mode_reads_the_state_and_cycles_nothing(fake_systemd) -> None:
    result = succeeds(MODULE, FAST, check_mode=True)
    assert (result["changed"], result["would_cycle"]) == (True, True)
    assert (result["invocation_id"], result["main_pid"]) == (INVOCATION, 100)
    assert [argv[1] for argv in fake_systemd.calls()] == ["show"]


def test_a_refused_stop_fails_and_starts_nothing(fake_systemd) -> None:
    fake_systemd.set(fail={"stop": f"Failed to stop {UNIT}: Access denied"})
    result = fails(MODULE, FAST)
    assert result["msg"].startswith(f"cannot stop+start {UNIT}: `systemctl stop {UNIT}` failed")
    assert "Access denied" in result["msg"]
    assert "start" not in [argv[1] for argv in fake_systemd.calls()]


def test_a_failed_start_names_the_unit_state_and_journal(fake_systemd) -> None:
    fake_systemd.set(
        fail={"start": f"Job for {UNIT} failed."},
        on_start={"ActiveState": "failed", "SubState": "failed", "InvocationID": NEW_INVOCATION},
        journal=["[ERROR] config: SIM_XGB: unknown behaviour"],
    )
    result = fails(MODULE, FAST)
    assert result["msg"].startswith(f"stop+start of {UNIT} failed: `systemctl start {UNIT}` failed")
    assert result["msg"].endswith("the unit is now failed/failed")
    assert result["state"]["active_state"] == "failed"
    assert result["journal"] == ["[ERROR] config: SIM_XGB: unknown behaviour"]


def test_a_unit_that_never_comes_up_times_out(fake_systemd) -> None:
    fake_systemd.set(on_start={"ActiveState": "activating", "SubState": "start"})
    result = fails(MODULE, {**FAST, "timeout": 0.5})
    assert result["msg"].startswith(f"stop+start of {UNIT} failed: ")
    assert "activating/start" in result["msg"]


def test_an_unreadable_unit_fails_before_stopping(fake_systemd) -> None:
    fake_systemd.set(fail={"show": "Failed to connect to bus: No such file or directory"})
    result = fails(MODULE, FAST)
    assert result["msg"].startswith(f"cannot stop+start {UNIT}: `systemctl show {UNIT}")
    assert [argv[1] for argv in fake_systemd.calls()] == ["show"]
