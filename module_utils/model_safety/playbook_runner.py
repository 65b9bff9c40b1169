"""Run this project's playbooks from Python through ansible-runner's API.

``run_async`` with a unique ident per run, an event handler that collects each host's result
of the tasks asked for and the play's stats, a status handler, and rotated artifacts (the
events of every run stay on disk for the audit, the oldest beyond ``keep`` are removed). The
outcome is read from the runner's events, never from its stdout. Controller side only.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .fileio import ensure_directory
from .utctime import iso_ms


@dataclass
class PlaybookRun:
    """What one run gave: runner ``status`` (successful, failed, timeout, canceled, error) and
    ``rc``; per host the ``results`` of the collected task actions, the ``failures`` (task
    failed or host unreachable: the message) and whether the host ended ``ok`` by the stats."""

    ident: str
    status: str = "unstarted"
    rc: int | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    artifacts: str = ""
    seconds: float = 0.0
    statuses: list[str] = field(default_factory=list)

    def host_ok(self, host: str) -> bool:
        """The host ran the play to its end without a failure and was reachable."""
        failed = {**self.stats.get("failures", {}), **self.stats.get("dark", {})}
        seen = set(self.stats.get("ok", {})) | set(failed)
        return host in seen and not failed.get(host) and host not in self.failures

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable account of the run (for the logs)."""
        return {
            "ident": self.ident,
            "status": self.status,
            "rc": self.rc,
            "failures": self.failures,
            "artifacts": self.artifacts,
            "seconds": round(self.seconds, 3),
        }


def new_ident(kind: str) -> str:
    """A unique, sortable run ident: ``<kind>-<UTC time>-<random>``."""
    stamp = iso_ms(time.time()).replace(":", "").replace("-", "").replace(".", "")
    return f"{kind}-{stamp}-{secrets.token_hex(4)}"


class PlaybookJob:
    """One playbook run through ``ansible_runner.run_async``: started at construction, then
    :meth:`done` (poll) or :meth:`wait`. ``collect`` names the task actions (modules) whose
    per-host results are kept. Never raises for a failed run: the status says it (an exception
    of ansible-runner itself is status ``error``)."""

    def __init__(
        self,
        project_dir: str,
        playbook: str,
        *,
        private_dir: str,
        kind: str,
        inventory: str | None = None,
        limit: str | None = None,
        extravars: Mapping[str, Any] | None = None,
        collect: tuple[str, ...] = (),
        timeout: float | None = None,
        keep: int = 20,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        import ansible_runner

        self.run = PlaybookRun(ident=new_ident(kind))
        self._collect = collect
        self._on_status = on_status
        self._began = time.monotonic()
        self._thread: Any = None
        self._runner: Any = None
        bin_dir = os.path.dirname(sys.executable)
        try:
            ensure_directory(private_dir, 0o700)
            self._thread, self._runner = ansible_runner.run_async(
                private_data_dir=private_dir,
                project_dir=project_dir,
                playbook=os.path.join(project_dir, "playbooks", playbook),
                inventory=inventory,
                limit=limit,
                extravars=dict(extravars or {}),
                ident=self.run.ident,
                rotate_artifacts=keep,
                quiet=True,
                suppress_env_files=True,
                timeout=int(timeout) if timeout else None,
                envvars={
                    "ANSIBLE_CONFIG": os.path.join(project_dir, "ansible.cfg"),
                    # The ansible-playbook of this interpreter's environment (the venv) first.
                    "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
                },
                event_handler=self._on_event,
                status_handler=self._on_status_change,
            )
        except Exception as exc:  # fail-closed: the caller judges a run that did not happen
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.run.status = "error"
        self.run.failures["*"] = f"ansible-runner failed: {type(exc).__name__}: {exc}"

    def _on_event(self, event: Mapping[str, Any]) -> bool:
        run = self.run
        data = event.get("event_data") or {}
        host = data.get("host")
        kind_of = event.get("event")
        if kind_of == "runner_on_ok" and data.get("task_action") in self._collect:
            run.results.setdefault(host, {})[data["task_action"]] = data.get("res") or {}
        elif kind_of == "runner_on_failed" and not data.get("ignore_errors"):
            run.failures[host] = str((data.get("res") or {}).get("msg") or "task failed")
        elif kind_of == "runner_on_unreachable":
            run.failures[host] = "unreachable: " + str((data.get("res") or {}).get("msg") or "")
        elif kind_of == "playbook_on_stats":
            run.stats = {
                key: dict(data.get(key) or {}) for key in ("ok", "changed", "failures", "dark")
            }
        return True

    def _on_status_change(self, status: Mapping[str, Any], runner_config: Any = None) -> None:
        self.run.statuses.append(str(status.get("status")))
        if self._on_status:
            self._on_status(str(status.get("status")))

    def done(self) -> bool:
        """The run has ended (or never started)."""
        return self._thread is None or not self._thread.is_alive()

    def wait(self) -> PlaybookRun:
        """Wait for the end of the run; its outcome."""
        if self._thread is not None:
            self._thread.join()
            try:
                self.run.status, self.run.rc = str(self._runner.status), self._runner.rc
                self.run.artifacts = str(getattr(self._runner.config, "artifact_dir", ""))
            except Exception as exc:  # fail-closed, as above
                self._failed(exc)
            self._thread = None
            self.run.seconds = time.monotonic() - self._began
        return self.run


def run_playbook(project_dir: str, playbook: str, **options: Any) -> PlaybookRun:
    """Run ``<project_dir>/playbooks/<playbook>`` (options of :class:`PlaybookJob`) and wait."""
    return PlaybookJob(project_dir, playbook, **options).wait()
