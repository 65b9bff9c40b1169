"""Filter ``model_safety_status_table``: the engine status of many hosts as one fixed-width
text table.

The formatting lives in ``model_safety.engine.status.format_status_table`` (the project is
installed into the controller's virtualenv, where filter plugins run); this file only exposes it.
"""

from __future__ import annotations

from model_safety.engine.status import format_status_table


class FilterModule:
    """``{{ {host: engine_status result, ...} | model_safety_status_table }}`` -> table and
    problems per host."""

    def filters(self) -> dict:
        """Map filter names to functions."""
        return {"model_safety_status_table": format_status_table}
