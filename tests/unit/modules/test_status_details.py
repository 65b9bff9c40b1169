"""The status_details module through its main() against the fake systemctl and real files:
the configured roles (and a running start that differs), the log's newest activation and the
monitor's state, the newest reports with their texts, what cannot be read as problems, bad
options refused, check mode (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_safety.activation.log import append_record
from tests.module_harness import BASELINE, fails, succeeds

MODULE = "status_details"
CANARY_ENV = "QSC_CANARY_MODEL=patchtst\nQSC_CANARY_WEIGHT=0.1\nAPI_KEY=never-returned\n"


@pytest.fixture
def host(tmp_path: Path, fake_systemd) -> dict:
    """A host whose files set the canary patchtst at 0.1, with a log and a gate report."""
    env = tmp_path / "ai-engine.env"
    env.write_text(CANARY_ENV)
    fake_systemd.show(EnvironmentFiles=f"{env} (ignore_errors=no)")
    log = tmp_path / "log" / "qsc_canary.jsonl"
    append_record(str(log), {"event": "activation", "model": "patchtst", "weight": 0.1})
    append_record(str(log), {"event": "monitoring_started", "model": "patchtst"})
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "quality_gate_20260110T115800Z.md").write_text("# QUALITY GATE PASS\n")
    (reports / "quality_gate_20260110T115800Z.json").write_text('{"verdict": "PASS"}')
    return {"baseline": BASELINE, "activation_log": str(log), "report_dir": str(reports)}


def test_what_the_page_shows_of_a_host(host) -> None:
    result = succeeds(MODULE, {**host, "include_text": True}, check_mode=True)
    assert result["changed"] is False and result["problems"] == []
    assert result["models"]["patchtst"] == {"role": "canary", "weight": 0.1}
    assert result["models"]["xgb"]["role"] == "voting"
    assert result["activation"]["last_activation"]["action"] == "canary_activated"
    assert result["monitor"]["state"] == "watching"
    assert result["gate"]["verdict"] == "PASS"
    assert [(r["name"], r["text"]) for r in result["reports"]] == [
        ("quality_gate_20260110T115800Z.md", "# QUALITY GATE PASS\n")
    ]
    assert "never-returned" not in repr(result)
    assert succeeds(MODULE, host)["reports"][0]["text"] is None


def test_a_start_that_differs_from_the_files_is_a_problem(host) -> None:
    startup = {"voting": {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.3, "patchtst": 0.2},
               "shadow": {}, "canary": None, "conf_caps": {}}  # fmt: skip
    problems = succeeds(MODULE, {**host, "startup": startup})["problems"]
    assert problems and all(
        p.startswith("the running engine differs from its files: ") for p in problems
    )
    assert any("canary: the files set patchtst, no [CANARY] line" in p for p in problems)


def test_unreadable_pieces_are_problems_not_failures(host, fake_systemd, tmp_path) -> None:
    Path(host["activation_log"]).write_text("torn")
    fake_systemd.show(EnvironmentFiles=f"{tmp_path / 'gone.env'} (ignore_errors=no)")
    (Path(host["report_dir"]) / "quality_gate_20260110T120000Z.json").write_text("[]")
    result = succeeds(MODULE, host)
    assert result["models"] is None and result["gate"]["verdict"] == "unknown"
    assert result["activation"]["last_activation"] is None
    assert [p.split(":")[0] for p in result["problems"]] == [
        "model configuration of quantum-ai-engine.service cannot be told",
        f"activation log {host['activation_log']}",
        "gate report quality_gate_20260110T120000Z.json unreadable",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"activation_log": "log.jsonl"}, "activation_log 'log.jsonl' is not an absolute path"),
        ({"report_dir": "/var/../etc"}, "report_dir '/var/../etc' contains '..'"),
        ({"max_report_bytes": 0}, "max_report_bytes must be 1 to 67108864: 0"),
        ({"baseline": {"xgb": 0.5}}, "invalid options: baseline weights must sum to 1"),
        ({"unit": "a.service\nb"}, "invalid options: "),
    ],
)
def test_bad_options_are_refused(host, changes, message) -> None:
    assert fails(MODULE, {**host, **changes})["msg"].startswith(message)
