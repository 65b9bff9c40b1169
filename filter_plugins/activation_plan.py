"""Filter ``model_safety_activation_plan``: what one activation changes, proves, restores and
records on a host (the ``model_activation`` role wires its fields into module arguments).

The logic lives in ``model_safety.activation.plan`` (the project is installed into the
controller's virtualenv, where filter plugins run); this file only exposes it and turns its
``WeightsError`` into ``AnsibleFilterError`` with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from model_safety.activation import plan
from model_safety.engine.weights import WeightsError


def model_safety_activation_plan(
    kind: str,
    model: str,
    baseline: Mapping[str, float],
    startup: Mapping[str, Any] | None = None,
    weight: Any = None,
    target: Any = None,
    allow_jump: bool = False,
    model_path: str = "",
    host: str = "",
) -> dict[str, Any]:
    """``{{ 'canary' | model_safety_activation_plan(model, baseline, weight=0.1) }}`` -> the
    plan."""
    try:
        return plan.activation_plan(
            kind, model, baseline, startup, weight, target, allow_jump, model_path, host
        )
    except WeightsError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """The activation plan filter."""

    def filters(self) -> dict:
        """Map filter names to functions."""
        return {"model_safety_activation_plan": model_safety_activation_plan}
