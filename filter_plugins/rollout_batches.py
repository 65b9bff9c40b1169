"""Filter ``model_safety_rollout_batches``: the batch list a play's ``serial`` takes from an
operator's ``canary_serial`` (``shadow_serial``, ``promote_serial``), or a clear refusal.

The logic lives in ``model_safety.activation.batches`` (the project is installed into the
controller's virtualenv, where filter plugins run); this file only exposes ``rollout_batches``
as the filter, its ``RolloutBatchesError`` turned into ``AnsibleFilterError`` with the same
message.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from model_safety.activation.batches import RolloutBatchesError, rollout_batches


def model_safety_rollout_batches(value: Any, variable: str) -> list[int | str]:
    """``rollout_batches`` with its refusal as the filter's error."""
    try:
        return rollout_batches(value, variable)
    except RolloutBatchesError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """The rollout batches filter."""

    def filters(self) -> dict:
        """Map filter names to functions."""
        return {"model_safety_rollout_batches": model_safety_rollout_batches}
