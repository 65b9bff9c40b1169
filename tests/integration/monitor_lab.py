"""What the canary monitor's lab tests share: canaries whose model turns bad at a known time,
the monitor run as a process (as an operator runs it), and its logs read back."""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from labctl.config import REPO_ROOT
from labctl.remote import LabHost
from tests.integration.lab_activation import ANSIBLE_BIN, fresh, log_records, playbook

# Seconds after the canary's start at which its model turns bad (SIM_<MODEL> schedule,
# SIM_CRASH_AFTER, SIM_SILENT_AFTER): after the canary playbook has proven the start.
TURNS_BAD_AT = 15
FAULTS_WITH_CANARY = {"SIM_FAULTS_ONLY_WITH_CANARY": "true"}
MONITOR_ARGS = ("--model", "patchtst", "--interval", "2s", "--stall-checks", "2")


@dataclass
class MonitorRun:
    returncode: int
    output: str
    seconds: float
    activation_log: list[dict]
    checks: list[dict]


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def canaries(hosts: list[LabHost], envs: list[dict[str, str]]) -> dict[str, dict]:
    """Reset each host with its env, run the canary on all of them at once (serial = all);
    the pre-canary snapshots by host name."""
    with ThreadPoolExecutor(len(hosts)) as pool:
        pairs = zip(hosts, envs, strict=True)
        befores = list(pool.map(lambda pair: fresh(pair[0], **pair[1]), pairs))
    run = playbook(
        "canary.yml",
        "-e",
        "model=patchtst",
        "-e",
        f"canary_serial={len(hosts)}",
        "--limit",
        ",".join(host.name for host in hosts),
    )
    assert run.returncode == 0, run.output
    return {host.name: before for host, before in zip(hosts, befores, strict=True)}


def activation_started_at(host: LabHost) -> float:
    """When the canary's engine start began (epoch seconds, from the host's activation log)."""
    record = next(r for r in reversed(log_records(host)) if r["event"] == "activation")
    return epoch(record["started_at"])


def monitor_argv(state: Path, *args: str) -> list[str]:
    return [
        str(ANSIBLE_BIN / "model-safety"),
        "monitor",
        *MONITOR_ARGS,
        "--state-dir",
        str(state / "state"),
        "--activation-log",
        str(state / "activation.jsonl"),
        "--check-log",
        str(state / "checks.jsonl"),
        *args,
    ]


def monitor_env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}


def start_monitor(state: Path, *args: str) -> subprocess.Popen[str]:
    """The monitor in a process group of its own, with the playbook runs it starts: killing
    the group kills them all, as systemd kills the unit's cgroup (this sandbox ignores SIGHUP,
    so runs orphaned by a killed monitor would otherwise go on)."""
    return subprocess.Popen(
        monitor_argv(state, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
        env=monitor_env(),
        start_new_session=True,
    )


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def monitor(state: Path, *args: str, timeout: float = 300) -> MonitorRun:
    """Run the monitor to its end; its exit code, output and logs."""
    began = time.monotonic()
    result = subprocess.run(
        monitor_argv(state, *args),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=monitor_env(),
        timeout=timeout,
        check=False,
    )
    return MonitorRun(
        result.returncode,
        result.stdout + result.stderr,
        round(time.monotonic() - began, 1),
        read_jsonl(state / "activation.jsonl"),
        read_jsonl(state / "checks.jsonl"),
    )


def records(run: MonitorRun, event: str, host: str) -> list[dict]:
    return [r for r in run.activation_log if r["event"] == event and r["host"] == host]


def host_checks(run: MonitorRun, host: str) -> list[dict]:
    return [c for c in run.checks if c.get("host") == host and "check" in c]


def conclusive_checks_since(run: MonitorRun, host: str, since: float) -> list[dict]:
    """The host's checks after ``since`` that judged something (not inconclusive)."""
    return [
        c
        for c in host_checks(run, host)
        if epoch(c["ts"]) > since and c["status"] != "inconclusive"
    ]
