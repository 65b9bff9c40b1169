"""Filters ``model_safety_gate_refusals`` and ``model_safety_promotion_refusals``: why a gate or
promotion result must not let an activation change a host (an empty list: it may).

The logic lives in ``model_safety.judgement.gate_acceptance`` (the project is installed into the
controller's virtualenv, where filter plugins run); this file only exposes it.
"""

from __future__ import annotations

from typing import Any

from model_safety.judgement import gate_acceptance


def model_safety_gate_refusals(result: Any, model: str, overrides: Any = None) -> list[str]:
    """``{{ gate_result | model_safety_gate_refusals(model, thresholds) }}`` -> the reasons the
    gate result does not show a canary-mode PASS of ``model`` at the default thresholds (or at
    the explicit ``overrides``)."""
    return gate_acceptance.gate_refusals(result, model, overrides)


def model_safety_promotion_refusals(check: Any, model: str, current_role: str) -> list[str]:
    """``{{ promote_check | model_safety_promotion_refusals(model, 'voting') }}`` -> the reasons the
    promotion check does not show a GO of ``model`` from ``current_role``."""
    return gate_acceptance.promotion_refusals(check, model, current_role)


class FilterModule:
    """The activation gate filters."""

    def filters(self) -> dict:
        """Map filter names to functions."""
        return {
            "model_safety_gate_refusals": model_safety_gate_refusals,
            "model_safety_promotion_refusals": model_safety_promotion_refusals,
        }
