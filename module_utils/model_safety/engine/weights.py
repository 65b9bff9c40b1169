"""Canary weights: the weight vector the engine runs with while one model is a canary.

DESIGN.md ("Canary weights"): the canary gets weight ``w`` (default 0.10); every other model
is scaled in proportion so the sum stays 1. Baseline xgb .25 lgbm .25 nhits .30 patchtst .20
with patchtst at .10 gives xgb .28125 lgbm .28125 nhits .3375 patchtst .10.

The vector reaches the engine as ``QSC_MODEL_WEIGHTS=xgb:0.28125,lgbm:0.28125,...``
(:func:`format_weights`; the engine's ``parse_model_weights`` reads it: every configured model
exactly once, each weight finite and in (0, 1], the sum 1 within 1e-6). :func:`parse_weights`
is the strict inverse.

Pure standard library, so the same code runs in filter plugins on the controller and in
modules on the Debian bookworm targets. Anything that cannot be right (a malformed model name,
a weight outside (0, 1), a baseline that does not sum to 1, ...) raises :class:`WeightsError`
with a message that names the offending value; nothing is ever clamped or guessed.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from ..names import is_model_name

__all__ = [
    "DEFAULT_CANARY_WEIGHT",
    "WeightsError",
    "canary_weights",
    "configured_model",
    "format_weights",
    "parse_weights",
    "validate_model_name",
    "validate_weight",
    "weights_differences",
]

DEFAULT_CANARY_WEIGHT = 0.10
"""The canary's weight when the operator gives none (DESIGN, [canary] issue)."""

BASELINE_SUM_TOLERANCE = 1e-9
"""A baseline's weights must sum to 1 within this."""

PARSE_SUM_TOLERANCE = 1e-6
"""A ``QSC_MODEL_WEIGHTS`` value must sum to 1 within this (as the engine requires)."""

DECIMALS = 12
"""Computed weights are rounded to this many decimals (clean text, sum exact to 1e-12)."""

# Always used with fullmatch (a trailing newline never slips through).
# The engine's number syntax (lab/engine/ai_engine/config.py): no nan/inf, no underscores.
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class WeightsError(ValueError):
    """A model name, weight, baseline or weights text that cannot be right."""


_Result = TypeVar("_Result")


def reraised_as(error: type[Exception], function: Callable[..., _Result]) -> Callable[..., _Result]:
    """``function`` (same signature) raising ``error`` with the same message where it raises
    :class:`WeightsError`: a filter's AnsibleFilterError, which this module cannot import on a
    target."""

    @functools.wraps(function)
    def reraising(*args: Any, **kwargs: Any) -> _Result:
        try:
            return function(*args, **kwargs)
        except WeightsError as exc:
            raise error(str(exc)) from exc

    return reraising


def validate_model_name(name: Any) -> str:
    """Return ``name`` if it matches the model-name rule ``^[a-z][a-z0-9_]{0,31}$``, else raise."""
    if not is_model_name(name):
        raise WeightsError(
            f"not a valid model name: {name!r} (expected ^[a-z][a-z0-9_]{{0,31}}$: "
            "a lower-case letter, then up to 31 lower-case letters, digits or underscores)"
        )
    return name


def _number(what: str, value: Any) -> float:
    """``value`` as a finite float: an int/float (never a bool) or a decimal numeric string."""
    if isinstance(value, bool):
        raise WeightsError(f"{what} must be a number, got the boolean {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not _NUMBER_RE.fullmatch(text):
            raise WeightsError(f"{what} must be a decimal number, got {value!r}")
        number = float(text)
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise WeightsError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(number):
        raise WeightsError(f"{what} must be finite, got {value!r}")
    return number


def validate_weight(weight: Any) -> float:
    """The canary weight as a float strictly between 0 and 1; raise for anything else.

    Accepts ints, floats and numeric strings (``"0.10"``, as ``-e weight=0.10`` gives it);
    refuses booleans, non-numeric strings, NaN, infinities, 0, 1 and anything outside.
    """
    number = _number("canary weight", weight)
    if not 0.0 < number < 1.0:
        raise WeightsError(
            f"canary weight must be strictly between 0 and 1 (0 < w < 1), got {weight!r}"
        )
    return number


def _checked_weights(
    weights: Mapping[Any, Any], what: str, accepts: Callable[[float], bool], must_be: str
) -> dict[str, float]:
    """``weights`` as ``{model: weight}`` in their order: each name a valid model name, each
    weight (``<what> <name>`` in a refusal) a number that ``accepts`` takes."""
    checked: dict[str, float] = {}
    for name, value in weights.items():
        validate_model_name(name)
        label = f"{what} {name}"
        number = _number(label, value)
        if not accepts(number):
            raise WeightsError(f"{label} must be {must_be}, got {value!r}")
        checked[name] = number
    return checked


def _validate_baseline(baseline: Any) -> dict[str, float]:
    """The baseline as ``{model: weight}`` in its own order, each weight finite and > 0."""
    if not isinstance(baseline, Mapping):
        raise WeightsError(
            f"baseline weights must be a mapping of model to weight, got {type(baseline).__name__}"
        )
    if not baseline:
        raise WeightsError("baseline weights are empty: no models configured")
    weights = _checked_weights(baseline, "baseline weight of", lambda w: w > 0.0, "> 0")
    total = math.fsum(weights.values())
    if abs(total - 1.0) > BASELINE_SUM_TOLERANCE:
        raise WeightsError(
            f"baseline weights must sum to 1 (within {BASELINE_SUM_TOLERANCE:g}), "
            f"got {total!r} from {_format_vector(weights)}"
        )
    return weights


def configured_model(baseline: Mapping[str, float], model: Any) -> dict[str, float]:
    """The validated baseline, if ``model`` is a valid name and one of its models; else raise."""
    validate_model_name(model)
    weights = _validate_baseline(baseline)
    if model not in weights:
        raise WeightsError(
            f"unknown model {model!r}: not in the baseline weights ({', '.join(weights)})"
        )
    return weights


def canary_weights(
    baseline: Mapping[str, float], model: str, weight: Any = DEFAULT_CANARY_WEIGHT
) -> dict[str, float]:
    """The weights with ``model`` as the canary at ``weight``, the others scaled in proportion.

    ``baseline`` maps every configured model to its weight (non-empty, each finite and > 0,
    summing to 1 within 1e-9); ``model`` must be one of them and there must be at least one
    other. Each other model gets ``baseline[m] * (1 - w) / (sum of the others' baseline)``.
    The results are rounded to 12 decimals, and the rounding remainder (whole 1e-12 units) is
    spread one unit each over the other models, so the sum is 1 (within float error, far
    inside 1e-12) and each weight is within 1.5e-12 of its exact value. The order is the
    baseline's.
    """
    weights = configured_model(baseline, model)
    w = validate_weight(weight)
    others = {name: value for name, value in weights.items() if name != model}
    if not others:
        raise WeightsError(
            f"model {model} is the only model in the baseline: a canary needs at least one other"
        )
    others_total = math.fsum(others.values())
    exact = {
        name: w if name == model else weights[name] * (1.0 - w) / others_total for name in weights
    }
    rounded = {name: round(value, DECIMALS) for name, value in exact.items()}
    # Rounding leaves a remainder of whole 1e-12 units (exact in Decimal arithmetic on the
    # 12-decimal values); hand them out one each to the other models rounded furthest the
    # other way (largest remainder method), so every weight stays within 1.5e-12 of its exact
    # proportional value and the canary keeps exactly round(w, 12).
    unit = Decimal(1).scaleb(-DECIMALS)
    units = int((Decimal(1) - sum(Decimal(repr(v)) for v in rounded.values())) / unit)
    step = 1 if units > 0 else -1
    order = sorted(others, key=lambda name: step * (rounded[name] - exact[name]))
    for name in order[: abs(units)]:
        rounded[name] = float(Decimal(repr(rounded[name])) + step * unit)
    for name, value in rounded.items():
        if not 0.0 < value < 1.0:
            raise WeightsError(
                f"weight of {name} rounds to {value!r} at {DECIMALS} decimals "
                f"(baseline {weights[name]!r}, canary weight {w!r})"
            )
    return rounded


def _validate_vector(weights: Any, where: str) -> dict[str, float]:
    """``weights`` as ``{model: weight}``: valid names, each in (0, 1], the sum 1 within 1e-6."""
    if not isinstance(weights, Mapping):
        raise WeightsError(
            f"{where}: expected a mapping of model to weight, got {type(weights).__name__}"
        )
    if not weights:
        raise WeightsError(f"{where}: no weights")
    vector = _checked_weights(weights, f"{where}: weight of", lambda w: 0.0 < w <= 1.0, "in (0, 1]")
    total = math.fsum(vector.values())
    if abs(total - 1.0) > PARSE_SUM_TOLERANCE:
        raise WeightsError(
            f"{where}: weights must sum to 1 (within {PARSE_SUM_TOLERANCE:g}), got {total!r}"
        )
    return vector


def _format_vector(weights: Mapping[str, float]) -> str:
    """``m:w,...`` without any validation (for messages); floats as shortest ``.12g`` text."""
    parts = []
    for name, value in weights.items():
        text = format(value, ".12g") if isinstance(value, float) else str(value)
        parts.append(f"{name}:{text}")
    return ",".join(parts)


def format_weights(weights: Mapping[str, float]) -> str:
    """The ``QSC_MODEL_WEIGHTS`` value: ``xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1``.

    In the mapping's order; each weight as ``format(w, '.12g')``. The weights are validated as
    the engine will (names, each in (0, 1], sum 1 within 1e-6), so the text always parses.
    """
    vector = _validate_vector(weights, "QSC_MODEL_WEIGHTS")
    return ",".join(f"{name}:{format(value, '.12g')}" for name, value in vector.items())


def parse_weights(text: Any, models: Iterable[str]) -> dict[str, float]:
    """Parse a ``QSC_MODEL_WEIGHTS`` value strictly; the inverse of :func:`format_weights`.

    ``models`` are the configured models: each must appear exactly once and nothing else;
    every weight is a finite decimal number in (0, 1]; the sum is 1 within 1e-6. Items may
    carry spaces around names and numbers (as the engine allows). The result is in the order
    of ``models``.
    """
    where = "QSC_MODEL_WEIGHTS"
    if isinstance(models, str):
        raise WeightsError(f"{where}: models must be a list of names, got the string {models!r}")
    configured = [validate_model_name(name) for name in models]
    if not configured:
        raise WeightsError(f"{where}: no models configured")
    if len(set(configured)) != len(configured):
        raise WeightsError(f"{where}: models named more than once in {configured}")
    if not isinstance(text, str):
        raise WeightsError(f"{where}: expected a string, got {type(text).__name__}")
    parsed: dict[str, float] = {}
    for item in text.split(","):
        name, sep, raw = (part.strip() for part in item.partition(":"))
        if not sep or not name or not raw:
            raise WeightsError(f"{where}: expected 'model:weight,...', got item {item.strip()!r}")
        validate_model_name(name)
        if name not in configured:
            raise WeightsError(
                f"{where}: unknown model {name!r} (configured: {', '.join(configured)})"
            )
        if name in parsed:
            raise WeightsError(f"{where}: model {name} named more than once")
        parsed[name] = _number(f"{where}: weight of {name}", raw)
    missing = [name for name in configured if name not in parsed]
    if missing:
        raise WeightsError(f"{where}: missing models {', '.join(missing)}")
    return _validate_vector({name: parsed[name] for name in configured}, where)


def parse_baseline(text: str) -> dict[str, float]:
    """A baseline written ``model:weight,...`` (the site default, DEFAULT_BASELINE_WEIGHTS):
    :func:`parse_weights` with the models it names, each once, the weights summing to 1."""
    return parse_weights(text, [item.partition(":")[0].strip() for item in text.split(",")])


def weights_differences(
    actual: Mapping[str, float], expected: Mapping[str, float], tolerance: float = 1e-6
) -> list[str]:
    """Why two weight vectors differ (empty when the same models have weights within
    ``tolerance``): the proof that the engine runs the weights that were deployed."""
    if not isinstance(actual, Mapping) or not isinstance(expected, Mapping):
        return [f"cannot compare {actual!r} with {expected!r}: both must be mappings"]
    problems = [f"{name}: missing" for name in expected if name not in actual]
    problems += [f"{name}: unexpected" for name in actual if name not in expected]
    for name in expected:
        if name in actual:
            try:
                gap = abs(_number(name, actual[name]) - _number(name, expected[name]))
            except WeightsError as exc:
                problems.append(str(exc))
                continue
            if gap > tolerance:
                problems.append(f"{name}: {actual[name]!r} != {expected[name]!r}")
    return problems
