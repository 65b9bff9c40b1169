"""What the engine's systemd unit looks like to the tests, written out once: the
``systemctl show`` answer of a running unit and the exact journalctl command line the engine
code must run (engine_status, engine_cycle, journal_proof, stream_stats, the monitor's probe)."""

from __future__ import annotations


def show_output(
    unit: str, invocation: str, *, restarts: int = 0, since: str = "Sat 2026-01-10 12:00:00 UTC"
) -> str:
    """``systemctl show`` of ``unit`` active and running since ``since`` (PID 4242)."""
    return f"""\
Id={unit}
LoadState=loaded
ActiveState=active
SubState=running
MainPID=4242
NRestarts={restarts}
InvocationID={invocation}
ActiveEnterTimestamp={since}
ActiveEnterTimestampMonotonic=123456789
Result=success
"""


def journal_argv(unit: str, invocation: str) -> list[str]:
    """The argv that reads the messages of one invocation of ``unit``."""
    return [
        "journalctl",
        "--no-pager",
        "--quiet",
        "-o",
        "cat",
        "-u",
        unit,
        f"_SYSTEMD_INVOCATION_ID={invocation}",
    ]
