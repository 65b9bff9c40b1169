"""``model-safety damage`` against a real redis-server (tests.redis_server) and a SQLite trade
log: the report as JSON, Markdown and report files, --since-activation, and the refusals."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from model_safety import cli
from model_safety.activation.log import append_record
from tests.redis_server import free_port
from tests.unit.test_compare import T0, event
from tests.unit.test_damage import AGREES_BUY, DECISIVE_BUY, OUTVOTED, make_db, row

SINCE = "2026-01-10T11:59:00Z"


def fill(client: Any, stream: str, n: int) -> None:
    """n price events one minute apart on a price rising by 1 per minute."""
    start_ms = int(T0.timestamp() * 1000)
    for i in range(n):
        payload = event(i * 60, 100.0 + i, {"xgb": ("HOLD", 0.5)}, "HOLD")
        client.xadd(stream, {"payload": json.dumps(payload)}, id=f"{start_ms + i * 60_000}-0")


def trade_log(tmp_path: Path) -> str:
    kinds = (DECISIVE_BUY, AGREES_BUY, OUTVOTED)
    rows = [row(i * 60, kinds[i % 3], 100.0 + i) for i in range(30)]
    return make_db(tmp_path / "trade.db", rows)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_damage_json(capsys, tmp_path, redis_server, redis_client, redis_stream) -> None:
    fill(redis_client, redis_stream, 30)
    code, out, _ = run(
        capsys, "damage", "--model", "patchtst", "--since", SINCE, "--db", trade_log(tmp_path),
        "--redis-url", redis_server.url, "--stream", redis_stream, "--json", "--no-report",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0
    assert (result["rows"], result["stream_events"]) == (30, 30)
    participated, decisive = result["participated"], result["decisive"]
    assert (participated["rows"], decisive["rows"]) == (20, 10)
    # 5 minutes of +1 per minute on 100..: every BUY before the last 5 minutes earns
    assert participated["with_return"] == 17 and participated["no_price"] == 3
    assert participated["return_pct_sum"] > 0
    assert result["source"]["after"] == SINCE
    assert result["exit_code"] == 0


def test_damage_writes_markdown_and_json_reports(
    capsys, tmp_path, redis_server, redis_client, redis_stream
) -> None:
    fill(redis_client, redis_stream, 10)
    reports = tmp_path / "reports"
    code, out, _ = run(
        capsys, "damage", "--model", "patchtst", "--since", SINCE, "--db", trade_log(tmp_path),
        "--redis-url", redis_server.url, "--stream", redis_stream,
        "--report-dir", str(reports), "--horizon", "60",
    )  # fmt: skip
    assert code == 0
    assert out.startswith("DAMAGE REPORT patchtst\n")
    assert "## Rows `patchtst` decided (10)" in out
    (markdown,) = reports.glob("damage_*.md")
    assert f"report: {markdown} (+ .json)" in out
    assert markdown.read_text().startswith("# Damage report: patchtst\n")
    assert json.loads(markdown.with_suffix(".json").read_text())["decisive"]["rows"] == 10
    assert stat.S_IMODE(os.stat(markdown).st_mode) == 0o640


def test_damage_since_activation(
    capsys, tmp_path, redis_server, redis_client, redis_stream
) -> None:
    fill(redis_client, redis_stream, 30)
    log = tmp_path / "qsc_canary.jsonl"
    append_record(str(log), {"event": "activation", "model": "patchtst", "weight": 0.1,
                             "started_at": "2026-01-10T12:14:30.000Z"})  # fmt: skip
    code, out, _ = run(
        capsys, "damage", "--model", "patchtst", "--since-activation", "--activation-log",
        str(log), "--db", trade_log(tmp_path), "--redis-url", redis_server.url,
        "--stream", redis_stream, "--json", "--no-report",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0
    assert result["since"] == "2026-01-10T12:14:30.000Z"
    assert result["rows"] == 15
    assert result["activation"]["log"] == str(log)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "give --since TIME or --since-activation"),
        (("--since", SINCE, "--since-activation"), "mutually exclusive"),
        (("--since", SINCE, "--count", "10"), "--count is not used by damage"),
        (
            ("--since-activation", "--activation-log", "/nonexistent/log.jsonl"),
            "--since-activation",
        ),
        (("--since", SINCE, "--table", "x;drop"), "plain SQL identifier"),
        (("--since", SINCE, "--until", "2026-01-10T11:00:00Z"), "is not later than since"),
    ],
)
def test_refusals_exit_2_with_a_sentence(capsys, tmp_path, argv, message) -> None:
    code, out, _ = run(
        capsys, "damage", "--model", "patchtst", "--db", trade_log(tmp_path),
        "--redis-url", f"redis://127.0.0.1:{free_port()}/0", "--timeout", "0.5",
        "--json", "--no-report", *argv,
    )  # fmt: skip
    result = json.loads(out)
    assert code == 2
    assert message in result["error"]


def test_a_missing_trade_log_is_an_error(capsys, tmp_path, redis_server, redis_stream) -> None:
    code, out, _ = run(
        capsys, "damage", "--model", "patchtst", "--since", SINCE,
        "--db", str(tmp_path / "none.db"), "--redis-url", redis_server.url,
        "--stream", redis_stream, "--no-report",
    )  # fmt: skip
    assert code == 2
    assert out.startswith("DAMAGE patchtst: error: trade log ")
    assert "does not exist" in out


def test_unreachable_redis_is_an_error(capsys, tmp_path) -> None:
    code, out, _ = run(
        capsys, "damage", "--model", "patchtst", "--since", SINCE, "--db", trade_log(tmp_path),
        "--redis-url", f"redis://:secret@127.0.0.1:{free_port()}/0", "--timeout", "0.5",
        "--json", "--no-report",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 2
    assert "secret" not in out
    assert result["error"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--horizon", "0"), ("--max-lag", "-1"), ("--weights", "xgb:2"), ("--until", "noon")],
)
def test_bad_options_are_usage_errors(capsys, option: str, value: str) -> None:
    code, _out, err = run(
        capsys, "damage", "--model", "patchtst", "--since", SINCE, option, value
    )  # fmt: skip
    assert code == 2
    assert "error:" in err


def test_bad_model_name_is_refused(capsys, tmp_path) -> None:
    code, out, _ = run(
        capsys, "damage", "--model", "Bad;Name", "--since", SINCE, "--db", trade_log(tmp_path),
        "--redis-url", f"redis://127.0.0.1:{free_port()}/0", "--json", "--no-report",
    )  # fmt: skip
    assert code == 2
    assert "not a valid model name" in json.loads(out)["error"]
