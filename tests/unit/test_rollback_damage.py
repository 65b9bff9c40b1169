"""The damage report a rollback attaches to its record (activation.rollback with ``damage``):
made after the proof, from the model's activation to the engine's new start, its summary and
report paths in the one rollback_executed record; a report that fails is said there and never
fails the rollback; none in check mode or unless asked."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from model_safety.activation.log import append_record
from tests.unit.test_activation_rollback import records, roll_back, site
from tests.unit.test_damage import AGREES_BUY, DECISIVE_BUY, OUTVOTED, make_db, row

__all__ = ["site"]

# The fake host's new start (tests/fake_engine_host.py): the window ends there.
NEW_START = datetime(2026, 11, 23, 18, 1, 2, 123456, tzinfo=UTC)
ACTIVATED = NEW_START - timedelta(minutes=12)
WEIGHTS = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}


def at(moment: datetime, kind: tuple[dict, str], price: float) -> dict[str, Any]:
    """A trade_intents row of ``kind`` at ``moment``."""
    made = row(0, kind, price)
    payload = json.loads(made["payload"])
    stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload["timestamp"] = made["created_at"] = stamp
    made["payload"] = json.dumps(payload)
    return made


@pytest.fixture
def damaged(site: dict, redis_server, redis_client, redis_stream) -> dict:
    """The site after 14 minutes of the canary: its activation record, a trade log with a row
    a minute (two of them after the new start) and the stream's prices, rising 1 a minute."""
    append_record(site["request"].log_path, {"event": "activation", "model": "patchtst",
                  "started_at": ACTIVATED.isoformat().replace("+00:00", "Z")})  # fmt: skip
    kinds = (DECISIVE_BUY, AGREES_BUY, OUTVOTED)
    rows = []
    for minute in range(1, 15):
        moment = ACTIVATED + timedelta(minutes=minute)
        rows.append(at(moment, kinds[minute % 3], 100.0 + minute))
        price = at(moment, OUTVOTED, 100.0 + minute)["payload"]
        stream_id = f"{int(moment.timestamp() * 1000)}-0"
        redis_client.xadd(redis_stream, {"payload": price}, id=stream_id)
    db = make_db(site["tmp"] / "trade.db", rows)
    site["damage"] = {
        "db_path": db,
        "redis_url": redis_server.url,
        "stream": redis_stream,
        "horizon": 120.0,
        "report_dir": str(site["tmp"] / "reports"),
    }
    return site


def test_the_record_carries_the_damage_summary_and_its_reports(damaged: dict) -> None:
    result = roll_back(damaged, damage=damaged["damage"], baseline=WEIGHTS)
    summary = result["damage"]["summary"]
    # minutes 1..11 are before the new start (18:01:02): 11 rows; patchtst took part in those
    # of minutes 1, 4, 7, 10 (agreeing) and 3, 6, 9 (deciding)
    assert (summary["rows"], summary["participated"], summary["decisive"]) == (11, 7, 3)
    assert summary["until"] == result["start"]["started_at"]
    assert summary["since"] == "2026-11-23T17:49:02.123456Z"
    assert summary["participated_return_pct_sum"] > 0
    record = records(damaged)[-1]
    assert record["event"] == "rollback_executed"
    assert record["damage"] == summary
    assert record["damage_reports"] == result["damage"]["reports"]
    for path in record["damage_reports"].values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    page = Path(record["damage_reports"]["markdown"]).read_text()
    assert page.startswith("# Damage report: patchtst\n")
    assert json.loads(Path(record["damage_reports"]["json"]).read_text())["rows"] == 11
    # after the proof, before the record
    assert result["seconds"]["proven"] <= result["seconds"]["total"]
    assert "damage" in result["seconds"]


def test_a_failed_damage_report_never_fails_the_rollback(damaged: dict, tmp_path: Path) -> None:
    options = {**damaged["damage"], "db_path": str(tmp_path / "none.db")}
    result = roll_back(damaged, damage=options, baseline=WEIGHTS)
    error = result["damage"]["error"]
    assert error.startswith("damage report failed: trade log ")
    assert "does not exist" in error
    assert result["warnings"] == [error]
    record = records(damaged)[-1]
    assert record["event"] == "rollback_executed"
    assert record["damage"] == {"error": error} and record["damage_reports"] is None
    assert not damaged["env"].read_text().startswith("PATCHTST_SHADOW_ONLY=false")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"report_dir": None}, "damage report failed: no report_dir"),
        (
            {"trade_table": "x; DROP"},
            "damage report failed: trade_table must be a plain SQL identifier",
        ),
    ],
)
def test_bad_damage_options_are_said_in_the_record(damaged: dict, change, message) -> None:
    result = roll_back(damaged, damage={**damaged["damage"], **change}, baseline=WEIGHTS)
    assert result["damage"]["error"].startswith(message)
    assert records(damaged)[-1]["damage"]["error"].startswith(message)


def test_without_an_activation_record_the_damage_report_fails_alone(site: dict) -> None:
    options = {"report_dir": str(site["tmp"] / "reports"), "db_path": "/none.db"}
    result = roll_back(site, damage=options)
    assert result["damage"]["error"].startswith("damage report failed: ")
    assert "no activation log at " in result["damage"]["error"]
    assert records(site)[0]["event"] == "rollback_executed"


def test_check_mode_and_no_request_make_no_damage_report(damaged: dict) -> None:
    checked = roll_back(damaged, check_mode=True, damage=damaged["damage"], baseline=WEIGHTS)
    assert "damage" not in checked and "damage" not in checked["record"]
    plain = roll_back(damaged, baseline=WEIGHTS)
    assert "damage" not in plain and "damage" not in records(damaged)[-1]
    assert not (damaged["tmp"] / "reports").exists()


def test_the_request_keeps_its_damage_options(site: dict) -> None:
    request = replace(site["request"], damage={"report_dir": "/r"})
    assert request.checked().damage == {"report_dir": "/r"}
