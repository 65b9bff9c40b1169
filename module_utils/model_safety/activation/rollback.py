"""The emergency rollback of one engine host, whole, in one call on that host.

While a rollback runs, a bad model keeps trading, so the whole path runs in one process on the
target instead of a task per step (each a round trip): take the activation lease (or break it
on purpose), select and verify the backup, restore it byte-identical and mark it restored,
``systemctl daemon-reload``, stop + start the engine (only when a file changed, unless
``cycle="always"``), prove from the new invocation's journal that it runs the deployed git
build, became ready, logged no error and runs the model config the restored files define,
log ``rollback_executed`` and release the lease. Asked for (``damage``), the damage report of
the model rolled back is made after that proof and before the record, which carries its
summary (:meth:`_Rollback.attach_damage`): one record per rollback, and the restore is never
delayed by it. Any failure is logged as
``rollback_failed`` (best effort: the log may be what failed) and raised as
:class:`RollbackFailed`, naming the step that failed with the names the steps have as tasks of
the model_activation role.

Every step is the existing code: :mod:`.lock`, :mod:`.backup_catalog`, :mod:`.backup_restore`,
:mod:`.log`, :mod:`..engine.cycle` and :mod:`..engine.startup_proof`; this module only puts
them in order. The proof of the new invocation runs within its settle period
(``cycle_service(while_settling=...)``): it never counts before the journal shows READY of that
invocation, and the watch for an early crash keeps its full length. Standard library only:
nothing here imports numpy or redis (the damage report imports them when it runs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..engine.commands import EngineStateError, Runner, StepFailed
from ..engine.config import EngineConfigError
from ..engine.proven_restart import (
    RestartOptions,
    prove_running,
    restart_proven,
    would_restart,
)
from ..engine.systemd import ServiceState, read_service_state, service_uptime
from ..site_defaults import DEFAULT_CHECKOUT, DEFAULT_UNIT
from .backup_catalog import future_backups, require_intact, select_backup
from .backup_format import DEFAULT_DIRS, DEFAULT_FILES, DEFAULT_ROOT, BackupError, CorruptBackup
from .backup_restore import mark_restored, restore_backup
from .lease_file import LeaseError, LeaseHeld
from .lock import DEFAULT_LEASE_PATH, DEFAULT_TTL, acquire, check_acquire, release
from .log import (
    DEFAULT_LOG_PATH,
    ActivationLogError,
    append_record,
    check_path,
    format_line,
    resolve_group,
)

# The steps, named as the tasks of the model_activation role that did them one by one:
# operators and runbooks know these names from rollback_failed records.
STEP_OPTIONS = "Check the rollback's options"
STEP_LEASE = "Take the host's activation lease"
STEP_RESTORE = "Restore the backup byte-identical and verify it"
STEP_RUNNING = "Read the running start (nothing was restored, nothing restarted)"
STEP_RECORD = "Record the rollback"
STEP_RELEASE = "Release the host's activation lease"

CYCLE_CHOICES = ("changed", "always")


class RollbackFailed(Exception):
    """The rollback failed at ``step``; ``result`` is what it did and found until then (with
    ``record``, the rollback_failed record logged, or ``record_error``), ``details`` what the
    failing step reported (a corrupt backup's ``problems`` and ``candidates``, a failed
    start's ``state`` and ``journal``, ...)."""

    def __init__(self, step: str, message: str, **details: Any) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message
        self.details = details
        self.result: dict[str, Any] = {}


@dataclass(frozen=True)
class RollbackRequest:
    """One rollback, with the engine_rollback module's options as its fields: who and why
    (``host`` names the host in records and messages), the backup (``name``: None or empty
    for the newest) and the managed paths, the lease, the engine, how long to wait for it,
    and the log."""

    host: str
    operator: str
    baseline: Mapping[str, float]
    reason: str = "manual rollback"
    name: str | None = None
    break_lock: bool = False
    cycle: str = "changed"
    root: str = DEFAULT_ROOT
    files: Sequence[str] = DEFAULT_FILES
    dirs: Sequence[str] = DEFAULT_DIRS
    unit: str = DEFAULT_UNIT
    checkout: str = DEFAULT_CHECKOUT
    lock_path: str = DEFAULT_LEASE_PATH
    lease_ttl: int = DEFAULT_TTL
    log_path: str = DEFAULT_LOG_PATH
    log_group: str | None = None
    cycle_timeout: float = 60.0
    settle: float = 2.0
    journal_timeout: float = 30.0
    damage: Mapping[str, Any] | None = None
    """The damage report's options (:func:`..judgement.damage.rollback_damage`); None: none."""

    def checked(self) -> RollbackRequest:
        """This request if every value is one the steps accept (raise RollbackFailed at
        STEP_OPTIONS otherwise), so that a bad option fails before anything is touched."""
        try:
            if self.cycle not in CYCLE_CHOICES:
                raise EngineStateError(f"cycle must be changed or always, not {self.cycle!r}")
            RestartOptions.of(self).check()
            check_path(self.log_path)
            resolve_group(self.log_group)
        except (EngineStateError, EngineConfigError, ActivationLogError) as exc:
            raise RollbackFailed(STEP_OPTIONS, str(exc)) from None
        return self


@dataclass
class _Rollback:
    """One rollback under way: the request, how commands run, and what it found so far."""

    run: Runner
    request: RollbackRequest
    check_mode: bool
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    result: dict[str, Any] = field(default_factory=dict)
    token: str | None = None

    # ------------------------------------------------------------------ the steps

    def take_lease(self) -> None:
        request = self.request
        take = check_acquire if self.check_mode else acquire
        try:
            taken = take(
                request.lock_path,
                request.operator,
                f"rollback: {request.reason}",
                request.lease_ttl,
                force=request.break_lock,
            )
        except LeaseHeld as exc:
            raise RollbackFailed(
                STEP_LEASE,
                f"another activation holds {request.lock_path}: {exc}",
                holder=exc.lease,
            ) from None
        except LeaseError as exc:
            raise RollbackFailed(
                STEP_LEASE, f"activation lease {request.lock_path}: {exc}", holder=exc.lease
            ) from None
        self.token = taken["token"]
        self.result["lease"] = {"stale": taken["stale"], "broken": taken["broken"]}

    def restore(self) -> None:
        request = self.request
        try:
            # An empty name (the playbook's default) selects the newest backup.
            name = request.name or None
            if name is None:
                self.result["warnings"].extend(future_backups(request.root))
            path = select_backup(request.root, name=name)
            self.result["backup"] = path
            require_intact(path)
            restored = restore_backup(path, request.files, request.dirs, check_mode=self.check_mode)
        except CorruptBackup as exc:
            raise RollbackFailed(
                STEP_RESTORE, str(exc), problems=exc.problems, candidates=exc.candidates
            ) from None
        except BackupError as exc:
            raise RollbackFailed(STEP_RESTORE, str(exc), problems=exc.problems) from None
        self.result["warnings"].extend(restored.pop("warnings"))
        # "changed" is the task's own key: whether a file changed is "files_changed".
        self.result["files_changed"] = restored.pop("changed")
        self.result.update(restored)
        self.result["marked"] = False
        if self.result["files_changed"] and not self.check_mode:
            mark = {"by": "rollback", "reason": request.reason, "operator": request.operator}
            try:
                mark_restored(path, mark)
            except BackupError as exc:
                raise RollbackFailed(
                    STEP_RESTORE, f"backup {path} was restored, but not marked restored: {exc}"
                ) from None
            self.result["marked"] = True

    def restart(self) -> None:
        """daemon-reload, stop + start, and the proof of the new invocation within its settle
        period."""
        try:
            restart_proven(
                self.run,
                RestartOptions.of(self.request),
                None,
                self.result,
                sleep=self.sleep,
                clock=self.clock,
            )
        except StepFailed as exc:
            raise RollbackFailed(exc.step, exc.message, **exc.details) from None

    def keep_running(self) -> None:
        """Nothing restored, no restart: prove the running start as it is."""
        try:
            state = read_service_state(self.run, self.request.unit)
        except EngineStateError as exc:
            raise RollbackFailed(STEP_RUNNING, str(exc)) from None
        if not state.running or not state.invocation_id:
            raise RollbackFailed(
                STEP_RUNNING,
                f"{self.request.unit} is {state.active_state}/{state.sub_state}, not running; "
                "nothing was restored: roll back with -e cycle=always to start it on the "
                "restored files",
                state=state.as_dict(),
            )
        self.result["start"] = {
            "invocation_id": state.invocation_id,
            "previous_invocation_id": None,
            "main_pid": state.main_pid,
            "started_at": service_uptime(state)["active_since"],
        }
        if not self.check_mode:
            self.prove(state)

    def prove(self, state: ServiceState) -> None:
        """What ai_engine_verify proves of a start, without a model."""
        try:
            prove_running(
                self.run,
                RestartOptions.of(self.request),
                state,
                None,
                self.result,
                sleep=self.sleep,
                clock=self.clock,
            )
        except StepFailed as exc:
            raise RollbackFailed(exc.step, exc.message, **exc.details) from None

    def would_restart(self) -> None:
        """Check mode: the running start, which a rollback would stop and start again."""
        try:
            self.result["start"] = would_restart(self.run, self.request.unit)
        except StepFailed as exc:
            raise RollbackFailed(exc.step, exc.message) from None

    def attach_damage(self) -> None:
        """The damage report of the model rolled back, from its activation to the new start:
        made after the engine is proven (the restore is never delayed) and before the record,
        which carries its summary. A damage report that fails is said in the record, never a
        failure of the rollback. numpy and redis are imported only here, after the proof."""
        request = self.request
        began = self.clock()
        try:
            from ..judgement.damage import rollback_damage

            self.result["damage"] = rollback_damage(
                self.result["model"],
                self.result["start"]["started_at"],
                log_path=request.log_path,
                baseline=request.baseline,
                options=request.damage or {},
            )
        except Exception as exc:  # the emergency path never fails for its report
            self.result["damage"] = {"error": f"damage report failed: {exc}"}
            self.result["warnings"].append(self.result["damage"]["error"])
        self.result["seconds"]["damage"] = round(self.clock() - began, 3)

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append ``record`` to the activation log (in check mode, only validate it)."""
        request = self.request
        if self.check_mode:
            return format_line(record)[0]
        return append_record(request.log_path, record, group=request.log_group)["record"]

    def record_executed(self) -> None:
        try:
            self.result["record"] = self.record(self.executed_record())
        except ActivationLogError as exc:
            raise RollbackFailed(
                STEP_RECORD, f"activation log {self.request.log_path}: {exc}"
            ) from None

    def release_lease(self) -> None:
        if self.token is None:
            return
        try:
            release(self.request.lock_path, self.token)
        except LeaseError as exc:
            raise RollbackFailed(
                STEP_RELEASE, f"activation lease {self.request.lock_path}: {exc}"
            ) from None
        self.token = None

    # ------------------------------------------------------------------ the records

    def executed_record(self) -> dict[str, Any]:
        result, request = self.result, self.request
        proof = result.get("proof") or {}
        damage = result.get("damage")
        attached = {}
        if damage is not None:
            attached = {
                "damage": damage.get("summary") or {"error": damage.get("error")},
                "damage_reports": damage.get("reports"),
            }
        return {
            "event": "rollback_executed",
            "host": request.host,
            "model": result["model"],
            "reason": request.reason,
            "backup": result["backup"],
            "restored": result["restored"],
            "removed": result["removed"],
            "changed": result["files_changed"],
            "invocation_id": result["start"]["invocation_id"],
            "build": proof.get("build"),
            "config": proof.get("config"),
            "operator": request.operator,
            **attached,
        }

    def failed_record(self, failure: RollbackFailed) -> dict[str, Any]:
        request = self.request
        return {
            "event": "rollback_failed",
            "host": request.host,
            "model": self.result.get("model"),
            "reason": request.reason,
            "failure": str(failure),
            "backup": self.result.get("backup", request.name or ""),
            "operator": request.operator,
        }

    def fail(self, failure: RollbackFailed) -> RollbackFailed:
        """``failure`` with the result so far, after logging it and releasing the lease."""
        try:
            self.result["record"] = self.record(self.failed_record(failure))
        except ActivationLogError as exc:
            self.result["record_error"] = f"the failure could not be logged: {exc}"
        try:
            self.release_lease()
        except RollbackFailed as exc:
            self.result["release_error"] = str(exc)
        failure.result = self.result
        return failure


def roll_back(
    run: Runner,
    request: RollbackRequest,
    *,
    check_mode: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Roll the host back as ``request`` says (the module docstring's steps, in order);
    return what was done: ``lease`` (``stale``/``broken``: a lease taken over), ``backup``,
    ``model``, ``restored``, ``removed``, ``unchanged``, ``files_changed``, ``changes`` (per path
    before/after, for a diff), ``marked``, ``cycled``, ``start`` (the start proven; in
    check mode the running one, with ``would_cycle``), ``proof`` (its ``build``, ``git``,
    ``startup`` and the expected ``config``), ``damage`` (with ``request.damage``: the damage
    report's ``summary`` and ``reports``, or its ``error``), ``record`` (logged, with the
    damage summary and report paths), ``warnings`` (a lease taken
    over, backups dated in the future, modes narrowed) and ``seconds`` (per phase, from the
    start). Raise :class:`RollbackFailed` on any failure, logged as rollback_failed and the
    lease released.

    ``check_mode`` changes nothing: the lease is only checked, the restore only planned, the
    engine only read, the record only validated, and nothing is proven."""
    rollback = _Rollback(
        run, request, check_mode, sleep, clock, result={"warnings": [], "seconds": {}}
    )
    result = rollback.result
    began = clock()
    try:
        request.checked()
        rollback.take_lease()
        note = takeover_note(result["lease"])
        if note is not None:
            result["warnings"].append(note)
        rollback.restore()
        result["seconds"]["restored"] = round(clock() - began, 3)
        cycled = request.cycle == "always" or result["files_changed"]
        result["cycled"] = cycled and not check_mode
        if cycled and check_mode:
            rollback.would_restart()
        elif cycled:
            rollback.restart()
        else:
            rollback.keep_running()
        result["seconds"]["proven"] = round(clock() - began, 3)
        if request.damage is not None and not check_mode:
            rollback.attach_damage()
        rollback.record_executed()
        rollback.release_lease()
    except RollbackFailed as failure:
        raise rollback.fail(failure) from None
    result["seconds"]["total"] = round(clock() - began, 3)
    return result


def takeover_note(lease: Mapping[str, Any]) -> str | None:
    """One sentence about a lease the rollback took over (stale) or broke on purpose; None
    when the lease was free."""
    for kind, verb, since, fallback in (
        ("stale", "took over a stale lease of", "expired", "expires"),
        ("broken", "broke the lease of", "since", "acquired"),
    ):
        taken = lease.get(kind)
        if taken:
            return (
                f"{verb} {taken.get('owner', 'unknown (an unreadable lease)')} "
                f"({taken.get('purpose', '-')}, {since} "
                f"{taken.get(fallback, taken.get('modified', '-'))})"
            )
    return None
