"""The ``model_safety_status_table`` filter plugin is a thin alias of ``format_status_table``."""

from __future__ import annotations

from model_safety.engine.status import format_status_table
from tests import filter_plugin

RESULTS = {
    "qlab1": {
        "service": {"active_state": "active", "sub_state": "running", "n_restarts": 0},
        "startup": {"build": "1a2b3c4", "builds": ["1a2b3c4"]},
        "git": {"sha": "1a2b3c4" + "0" * 33, "short": "1a2b3c4"},
        "build_verified": True,
        "stream": {"length": 1200, "rate_per_s": 9.96, "last_event_age_s": 0.1},
        "problems": [],
    },
    "qlab2": {"failed": True, "msg": "cannot read the engine status: systemctl missing"},
}


def test_filter_is_format_status_table() -> None:
    filters = filter_plugin.filters("status_table")
    assert set(filters) == {"model_safety_status_table"}
    assert filters["model_safety_status_table"](RESULTS) == format_status_table(RESULTS)


def test_filter_output() -> None:
    table = filter_plugin.filters("status_table")["model_safety_status_table"](RESULTS)
    assert "qlab1" in table.splitlines()[2]
    assert table.splitlines()[-1] == (
        "  qlab2: no status: cannot read the engine status: systemctl missing"
    )
