"""The exact journalctl command line the engine code must run, written out once for the tests
that pin it (engine_status, engine_cycle, journal_proof)."""

from __future__ import annotations


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
