"""Filters ``model_safety_gate_refusals`` and ``model_safety_promotion_refusals``: why a gate or
promotion result must not let an activation change a host (an empty list: it may).

The logic lives in ``model_safety.judgement.gate_acceptance`` (the project is installed into the
controller's virtualenv, where filter plugins run); this file only exposes its ``gate_refusals``
and ``promotion_refusals`` as the filters.
"""

from __future__ import annotations

from model_safety.judgement import gate_acceptance


class FilterModule:
    """The activation gate filters."""

    def filters(self) -> dict:
        """Map filter names to functions."""
        return {
            "model_safety_gate_refusals": gate_acceptance.gate_refusals,
            "model_safety_promotion_refusals": gate_acceptance.promotion_refusals,
        }
