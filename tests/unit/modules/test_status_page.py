"""The status_page module through its main(): the page and the report copies written 0640
(nothing in check mode), the hosts that are not healthy named, a bad path refused."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.module_harness import fails, succeeds
from tests.unit.test_status_page import GATE_MD, details_result, engine_result

MODULE = "status_page"


def test_the_page_and_its_reports_are_written(tmp_path: Path) -> None:
    page = tmp_path / "fleet.html"
    args = {
        "path": str(page),
        "hosts": ["qlab4", "qlab5"],
        "engine": {"qlab4": engine_result(), "qlab5": {"unreachable": True, "msg": "down"}},
        "details": {"qlab4": details_result()},
    }
    checked = succeeds(MODULE, args, check_mode=True)
    assert not page.exists() and checked["problem_hosts"] == ["qlab5"]
    result = succeeds(MODULE, args)
    copy = tmp_path / "fleet_reports" / "qlab4" / GATE_MD
    assert result["changed"] is True and result["page"] == str(page)
    assert result["reports"] == [str(copy)] and result["problem_hosts"] == ["qlab5"]
    assert stat.S_IMODE(page.stat().st_mode) == 0o640 and copy.is_file()
    assert "no status: down" in page.read_text()


def test_a_bad_path_fails(tmp_path: Path) -> None:
    result = fails(MODULE, {"path": str(tmp_path / "missing" / "fleet.html"), "hosts": []})
    assert result["msg"] == (
        f"cannot write the status page: the page's directory {tmp_path / 'missing'} does not exist"
    )
