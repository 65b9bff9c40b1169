"""Unit tests of model_safety.judgement.damage: the rows a model took part in and decided, by
symbol and side, their forward returns, sizes, malformed rows, the window's bounds, bad options,
1 row/min and 100 rows/s, and the Markdown page."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from model_safety.judgement.damage import (
    DamageError,
    damage_from_log,
    summary,
)
from model_safety.judgement.damage_report import render_damage
from model_safety.telemetry.events import parse_window
from tests.unit.test_compare import T0, WEIGHTS, event

SINCE = "2026-01-10T11:59:00Z"
# Breakdowns (weights xgb .25 lgbm .25 nhits .30 patchtst .20) and what patchtst does in them.
# Decisive BUY: BUY .15 + .18 against SELL .15; without patchtst a tie, so HOLD.
DECISIVE_BUY = ({"xgb": ("BUY", 0.6), "lgbm": ("SELL", 0.6), "patchtst": ("BUY", 0.9)}, "BUY")
DECISIVE_SELL = ({"xgb": ("SELL", 0.6), "lgbm": ("BUY", 0.6), "patchtst": ("SELL", 0.9)}, "SELL")
# Took part, not decisive: BUY wins without it as well.
AGREES_BUY = ({"xgb": ("BUY", 0.7), "lgbm": ("BUY", 0.6), "patchtst": ("BUY", 0.6)}, "BUY")
# Voted against the decision: neither took part nor decided.
OUTVOTED = ({"xgb": ("SELL", 0.7), "lgbm": ("SELL", 0.6), "patchtst": ("BUY", 0.5)}, "SELL")
# A tie BUY .15 = SELL .05 + .10 that patchtst makes: HOLD, BUY without it. Decisive, but
# model_source (the voters agreeing with HOLD) does not name it.
TIE_HOLD = ({"xgb": ("BUY", 0.6), "lgbm": ("SELL", 0.2), "patchtst": ("SELL", 0.5)}, "HOLD")


def source_of(breakdown: Mapping[str, Any], side: str) -> str:
    return ",".join(name for name, (action, _c) in breakdown.items() if action == side)


def row(
    seconds: float,
    kind: tuple[dict, str],
    price: float | None = 100.0,
    symbol: str = "BTCUSDT",
    **sizes: float,
) -> dict[str, Any]:
    breakdown, side = kind
    payload = event(seconds, price, breakdown, side, symbol)
    return {
        "created_at": payload["timestamp"],
        "symbol": symbol,
        "side": side,
        "model_source": source_of(breakdown, side),
        "payload": json.dumps(payload),
        **sizes,
    }


def make_db(path: Path, rows: Sequence[Mapping[str, Any]], sizes: Sequence[str] = ()) -> str:
    db = sqlite3.connect(path)
    extra = "".join(f", {name} REAL" for name in sizes)
    db.execute(
        "CREATE TABLE trade_intents (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, "
        "symbol TEXT, side TEXT, confidence REAL, model_source TEXT, payload TEXT" + extra + ")"
    )
    db.execute("CREATE INDEX idx_created ON trade_intents(created_at)")
    names = ["created_at", "symbol", "side", "model_source", "payload", *sizes]
    db.executemany(
        f"INSERT INTO trade_intents ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [[r.get(name) for name in names] for r in rows],
    )
    db.commit()
    db.close()
    return str(path)


def prices(points: Sequence[tuple[float, float]], symbol: str = "BTCUSDT"):
    """A stream window of events at (seconds, price) of ``symbol`` (patchtst not voting)."""
    entries = []
    for i, (seconds, price) in enumerate(points):
        payload = event(seconds, price, {"xgb": ("HOLD", 0.5)}, "HOLD", symbol)
        entries.append((f"{1_768_046_400_000 + i}-0".encode(), json.dumps(payload).encode()))
    return parse_window(entries)


def report(db: str, window=None, **options: Any) -> dict[str, Any]:
    return damage_from_log(db, "patchtst", WEIGHTS, options.pop("since", SINCE), window=window,
                           **options)  # fmt: skip


# Took part, decided, by symbol and side


def test_decisive_and_participated_rows_by_symbol_and_side(tmp_path: Path) -> None:
    rows = [
        row(0, DECISIVE_BUY),
        row(1, DECISIVE_SELL, symbol="ETHUSDT"),
        row(2, AGREES_BUY),
        row(3, AGREES_BUY),
        row(4, OUTVOTED),
        row(5, TIE_HOLD),
    ]
    result = report(make_db(tmp_path / "t.db", rows), horizon_s=60)
    participated, decisive = result["participated"], result["decisive"]
    assert result["rows"] == 6 and result["malformed_rows"] == 0
    assert (participated["rows"], participated["buy"], participated["sell"]) == (4, 3, 1)
    assert [(g["symbol"], g["side"], g["rows"]) for g in participated["groups"]] == [
        ("BTCUSDT", "BUY", 3),
        ("ETHUSDT", "SELL", 1),
    ]
    assert (decisive["rows"], decisive["buy"], decisive["sell"], decisive["hold"]) == (3, 1, 1, 1)
    assert [(g["symbol"], g["side"], g["rows"]) for g in decisive["groups"]] == [
        ("BTCUSDT", "BUY", 1),
        ("BTCUSDT", "HOLD", 1),
        ("ETHUSDT", "SELL", 1),
    ]


def test_a_model_that_never_voted_took_part_in_nothing(tmp_path: Path) -> None:
    rows = [row(i, ({"xgb": ("BUY", 0.7), "lgbm": ("BUY", 0.6)}, "BUY")) for i in range(5)]
    result = report(make_db(tmp_path / "t.db", rows))
    assert (result["participated"]["rows"], result["decisive"]["rows"]) == (0, 0)
    assert result["decided"] is False
    assert result["reason"] == "patchtst took part in no row and decided none"


# Forward returns


def test_buy_earns_the_move_and_sell_its_opposite(tmp_path: Path) -> None:
    rows = [row(0, DECISIVE_BUY, 100.0), row(1, DECISIVE_SELL, 100.0), row(2, AGREES_BUY, 100.0)]
    window = prices([(0, 100.0), (310, 102.0)])
    result = report(make_db(tmp_path / "t.db", rows), window, horizon_s=300)
    participated, decisive = result["participated"], result["decisive"]
    assert participated["with_return"] == 3
    # BUY +2 %, SELL -2 %, BUY +2 %
    assert participated["return_pct_sum"] == pytest.approx(2.0)
    assert participated["return_pct_mean"] == pytest.approx(2.0 / 3)
    by_side = {g["side"]: g["return_pct_sum"] for g in participated["groups"]}
    assert by_side == pytest.approx({"BUY": 4.0, "SELL": -2.0})
    # Without patchtst both decisive rows were HOLD (0): net = with.
    assert decisive["return_pct_sum"] == pytest.approx(0.0)
    assert decisive["without_model_pct_sum"] == 0.0
    assert decisive["net_pct_sum"] == pytest.approx(0.0)
    assert result["decided"] is True


def test_a_decisive_hold_costs_the_move_the_decision_without_it_would_have_made(
    tmp_path: Path,
) -> None:
    window = prices([(0, 100.0), (400, 101.0)])
    result = report(make_db(tmp_path / "t.db", [row(0, TIE_HOLD, 100.0)]), window)
    decisive = result["decisive"]
    assert (decisive["rows"], decisive["hold"], decisive["with_return"]) == (1, 1, 0)
    assert decisive["compared"] == 1
    assert decisive["without_model_pct_sum"] == pytest.approx(1.0)  # BUY without it
    assert decisive["net_pct_sum"] == pytest.approx(-1.0)


def test_returns_are_per_symbol(tmp_path: Path) -> None:
    rows = [row(0, AGREES_BUY, 100.0), row(0, AGREES_BUY, 50.0, symbol="ETHUSDT")]
    window = prices([(0, 100.0), (300, 90.0)])
    result = report(make_db(tmp_path / "t.db", rows), window)
    groups = {g["symbol"]: g for g in result["participated"]["groups"]}
    assert groups["BTCUSDT"]["return_pct_sum"] == pytest.approx(-10.0)
    assert groups["ETHUSDT"]["with_return"] == 0 and groups["ETHUSDT"]["no_price"] == 1


def test_missing_prices_are_counted_not_guessed(tmp_path: Path) -> None:
    rows = [row(0, AGREES_BUY, None), row(1, AGREES_BUY, 100.0)]
    result = report(make_db(tmp_path / "t.db", rows), prices([(2, 101.0)]))
    participated = result["participated"]
    assert (participated["rows"], participated["with_return"], participated["no_price"]) == (
        2,
        0,
        2,
    )
    assert participated["return_pct_sum"] is None
    assert result["decided"] is False
    assert result["reason"] == "no decision of patchtst has a later price over the horizon yet"


def test_a_later_price_after_a_stall_is_no_price(tmp_path: Path) -> None:
    rows = [row(0, AGREES_BUY, 100.0)]
    stalled = prices([(0, 100.0), (3600, 150.0)])
    result = report(make_db(tmp_path / "t.db", rows), stalled, horizon_s=300)
    assert result["participated"]["no_price"] == 1
    wide = report(make_db(tmp_path / "u.db", rows), stalled, horizon_s=300, max_lag_s=4000)
    assert wide["participated"]["return_pct_sum"] == pytest.approx(50.0)


def test_the_rows_own_prices_are_a_price_path_without_the_stream(tmp_path: Path) -> None:
    rows = [row(0, AGREES_BUY, 100.0), row(300, AGREES_BUY, 103.0)]
    result = report(make_db(tmp_path / "t.db", rows))
    assert result["participated"]["return_pct_sum"] == pytest.approx(3.0)
    assert result["participated"]["no_price"] == 1
    assert result["stream_events"] == 0


# Sizes


def test_size_columns_are_summed_when_the_table_has_them(tmp_path: Path) -> None:
    rows = [
        row(0, AGREES_BUY, quantity=0.5, notional=50.0),
        row(1, AGREES_BUY, quantity=1.5, notional=None),
        row(2, DECISIVE_SELL, quantity=2.0, notional=200.0),
    ]
    result = report(make_db(tmp_path / "t.db", rows, sizes=("quantity", "notional")))
    assert result["size_columns"] == ["quantity", "notional"]
    assert result["participated"]["sizes"] == {"quantity": 4.0, "notional": 250.0}
    groups = {g["side"]: g["sizes"] for g in result["participated"]["groups"]}
    assert groups == {
        "BUY": {"quantity": 2.0, "notional": 50.0},
        "SELL": {"quantity": 2.0, "notional": 200.0},
    }
    assert result["decisive"]["sizes"] == {"quantity": 2.0, "notional": 200.0}


def test_without_a_size_column_size_is_not_recorded(tmp_path: Path) -> None:
    result = report(make_db(tmp_path / "t.db", [row(0, AGREES_BUY)]))
    assert result["size_columns"] == []
    assert result["participated"]["sizes"] == "not recorded"
    assert "- Size: not recorded" in render_damage(result, datetime.now(UTC))


# Rows and window


def test_no_rows_is_not_decided_and_no_error(tmp_path: Path) -> None:
    result = report(make_db(tmp_path / "t.db", []))
    assert (result["rows"], result["decided"]) == (0, False)
    assert result["reason"] == "no trade_intents rows in the window"
    assert result["participated"]["groups"] == [] and result["participated"]["rows"] == 0


def test_malformed_rows_are_counted_and_skipped(tmp_path: Path) -> None:
    good = row(10, AGREES_BUY)
    bad_json = {**row(11, AGREES_BUY), "payload": "{not json"}
    bad_time = {**row(12, AGREES_BUY), "created_at": "yesterday"}
    bad_conf = row(13, AGREES_BUY)
    payload = json.loads(bad_conf["payload"])
    payload["model_breakdown"]["patchtst"]["confidence"] = 7
    bad_conf["payload"] = json.dumps(payload)
    no_payload = {**row(14, AGREES_BUY), "payload": ""}
    rows = [good, bad_json, bad_time, bad_conf, no_payload, row(15, DECISIVE_BUY)]
    result = report(make_db(tmp_path / "t.db", rows))
    assert (result["rows"], result["malformed_rows"]) == (6, 4)
    assert result["participated"]["rows"] == 2
    reasons = [e["reason"] for e in result["malformed_examples"]]
    assert "unparsable JSON" in reasons
    assert "created_at 'yesterday' is not a time" in reasons
    assert any("confidence 7" in reason for reason in reasons)
    assert sorted(e["id"] for e in result["malformed_examples"]) == [2, 3, 4, 5]


def test_a_payload_that_is_not_utf8_is_a_malformed_row(tmp_path: Path) -> None:
    db = make_db(tmp_path / "t.db", [row(0, AGREES_BUY), row(1, AGREES_BUY)])
    connection = sqlite3.connect(db)
    connection.execute("UPDATE trade_intents SET payload = CAST(X'7bff' AS TEXT) WHERE id = 2")
    connection.commit()
    connection.close()
    result = report(db)
    assert (result["rows"], result["malformed_rows"], result["participated"]["rows"]) == (2, 1, 1)
    assert result["malformed_examples"] == [{"id": 2, "reason": "payload is not valid UTF-8"}]


def test_only_rows_after_since_and_before_until_count(tmp_path: Path) -> None:
    rows = [row(s, AGREES_BUY) for s in (-120, -60, 0, 30, 60, 90)]
    until = (T0 + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    result = report(make_db(tmp_path / "t.db", rows), until=until)
    # after 11:59:00 (exclusive) and before 12:01:00 (exclusive): 0 and 30 s
    assert result["rows"] == 2
    assert (result["since"], result["until"]) == (SINCE, until)


@pytest.mark.parametrize("page_rows", [1, 3, 5000])
def test_paging_does_not_change_the_result(tmp_path: Path, page_rows: int) -> None:
    kinds = (DECISIVE_BUY, AGREES_BUY, OUTVOTED, TIE_HOLD, DECISIVE_SELL)
    rows = [row(i * 10, kinds[i % 5], 100.0 + i) for i in range(40)]
    db = make_db(tmp_path / "t.db", rows)
    paged = report(db, horizon_s=60, page_rows=page_rows)
    whole = report(db, horizon_s=60)
    assert paged == whole
    assert paged["participated"]["rows"] == 24 and paged["decisive"]["rows"] == 24


# Event rates: 1 row per minute for 6 hours, 100 rows per second for a minute


def price_at(seconds: float) -> float:
    return 100.0 + 0.01 * seconds


def rate_rows(step_s: float, n: int) -> list[dict[str, Any]]:
    """Decisive BUY, took-part BUY and outvoted rows in turn on a price rising 0.01 per s."""
    kinds = (DECISIVE_BUY, AGREES_BUY, OUTVOTED)
    return [row(i * step_s, kinds[i % 3], price_at(i * step_s)) for i in range(n)]


def expected_returns(step_s: float, n: int, horizon_s: float) -> tuple[int, float]:
    """(rows with a return, their summed return in %) of the took-part rows: a later price
    point exists up to the last row's time."""
    ahead = round(horizon_s / step_s)
    kept = [i for i in range(n) if i % 3 != 2 and i + ahead < n]
    total = sum((price_at((i + ahead) * step_s) / price_at(i * step_s) - 1) * 100 for i in kept)
    return len(kept), total


def test_one_row_per_minute(tmp_path: Path) -> None:
    stream = prices([(i * 60, price_at(i * 60)) for i in range(360)])
    result = report(make_db(tmp_path / "t.db", rate_rows(60, 360)), stream, horizon_s=300)
    participated = result["participated"]
    assert (result["rows"], participated["rows"], result["decisive"]["rows"]) == (360, 240, 120)
    assert result["stream_events"] == 360
    with_return, total = expected_returns(60, 360, 300)
    # the rows of the last 5 minutes have no later price yet
    assert (participated["with_return"], participated["no_price"]) == (with_return, 3)
    assert participated["return_pct_sum"] == pytest.approx(total)
    assert result["decided"] is True


def test_a_hundred_rows_per_second(tmp_path: Path) -> None:
    result = report(make_db(tmp_path / "t.db", rate_rows(0.01, 6000)), horizon_s=30)
    participated = result["participated"]
    assert (result["rows"], participated["rows"], result["decisive"]["rows"]) == (6000, 4000, 2000)
    with_return, total = expected_returns(0.01, 6000, 30)
    # the rows of the last 30 s have no later price yet
    assert (participated["with_return"], participated["no_price"]) == (with_return, 2000)
    assert participated["return_pct_sum"] == pytest.approx(total)


def test_a_single_row_is_not_decided_yet(tmp_path: Path) -> None:
    result = report(make_db(tmp_path / "t.db", [row(0, DECISIVE_BUY)]))
    assert (result["decisive"]["rows"], result["decided"]) == (1, False)


# Bad options and trade logs


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"table": "trade_intents; DROP TABLE x"}, "plain SQL identifier"),
        ({"horizon_s": 0}, "horizon must be"),
        ({"horizon_s": math.nan}, "horizon must be"),
        ({"max_lag_s": -1}, "max_lag must be"),
        ({"since": "yesterday"}, "bad since"),
        ({"since": "2026-01-10T12:00:00"}, "bad since"),
        ({"until": "2026-01-10T11:00:00Z"}, "is not later than since"),
        ({"table": "other"}, "unusable"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict, message: str) -> None:
    db = make_db(tmp_path / "t.db", [row(0, AGREES_BUY)])
    with pytest.raises(DamageError, match=message):
        report(db, **options)


def test_a_bad_model_name_or_weights_are_refused(tmp_path: Path) -> None:
    db = make_db(tmp_path / "t.db", [row(0, AGREES_BUY)])
    with pytest.raises(DamageError, match="not a valid model name"):
        damage_from_log(db, "PatchTST;", WEIGHTS, SINCE)
    with pytest.raises(DamageError, match="bad baseline weight"):
        damage_from_log(db, "patchtst", {"xgb": -1}, SINCE)
    with pytest.raises(DamageError, match="no baseline weight for voting model 'lgbm'"):
        damage_from_log(db, "patchtst", {"xgb": 0.5, "nhits": 0.5}, SINCE)


def test_a_missing_or_foreign_trade_log_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DamageError, match="does not exist"):
        report(str(tmp_path / "none.db"))
    (tmp_path / "text.db").write_text("not a database")
    with pytest.raises(DamageError, match="unusable"):
        report(str(tmp_path / "text.db"))
    db = sqlite3.connect(tmp_path / "nopayload.db")
    db.execute("CREATE TABLE trade_intents (id INTEGER, created_at TEXT, model_source TEXT)")
    db.close()
    with pytest.raises(DamageError, match="unreadable: no such column: payload"):
        report(str(tmp_path / "nopayload.db"))


def test_the_trade_log_is_opened_read_only(tmp_path: Path) -> None:
    db = make_db(tmp_path / "t.db", [row(0, AGREES_BUY)])
    Path(db).chmod(0o444)
    before = Path(db).read_bytes()
    report(db)
    assert Path(db).read_bytes() == before


# Markdown and the rollback's summary


def test_markdown_names_the_groups_and_the_net_effect(tmp_path: Path) -> None:
    rows = [row(0, DECISIVE_BUY, 100.0), row(1, TIE_HOLD, 100.0), row(2, AGREES_BUY, 100.0)]
    result = report(make_db(tmp_path / "t.db", rows, sizes=("qty",)), prices([(310, 101.0)]))
    page = render_damage(result, datetime(2026, 1, 10, 13, tzinfo=UTC))
    assert page.startswith("# Damage report: patchtst\n\nGenerated 2026-01-10T13:00:00Z\n")
    assert "## Rows `patchtst` took part in (2)" in page
    assert "## Rows `patchtst` decided (2)" in page
    assert "| BTCUSDT | BUY | 2 | 2 | 0 | +2.000% | +1.000% | qty 0.000 |" in page
    assert "| BTCUSDT | HOLD | 1 | 0 | 0 | - | - | qty 0.000 | +1.000% | -1.000% |" in page
    assert "net +0.000%" in page


def test_summary_has_the_counts_and_sums(tmp_path: Path) -> None:
    rows = [row(0, DECISIVE_BUY, 100.0), row(2, AGREES_BUY, 100.0)]
    result = report(make_db(tmp_path / "t.db", rows), prices([(310, 101.0)]))
    assert summary(result) == {
        "model": "patchtst",
        "since": SINCE,
        "until": None,
        "horizon_s": 300.0,
        "rows": 2,
        "malformed_rows": 0,
        "participated": 2,
        "participated_return_pct_sum": pytest.approx(2.0),
        "decisive": 1,
        "decisive_return_pct_sum": pytest.approx(1.0),
        "decisive_net_pct_sum": pytest.approx(1.0),
        "decided": True,
    }
