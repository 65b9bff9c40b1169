"""Filters ``model_safety_canary_weights``, ``model_safety_configured_model``,
``model_safety_model_weights`` and ``model_safety_weights_differences``: the weight vector of a
canary, as deployed and as proven.

The logic lives in ``model_safety.engine.weights`` (the project is installed into the controller's
virtualenv, where filter plugins run); this file only exposes it and turns its
``WeightsError`` into ``AnsibleFilterError`` with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from model_safety.engine import weights


def model_safety_canary_weights(
    baseline: Mapping[str, float], model: str, weight: Any = weights.DEFAULT_CANARY_WEIGHT
) -> dict[str, float]:
    """``{{ baseline | model_safety_canary_weights(model, weight) }}`` -> the weights with the
    canary at w."""
    try:
        return weights.canary_weights(baseline, model, weight)
    except weights.WeightsError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def model_safety_configured_model(baseline: Mapping[str, float], model: str) -> str:
    """``{{ baseline | model_safety_configured_model(model) }}`` -> the model, if it is a valid
    name and one of the configured models (else the filter fails with the reason)."""
    try:
        weights.configured_model(baseline, model)
    except weights.WeightsError as exc:
        raise AnsibleFilterError(str(exc)) from exc
    return model


def model_safety_model_weights(vector: Mapping[str, float]) -> str:
    """``{{ vector | model_safety_model_weights }}`` -> ``xgb:0.28125,...`` (QSC_MODEL_WEIGHTS)."""
    try:
        return weights.format_weights(vector)
    except weights.WeightsError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def model_safety_weights_differences(
    actual: Mapping[str, float], expected: Mapping[str, float], tolerance: float = 1e-6
) -> list[str]:
    """``{{ running | model_safety_weights_differences(deployed) }}`` -> why they differ ([]
    if equal)."""
    return weights.weights_differences(actual, expected, tolerance)


class FilterModule:
    """The canary weight filters."""

    def filters(self) -> dict:
        """Map filter names to functions."""
        return {
            "model_safety_canary_weights": model_safety_canary_weights,
            "model_safety_configured_model": model_safety_configured_model,
            "model_safety_model_weights": model_safety_model_weights,
            "model_safety_weights_differences": model_safety_weights_differences,
        }
