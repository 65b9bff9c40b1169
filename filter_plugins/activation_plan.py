"""Filter ``model_safety_activation_plan``: what one activation changes, proves, restores and
records on a host (the ``model_activation`` role wires its fields into module arguments).

The logic lives in ``model_safety.activation.plan`` (the project is installed into the
controller's virtualenv, where filter plugins run); this file only exposes
``activation_plan`` as the filter, its ``WeightsError`` turned into ``AnsibleFilterError`` with
the same message.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from model_safety.activation.plan import activation_plan
from model_safety.engine.weights import reraised_as


class FilterModule:
    """The activation plan filter."""

    def filters(self) -> dict:
        """Map filter names to functions."""
        return {"model_safety_activation_plan": reraised_as(AnsibleFilterError, activation_plan)}
