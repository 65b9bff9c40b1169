"""The fleet status page: what status_details reads of a host (the activation log's newest
activation, rollback and monitor state, the newest reports and gate verdict) and the page
rendered and written from it (content, escaping, hosts without a status, missing pieces,
report copies beside the page, paths refused)."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from model_safety.activation.log import append_record
from model_safety.fleet import details as fd
from model_safety.fleet.page import (
    StatusPageError,
    fleet_of,
    host_state,
    render_status_page,
    reports_dir_of,
    write_status_page,
)

NOW = datetime(2026, 1, 10, 12, 0, 5, tzinfo=UTC)
BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
CANARY = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
GATE_MD = "quality_gate_20260110T115800Z.md"


def engine_result(build: str = "1a2b3c4", problems: list[str] | None = None) -> dict:
    """An engine_status result of a host running the canary patchtst at 0.1."""
    return {
        "service": {"active_state": "active", "sub_state": "running", "n_restarts": 0,
                    "active_since": "2026-01-10T11:50:00.000Z"},
        "startup": {"build": build, "voting": CANARY, "shadow": {},
                    "canary": {"model": "patchtst", "weight": 0.1, "weights": CANARY}},
        "git": {"sha": "1a2b3c4d" * 5, "short": "1a2b3c4"},
        "build_verified": build == "1a2b3c4",
        "stream": {"length": 12000, "rate_per_s": 10.02, "last_event_age_s": 0.084},
        "problems": problems or [],
    }  # fmt: skip


def details_result(**changes) -> dict:
    """A status_details result: configured as it runs, a canary activation, a safe watch, a
    passed gate and its report (with its text)."""
    result = {
        "models": fd.model_roles(CANARY, {}, "patchtst", BASELINE),
        "activation": {
            "last_activation": {"event": "activation", "action": "canary_activated",
                                "ts": "2026-01-10T11:50:03.000Z", "model": "patchtst",
                                "weight": 0.1, "outcome": "done", "reason": None},
            "last_rollback": None,
        },
        "monitor": {"state": "completed", "ts": "2026-01-10T11:59:00.000Z", "model": "patchtst",
                    "result": "safe", "checks": 18},
        "gate": {"verdict": "PASS", "mode": "canary", "model": "patchtst", "event_count": 342,
                 "blockers": [], "time": "2026-01-10T11:58:00Z",
                 "report": "quality_gate_20260110T115800Z.json"},
        "reports": [{"kind": "quality_gate", "name": GATE_MD, "time": "2026-01-10T11:58:00Z",
                     "size": 20, "modified": "2026-01-10T11:58:00Z",
                     "text": "# QUALITY GATE PASS\n", "skipped": None}],
        "problems": [],
    }  # fmt: skip
    return {**result, **changes}


def sample_fleet() -> dict:
    """Four hosts: healthy, a problem (unproven build, a rollback, a violation), unreachable
    and one whose details are all unreadable."""
    rollback = {"event": "rollback_executed", "action": "rollback_executed",
                "ts": "2026-01-10T11:59:30.000Z", "model": "patchtst", "weight": None,
                "outcome": "rolled_back", "reason": "monitor: Action collapse"}  # fmt: skip
    return {
        "qlab4": {"engine": engine_result(), "details": details_result()},
        "qlab5": {
            "engine": engine_result("9f8e7d6", ["running build 9f8e7d6 does not match git HEAD"]),
            "details": details_result(
                activation={"last_activation": None, "last_rollback": rollback},
                monitor={
                    "state": "violation",
                    "ts": "2026-01-10T11:59:20.000Z",
                    "model": "patchtst",
                    "violations": ["Action collapse: HOLD=78.3% (>70%)"],
                },
                gate=None,
                reports=[],
            ),
        },
        "qlab6": {"engine": {"unreachable": True, "msg": "ssh: connect timed out"}, "details": {}},
        "qlab7": {
            "engine": engine_result(),
            "details": details_result(
                models=None,
                activation=None,
                monitor=None,
                gate=None,
                reports=None,
                problems=["activation log unreadable: permission denied"],
            ),
        },
    }


# --------------------------------------------------------------------------- status_details


def test_model_roles_canary_voting_shadow_off() -> None:
    roles = fd.model_roles({"xgb": 0.5, "patchtst": 0.5}, {"nhits": 0.3}, "patchtst", BASELINE)
    assert roles == {
        "xgb": {"role": "voting", "weight": 0.5},
        "lgbm": {"role": "off", "weight": None},
        "nhits": {"role": "shadow", "weight": None},
        "patchtst": {"role": "canary", "weight": 0.5},
    }


def test_activation_history_newest_records_old_and_new_keys(tmp_path: Path) -> None:
    log = str(tmp_path / "qsc_canary.jsonl")
    # A seed-era record (only action, canary_model, timestamp) is read the same way.
    seed = {"timestamp": "2026-01-09T10:00:00Z", "action": "canary_activated",
            "canary_model": "nhits", "canary_weight": 0.1}  # fmt: skip
    with open(log, "w") as handle:
        handle.write(json.dumps(seed) + "\n")
    history, problems = fd.read_history(log)
    assert problems == []
    assert history["last_activation"] == {
        "event": "activation", "action": "canary_activated", "ts": "2026-01-09T10:00:00Z",
        "model": "nhits", "weight": 0.1, "outcome": "done", "reason": None,
    }  # fmt: skip
    assert history["last_rollback"] is None and history["monitor"] == {"state": "none"}
    append_record(log, {"event": "promotion", "model": "patchtst", "from": 0.1, "to": 0.2})
    append_record(log, {"event": "monitoring_started", "model": "patchtst"})
    assert fd.read_history(log)[0]["monitor"]["state"] == "watching"
    append_record(log, {"event": "violation", "model": "patchtst", "text": "HOLD=78.3% (>70%)"})
    history = fd.read_history(log)[0]
    assert history["monitor"]["violations"] == ["HOLD=78.3% (>70%)"]
    append_record(log, {"event": "rollback_executed", "model": "patchtst", "reason": "x\ny" * 200})
    append_record(
        log, {"event": "monitoring_completed", "model": "patchtst", "result": "rolled_back",
              "checks": 7},
    )  # fmt: skip
    history = fd.read_history(log)[0]
    assert history["last_activation"]["action"] == "promotion_step"
    assert history["last_activation"]["weight"] == 0.2
    rollback = history["last_rollback"]
    assert rollback["outcome"] == "rolled_back" and len(rollback["reason"]) == 200
    assert "\n" not in rollback["reason"]
    assert history["monitor"]["state"] == "completed"
    assert history["monitor"]["result"] == "rolled_back" and history["monitor"]["checks"] == 7


def test_a_missing_log_has_none_a_broken_line_is_a_problem(tmp_path: Path) -> None:
    log = tmp_path / "qsc_canary.jsonl"
    history, problems = fd.read_history(str(log))
    assert problems == [] and history["last_activation"] is None
    log.write_text('{"event": "rollback_failed", "model": "xgb"}\nnot json\n')
    history, problems = fd.read_history(str(log))
    assert history["last_rollback"]["outcome"] == "rollback_failed"
    assert len(problems) == 1 and "line 2: unreadable" in problems[0]
    log.write_bytes(b"")
    log.chmod(0)
    if os.geteuid() != 0:  # root reads it anyway
        assert fd.read_history(str(log))[0] is None


def test_latest_reports_newest_per_kind_no_symlinks(tmp_path: Path) -> None:
    names = [
        "quality_gate_20260110T115800Z.md", "quality_gate_20260110T115800Z.json",
        "quality_gate_20260110T115800Z_1.md", "quality_gate_20260110T115800Z_1.json",
        "quality_gate_20260109T000000Z.md", "compare_20260110T110000Z.md",
        "compare_20260110T110000Z.html", "scoreboard_latest.md", "notes.txt",
    ]  # fmt: skip
    for name in names:
        (tmp_path / name).write_text(f"{name}\n")
    (tmp_path / "quality_gate_20260110T115800Z_1.json").write_text(
        json.dumps(
            {
                "verdict": "FAIL",
                "mode": "canary",
                "event_count": 12,
                "blockers": [f"b{i}" for i in range(9)],
            }
        )
    )
    secret = tmp_path.parent / "secret"
    secret.write_text("do not read")
    (tmp_path / "damage_20990101T000000Z.md").symlink_to(secret)
    (tmp_path / "big_20260110T000000Z.md").write_text("x" * 50)
    reports, gate_entry = fd.latest_reports(str(tmp_path), include_text=True, max_bytes=40)
    by_name = {report["name"]: report for report in reports}
    assert list(by_name) == [
        "big_20260110T000000Z.md", "compare_20260110T110000Z.html",
        "compare_20260110T110000Z.md", "quality_gate_20260110T115800Z_1.md",
        "scoreboard_latest.md",
    ]  # fmt: skip
    assert by_name["big_20260110T000000Z.md"]["text"] is None
    assert by_name["big_20260110T000000Z.md"]["skipped"] == "larger than 40 bytes"
    assert by_name["compare_20260110T110000Z.md"]["time"] == "2026-01-10T11:00:00Z"
    assert by_name["scoreboard_latest.md"]["time"] is None
    assert by_name["scoreboard_latest.md"]["text"] == "scoreboard_latest.md\n"
    gate, problems = fd.last_gate(gate_entry)
    assert problems == [] and gate["verdict"] == "FAIL" and gate["blockers"] == [
        "b0", "b1", "b2", "b3", "b4",
    ]  # fmt: skip
    assert gate["time"] == "2026-01-10T11:58:00Z" and gate["model"] is None
    assert fd.latest_reports(str(tmp_path / "missing")) == ([], None)
    (tmp_path / "quality_gate_20260110T115800Z_1.json").write_text("{not json")
    gate, problems = fd.last_gate(fd.latest_reports(str(tmp_path))[1])
    assert gate["verdict"] == "unknown" and gate["time"] == "2026-01-10T11:58:00Z"
    assert problems[0].startswith("gate report quality_gate_20260110T115800Z_1.json unreadable")


# --------------------------------------------------------------------------- the page


def test_the_page_shows_every_host_and_piece() -> None:
    page = render_status_page(sample_fleet(), "fleet_reports", NOW)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "4 host(s), 1 healthy, generated 2026-01-10T12:00:05Z" in page
    for host in ("qlab4", "qlab5", "qlab6", "qlab7"):
        assert f">{host}</a>" in page and f">{host} <span" in page
    assert page.count(">HEALTHY<") == 2 and page.count(">NO STATUS<") == 2
    assert page.count(">PROBLEM<") == 4
    assert "<td>patchtst</td><td>canary</td><td>0.1</td><td>canary</td><td>0.1</td>" in page
    assert "<td>nhits</td><td>voting</td><td>0.3375</td>" in page
    assert "1a2b3c4 (verified; git HEAD 1a2b3c4)" in page
    assert "9f8e7d6 (NOT verified" in page
    assert "PASS at 2026-01-10T11:58:00Z (canary, model patchtst, 342 events)" in page
    assert "completed (patchtst) at 2026-01-10T11:59:00.000Z: safe, 18 check(s)" in page
    assert "canary_activated patchtst at weight 0.1, 2026-01-10T11:50:03.000Z: done" in page
    assert "rollback_executed patchtst, 2026-01-10T11:59:30.000Z: rolled_back" in page
    assert "violation (patchtst)" in page and "HOLD=78.3% (&gt;70%)" in page
    assert f'<a href="fleet_reports/qlab4/{GATE_MD}">{GATE_MD}</a>' in page
    assert "no status: ssh: connect timed out" in page
    assert "activation log unreadable: permission denied" in page


def test_missing_pieces_read_unknown_and_absent_records_none() -> None:
    page = render_status_page(sample_fleet(), "r", NOW)
    qlab5 = page[page.index('id="host-2"') : page.index('id="host-3"')]
    assert "<th>last gate</th><td>none</td>" in qlab5
    assert "<th>last activation</th><td>none</td>" in qlab5
    assert "<th>reports</th><td>none</td>" in qlab5
    qlab7 = page[page.index('id="host-4"') :]
    for row in ("last gate", "monitor", "last activation", "last rollback", "reports"):
        assert f"<th>{row}</th><td>unknown</td>" in qlab7
    assert "<td>patchtst</td><td>canary</td><td>0.1</td><td>unknown</td><td>-</td>" in qlab7
    qlab6 = page[page.index('id="host-3"') : page.index('id="host-4"')]
    assert "<p>models: unknown</p>" in qlab6 and "<th>service</th><td>unknown</td>" in qlab6


def test_hostile_names_are_escaped_and_never_paths(tmp_path: Path) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    details = details_result()
    details["reports"] = [
        {**details["reports"][0], "name": "../../etc/cron.d/x"},
        {**details["reports"][0], "name": f"{hostile}_20260110T115800Z.md"},
        details["reports"][0],
    ]
    details["problems"] = [hostile]
    fleet = {
        hostile: {"engine": engine_result(), "details": details_result()},
        "../escape": {"engine": engine_result(), "details": details},
    }
    page_path = tmp_path / "fleet.html"
    written = write_status_page(str(page_path), fleet, NOW)
    page = page_path.read_text()
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert written["reports"] == []  # neither host name can be a directory
    assert list(tmp_path.iterdir()) == [page_path]
    assert "../../etc/cron.d/x: not copied, not a report name" in page
    assert "not copied, the host name is no directory name" in page


def test_write_status_page_copies_reports_beside_the_page(tmp_path: Path) -> None:
    fleet = sample_fleet()
    page_path = tmp_path / "fleet.html"
    dry = write_status_page(str(page_path), fleet, NOW, write=False)
    assert not page_path.exists() and dry["problem_hosts"] == ["qlab5", "qlab6", "qlab7"]
    written = write_status_page(str(page_path), fleet, NOW)
    copy = tmp_path / "fleet_reports" / "qlab4" / GATE_MD
    assert written == {**dry, "reports": [str(copy)]} and dry["reports"] == [str(copy)]
    assert copy.read_text() == "# QUALITY GATE PASS\n"
    for path in (page_path, copy):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o750
    assert reports_dir_of(str(page_path)) == str(tmp_path / "fleet_reports")
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("fleet.html", "is not an absolute path"),
        ("/tmp/../fleet.html", "contains '..'"),
        ("/no/such/dir/fleet.html", "directory /no/such/dir does not exist"),
        ("/tmp", "is a directory"),
    ],
)
def test_a_bad_page_path_is_refused(path, message) -> None:
    with pytest.raises(StatusPageError, match=message.replace(".", r"\.")):
        write_status_page(path, sample_fleet(), NOW)


def test_hosts_without_results_are_shown_not_left_out() -> None:
    fleet = fleet_of(["qlab4", "qlab9"], {"qlab4": engine_result()}, {"qlab4": details_result()})
    assert host_state(fleet["qlab4"]) == ("healthy", [])
    assert host_state(fleet["qlab9"]) == (
        "unreachable",
        ["no status: the engine_status module returned nothing"],
    )
    no_details = {"engine": engine_result(), "details": {"failed": True, "msg": "boom"}}
    assert host_state(no_details) == ("problem", ["no status details: boom"])
