"""The report file names are defined once (judgement.report_names): what write_reports writes,
the fleet status page's reader recognises, and its stamp gives back the time written."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from model_safety.judgement.report_names import (
    LATEST_NAME_RE,
    REPORT_NAME_RE,
    stamp,
    stamp_time,
)
from model_safety.judgement.reports import write_reports
from tests.unit.test_html_report import scoreboard_result

NOW = datetime(2026, 12, 4, 19, 34, 6, tzinfo=UTC)


def test_the_names_written_are_the_names_read(tmp_path):
    first = write_reports(scoreboard_result(), "scoreboard", str(tmp_path), NOW)
    second = write_reports(scoreboard_result(), "scoreboard", str(tmp_path), NOW)
    names = [os.path.basename(path) for path in (*first.values(), *second.values())]
    latest = [name for name in names if name.endswith("_latest.md")]
    stamped = [name for name in names if name not in latest]
    assert latest and all(LATEST_NAME_RE.fullmatch(name) for name in latest)
    parsed = [REPORT_NAME_RE.fullmatch(name) for name in stamped]
    assert all(parsed), stamped
    assert {match["kind"] for match in parsed} == {"scoreboard"}
    assert {match["suffix"] for match in parsed} == {None, "1"}  # the same second, twice
    assert {stamp_time(match["stamp"]) for match in parsed} == {NOW}


def test_a_stamp_needs_a_timezone_and_is_utc():
    with pytest.raises(ValueError):
        stamp(datetime(2026, 12, 4, 19, 34, 6))
    assert stamp(datetime.fromisoformat("2026-12-04T20:34:06+01:00")) == "20261204T193406Z"


@pytest.mark.parametrize(
    "name",
    ["../gate_20261204T193406Z.md", "gate_20261204T193406Z.md.sh", "Gate_20261204T193406Z.md"],
)
def test_other_names_are_not_reports(name):
    assert not REPORT_NAME_RE.fullmatch(name)
