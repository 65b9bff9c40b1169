"""Filters ``model_safety_canary_weights``, ``model_safety_configured_model``,
``model_safety_model_weights`` and ``model_safety_weights_differences``: the weight vector of a
canary, as deployed and as proven.

The logic lives in ``model_safety.engine.weights`` (the project is installed into the controller's
virtualenv, where filter plugins run); this file only exposes it, its ``WeightsError`` turned
into ``AnsibleFilterError`` with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from model_safety.engine import weights


def model_safety_configured_model(baseline: Mapping[str, float], model: str) -> str:
    """``{{ baseline | model_safety_configured_model(model) }}`` -> the model, if it is a valid
    name and one of the configured models (else the filter fails with the reason)."""
    weights.configured_model(baseline, model)
    return model


class FilterModule:
    """The canary weight filters."""

    def filters(self) -> dict:
        """Map filter names to functions."""
        return {
            "model_safety_canary_weights": weights.reraised_as(
                AnsibleFilterError, weights.canary_weights
            ),
            "model_safety_configured_model": weights.reraised_as(
                AnsibleFilterError, model_safety_configured_model
            ),
            "model_safety_model_weights": weights.reraised_as(
                AnsibleFilterError, weights.format_weights
            ),
            "model_safety_weights_differences": weights.weights_differences,
        }
