"""The batches of a rollout across a fleet: the ``serial`` of the activation playbooks.

``canary_serial`` (and ``shadow_serial``, ``promote_serial``) says how many hosts an activation
changes at a time, with Ansible's own ``serial`` semantics: a number of hosts, a percentage of
the play's hosts (``"25%"``: rounded down, at least 1 host), or a list of those, one per batch,
its last entry repeated until every host is done (``[1, "25%", "100%"]``: 1 host, then a
quarter of the fleet, then the rest).

Ansible itself reads ``0``, a negative number or an empty list as "every host at once" and
fails late or obscurely on the rest, so :func:`rollout_batches` is the one place that decides:
it returns the list Ansible's ``serial`` takes or raises :class:`RolloutBatchesError` naming the
variable and the value, before any host is contacted. Command-line values arrive as strings
(``-e canary_serial=2``), so a string of digits is a number of hosts; nothing else is coerced.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["RolloutBatchesError", "rollout_batches"]

_COUNT_RE = re.compile(r"[0-9]+")
_PERCENT_RE = re.compile(r"([0-9]+)%")

BATCH_SIZE = 'a number of hosts (1 or more) or a percentage of the hosts ("1%" to "100%")'


def _expected(variable: str) -> str:
    """What ``variable`` may be, with an example an operator can copy."""
    return (
        f"{BATCH_SIZE}, or a list of those, one per batch "
        f"""(e.g. -e '{{"{variable}": [1, "25%", "100%"]}}')"""
    )


class RolloutBatchesError(ValueError):
    """A batch size or batch list that Ansible's ``serial`` must not be given."""


def _batch(variable: str, value: Any, where: str) -> int | str:
    """One batch size: a positive int, or a percentage string ``"N%"`` with 1 <= N <= 100."""
    # bool is an int to Python, and a float is not a number of hosts: both are refused.
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str) and _COUNT_RE.fullmatch(value):
        count = int(value)
    elif isinstance(value, str) and (percent := _PERCENT_RE.fullmatch(value)):
        share = int(percent.group(1))
        if not 1 <= share <= 100:
            raise RolloutBatchesError(
                f"{variable}{where}: {value!r} is not a percentage from 1% to 100%"
            )
        return f"{share}%"
    else:
        expected = BATCH_SIZE if where else _expected(variable)
        raise RolloutBatchesError(f"{variable}{where}: {value!r} is not {expected}")
    if count < 1:
        raise RolloutBatchesError(
            f"{variable}{where}: {value!r} hosts per batch; at least 1 is needed "
            "(Ansible would run every host at once)"
        )
    return count


def rollout_batches(value: Any, variable: str) -> list[int | str]:
    """The batch list for a play's ``serial`` from ``variable``'s ``value``, or raise.

    A single size gives a one-entry list (every batch that size). The sizes are kept as given
    (a percentage stays a string: Ansible computes it from the play's hosts).
    """
    if not isinstance(value, list):
        return [_batch(variable, value, "")]
    if not value:
        raise RolloutBatchesError(
            f"{variable}: an empty list has no batch (Ansible would run every host at once); "
            f"give {_expected(variable)}"
        )
    return [_batch(variable, size, f" (batch {index})") for index, size in enumerate(value, 1)]
