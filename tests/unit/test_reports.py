"""Unit tests of model_safety.judgement.reports: JSON conversion, Markdown content, atomic files."""

from __future__ import annotations

import json
import math
import os
import stat
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from model_safety.judgement.reports import (
    KINDS,
    atomic_write,
    dumps,
    render_markdown,
    to_jsonable,
    write_reports,
)

NOW = datetime(2026, 1, 10, 12, 0, 5, tzinfo=UTC)
STAMP = "20260110T120005Z"


def gate_result(**changes: object) -> dict:
    result = {
        "verdict": "FAIL",
        "mode": "canary",
        "event_count": 500,
        "malformed": 2,
        "blockers": [
            "patchtst: action collapse: BUY 93.0% > 70.0%",
            "window: 2 malformed events (first 1700000000000-0: unparsable JSON)",
        ],
        "models": {
            "xgb": {
                "passed": True,
                "shadow": False,
                "n": 500,
                "actions": {"BUY": 0.4, "SELL": 0.3, "HOLD": 0.3},
                "conf_std": 0.081,
                "p10": 0.45,
                "p90": 0.71,
                "agreement": 0.62,
                "hard_disagree": 0.08,
                "blockers": [],
            },
            "patchtst": {
                "passed": False,
                "shadow": False,
                "n": 500,
                "actions": {"BUY": 0.93, "SELL": 0.05, "HOLD": 0.02},
                "conf_std": 0.031,
                "p10": 0.6,
                "p90": 0.65,
                "agreement": 0.5,
                "hard_disagree": 0.04,
                "blockers": ["action collapse: BUY 93.0% > 70.0%", "conf_std 0.031 < 0.050"],
            },
        },
        "model": None,
        "min_events": 200,
        "thresholds": {"max_action_share": 0.7, "min_conf_std": 0.05},
        "malformed_samples": [
            {"stream_id": "1700000000000-0", "reason": "unparsable JSON"},
            {"stream_id": "1700000000001-0", "reason": "unknown side 'X|Y'"},
        ],
        "ensemble": {"consensus": {"3/3": 0.4, "2/3": 0.6}, "payload_p95": 612.0},
        "window": {"first_id": "1700000000000-0", "last_id": "1700000000501-0"},
        "source": {
            "redis": "redis://:***@127.0.0.1:6379/0",
            "stream": "quantum:stream:trade.intent",
            "count": 500,
            "after": None,
        },
    }
    result.update(changes)
    return result


# --------------------------------------------------------------------------- JSON


def test_to_jsonable_converts_numpy_and_non_finite() -> None:
    value = {
        "f": np.float64(0.5),
        "i": np.int64(3),
        "b": np.bool_(True),
        "a": np.array([1.0, np.nan]),
        "nan": math.nan,
        "inf": -math.inf,
        "t": (1, 2),
        1: "key",
    }
    assert to_jsonable(value) == {
        "f": 0.5,
        "i": 3,
        "b": True,
        "a": [1.0, None],
        "nan": None,
        "inf": None,
        "t": [1, 2],
        "1": "key",
    }
    assert type(to_jsonable(np.int32(4))) is int


def test_dumps_is_strict_json() -> None:
    text = dumps({"x": math.nan, "y": np.float32(1.5)})
    assert json.loads(text) == {"x": None, "y": 1.5}
    assert "NaN" not in text


# --------------------------------------------------------------------------- Markdown


def test_gate_markdown_answers_why_it_failed() -> None:
    text = render_markdown(gate_result(), "quality_gate", NOW)
    lines = text.splitlines()
    assert lines[0] == "# MODE: CANARY"
    assert "## Verdict: FAIL" in lines
    assert "- patchtst: action collapse: BUY 93.0% > 70.0%" in lines
    assert "- conf_std 0.031 < 0.050" in lines  # the model's own blockers, with values
    assert "## Models" in lines
    row = next(line for line in lines if line.startswith("| patchtst |"))
    assert "| 93.0% |" in row
    assert row.rstrip().endswith("| FAIL |")
    assert "| 1700000000000-0 | unparsable JSON |" in lines
    assert "| 1700000000001-0 | unknown side 'X\\|Y' |" in lines  # escaped for the table
    assert "Malformed events: 2" in text
    assert "redis://:***@127.0.0.1:6379/0" in text
    assert "2026-01-10T12:00:05Z" in text
    assert "| max_action_share | 0.7 | 0.7 |  |" in lines
    assert "Every threshold is the default." in lines


def test_gate_markdown_marks_overridden_thresholds() -> None:
    result = gate_result()
    result["thresholds"] = {"max_action_share": 0.99, "min_conf_std": 0.05}
    lines = render_markdown(result, "quality_gate").splitlines()
    assert "**1 threshold(s) differ from the defaults: max_action_share**" in lines
    assert "| max_action_share | 0.99 | 0.7 | OVERRIDDEN |" in lines
    assert "| min_conf_std | 0.05 | 0.05 |  |" in lines


def test_gate_markdown_collection_and_pass() -> None:
    text = render_markdown(
        gate_result(verdict="COLLECTION", mode="collection", blockers=[], malformed=0),
        "quality_gate",
        NOW,
    )
    assert text.startswith("# MODE: COLLECTION\n")
    assert "## Verdict: COLLECTION" in text
    assert "## Blockers\n\n- none" in text


def test_gate_markdown_of_a_failure_without_window() -> None:
    result = {
        "verdict": "FAIL",
        "mode": "canary",
        "event_count": 0,
        "malformed": 0,
        "blockers": ["redis: Redis at redis://127.0.0.1:1/0 unreachable: refused"],
        "models": {},
        "error": "Redis at redis://127.0.0.1:1/0 unreachable: refused",
    }
    text = render_markdown(result, "quality_gate", NOW)
    assert text.startswith("# MODE: CANARY\n")
    assert "unreachable: refused" in text
    assert "## Models" not in text


def test_scoreboard_markdown() -> None:
    board = {
        "mode": "canary",
        "event_count": 500,
        "malformed": 0,
        "blockers": [],
        "models": {
            "xgb": {"status": "GO", "n": 500, "agreement": 0.62, "hard_disagree": 0.08},
            "lgbm": {
                "status": "WAIT",
                "agreement": 0.91,
                "hard_disagree": 0.01,
                "reasons": ["agreement 91.0% outside [55.0%, 80.0%]"],
            },
            "nhits": {
                "status": "NO-GO",
                "blockers": ["conf_std 0.031 < 0.050"],
                "reasons": ["gate failed"],
            },
        },
        "thresholds": {
            "go_agreement_low": 0.55,
            "go_agreement_high": 0.8,
            "go_max_hard_disagree": 0.2,
        },
    }
    text = render_markdown(board, "scoreboard", NOW)
    lines = text.splitlines()
    assert lines[0] == "# MODE: CANARY"
    assert any(line.startswith("| xgb | voting | GO | 500 | 62.0% | 8.0% |") for line in lines)
    assert any("| WAIT |" in line and "agreement 91.0% outside" in line for line in lines)
    assert "- conf_std 0.031 < 0.050" in lines
    assert "in [55.0%, 80.0%] and hard disagreement < 20.0%" in text


def test_feature_sanity_markdown() -> None:
    result = {
        "event_count": 300,
        "malformed": 0,
        "features": {
            "atr_value": {
                "count": 300,
                "nan": 3,
                "inf": 0,
                "missing": 0,
                "mean": 0.01,
                "std": 0.002,
                "min": 0.001,
                "max": 0.02,
                "flatline": False,
            },
            "rsi_14": {
                "count": 300,
                "nan": 0,
                "inf": 0,
                "missing": 0,
                "mean": 50.0,
                "std": 0.0,
                "min": 50.0,
                "max": 50.0,
                "flatline": True,
            },
        },
        "duplicates": {"share": 0.6, "compared": 50, "threshold": 0.5},
        "problems": ["atr_value: 3 NaN values of 300", "rsi_14: flatline: std 0 < 1e-06"],
        "warnings": ["duplicate feature vectors: 60.0% of the last 50 events > 50.0%"],
        "exit_code": 2,
    }
    text = render_markdown(result, "feature_sanity", NOW)
    assert text.startswith("# Feature sanity: FAIL\n")
    assert "- atr_value: 3 NaN values of 300" in text
    assert "| rsi_14 | 300 | 0 | 0 | 0 | 50.000000 | 0.000000 (flatline) |" in text
    assert "60.0% (warning above 50.0%)" in text


def test_shadow_report_markdown() -> None:
    result = {
        "model": "patchtst",
        "status": "NOT_READY",
        "gates": {
            "action_diversity": {"status": "PASS", "value": 0.45, "threshold": 0.7},
            "calibration": {"status": "DEFER", "value": None, "threshold": 100},
        },
        "hard_blockers": ["payload p95 1612 bytes >= 1500"],
    }
    text = render_markdown(result, "shadow_report", NOW)
    assert text.startswith("# Shadow report: patchtst: NOT_READY\n")
    assert "| action_diversity | PASS | 0.450 | 0.700 |" in text
    assert "| calibration | DEFER | - | 100 |" in text
    assert "- payload p95 1612 bytes >= 1500" in text


def test_unknown_kind_and_naive_time() -> None:
    with pytest.raises(ValueError, match="kind"):
        render_markdown({}, "nope", NOW)
    with pytest.raises(ValueError, match="timezone"):
        write_reports(gate_result(), "quality_gate", "unused", datetime(2026, 1, 10))


# --------------------------------------------------------------------------- files


def read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_reports_names_modes_and_content(tmp_path) -> None:
    report_dir = str(tmp_path / "reports" / "safety")
    paths = write_reports(gate_result(), "quality_gate", report_dir, NOW)
    assert paths == {
        "markdown": f"{report_dir}/quality_gate_{STAMP}.md",
        "json": f"{report_dir}/quality_gate_{STAMP}.json",
    }
    assert _mode(paths["markdown"]) == _mode(paths["json"]) == 0o640
    assert read(paths["markdown"]).startswith("# MODE: CANARY\n")
    assert json.loads(read(paths["json"])) == json.loads(dumps(gate_result()))
    assert sorted(os.listdir(report_dir)) == [
        f"quality_gate_{STAMP}.json",
        f"quality_gate_{STAMP}.md",
    ]


def test_write_reports_never_overwrites_a_report(tmp_path) -> None:
    first = write_reports(gate_result(), "quality_gate", str(tmp_path), NOW)
    second = write_reports(gate_result(verdict="PASS"), "quality_gate", str(tmp_path), NOW)
    third = write_reports(gate_result(), "quality_gate", str(tmp_path), NOW)
    assert second["markdown"].endswith(f"quality_gate_{STAMP}_1.md")
    assert third["json"].endswith(f"quality_gate_{STAMP}_2.json")
    assert "Verdict: FAIL" in read(first["markdown"])
    assert "Verdict: PASS" in read(second["markdown"])
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_write_reports_local_time_is_named_in_utc(tmp_path) -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    paths = write_reports(gate_result(), "quality_gate", str(tmp_path), local)
    assert paths["markdown"].endswith(f"quality_gate_{STAMP}.md")


def test_scoreboard_also_writes_latest(tmp_path) -> None:
    board = {"mode": "canary", "models": {"xgb": {"status": "GO"}}}
    first = write_reports(board, "scoreboard", str(tmp_path), NOW)
    assert first["latest"] == f"{tmp_path}/scoreboard_latest.md"
    assert read(first["latest"]) == read(first["markdown"])
    board["models"]["xgb"]["status"] = "NO-GO"
    second = write_reports(board, "scoreboard", str(tmp_path), NOW + timedelta(seconds=1))
    assert "NO-GO" in read(second["latest"])
    assert _mode(second["latest"]) == 0o640


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_writes_its_pair(tmp_path, kind: str) -> None:
    paths = write_reports({"mode": "canary"}, kind, str(tmp_path), NOW)
    assert os.path.basename(paths["markdown"]) == f"{kind}_{STAMP}.md"
    assert os.path.exists(paths["json"])


def test_atomic_write_replaces_or_refuses(tmp_path) -> None:
    path = str(tmp_path / "f.md")
    atomic_write(path, "one")
    atomic_write(path, "two")
    assert read(path) == "two"
    with pytest.raises(FileExistsError):
        atomic_write(path, "three", exclusive=True)
    assert read(path) == "two"
    assert os.listdir(tmp_path) == ["f.md"]  # no temporary file left behind


def test_unwritable_directory_raises(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        write_reports(gate_result(), "quality_gate", str(blocker / "sub"), NOW)
