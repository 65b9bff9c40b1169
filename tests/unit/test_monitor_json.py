"""``model-safety monitor --json``: the check log's records streamed to stdout as JSON lines (the
progress lines on stderr), each valid against docs/schemas/monitor.schema.json; an error before
the watch is one {error, exit_code: 2}. The loop runs with the fake fleet of test_monitor_loop
(no playbook, no lab)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from model_safety.cli import main
from model_safety.monitor.cli import PROJECT_ENV, WEBHOOK_ENV
from tests.monitor_events import close_check_loggers
from tests.unit.test_monitor_loop import MODEL, FakeJob, collapsed, fake_fleet, healthy, options

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs/schemas/monitor.schema.json").read_text()
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    yield
    close_check_loggers(tmp_path)


def monitor_argv(tmp_path: Path) -> list[str]:
    """The command line of the fake fleet's options (options() lays out the project)."""
    watched = options(tmp_path, duration=0.3)
    return [
        "monitor",
        "--json",
        "--model",
        MODEL,
        "--duration",
        "0.3",
        "--interval",
        "0.05",
        "--project-dir",
        watched.project_dir,
        "--inventory",
        str(tmp_path / "inventory.yml"),
        "--state-dir",
        watched.state_dir,
        "--activation-log",
        watched.activation_log,
        "--check-log",
        watched.check_log,
    ]


def test_the_records_stream_to_stdout_as_json_lines(tmp_path, monkeypatch, capsys):
    fleet = fake_fleet(monkeypatch)
    fleet.behaviour = {"a": collapsed(40), "b": healthy(150)}
    FakeJob.auto = True  # host a's rollback finishes at once
    (tmp_path / "inventory.yml").write_text("all: {}\n")
    code = main(monitor_argv(tmp_path))
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    # Exactly what the check log holds, in its order; nothing else on stdout.
    assert lines == [
        json.loads(line) for line in (tmp_path / "checks.jsonl").read_text().splitlines()
    ]
    for line in lines:
        jsonschema.validate(line, SCHEMA)
    assert any(line.get("status") == "violation" and line["host"] == "a" for line in lines)
    events = [line["record"]["event"] for line in lines if "record" in line]
    assert "monitoring_started" in events and "monitoring_completed" in events
    assert "rollback_executed" in events
    # The progress lines went to stderr.
    assert "ROLLING BACK a" in err and "b completed SAFE" in err
    assert code == 4


def test_an_error_before_the_watch_is_one_json_object(tmp_path, monkeypatch, capsys):
    fake_fleet(monkeypatch)
    argv = monitor_argv(tmp_path)
    argv[argv.index(MODEL)] = "Not-A-Model"
    assert main(argv) == 2
    out, err = capsys.readouterr()
    (line,) = out.splitlines()
    failure = json.loads(line)
    assert failure["exit_code"] == 2 and failure["error"]
    jsonschema.validate(failure, SCHEMA)
    assert "model-safety monitor:" in err


def test_a_check_line_without_ts_or_a_failure_with_another_code_is_refused():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"check": 1, "host": "a"}, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"error": "x", "exit_code": 4}, SCHEMA)
