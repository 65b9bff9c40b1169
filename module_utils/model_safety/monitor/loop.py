"""The canary monitor's loop (``model-safety monitor``): probe, judge, roll back, record.

Every interval, one ``playbooks/monitor_check.yml`` run (ansible-runner) probes every host
still watched; :func:`.monitor.assess` judges each probe. A host whose violation triggers is
rolled back at once with ``playbooks/rollback.yml`` (ansible-runner ``run_async``, ``--limit``
the hosts violated in that check, the violated rules as the reason) while the checks of the
other hosts go on; the monitor never exits before a rollback it started has ended and been
recorded (a monitor killed meanwhile runs it again when restarted). A webhook and the logs are
told, the webhook on a background thread so that it never delays the rollback. A host whose
window ends without a violation completes ``safe``. State changes go to the activation log
(JSON lines): ``monitoring_started``, ``violation``, ``rollback_executed`` (violations and the
runner's status) and ``monitoring_completed``; every check to the check log, and each of these
records there too (``{"record": ...}``, for ``model-safety monitor-timeline``).

Exit codes: 0 every host completed safe, 4 at least one host rolled back (and every rollback
proven), 5 the watch ended without a violation but at least one host is not proven safe
(``inconclusive``: its events do not bound every rule on the healthy side), 2 an error: a
rollback that failed, a canary that could not be watched (gone, never activated), the monitor
refused (another one runs) or interrupted. The worst applies: 2, then 4, then 5, then 0.

Every record the monitor writes to its own activation log also goes to the host's log
(``playbooks/monitor_record.yml``: ``monitoring_started`` with the first check, ``violation``
as the rollback starts, ``monitoring_completed`` at the end), so the host's log tells the
host's whole story; the controller keeps its copy.
"""

from __future__ import annotations

import configparser
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..activation.log import append_record
from ..playbook_runner import run_playbook
from ..utctime import iso_ms
from .assess import assess, assess_pool, end_of_watch, new_pool
from .report import progress_line, prometheus_text
from .rollbacks import Rollback, RollbackRunner
from .settings import (
    ACTIVE,
    COMPLETED,
    ENDED,
    INCONCLUSIVE,
    POOL,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    ROLLING_BACK,
    VIOLATION,
    MonitorOptions,
    new_state,
)
from .store import (
    HostLocks,
    MonitorIOError,
    StateStore,
    Webhook,
    check_logger,
    log_check,
    redact_webhook,
    write_textfile,
)

EXIT_SAFE, EXIT_ERROR, EXIT_ROLLED_BACK, EXIT_INCONCLUSIVE = 0, 2, 4, 5
WEBHOOK_DRAIN_S = 15.0


def default_inventory(project_dir: str) -> str | None:
    """The ``inventory`` of the project's ansible.cfg, as a path (relative to the project)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(project_dir, "ansible.cfg"))
    value = parser.get("defaults", "inventory", fallback=None)
    if not value:
        return None
    return value if os.path.isabs(value) else os.path.join(project_dir, value)


def resolve_hosts(inventory: str | None, limit: str | None) -> list[str]:
    """The ``engine`` hosts of ``inventory`` within ``limit`` (Ansible's own pattern rules)."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    manager = InventoryManager(loader=DataLoader(), sources=[inventory] if inventory else None)
    if limit:
        manager.subset(limit)
    return [host.name for host in manager.get_hosts(pattern="engine")]


class Monitor(RollbackRunner):
    """One monitoring run over the canary hosts; :meth:`run` returns the exit code."""

    def __init__(
        self,
        options: MonitorOptions,
        *,
        out: Callable[[str], None] = print,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.settings = options.settings
        self.out = out
        self.clock = clock
        self.sleep = sleep
        self.store = StateStore(options.state_dir)
        self.locks = HostLocks(options.state_dir)
        self.checks = check_logger(options.check_log)
        self.states: dict[str, dict[str, Any]] = {}
        self.pool: dict[str, Any] = {}
        # Records on their way to each host's own activation log.
        self.host_records: dict[str, list[dict[str, Any]]] = {}
        self.check_number = 0
        self.stopping = False
        self.pending: list[Rollback] = []
        self.webhook = (
            Webhook(
                options.webhook_url,
                timeout=options.webhook_timeout,
                retries=options.webhook_retries,
                report=lambda outcome: log_check(self.checks, outcome),
                payload_format=options.webhook_format,
            )
            if options.webhook_url
            else None
        )

    # ------------------------------------------------------------------ records

    def _record(self, event: str, host: str, **fields: Any) -> None:
        """A state change, in the controller's activation log and on its way to the host's."""
        record = {"event": event, "host": host, "model": self.settings.model, **fields}
        append_record(self.options.activation_log, record)
        # The check log tells the whole watch too: monitor-timeline reads that one file.
        log_check(self.checks, {"record": record})
        if event != "rollback_executed":  # rollback.yml logs its own on the host
            self.host_records.setdefault(host, []).append(
                {**record, "source": "model-safety monitor"}
            )

    def _flush_host_records(self, hosts: list[str] | None = None) -> None:
        """Append the pending records to the hosts' own logs (``monitor_record.yml``); what
        cannot be written stays pending for the next flush and is noted in the check log."""
        pending = {
            host: records
            for host, records in self.host_records.items()
            if records and (hosts is None or host in hosts)
        }
        if not pending:
            return
        run = run_playbook(
            self.options.project_dir,
            "monitor_record.yml",
            **self._runner_options("records"),
            limit=",".join(pending),
            extravars={"monitor_records": pending},
            timeout=self.options.check_timeout,
        )
        for host in pending:
            if run.status == "successful" and run.host_ok(host):
                self.host_records[host] = []
            else:
                log_check(
                    self.checks,
                    {
                        "host_records_error": host,
                        "runner": run.summary(),
                        "failure": run.failures.get(host),
                    },
                )

    def _notify(self, event: str, host: str, **fields: Any) -> None:
        if self.webhook:
            self.webhook.notify(
                {"event": event, "host": host, "model": self.settings.model, **fields}
            )

    # ------------------------------------------------------------------ the run

    def run(self) -> int:
        """Watch until every host has completed, been rolled back or ended."""
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            code = self._prepare()
            if code is not None:
                return code
            return self._loop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.locks.release()
            if self.webhook:
                self.webhook.drain(WEBHOOK_DRAIN_S)

    def _on_signal(self, _signum: int, _frame: Any) -> None:
        self.stopping = True

    def _prepare(self) -> int | None:
        options = self.options
        for path in ("monitor_check.yml", "monitor_record.yml", "rollback.yml"):
            if not os.path.isfile(os.path.join(options.project_dir, "playbooks", path)):
                self.out(f"model-safety monitor: no playbooks/{path} in {options.project_dir}")
                return EXIT_ERROR
        try:
            hosts = resolve_hosts(options.inventory, options.limit)
        except Exception as exc:  # an unreadable inventory: nothing can be watched
            self.out(f"model-safety monitor: cannot read the inventory: {exc}")
            return EXIT_ERROR
        if not hosts:
            self.out(
                f"model-safety monitor: no engine host in {options.inventory or 'the inventory'}"
                + (f" matches --limit {options.limit}" if options.limit else "")
            )
            return EXIT_ERROR
        try:
            self.locks.acquire(hosts, self.settings.model)
            now = iso_ms(self.clock())
            for host in hosts:
                saved = self.store.load(host, self.settings.model)
                resumed = saved is not None and saved.get("status") in (ACTIVE, ROLLING_BACK)
                state = saved if resumed else new_state(host, self.settings, now, None)
                state["settings"] = self.settings.as_dict()
                self.states[host] = state
                self.store.save(state)
                self._record(
                    "monitoring_started",
                    host,
                    resumed=resumed,
                    window_start=state["started_at"],
                    checks_done=state["checks"],
                    settings=self.settings.as_dict(),
                    webhook=redact_webhook(options.webhook_url) if options.webhook_url else None,
                )
                verb = "resumed" if resumed else "started"
                self.out(
                    f"monitor {self.settings.model}: {verb} on {host} (window since "
                    f"{state['started_at']}, {state['checks']} checks done)"
                )
            saved_pool = self.store.load(POOL, self.settings.model)
            resumed_pool = saved_pool is not None and saved_pool.get("hosts") == sorted(hosts)
            self.pool = saved_pool if resumed_pool else new_pool(self.settings, self.states)
            self.store.save(self.pool)
        except (MonitorIOError, OSError, ValueError) as exc:
            self.out(f"model-safety monitor: {exc}")
            return EXIT_ERROR
        interrupted = {
            host: state["pending_violations"]
            for host, state in self.states.items()
            if state["status"] == ROLLING_BACK
        }
        # A monitor stopped while rollbacks ran: their outcome is unknown, so run each again
        # under its own id, the one its lease names (rolling back to the same backup twice
        # changes nothing the second time).
        by_id: dict[str, dict[str, Any]] = {}
        for host, violations in interrupted.items():
            by_id.setdefault(self.states[host].get("rollback_id") or "", {})[host] = violations
        for violated in by_id.values():
            self._start_rollback(violated)
        return None

    def _elapsed(self, state: Mapping[str, Any]) -> float:
        started = _epoch(state["started_at"])
        return max(0.0, self.clock() - started)

    def _loop(self) -> int:
        while not self.stopping:
            self._collect_rollbacks(block=False)
            watched = [host for host, state in self.states.items() if state["status"] == ACTIVE]
            if not watched and not self.pending:
                break
            began = self.clock()
            if watched:
                self._check(watched)
                self._complete_windows(watched)
            self._export()
            # A rollback runs beside the checks of the other hosts; with nothing left to
            # check, only its end is waited for.
            pause = self.settings.interval_s - (self.clock() - began) if watched else 0.5
            deadline = time.monotonic() + max(0.0, pause)
            while not self.stopping and time.monotonic() < deadline:
                self.sleep(min(1.0, deadline - time.monotonic()))
        # Never abandon a rollback: its outcome is recorded before the monitor exits.
        self._collect_rollbacks(block=True)
        self._flush_host_records()
        self._export()
        if self.stopping:
            self.out(
                f"monitor {self.settings.model}: stopped by a signal; the state is kept and a "
                "restarted monitor resumes the window"
            )
            return EXIT_ERROR
        return self._exit_code()

    def _complete_windows(self, hosts: list[str]) -> None:
        completed = []
        for host in hosts:
            state = self.states[host]
            if state["status"] == ACTIVE and self._elapsed(state) >= self.settings.duration_s:
                outcome = end_of_watch(state, self.settings)
                state["status"] = COMPLETED if outcome["result"] == "safe" else INCONCLUSIVE
                state["result"] = outcome["result"]
                self.store.save(state)
                self._record(
                    "monitoring_completed",
                    host,
                    result=outcome["result"],
                    missing=outcome["missing"],
                    window_events=outcome["window_events"],
                    bounds=outcome["bounds"],
                    checks=state["checks"],
                    events=state["events"],
                    capped_events=state.get("capped_events", 0),
                    window_start=state["started_at"],
                    duration_s=self.settings.duration_s,
                )
                self.out(
                    f"monitor {self.settings.model}: {host} completed "
                    + (
                        f"SAFE: {outcome['window_events']} events bound every rule on the "
                        "healthy side"
                        if outcome["result"] == "safe"
                        else "INCONCLUSIVE (not proven safe): " + "; ".join(outcome["missing"])
                    )
                )
                completed.append(host)
        if completed:
            self._flush_host_records(completed)

    def _exit_code(self) -> int:
        statuses = {state["status"] for state in self.states.values()}
        if statuses & {ROLLBACK_FAILED, ENDED}:
            return EXIT_ERROR
        if ROLLED_BACK in statuses:
            return EXIT_ROLLED_BACK
        return EXIT_INCONCLUSIVE if INCONCLUSIVE in statuses else EXIT_SAFE

    def _runner_options(self, kind: str) -> dict[str, Any]:
        """What every playbook run of this monitor shares; checks and rollbacks keep their
        artifacts apart, so frequent checks never rotate a rollback's away."""
        return {
            "private_dir": os.path.join(self.options.state_dir, "runner", kind),
            "kind": kind.rstrip("s"),
            "inventory": self.options.inventory,
            "keep": self.options.keep_artifacts,
        }

    def _check(self, hosts: list[str]) -> None:
        self.check_number += 1
        probe = run_playbook(
            self.options.project_dir,
            "monitor_check.yml",
            **self._runner_options("checks"),
            limit=",".join(hosts),
            extravars={
                "monitor_model": self.settings.model,
                "monitor_after": {h: self.states[h]["cursor"] or "" for h in hosts},
                "monitor_window_events": self.settings.window_events,
                "monitor_records": {h: self.host_records.get(h) or [] for h in hosts},
            },
            collect=("canary_probe",),
            timeout=self.options.check_timeout,
        )
        at = iso_ms(self.clock())
        checks: dict[str, dict[str, Any]] = {}
        observations: dict[str, Any] = {}
        to_roll_back: dict[str, list[dict[str, Any]]] = {}
        for host in hosts:
            result = probe.results.get(host, {}).get("canary_probe")
            error = None
            if result is None:
                error = (
                    probe.failures.get(host)
                    or probe.failures.get("*")
                    or (f"no probe result (ansible-runner status {probe.status}, rc {probe.rc})")
                )
            if result is not None:
                # The probe's run wrote the records it carried to the host's log.
                self.host_records[host] = []
            state, check, observations[host] = assess(
                self.states[host], result, self.settings, error, hosts=len(self.states)
            )
            state["last_check_s"] = self.clock()
            self.states[host] = state
            checks[host] = check
            log_check(
                self.checks,
                {
                    "check": self.check_number,
                    "host": host,
                    "model": self.settings.model,
                    "runner": probe.summary(),
                    "cursor": state["cursor"],
                    **check,
                },
            )
            if check["status"] == VIOLATION:
                to_roll_back[host] = check["triggered"]
                for violation in check["triggered"]:
                    self._record("violation", host, check=self.check_number, **violation)
                self._notify("violation", host, violations=check["triggered"])
            elif check["status"] == "ended":
                self._record(
                    "monitoring_completed",
                    host,
                    result="ended",
                    reason=check["reason"],
                    checks=state["checks"],
                )
            self.store.save(state)
        self._judge_pool(hosts, observations, checks, to_roll_back)
        if to_roll_back:
            self._start_rollback(to_roll_back)
            self._flush_host_records(list(to_roll_back))
        violations = sum(len(state["violations"]) for state in self.states.values())
        elapsed = max((self._elapsed(self.states[h]) for h in hosts), default=0.0)
        self.out(
            progress_line(
                self.settings.model,
                elapsed,
                self.settings.duration_s,
                self.check_number,
                at,
                checks,
                violations,
            )
        )

    def _judge_pool(
        self,
        hosts: list[str],
        observations: Mapping[str, Any],
        checks: dict[str, dict[str, Any]],
        to_roll_back: dict[str, list[dict[str, Any]]],
    ) -> None:
        """The canary's hosts' new events judged together: a pooled violation rolls back
        every host of the canary still watched."""
        if len(self.pool.get("hosts") or []) < 2:
            return
        self.pool, pending, decided = assess_pool(
            self.pool, observations, self.states, self.settings
        )
        self.store.save(self.pool)
        if pending:
            log_check(self.checks, {"check": self.check_number, "pool": pending})
        if not decided:
            return
        for host in hosts:
            check = checks.get(host)
            if check is None or check["status"] in ("ended", VIOLATION):
                continue
            check["status"] = VIOLATION
            check["triggered"] = check["triggered"] + decided
            state = self.states[host]
            state["violations"] = state["violations"] + decided
            self.store.save(state)
            to_roll_back[host] = check["triggered"]
            for violation in decided:
                self._record("violation", host, check=self.check_number, **violation)
            self._notify("violation", host, violations=decided)

    def _export(self) -> None:
        if not self.options.textfile_dir:
            return
        try:
            write_textfile(
                self.options.textfile_dir,
                self.settings.model,
                prometheus_text(self.settings.model, self.states, self.clock()),
            )
        except OSError as exc:
            log_check(self.checks, {"textfile_error": str(exc)})


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
