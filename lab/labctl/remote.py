"""Driving a lab host's engine (tests, benchmarks): SSH, env file, stop/start, journal, stream.

Everything goes over the lab's real SSH (argv lists; the remote command is quoted with
shlex.join), as an operator's tooling would. Each helper fails loudly with what the host said.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import dataclass

from model_safety.engine.git import read_git_head
from model_safety.engine.systemd import read_journal
from model_safety.site_defaults import DEFAULT_STREAM, DEFAULT_TRADE_LOG

from . import hosts as lab_hosts
from .config import LabConfig

ENGINE_UNIT = lab_hosts.ENGINE_UNIT
ENV_FILE = "/" + lab_hosts.ENGINE_ENV
CHECKOUT = "/" + lab_hosts.ENGINE_CHECKOUT
DROPIN_DIR = f"/etc/systemd/system/{ENGINE_UNIT}.d"
STREAM = DEFAULT_STREAM
TRADE_DB = DEFAULT_TRADE_LOG
TEST_DROPIN_PREFIX = "90-test-"
# What activations leave on a host (inventory/group_vars/engine.yml): lease and gate reports
# (/var/lib/model-safety), the log, and the backups (their directory is part of the
# production layout and stays). A reset removes it all.
ACTIVATION_STATE = ("/var/lib/model-safety", "/var/log/quantum/qsc_canary.jsonl")
BACKUP_DIR = "/opt/quantum/backups/model_activations"
# The engine simulator's SIM_DISK_GROWTH file (beside the trade log).
SIM_DISK_GROWTH_FILE = "/opt/quantum/data/sim_disk_growth.bin"


class HostCommandError(AssertionError):
    pass


@dataclass(frozen=True)
class Started:
    invocation: str
    cutover: str


@dataclass
class LabHost:
    config: LabConfig
    name: str
    address: str

    def run(
        self, *argv: str, check: bool = True, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            lab_hosts.ssh_argv(self.config, self.address, list(argv)),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise HostCommandError(
                f"{self.name}: {shlex.join(argv)} exited {result.returncode}: "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def out(self, *argv: str) -> str:
        return self.run(*argv).stdout.strip()

    def read_file(self, path: str) -> str:
        return self.run("cat", path).stdout

    def write_file(
        self, path: str, content: str, mode: str = "0640", owner: str = "root:qt"
    ) -> None:
        """Write atomically (temp file + rename), as the real roles do."""
        tmp = f"{path}.test-tmp"
        self.run("sh", "-c", 'cat > "$1"', "sh", tmp, stdin=content)
        self.run("chmod", mode, tmp)
        self.run("chown", owner, tmp)
        self.run("mv", "-f", tmp, path)

    # The engine's service -------------------------------------------------------------
    def show(self, *properties: str) -> dict[str, str]:
        text = self.out("systemctl", "show", ENGINE_UNIT, "--property=" + ",".join(properties))
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def cycle(self, expect_active: bool = True, timeout: float = 30) -> Started:
        """daemon-reload, stop, start (never restart); return the new invocation and the
        stream id before it (the cutover: every later event is from the new start)."""
        self.run("systemctl", "daemon-reload")
        self.run("systemctl", "stop", ENGINE_UNIT)
        self.run("systemctl", "reset-failed", ENGINE_UNIT, check=False)
        cutover = self.last_stream_id()
        started = self.run("systemctl", "start", ENGINE_UNIT, check=False, timeout=timeout)
        failed_once = (
            started.returncode != 0 and self.show("ExecMainStatus")["ExecMainStatus"] == "219"
        )
        if failed_once or self.show("NRestarts")["NRestarts"] != "0":
            # 219/CGROUP: systemd in the nspawn container sometimes cannot set up the unit's
            # cgroup for a start (after a boot, or after "Failed to kill control group"); the
            # start then fails, or Restart=on-failure restarts it and NRestarts is 1, which an
            # activation's preflight rightly refuses. Once more from a clean stop, then judge.
            time.sleep(1)
            self.run("systemctl", "stop", ENGINE_UNIT, check=False)
            self.run("systemctl", "reset-failed", ENGINE_UNIT, check=False)
            started = self.run("systemctl", "start", ENGINE_UNIT, check=False, timeout=timeout)
        state = self.show("ActiveState", "InvocationID")
        if expect_active and (started.returncode != 0 or state["ActiveState"] != "active"):
            raise HostCommandError(
                f"{self.name}: {ENGINE_UNIT} did not start: {started.stderr.strip()}\n"
                + "\n".join(self.journal(state["InvocationID"])[-15:])
            )
        return Started(state["InvocationID"], cutover)

    def reset(self, env: dict[str, str | None] | None = None) -> Started:
        """Put the engine back as lab-up made it, then start it afresh: the lab's env file
        (with ``env`` changes on top), no drop-in, no activation state (lease, backups, log,
        reports)."""
        self.run("rm", "-rf", "--", *ACTIVATION_STATE)
        self.run("find", BACKUP_DIR, "-mindepth", "1", "-delete")
        self.run("mkdir", "-p", DROPIN_DIR)
        self.run("find", DROPIN_DIR, "-mindepth", "1", "-delete")
        # A fresh host has no crash history: an earlier test's crash restarts must not be the
        # next test's restart_loop stop condition (restarts in the last 24 h, from the journal).
        self.run("journalctl", "--rotate", "--vacuum-size=1K")
        self.run("rm", "-f", "--", SIM_DISK_GROWTH_FILE)
        pristine = (self.config.engine_src / "ai-engine.env").read_text()
        self.write_file(ENV_FILE, set_env_keys(pristine, env) if env else pristine)
        return self.cycle()

    def invocation(self) -> str:
        return self.show("InvocationID")["InvocationID"]

    def runner(self, argv: list[str]) -> tuple[int, str, str]:
        """model_safety's Runner over SSH: the same readers the modules use on a host."""
        result = self.run(*argv, check=False)
        return result.returncode, result.stdout, result.stderr

    def journal(self, invocation_id: str) -> list[str]:
        return read_journal(self.runner, ENGINE_UNIT, invocation_id)

    def unit_journal_since(self, cursor_time: str) -> list[str]:
        return self.out(
            "journalctl", "--no-pager", "-o", "cat", "-u", ENGINE_UNIT, "--since", cursor_time
        ).splitlines()

    def git_head(self) -> str:
        return read_git_head(self.runner, CHECKOUT)

    # Telemetry ------------------------------------------------------------------------
    def last_stream_id(self) -> str:
        out = self.out("redis-cli", "--raw", "XREVRANGE", STREAM, "+", "-", "COUNT", "1")
        return out.splitlines()[0] if out else "0-0"

    def entries_added(self) -> int:
        """Entries ever added to the stream (unlike XLEN, not capped by MAXLEN trimming)."""
        fields = self.out("redis-cli", "--raw", "XINFO", "STREAM", STREAM).splitlines()
        return int(fields[fields.index("entries-added") + 1])

    def stream_length(self) -> int:
        return int(self.out("redis-cli", "--raw", "XLEN", STREAM))

    def events_after(self, stream_id: str, count: int = 10000) -> list[tuple[str, dict]]:
        out = self.out(
            "redis-cli", "--raw", "XRANGE", STREAM, f"({stream_id}", "+", "COUNT", str(count)
        )
        lines = out.splitlines()
        events = []
        for i in range(0, len(lines) - 2, 3):
            entry_id, field, payload = lines[i : i + 3]
            assert field == "payload", f"unexpected stream field {field!r}"
            events.append((entry_id, json.loads(payload)))
        return events

    def wait_events(self, after: str, minimum: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            events = [event for _, event in self.events_after(after)]
            if len(events) >= minimum:
                return events
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: {len(events)} events after {after} in {timeout:.0f} s, "
                    f"wanted {minimum}"
                )
            time.sleep(0.5)

    def sql(self, query: str) -> list[list[str]]:
        out = self.out("sqlite3", "-readonly", "-separator", "\t", TRADE_DB, query)
        return [line.split("\t") for line in out.splitlines()]


def set_env_keys(text: str, changes: dict[str, str | None]) -> str:
    """Set (or, with None, remove) KEY=VALUE lines of an env file; everything else stays."""
    remaining = dict(changes)
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.startswith("#") else None
        if key in remaining:
            value = remaining.pop(key)
            if value is not None:
                lines.append(f"{key}={value}")
            continue
        lines.append(line)
    lines.extend(f"{k}={v}" for k, v in remaining.items() if v is not None)
    return "\n".join(lines) + "\n"


def configure(
    host: LabHost,
    env: dict[str, str | None] | None = None,
    dropin: dict[str, str] | None = None,
    expect_active: bool = True,
) -> Started:
    """Change the engine's env file and/or add a drop-in, then stop+start it."""
    if env:
        current = host.read_file(ENV_FILE)
        host.write_file(ENV_FILE, set_env_keys(current, env))
    if dropin:
        lines = "".join(f"Environment={key}={value}\n" for key, value in dropin.items())
        host.write_file(
            f"{DROPIN_DIR}/{TEST_DROPIN_PREFIX}env.conf",
            "[Service]\n" + lines,
            mode="0644",
            owner="root:root",
        )
    return host.cycle(expect_active=expect_active)


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
