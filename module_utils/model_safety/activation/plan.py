"""The activation plan: what a canary, shadow deployment or promotion changes on one host,
what the new start must prove, what a failure restores, and the record it logs.

One pure function, :func:`activation_plan`, from the kind, the model, the site's baseline
weights, the model's current role (the engine's start-up summary as ``engine_status`` reads
it) and the target. The ``model_activation`` role only wires its fields into module and role
arguments (filter ``model_safety_activation_plan``), so the env keys, the canary drop-in, the
promotion ladder and its float comparisons are written here once.

The ladder (DESIGN.md): shadow -> 0.10 -> 0.25 -> 0.50 -> 1.0, one step at a time unless a
jump is allowed; at 1.0 the canary drop-in goes and the model votes at its baseline weight (the
promoted state). Steps are compared within :data:`STEP_TOLERANCE`, so 0.1 + 0.2 is not 0.3 by
accident and a weight read back from the engine's journal matches its step.

The canary's confidence cap (``QSC_CANARY_CONF_CAP`` in the drop-in, :func:`validate_conf_cap`)
is given to a canary (none: no cap); a promotion step keeps the cap the engine runs now unless
it is given (empty: no cap), and the promoted state (1.0) has no drop-in, so no cap.

Bad input (an unknown kind, model, weight or cap; a baseline that does not sum to 1) raises
:class:`~model_safety.engine.weights.WeightsError` naming the value. A promotion the ladder does
not allow is not an error of the input but a refusal: ``refusal`` says why, nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..engine.config import CONF_CAP_KEY
from ..engine.weights import (
    WeightsError,
    canary_weights,
    configured_model,
    format_weights,
    validate_weight,
)

__all__ = [
    "KINDS",
    "LADDER",
    "STEP_TOLERANCE",
    "activation_plan",
    "current_step",
    "validate_conf_cap",
]

KINDS = ("canary", "shadow", "promotion")
LADDER = (0.10, 0.25, 0.50, 1.0)
"""The canary weights of a promotion; 1.0 is the promoted state (baseline weight)."""
PROMOTED = 1.0
STEP_TOLERANCE = 1e-6
"""Two weights within this are the same step (the engine's weights sum to 1 within 1e-6)."""
SHADOW = "shadow"
VOTING = "voting"
RECORD_EVENTS = {"canary": "activation", "shadow": "shadow", "promotion": "promotion"}
"""The activation log's event per kind (a failure logs ``<event>_failed``)."""


def shadow_only_key(model: str) -> str:
    """The engine's env key that keeps ``model`` out of the vote."""
    return f"{model.upper()}_SHADOW_ONLY"


def model_path_key(model: str) -> str:
    """The engine's env key of the file ``model`` loads."""
    return f"{model.upper()}_MODEL_PATH"


def validate_conf_cap(value: Any) -> float | None:
    """The canary's confidence cap: None for none (None or empty), else a finite number in
    (0, 1] (a number or a decimal string); anything else raises WeightsError."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = None if isinstance(value, bool) else _target_number(value)
    if number is None or not 0 < number <= 1:
        raise WeightsError(f"conf_cap must be a finite number in (0, 1], got {value!r}")
    return number


def canary_dropin(
    model: str, weights: Mapping[str, float], conf_cap: float | None = None
) -> dict[str, str]:
    """The canary drop-in's environment: the canary model, its weight, every model's weight,
    and its confidence cap when it has one."""
    environment = {
        "QSC_CANARY_MODEL": model,
        "QSC_CANARY_WEIGHT": str(weights[model]),
        "QSC_MODEL_WEIGHTS": format_weights(weights),
    }
    if conf_cap is not None:
        environment[CONF_CAP_KEY] = str(conf_cap)
    return environment


def current_step(startup: Mapping[str, Any], model: str) -> float:
    """Where ``model`` is on the ladder now: 0.0 in shadow, its canary weight, or 1.0."""
    if model in (startup.get("shadow") or ()):
        return 0.0
    canary = startup.get("canary") or {}
    if canary.get("model") == model:
        return float(canary["weight"])
    return PROMOTED


def _same_step(a: float, b: float) -> bool:
    return abs(a - b) < STEP_TOLERANCE


def _step_label(step: float) -> str | float:
    return SHADOW if step == 0.0 else step


def _target_number(target: Any) -> float | None:
    """The promotion target as a finite float (None when it is no number at all)."""
    if isinstance(target, bool):
        return None
    try:
        number = float(target)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ladder_refusal(
    model: str, host: str, step: float, to: Any, following: float, ladder: tuple[float, ...]
) -> str:
    jump = " (a jump needs -e allow_jump=true)" if isinstance(to, float) and to > following else ""
    return (
        f"{model} is at {_step_label(step)} on {host}: the next step is {following} (ladder "
        f"{' -> '.join(str(s) for s in ladder)}), {to} is refused{jump}; nothing was changed"
    )


def _promotion(
    model: str,
    baseline: Mapping[str, float],
    step: float,
    target: Any,
    allow_jump: bool,
    host: str,
    ladder: tuple[float, ...],
) -> dict[str, Any]:
    """The promotion's part of the plan: from, to, next, weights, or the refusal."""
    plan: dict[str, Any] = {"from": step, "to": None, "next": None, "refusal": None}
    if step >= PROMOTED - STEP_TOLERANCE:
        plan["refusal"] = (
            f"{model} already votes at its baseline weight on {host} (promoted); "
            "nothing was changed"
        )
        return plan
    following = next(s for s in ladder if s > step + STEP_TOLERANCE)
    plan["next"] = following
    given = target is not None and str(target) != ""
    to = _target_number(target) if given else following
    on_ladder = to is not None and any(_same_step(to, s) for s in ladder)
    if (
        not on_ladder
        or to <= step + STEP_TOLERANCE
        or (not allow_jump and not _same_step(to, following))
    ):
        plan["refusal"] = _ladder_refusal(
            model, host, step, target if to is None else to, following, ladder
        )
        return plan
    to = next(s for s in ladder if _same_step(to, s))
    plan["to"] = to
    plan["weights"] = (
        dict(configured_model(baseline, model))
        if to >= PROMOTED
        else canary_weights(baseline, model, to)
    )
    return plan


def activation_plan(
    kind: str,
    model: str,
    baseline: Mapping[str, float],
    startup: Mapping[str, Any] | None = None,
    weight: Any = None,
    target: Any = None,
    allow_jump: bool = False,
    model_path: str = "",
    host: str = "",
    conf_cap: Any = None,
) -> dict[str, Any]:
    """The plan of one activation of ``model`` on one host.

    ``startup`` is the engine's current start-up summary (``shadow``, ``voting``, ``canary``:
    the model's role and step now; not needed for a canary). ``weight`` is the canary's
    weight, ``target`` a promotion's step (empty: the next one), ``model_path`` the file a
    shadow deployment loads, ``host`` names the host in a refusal. ``conf_cap`` is the
    canary's confidence cap (:func:`validate_conf_cap`; None or empty: none); for a promotion
    None keeps the cap the engine logged (``startup["conf_caps"]``) and empty removes it.

    Keys: kind, model, event (of the activation log), failure_event, ladder, from/to/next
    (its steps: 0.0 is shadow, 1.0 promoted; from_label says "shadow"), weights (deployed; {} for
    a shadow deployment), conf_cap (the canary's cap deployed, or None), env (env-file keys to
    set), dropin ({state, environment}), prove ({role, weight, weights, canary, conf_cap}: what
    the new start must show), restore_role (the model's role before, proven after a restore),
    record (the log record's skeleton), refusal (None, or why a promotion is refused: nothing
    changes).
    """
    if kind not in KINDS:
        raise WeightsError(f"unknown activation kind {kind!r} (one of {', '.join(KINDS)})")
    configured_model(baseline, model)
    startup = startup or {}
    event = RECORD_EVENTS[kind]
    plan: dict[str, Any] = {
        "kind": kind,
        "model": model,
        "event": event,
        "failure_event": f"{event}_failed",
        "ladder": list(LADDER),
        "from": None,
        "from_label": None,
        "to": None,
        "next": None,
        "weights": {},
        "conf_cap": None,
        "refusal": None,
    }
    if kind == "promotion" and conf_cap is None:
        conf_cap = (startup.get("conf_caps") or {}).get(model)
    cap = validate_conf_cap(conf_cap) if kind != "shadow" else None
    if kind == "shadow":
        env = {shadow_only_key(model): "true"}
        if model_path:
            env[model_path_key(model)] = model_path
        voting_before = model in (startup.get("voting") or {})
        return {
            **plan,
            "env": env,
            "dropin": {"state": "absent", "environment": {}},
            "prove": {
                "role": SHADOW,
                "weight": None,
                "weights": {},
                "canary": False,
                "conf_cap": None,
            },
            "restore_role": VOTING if voting_before else SHADOW,
            "record": {"event": event, "model": model, "model_path": model_path or None},
        }
    if kind == "canary":
        step = validate_weight(weight)
        plan.update({"from": 0.0, "to": step, "weights": canary_weights(baseline, model, step)})
    else:
        plan.update(
            _promotion(
                model, baseline, current_step(startup, model), target, allow_jump, host, LADDER
            )
        )
    plan["from_label"] = _step_label(plan["from"])
    if plan["refusal"]:
        return {
            **plan,
            "env": {},
            "dropin": {"state": "absent", "environment": {}},
            "prove": {},
            "restore_role": None,
            "record": {},
        }
    weights = plan["weights"]
    canary = plan["to"] < PROMOTED
    # The promoted state has no drop-in, so no cap.
    plan["conf_cap"] = cap if canary else None
    record: dict[str, Any] = {"event": event, "model": model, "conf_cap": plan["conf_cap"]}
    if kind == "canary":
        record.update({"weight": weights[model], "weights": weights})
    else:
        record.update({"from": plan["from"], "to": plan["to"], "weights": weights})
    return {
        **plan,
        "env": {shadow_only_key(model): "false"},
        "dropin": {
            "state": "present" if canary else "absent",
            "environment": canary_dropin(model, weights, plan["conf_cap"]) if canary else {},
        },
        "prove": {
            "role": VOTING,
            "weight": weights[model],
            "weights": weights,
            "canary": canary,
            "conf_cap": plan["conf_cap"],
        },
        "restore_role": SHADOW if plan["from"] == 0.0 else VOTING,
        "record": record,
    }
