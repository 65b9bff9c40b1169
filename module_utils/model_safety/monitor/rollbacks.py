"""Rolling back the hosts whose violation triggered, beside the checks of the others: one
``playbooks/rollback.yml`` run (ansible-runner ``run_async``) per check's violated hosts, tried
again while another activation holds a host's lease, each host's outcome recorded and told.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..playbook_runner import PlaybookJob, PlaybookRun
from .report import rollback_reason
from .settings import ROLLBACK_FAILED, ROLLED_BACK, ROLLING_BACK, MonitorOptions, MonitorSettings
from .store import StateStore, log_check

ROLLBACK_POLL_S = 0.5
ROLLBACK_RETRY_S = 5.0
# What the activation_lock module says when another activation holds a host's lease.
LEASE_HELD = "another activation holds"


@dataclass
class Rollback:
    """A rollback in flight: its hosts and their violations, the running job (None while it
    waits to be tried again) and until when a held lease is waited for."""

    violated: dict[str, list[dict[str, Any]]]
    deadline: float
    rollback_id: str
    job: PlaybookJob | None = None
    break_lock: bool = False
    interrupted: bool = False
    retry_at: float = 0.0
    attempts: int = 0


class RollbackRunner:
    """The rollbacks of a :class:`.loop.Monitor` (its base, which provides the attributes below
    and ``_runner_options``, ``_record`` and ``_notify``): started from a check, advanced on
    every loop and waited for before the monitor exits."""

    options: MonitorOptions
    settings: MonitorSettings
    states: dict[str, dict[str, Any]]
    store: StateStore
    checks: Any
    out: Callable[[str], None]
    sleep: Callable[[float], None]
    pending: list[Rollback]

    def _start_rollback(self, violated: Mapping[str, list[dict[str, Any]]]) -> None:
        details = "; ".join(
            f"{host}: " + ", ".join(v["text"] for v in violations)
            for host, violations in violated.items()
        )
        self.out(f"monitor {self.settings.model}: ROLLING BACK {', '.join(violated)}: {details}")
        # A restarted monitor runs its predecessor's interrupted rollback again under the same
        # id: the lease that rollback left (it died with its monitor) is then known as its own.
        known = [self.states[host].get("rollback_id") for host in violated]
        rollback_id = next((rid for rid in known if rid), None) or secrets.token_hex(4)
        interrupted = any(self.states[host]["status"] == ROLLING_BACK for host in violated)
        for host, violations in violated.items():
            state = self.states[host]
            state.update(
                status=ROLLING_BACK, pending_violations=list(violations), rollback_id=rollback_id
            )
            self.store.save(state)
        rollback = Rollback(
            dict(violated),
            time.monotonic() + self.options.rollback_timeout,
            rollback_id,
            interrupted=interrupted,
        )
        self._launch(rollback)
        self.pending.append(rollback)

    def _launch(self, rollback: Rollback) -> None:
        hosts = list(rollback.violated)
        rollback.attempts += 1
        rollback.job = PlaybookJob(
            self.options.project_dir,
            "rollback.yml",
            **self._runner_options("rollbacks"),
            limit=",".join(hosts),
            extravars={
                "reason": rollback_reason(rollback.violated, rollback.rollback_id),
                "break_lock": rollback.break_lock,
                # After an interrupted attempt the files may be restored while the old start
                # still runs: restart whatever the restore finds to change.
                "cycle": "always" if rollback.interrupted or rollback.break_lock else "changed",
            },
            timeout=self.options.rollback_timeout,
            on_status=lambda status: log_check(
                self.checks, {"rollback": hosts, "runner_status": status}
            ),
        )

    def _collect_rollbacks(self, *, block: bool) -> None:
        """Record every rollback that has ended; with ``block``, until none is left."""
        while True:
            for rollback in list(self.pending):
                self._advance(rollback)
            if not block or not self.pending:
                return
            self.sleep(ROLLBACK_POLL_S)

    def _advance(self, rollback: Rollback) -> None:
        if rollback.job is None:
            if time.monotonic() >= rollback.retry_at:
                self._launch(rollback)
            return
        if not rollback.job.done():
            return
        run = rollback.job.wait()
        # Another activation's lease (an operator's step, or the rollback a killed monitor
        # started, still running or not yet released) makes rollback.yml refuse and change
        # nothing: try again until the lease is free or rollback_timeout has passed.
        held = {
            host: violations
            for host, violations in rollback.violated.items()
            if LEASE_HELD in run.failures.get(host, "")
        }
        # The lease is this rollback's own, left by an attempt that died with a killed monitor
        # (ansible-playbook runs on the monitor's terminal and ends with it): take it over.
        own = f"monitor {rollback.rollback_id}:"
        rollback.break_lock = bool(held) and all(own in run.failures.get(host, "") for host in held)
        if held and time.monotonic() + ROLLBACK_RETRY_S < rollback.deadline:
            ended = {h: v for h, v in rollback.violated.items() if h not in held}
            if ended:
                self._record_rollback(run, ended, rollback.rollback_id)
            log_check(
                self.checks,
                {
                    "rollback_retry": list(held),
                    "attempt": rollback.attempts,
                    "runner": run.summary(),
                },
            )
            self.out(
                f"monitor {self.settings.model}: {', '.join(held)}: "
                + (
                    "the lease is held by this rollback's own interrupted attempt: taking it over"
                    if rollback.break_lock
                    else f"another activation holds the lease; rollback again in "
                    f"{ROLLBACK_RETRY_S:g} s"
                )
            )
            rollback.violated, rollback.job = held, None
            rollback.retry_at = time.monotonic() + (0 if rollback.break_lock else ROLLBACK_RETRY_S)
            return
        self.pending.remove(rollback)
        self._record_rollback(run, rollback.violated, rollback.rollback_id)

    def _record_rollback(
        self, run: PlaybookRun, violated: Mapping[str, list[dict[str, Any]]], rollback_id: str
    ) -> None:
        for host, violations in violated.items():
            # Per host: another host's failure fails the run, not this host's proof; a run
            # that timed out or was cancelled proves nothing.
            proven = run.status in ("successful", "failed") and run.host_ok(host)
            state = self.states[host]
            state["status"] = ROLLED_BACK if proven else ROLLBACK_FAILED
            state["rollback"] = run.summary()
            state.pop("pending_violations", None)
            state.pop("rollback_id", None)
            self.store.save(state)
            self._record(
                "rollback_executed",
                host,
                result="rolled_back" if proven else "rollback_failed",
                # Readable, as runbooks read them (DESIGN); the structured ones beside them.
                violations=[violation["text"] for violation in violations],
                violation_details=violations,
                trigger=rollback_reason({host: violations}, rollback_id),
                runner=run.summary(),
            )
            self._notify(
                "rollback_executed",
                host,
                result=state["status"],
                violations=violations,
                runner_status=run.status,
            )
            self.out(
                f"monitor {self.settings.model}: {host} "
                + (
                    f"rolled back and proven in {run.seconds:.1f} s (ansible-runner {run.ident})"
                    if proven
                    else f"ROLLBACK FAILED (ansible-runner {run.status}, rc {run.rc}: "
                    f"{run.failures.get(host) or run.failures}); act now: "
                    f"ansible-playbook playbooks/rollback.yml --limit {host}"
                )
            )
