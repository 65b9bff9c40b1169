"""The systemd side of the engine: its unit's state (``systemctl show``), how long it has
been up, and the journal of one invocation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..utctime import iso_ms
from .commands import EngineStateError, Runner, run_checked
from .validation import validate_invocation_id, validate_unit

SHOW_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "MainPID",
    "NRestarts",
    "InvocationID",
    "ActiveEnterTimestamp",
    "ActiveEnterTimestampMonotonic",
    "Result",
)


@dataclass(frozen=True)
class ServiceState:
    """The systemd view of one unit (``systemctl show``)."""

    unit: str
    load_state: str
    active_state: str
    sub_state: str
    main_pid: int
    n_restarts: int
    invocation_id: str
    active_enter_timestamp: str
    active_enter_monotonic_us: int
    result: str

    @property
    def running(self) -> bool:
        """True when the unit is loaded, active and its main process runs."""
        return (
            self.load_state == "loaded"
            and self.active_state == "active"
            and self.sub_state == "running"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


def parse_systemctl_show(text: str) -> dict[str, str]:
    """Parse ``systemctl show`` output (``Key=Value`` lines) into a dict; values may hold ``=``."""
    properties: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            raise EngineStateError(f"unexpected line in systemctl show output: {line!r}")
        properties[key] = value
    return properties


def _int_property(properties: Mapping[str, str], name: str) -> int:
    value = properties[name]
    try:
        return int(value) if value else 0
    except ValueError:
        raise EngineStateError(f"systemctl show: {name} is not an integer: {value!r}") from None


def service_state_from_properties(unit: str, properties: Mapping[str, str]) -> ServiceState:
    """Build a :class:`ServiceState` from parsed ``systemctl show`` properties."""
    missing = [name for name in SHOW_PROPERTIES if name not in properties]
    if missing:
        raise EngineStateError(f"systemctl show output for {unit} lacks {', '.join(missing)}")
    return ServiceState(
        unit=unit,
        load_state=properties["LoadState"],
        active_state=properties["ActiveState"],
        sub_state=properties["SubState"],
        main_pid=_int_property(properties, "MainPID"),
        n_restarts=_int_property(properties, "NRestarts"),
        invocation_id=properties["InvocationID"],
        active_enter_timestamp=properties["ActiveEnterTimestamp"],
        active_enter_monotonic_us=_int_property(properties, "ActiveEnterTimestampMonotonic"),
        result=properties["Result"],
    )


def read_service_state(run: Runner, unit: str) -> ServiceState:
    """Read the state of ``unit`` with ``systemctl show``; raise on bad input or failure."""
    argv = ["systemctl", "show", validate_unit(unit), "--property=" + ",".join(SHOW_PROPERTIES)]
    return service_state_from_properties(unit, parse_systemctl_show(run_checked(run, argv)))


def service_uptime(
    service: ServiceState,
    monotonic_now: float | None = None,
    wall_now: float | None = None,
) -> dict[str, Any]:
    """How long the current start has been up, and when it began in UTC.

    Computed from ActiveEnterTimestampMonotonic and this host's monotonic clock (what systemd
    uses), so neither the host's time zone nor ``systemctl``'s timestamp format matters. Both
    values are None when the unit is not active.
    """
    if service.active_state != "active" or service.active_enter_monotonic_us <= 0:
        return {"uptime_s": None, "active_since": None}
    monotonic_now = (
        time.clock_gettime(time.CLOCK_MONOTONIC) if monotonic_now is None else monotonic_now
    )
    wall_now = time.time() if wall_now is None else wall_now
    uptime = max(0.0, monotonic_now - service.active_enter_monotonic_us / 1e6)
    return {"uptime_s": round(uptime, 3), "active_since": iso_ms(wall_now - uptime)}


# journalctl printing the matching entries' messages only, one per line, without a pager.
JOURNAL_MESSAGES = ("journalctl", "--no-pager", "--quiet", "-o", "cat")


def read_journal(run: Runner, unit: str, invocation_id: str) -> list[str]:
    """Return the journal messages of one invocation of ``unit``, oldest first."""
    argv = [
        *JOURNAL_MESSAGES,
        "-u",
        validate_unit(unit),
        "_SYSTEMD_INVOCATION_ID=" + validate_invocation_id(invocation_id),
    ]
    return run_checked(run, argv).splitlines()
