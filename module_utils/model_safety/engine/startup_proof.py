"""The proof that one start of the engine runs what was deployed, from its own journal.

A start counts only when its journal (that invocation's, nothing older) logged the deployed
git build once, then READY, and no ERROR or FATAL line; when it runs the model config that the
unit's env file and drop-ins define (with a baseline); and, for a model, when its start-up
lines show that model in the role it must have (voting at its weight, the canary line with the
deployed weights, shadow-only, the deployed model file). One function, used by the
engine_proof module (role ai_engine_verify), by engine_change (an activation's change) and by
engine_rollback. Standard library only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .commands import EngineStateError, Runner, StepFailed
from .config import EngineConfigError, config_differences, unit_expected_config
from .git import build_matches, read_git_build
from .journal_proof import proof_failure_message, prove_journal
from .weights import weights_differences

# What a start must log: its build, then READY; an ERROR or FATAL line fails it.
BUILD_PATTERN = r"^AI_ENGINE_BUILD: [0-9a-f]{7,40}$"
READY_PATTERN = r"^\[READY\]"
FORBIDDEN_PATTERN = r"^\[(ERROR|FATAL)\]"

# The steps, named as the tasks that once did them one by one: operators and runbooks know
# these names from failure messages and activation log records.
STEP_GIT = "Read the deployed git build"
STEP_JOURNAL = "Read this invocation's start-up lines from its journal"
STEP_BUILD = "Prove that AI_ENGINE_BUILD is the deployed git SHA"
STEP_CONFIG = "Prove the start runs what the env file and drop-ins say"
STEP_ROLE = "Prove the model's role from the start-up lines"

ROLES = ("voting", "shadow")
# Weights are fractions with at most 6 decimals in the journal's percent lines.
WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ModelExpectation:
    """What one model must be in the start: ``role`` voting or shadow; voting at ``weight``
    (None: any weight); with ``canary``, the [CANARY] line names it with ``weights`` and the
    engine votes with exactly those weights; ``model_file`` ({path, sha256}) the file its
    start-up line says it loaded; ``conf_cap`` the confidence cap its ``[OK]`` line must show
    (None: not proven here; the files' config proof covers it)."""

    model: str
    role: str = "voting"
    weight: float | None = None
    weights: Mapping[str, float] | None = None
    canary: bool = False
    model_file: Mapping[str, str] | None = None
    conf_cap: float | None = None

    def checked(self) -> ModelExpectation:
        """This expectation if it can be proven at all (raise EngineStateError otherwise)."""
        if self.role not in ROLES:
            raise EngineStateError(f"role must be voting or shadow, not {self.role!r}")
        if self.canary and (self.role != "voting" or not self.weights):
            raise EngineStateError("a canary is proven as a voter with the full weights")
        if self.model_file and not {"path", "sha256"} <= set(self.model_file):
            raise EngineStateError("model_file needs its path and sha256")
        if self.conf_cap is not None and not (
            self.role == "voting" and math.isfinite(self.conf_cap) and 0 < self.conf_cap <= 1
        ):
            raise EngineStateError(
                f"conf_cap must be in (0, 1] and only for a voter, not {self.conf_cap!r}"
            )
        return self


def expectation_of(options: Mapping[str, Any]) -> ModelExpectation | None:
    """The checked expectation of a module's options (``model``, ``role``, ``weight``,
    ``weights``, ``canary``, ``model_file``, ``conf_cap``); None without a model."""
    if not options["model"]:
        return None
    return ModelExpectation(
        model=options["model"],
        role=options["role"],
        weight=options["weight"],
        weights=options["weights"],
        canary=options["canary"],
        model_file=options["model_file"],
        conf_cap=options.get("conf_cap"),
    ).checked()


def _weight_text(weight: float) -> str:
    return f"{weight:g}"


def model_differences(startup: Mapping[str, Any], expected: ModelExpectation) -> list[str]:
    """Why the start-up lines (``parse_startup(...).as_dict()``) do not show the model as
    ``expected`` (empty: they do)."""
    model, voting, shadow = expected.model, startup["voting"], startup["shadow"]
    problems = []
    if expected.role == "voting":
        weight = voting.get(model)
        wrong_weight = (
            weight is not None
            and expected.weight is not None
            and abs(weight - expected.weight) > WEIGHT_TOLERANCE
        )
        if weight is None or model in shadow or wrong_weight:
            wanted = "" if expected.weight is None else f" at {_weight_text(expected.weight)}"
            problems.append(
                f"{model} is not voting{wanted}: voting {dict(voting)}, shadow {dict(shadow)}"
            )
    elif model not in shadow or model in voting:
        problems.append(f"{model} is not shadow-only: voting {dict(voting)}, shadow {dict(shadow)}")
    if expected.canary:
        canary = startup.get("canary")
        found = [] if canary is None else weights_differences(canary["weights"], expected.weights)
        found += weights_differences(voting, expected.weights)
        if canary is None or canary["model"] != model or found:
            problems.append(
                f"the start runs canary {canary} and voting weights {dict(voting)}, expected "
                f"{model} with {dict(expected.weights)}: {'; '.join(found)}"
            )
    if expected.conf_cap is not None:
        shown = (startup.get("conf_caps") or {}).get(model)
        if shown is None or abs(shown - expected.conf_cap) > WEIGHT_TOLERANCE:
            problems.append(
                f"{model} does not show conf_cap={_weight_text(expected.conf_cap)} in its [OK] "
                f"line: {'no cap' if shown is None else f'conf_cap={_weight_text(shown)}'}"
            )
    if expected.model_file:
        line = (
            f"{expected.model_file['path']} (present, sha256 {expected.model_file['sha256'][:12]})"
        )
        logged = startup.get("model_file") or ""
        if line not in logged:
            problems.append(
                f"the start did not load {line}: its model-file line is {logged or 'missing'}"
            )
    return problems


def model_statements(expected: ModelExpectation, startup: Mapping[str, Any]) -> list[str]:
    """What a proven expectation showed, one line each (for the operator's output)."""
    model = expected.model
    if expected.role == "shadow":
        lines = [f"{model} loaded in shadow mode"]
    else:
        lines = [f"{model} loaded as a voter at {_weight_text(startup['voting'][model])}"]
    if expected.canary:
        lines.append(f"[CANARY] {model} with {startup['canary']['weights']}")
    if expected.conf_cap is not None:
        lines.append(f"{model} confidence capped at {_weight_text(expected.conf_cap)}")
    if expected.model_file:
        lines.append(f"loaded {startup['model_file']}")
    return lines


def prove_start(
    run: Runner,
    unit: str,
    invocation_id: str,
    *,
    checkout: str,
    baseline: Mapping[str, float] | None = None,
    expected: ModelExpectation | None = None,
    journal_timeout: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Prove invocation ``invocation_id`` of ``unit`` (module docstring): the build of
    ``checkout``, READY and no ERROR/FATAL line (waiting up to ``journal_timeout`` s for
    them), the model config of the unit's files (only with a ``baseline``) and the
    ``expected`` model. Returns ``invocation_id``, ``build``, ``git``, ``startup``, ``config``
    (the expected config, or None without a baseline) and ``statements`` (what was proven, one
    line each). Raises :class:`StepFailed` naming the step (a STEP_* name) that failed, with
    what it found in ``details`` (``journal_proof``, ``differences``)."""
    try:
        git = read_git_build(run, checkout)
    except EngineStateError as exc:
        raise StepFailed(STEP_GIT, f"cannot read the git build of {checkout}: {exc}") from None
    try:
        journal = prove_journal(
            run,
            unit,
            invocation_id,
            [BUILD_PATTERN, READY_PATTERN],
            forbidden=[FORBIDDEN_PATTERN],
            timeout=journal_timeout,
            clock=clock,
            sleep=sleep,
        )
    except EngineStateError as exc:
        raise StepFailed(STEP_JOURNAL, f"journal proof impossible: {exc}") from None
    startup = journal["startup"]
    if not journal.pop("proven"):
        raise StepFailed(
            STEP_JOURNAL,
            proof_failure_message(unit, invocation_id, journal),
            journal_proof=journal,
        )
    if not build_matches(startup["build"], git["sha"]) or startup["anomalies"]:
        logged = ", ".join(startup["builds"]) or "none"
        anomalies = "; ".join(startup["anomalies"])
        raise StepFailed(
            STEP_BUILD,
            f"invocation {invocation_id} runs build {logged}, the checkout {checkout} is at "
            f"{git['sha']} {anomalies}".rstrip(),
        )
    statements = [f"build {startup['build']} == git HEAD {git['short']}"]
    config = None
    if baseline:
        try:
            config = unit_expected_config(run, unit, baseline)["expected"]
        except EngineConfigError as exc:
            raise StepFailed(STEP_CONFIG, f"cannot tell what {unit} must run: {exc}") from None
        differences = config_differences(startup, config)
        if differences:
            raise StepFailed(
                STEP_CONFIG,
                f"{unit} does not run the model configuration of its files: "
                + "; ".join(differences),
                differences=differences,
            )
        statements.append("the model config of the env file and drop-ins")
    if expected is not None:
        differences = model_differences(startup, expected)
        if differences:
            raise StepFailed(STEP_ROLE, "; ".join(differences), differences=differences)
        statements += model_statements(expected, startup)
    return {
        "invocation_id": invocation_id,
        "build": startup["build"],
        "git": git,
        "startup": startup,
        "config": config,
        "statements": statements,
    }
