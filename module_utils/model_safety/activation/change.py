"""The change an activation makes to one engine host, whole, in one call on that host.

A canary, a shadow change or a promotion step changes the env file and the canary drop-in and
then counts only through a new start proven to run them. Each step used to be a task, and each
task a round trip; here they run in one process on the target, in this order: prove that this
activation still holds the host's lease and renew it, plan both file changes (every refusal
comes before anything is written), write the env file (every other line kept, atomically),
install or remove the drop-in, ``systemctl daemon-reload``, stop + start, and prove the new
start within its settle period: the deployed build, READY and no error, the model config of the
files and the model's role from its start-up lines (:mod:`..engine.startup_proof`).

Any failure raises :class:`ChangeFailed` naming the step, with what was written so far. This
module never restores: the caller (the model_activation role) restores the backup it took just
before, proves the old start and logs the failure. Check mode plans the files and reads the
running start, writes nothing and proves nothing.

Every step is the existing code (:mod:`.lock`, :mod:`..engine.envfile_write`,
:mod:`..engine.dropin`, :mod:`..engine.proven_restart`); this module only
puts them in order. Standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engine.commands import EngineStateError, Runner, StepFailed
from ..engine.config import EngineConfigError
from ..engine.dropin import DropinChange, DropinError, apply_dropin, plan_dropin
from ..engine.envfile import EnvFileError
from ..engine.envfile_write import EnvFileChange, apply_env_change, plan_env_change
from ..engine.proven_restart import RestartOptions, restart_proven, would_restart
from ..engine.startup_proof import ModelExpectation
from ..site_defaults import (
    DEFAULT_CANARY_DROPIN,
    DEFAULT_CHECKOUT,
    DEFAULT_DROPIN_DIR,
    DEFAULT_ENV_FILE,
    DEFAULT_UNIT,
)
from .lease_file import LeaseError
from .lock import DEFAULT_LEASE_PATH, DEFAULT_TTL, check_renew, renew

# The steps, named as the tasks of the model_activation role that did them one by one.
STEP_OPTIONS = "Check the change's options"
STEP_LEASE = "Make sure this activation still holds the lease, and renew it for the change"
STEP_ENV = "Change the env file (every other line kept)"
STEP_DROPIN = "Install or remove the canary drop-in"
# The env file holds secrets: root's, readable by the service's group only.
DEFAULT_ENV_OWNER = "root"
DEFAULT_ENV_MODE = "0640"


class ChangeFailed(Exception):
    """The change failed at ``step``; ``result`` says what was written and found until then
    (``touched``: whether anything on the host may have changed, ``env``, ``dropin``,
    ``start``), ``details`` what the failing step reported."""

    def __init__(self, step: str, message: str, **details: Any) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message
        self.details = details
        self.result: dict[str, Any] = {}


@dataclass(frozen=True)
class ChangeRequest:
    """One change, with the engine_change module's options as its fields: the env file's new
    keys, the drop-in's state (and environment and purpose when present), what the new start
    must show (``expected``: None proves no model's role; ``baseline``), the lease this
    activation holds (``token``: None in check mode, where none was taken), the engine and how
    long to wait for it."""

    env_changes: Mapping[str, str | None]
    dropin_state: str
    expected: ModelExpectation | None
    baseline: Mapping[str, float]
    token: str | None
    dropin_environment: Mapping[str, Any] = field(default_factory=dict)
    dropin_purpose: str = ""
    env_file: str = DEFAULT_ENV_FILE
    env_owner: str | None = DEFAULT_ENV_OWNER
    env_group: str | None = None
    env_mode: str | None = DEFAULT_ENV_MODE
    dropin_dir: str = DEFAULT_DROPIN_DIR
    dropin_name: str = DEFAULT_CANARY_DROPIN
    unit: str = DEFAULT_UNIT
    checkout: str = DEFAULT_CHECKOUT
    lock_path: str = DEFAULT_LEASE_PATH
    lease_ttl: int = DEFAULT_TTL
    cycle_timeout: float = 60.0
    settle: float = 3.0
    journal_timeout: float = 30.0

    def checked(self) -> ChangeRequest:
        """This request if every value is one the steps accept (raise ChangeFailed at
        STEP_OPTIONS otherwise), so that a bad option fails before anything is touched."""
        try:
            RestartOptions.of(self).check()
            if self.expected is not None:
                self.expected.checked()
        except (EngineStateError, EngineConfigError) as exc:
            raise ChangeFailed(STEP_OPTIONS, str(exc)) from None
        return self


@dataclass
class _Change:
    """One change under way: the request, how commands run, and what it did so far."""

    run: Runner
    request: ChangeRequest
    check_mode: bool
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    result: dict[str, Any]

    def renew_lease(self) -> None:
        request = self.request
        if request.token is None:
            if not self.check_mode:
                raise ChangeFailed(STEP_LEASE, "no lease token: the change needs the lease")
            return
        keep = check_renew if self.check_mode else renew
        try:
            keep(request.lock_path, request.token, request.lease_ttl)
        except LeaseError as exc:
            raise ChangeFailed(
                STEP_LEASE, f"activation lease {request.lock_path}: {exc}", holder=exc.lease
            ) from None

    def plan_files(self) -> tuple[EnvFileChange, DropinChange]:
        request = self.request
        try:
            env = plan_env_change(
                request.env_file,
                request.env_changes,
                owner=request.env_owner,
                group=request.env_group,
                mode=request.env_mode,
            )
        except EnvFileError as exc:
            raise ChangeFailed(STEP_ENV, str(exc), secrets=sorted(exc.secrets)) from None
        self.result["secrets"] = sorted(env.secrets)
        try:
            dropin = plan_dropin(
                request.dropin_dir,
                request.dropin_name,
                request.dropin_state,
                request.dropin_environment,
                request.dropin_purpose,
            )
        except (DropinError, OSError) as exc:
            raise ChangeFailed(STEP_DROPIN, str(exc)) from None
        self.result["env"] = {
            "path": env.path,
            "changed": env.content_changed or env.attributes_changed,
            "changed_keys": env.changed_keys,
            "diff": env.diff,
            "written": False,
        }
        self.result["dropin"] = {
            "path": dropin.path,
            "state": dropin.state,
            "changed": dropin.changed,
            "diff": dropin.diff,
            "written": False,
        }
        return env, dropin

    def write_files(self, env: EnvFileChange, dropin: DropinChange) -> None:
        try:
            apply_env_change(env)
        except EnvFileError as exc:
            raise ChangeFailed(STEP_ENV, str(exc)) from None
        self.result["env"]["written"] = self.result["env"]["changed"]
        try:
            apply_dropin(dropin)
        except OSError as exc:
            raise ChangeFailed(STEP_DROPIN, f"cannot write {dropin.path}: {exc}") from None
        self.result["dropin"]["written"] = dropin.changed

    def restart(self) -> None:
        restart_proven(
            self.run,
            RestartOptions.of(self.request),
            self.request.expected,
            self.result,
            sleep=self.sleep,
            clock=self.clock,
        )


def apply_change(
    run: Runner,
    request: ChangeRequest,
    *,
    check_mode: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Make the change ``request`` describes (the module docstring's steps, in order).

    Returns ``touched`` (whether the host may have been changed: a file written or the engine
    stopped; False after a refusal), ``env`` and ``dropin`` (each ``path``, ``changed``,
    ``diff``, ``written``; the env file's ``changed_keys``), ``secrets`` (the env file's values
    that output must mask), ``start`` (the new start: ``invocation_id``,
    ``previous_invocation_id``, ``main_pid``, ``started_at``; in check mode the running one,
    with ``would_cycle`` and ``started_at`` None), ``proof`` (what
    :func:`..engine.startup_proof.prove_start` proved; not in check mode) and ``seconds`` (per
    phase, from the start). Raises :class:`ChangeFailed` with the result so far on any failure."""
    change = _Change(
        run, request, check_mode, sleep, clock, result={"touched": False, "seconds": {}}
    )
    result = change.result
    began = clock()
    try:
        request.checked()
        change.renew_lease()
        env, dropin = change.plan_files()
        if check_mode:
            result["start"] = would_restart(run, request.unit)
        else:
            # From here on, a failure may leave the host changed: the caller restores.
            result["touched"] = True
            change.write_files(env, dropin)
            result["seconds"]["written"] = round(clock() - began, 3)
            change.restart()
    except StepFailed as exc:
        failure = ChangeFailed(exc.step, exc.message, **exc.details)
        failure.result = result
        raise failure from None
    except ChangeFailed as failure:
        failure.result = result
        raise
    result["seconds"]["proven"] = round(clock() - began, 3)
    return result
