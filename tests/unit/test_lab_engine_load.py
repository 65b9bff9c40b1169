"""The engine simulator's load switches for the runbook's stop conditions (issue 16 item 4):
SIM_LOG_SPAM (journal lines per minute) and SIM_DISK_GROWTH (bytes per second under the data
path, capped), on a fake clock; their validation and the SIM_FAULTS_ONLY_WITH_CANARY gate."""

from pathlib import Path

import pytest

import ai_engine.service as service
from ai_engine.config import ConfigError
from tests.unit.test_lab_engine_service import CANARY_ENV, config, make_runner


def spam_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("[SIM] log spam line ")]


def test_log_spam_logs_the_lines_due_per_minute() -> None:
    runner, _sink, _clock, out = make_runner(30.0, SIM_LOG_SPAM="3000", ENGINE_RATE="10")
    runner.run()
    lines = spam_lines(out.getvalue())
    # 3000/min for 30 s: 1500 lines, numbered without a gap.
    assert 1490 <= len(lines) <= 1500
    assert lines[0] == "[SIM] log spam line 1"
    assert lines[-1] == f"[SIM] log spam line {len(lines)}"


def test_log_spam_after_a_stall_drops_what_is_over_a_burst(monkeypatch) -> None:
    monkeypatch.setattr(service, "SPAM_BURST", 100)
    runner, _sink, _clock, out = make_runner(
        12.0, stall=(1.0, 10.0), SIM_LOG_SPAM="6000", ENGINE_RATE="10"
    )
    runner.run()
    # 6000/min is 100/s: 12 s is 1200 lines due, the stall's 1000 come as one burst of 100.
    assert 250 <= len(spam_lines(out.getvalue())) <= 310


def test_disk_growth_writes_beside_the_trade_log_and_stops_at_its_cap(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(service, "DISK_GROWTH_CAP", 50_000)
    grown = tmp_path / service.DISK_GROWTH_FILE
    grown.write_bytes(b"x" * 7)  # an earlier start's file is emptied
    db = str(tmp_path / "quantum_trader.db")
    runner, *_ = make_runner(4.0, SIM_DISK_GROWTH="10000", ENGINE_DB=db, ENGINE_RATE="10")
    runner.run()
    assert 39_000 <= grown.stat().st_size <= 40_000
    runner, *_ = make_runner(8.0, SIM_DISK_GROWTH="10000", ENGINE_DB=db, ENGINE_RATE="10")
    runner.run()
    assert grown.stat().st_size == 50_000


def test_no_load_without_the_switches(tmp_path: Path) -> None:
    db = str(tmp_path / "quantum_trader.db")
    runner, _sink, _clock, out = make_runner(3.0, ENGINE_DB=db)
    runner.run()
    assert spam_lines(out.getvalue()) == []
    assert not (tmp_path / service.DISK_GROWTH_FILE).exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SIM_LOG_SPAM", "0"),
        ("SIM_LOG_SPAM", "-5"),
        ("SIM_LOG_SPAM", "600001"),
        ("SIM_LOG_SPAM", "lots"),
        ("SIM_DISK_GROWTH", "0"),
        ("SIM_DISK_GROWTH", "100000001"),
        ("SIM_DISK_GROWTH", "nan"),
    ],
)
def test_bad_values_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        config(**{key: value})


def test_the_switches_apply_only_with_a_canary_when_gated() -> None:
    gated = {"SIM_LOG_SPAM": "1200", "SIM_DISK_GROWTH": "1000", "SIM_FAULTS_ONLY_WITH_CANARY": "1"}
    plain = config(**gated)
    assert (plain.log_spam, plain.disk_growth) == (0.0, 0.0)
    canary = config(**gated, **CANARY_ENV)
    assert (canary.log_spam, canary.disk_growth) == (1200.0, 1000.0)
