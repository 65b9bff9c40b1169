"""The damage_report module through its main() on a SQLite trade log and the real redis-server:
a report (check mode the same, without files), since the activation, written reports, and the
failures: no start, both starts, no trade log, a hostile table or model name."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from model_safety.activation.log import append_record
from tests.module_harness import HOSTILE_NAMES, fails, succeeds
from tests.unit.test_compare import T0, WEIGHTS, event
from tests.unit.test_damage import AGREES_BUY, DECISIVE_BUY, OUTVOTED, make_db, row

MODULE = "damage_report"
SINCE = "2026-01-10T11:59:00Z"


@pytest.fixture
def args(telemetry, tmp_path: Path) -> dict:
    start_ms = int(T0.timestamp() * 1000)
    for i in range(20):
        payload = event(i * 60, 100.0 + i, {"xgb": ("HOLD", 0.5)}, "HOLD")
        telemetry.client.xadd(
            telemetry.stream, {"payload": json.dumps(payload)}, id=f"{start_ms + i * 60_000}-0"
        )
    kinds = (DECISIVE_BUY, AGREES_BUY, OUTVOTED)
    rows = [row(i * 60, kinds[i % 3], 100.0 + i) for i in range(20)]
    db = make_db(tmp_path / "trade.db", rows)
    return {**telemetry.args, "db_path": db, "model": "patchtst", "baseline": WEIGHTS}


@pytest.mark.parametrize("check_mode", [False, True])
def test_reports_the_rows_the_model_took_part_in_and_decided(args, tmp_path, check_mode) -> None:
    reports = tmp_path / "reports"
    result = succeeds(
        MODULE,
        {**args, "since": SINCE, "horizon": 120, "report_dir": str(reports)},
        check_mode=check_mode,
    )
    assert (result["changed"], result["exit_code"], result["rows"]) == (False, 0, 20)
    assert (result["participated"]["rows"], result["decisive"]["rows"]) == (14, 7)
    assert result["participated"]["sizes"] == "not recorded"
    assert result["decided"] is True
    if check_mode:
        assert "reports" not in result and not reports.exists()
    else:
        markdown = Path(result["reports"]["markdown"])
        assert markdown.read_text().startswith("# Damage report: patchtst\n")
        assert stat.S_IMODE(os.stat(result["reports"]["json"]).st_mode) == 0o640


def test_since_the_activation(args, tmp_path) -> None:
    log = tmp_path / "qsc_canary.jsonl"
    append_record(str(log), {"event": "activation", "model": "patchtst",
                             "started_at": "2026-01-10T12:09:30.000Z"})  # fmt: skip
    result = succeeds(MODULE, {**args, "since_activation": True, "activation_log": str(log)})
    assert result["rows"] == 10
    assert result["activation"]["start"] == "2026-01-10T12:09:30.000Z"


def test_no_activation_record_fails(args, tmp_path) -> None:
    log = tmp_path / "qsc_canary.jsonl"
    append_record(str(log), {"event": "activation", "model": "nhits"})
    result = fails(MODULE, {**args, "since_activation": True, "activation_log": str(log)})
    assert result["msg"].startswith("damage report of patchtst: ")
    assert "patchtst" in result["error"] and result["exit_code"] == 2


def test_a_start_is_required_and_only_one(args) -> None:
    assert fails(MODULE, args)["msg"] == "damage report of patchtst: give since or since_activation"
    both = fails(MODULE, {**args, "since": SINCE, "since_activation": True})
    assert both["msg"] == "parameters are mutually exclusive: since|since_activation"


def test_a_missing_trade_log_fails(args, tmp_path) -> None:
    result = fails(MODULE, {**args, "since": SINCE, "db_path": str(tmp_path / "none.db")})
    assert "does not exist" in result["msg"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_model_names_fail(args, name) -> None:
    result = fails(MODULE, {**args, "since": SINCE, "model": name})
    assert "not a valid model name" in result["msg"]


@pytest.mark.parametrize("table", ["trade_intents; DROP TABLE x", "a b", "", "1x"])
def test_hostile_table_names_fail(args, table) -> None:
    result = fails(MODULE, {**args, "since": SINCE, "trade_table": table})
    assert "plain SQL identifier" in result["msg"]


def test_unreachable_redis_fails_without_its_password(args) -> None:
    url = "redis://:hunter2@127.0.0.1:1/0"
    result = fails(MODULE, {**args, "since": SINCE, "redis_url": url})
    assert "hunter2" not in json.dumps(result)
    assert result["exit_code"] == 2
