"""Finding the lab's processes in /proc, including those a killed lab left behind.

Every nspawn the lab starts carries `--setenv=MODEL_SAFETY_LAB_MACHINE=<name>`, which nspawn
hands to the container's init. When nspawn itself is killed, the init (and so the whole
container) survives, reparented to the machine's PID 1; that marker is how lab-up finds it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "MODEL_SAFETY_LAB_MACHINE"


@dataclass(frozen=True)
class LabProcess:
    pid: int
    machine: str
    kind: str  # "nspawn" (the supervisor on the host) or "init" (the container's PID 1)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # gone, or a kernel thread
        return b""


def _is_namespace_init(pid_dir: Path) -> bool:
    for line in _read(pid_dir / "status").decode(errors="replace").splitlines():
        if line.startswith("NSpid:"):
            ids = line.split()[1:]
            return len(ids) > 1 and ids[-1] == "1"
    return False


def alive(pid: int) -> bool:
    """True when pid runs (a zombie is not running)."""
    stat = _read(Path(f"/proc/{pid}/stat")).decode(errors="replace")
    return bool(stat) and stat.rsplit(")", 1)[-1].split()[0] != "Z"


def lab_processes() -> list[LabProcess]:
    found = []
    prefix = f"{MARKER}=".encode()
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        pid = int(pid_dir.name)
        argv = _read(pid_dir / "cmdline").split(b"\0")
        if argv and argv[0].endswith(b"systemd-nspawn"):
            for arg in argv:
                if arg.startswith(b"--setenv=" + prefix):
                    name = arg.removeprefix(b"--setenv=" + prefix).decode()
                    found.append(LabProcess(pid, name, "nspawn"))
            continue
        for variable in _read(pid_dir / "environ").split(b"\0"):
            if variable.startswith(prefix) and _is_namespace_init(pid_dir):
                found.append(LabProcess(pid, variable.removeprefix(prefix).decode(), "init"))
                break
    return [proc for proc in found if alive(proc.pid)]


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of pids runs; return those still running at the timeout."""
    deadline = time.monotonic() + timeout
    remaining = [pid for pid in pids if alive(pid)]
    while remaining and time.monotonic() < deadline:
        time.sleep(0.2)
        remaining = [pid for pid in remaining if alive(pid)]
    return remaining


def signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
