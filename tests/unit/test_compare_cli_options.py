"""``model-safety compare`` options against a real redis-server: --since (the alias of
--after), --since-activation with --activation-log and each of its refusals, --max-lag, and the
report files (--report-dir, --no-report, a directory that cannot be written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_safety.activation import log as al
from tests.unit.test_compare_cli import fill, run


@pytest.fixture
def filled(redis_client, redis_stream, redis_server) -> list[str]:
    """30 events one minute apart from 12:00; the common arguments to read them."""
    fill(redis_client, redis_stream, 30)
    return ["--model", "patchtst", "--redis-url", redis_server.url, "--stream", redis_stream]


@pytest.fixture
def log_path(tmp_path: Path) -> str:
    return str(tmp_path / "qsc_canary.jsonl")


def activate(path: str, started_at: str, model: str = "patchtst") -> None:
    record = {"event": "activation", "model": model, "weight": 0.1, "started_at": started_at}
    al.append_record(path, record)


def compare_json(capsys, *argv: str) -> tuple[int, dict]:
    code, out, _ = run(capsys, "compare", *argv, "--json")
    return code, json.loads(out)


def test_since_is_after(capsys, filled) -> None:
    code, result = compare_json(capsys, *filled, "--since", "2026-01-10T12:19:30Z")
    assert (code, result["events"], result["source"]["after"]) == (0, 10, "2026-01-10T12:19:30Z")


def test_since_activation_reads_from_the_models_newest_activation(capsys, filled, log_path):
    activate(log_path, "2026-01-10T11:00:00Z")
    activate(log_path, "2026-01-10T12:09:30.500000Z")
    activate(log_path, "2026-01-10T12:25:00Z", model="nhits")
    code, result = compare_json(capsys, *filled, "--since-activation", "--activation-log", log_path)
    assert code == 0
    assert result["events"] == 20  # 12:10 .. 12:29
    assert result["source"]["after"] == "2026-01-10T12:09:30.500000Z"
    activation = result["activation"]
    assert (activation["start"], activation["log"]) == ("2026-01-10T12:09:30.500000Z", log_path)
    assert activation["record"]["action"] == "canary_activated"


def test_since_activation_in_the_markdown_report(capsys, filled, log_path, tmp_path):
    activate(log_path, "2026-01-10T12:09:30Z")
    reports = tmp_path / "reports"
    code, out, _ = run(
        capsys, "compare", *filled, "--since-activation", "--activation-log", log_path,
        "--report-dir", str(reports),
    )  # fmt: skip
    assert code == 0
    (markdown,) = reports.glob("compare_*.md")
    assert out.rstrip().endswith(f"report: {markdown} (+ .json)")
    text = markdown.read_text()
    assert "- Since activation: `2026-01-10T12:09:30Z`, the canary_activated record of " in text
    assert "20 events, 20 with a price" in text
    assert json.loads(markdown.with_suffix(".json").read_text())["activation"]["log"] == log_path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--after", "2026-01-10T12:00:00Z"], "mutually exclusive"),
        (["--since", "2026-01-10T12:00:00Z"], "mutually exclusive"),
    ],
)
def test_since_activation_with_a_start_time_is_refused(capsys, filled, log_path, extra, message):
    activate(log_path, "2026-01-10T12:09:30Z")
    code, result = compare_json(
        capsys, *filled, "--since-activation", "--activation-log", log_path, *extra
    )
    assert code == 2
    assert result["error"] == "--since-activation and --after/--since are mutually exclusive"
    assert result["decided"] is False


def test_an_activation_log_without_since_activation_is_refused(capsys, filled, log_path):
    code, result = compare_json(capsys, *filled, "--activation-log", log_path)
    assert (code, result["error"]) == (2, "--activation-log is only read with --since-activation")


def test_no_log_is_an_error_with_a_sentence(capsys, filled, log_path):
    code, out, _ = run(
        capsys, "compare", *filled, "--since-activation", "--activation-log", log_path
    )
    assert code == 2
    assert out.startswith(
        f"COMPARE patchtst: error: --since-activation: no activation log at {log_path}: "
    )


def test_no_activation_record_of_the_model_is_an_error(capsys, filled, log_path):
    activate(log_path, "2026-01-10T12:09:30Z", model="nhits")
    code, result = compare_json(capsys, *filled, "--since-activation", "--activation-log", log_path)
    assert code == 2
    assert result["error"] == (
        f"--since-activation: {log_path} has no canary_activated, shadow_activated, "
        "promotion_step record of patchtst: it was never activated on this host "
        "(give --after with the time yourself)"
    )


def test_a_torn_last_line_is_an_error(capsys, filled, log_path):
    activate(log_path, "2026-01-10T12:09:30Z")
    with open(log_path, "a") as handle:
        handle.write('{"event": "promotion"')
    code, result = compare_json(capsys, *filled, "--since-activation", "--activation-log", log_path)
    assert code == 2
    assert "cannot read the activation log" in result["error"]
    assert "ends in a torn line" in result["error"]


def test_a_relative_activation_log_is_refused(capsys, filled):
    code, result = compare_json(
        capsys, *filled, "--since-activation", "--activation-log", "qsc_canary.jsonl"
    )
    assert code == 2
    assert result["error"].startswith("--since-activation: the log path 'qsc_canary.jsonl' ")


def test_the_default_activation_log_is_the_hosts(capsys, filled):
    if Path(al.DEFAULT_LOG_PATH).exists():
        pytest.skip("this machine has an activation log")
    code, result = compare_json(capsys, *filled, "--since-activation")
    assert code == 2
    assert f"no activation log at {al.DEFAULT_LOG_PATH}" in result["error"]


def test_max_lag_reaches_the_comparison(capsys, filled) -> None:
    code, result = compare_json(capsys, *filled, "--horizon", "60", "--max-lag", "0")
    assert (code, result["max_lag_s"], result["late_outcomes"]) == (0, 0.0, 0)
    code, result = compare_json(capsys, *filled, "--horizon", "90")
    # Events a minute apart: the later price is 120 s on, 30 s past the horizon, within 90 s.
    assert (result["max_lag_s"], result["late_outcomes"], result["events_with_outcome"]) == (
        90.0,
        0,
        28,
    )
    code, result = compare_json(capsys, *filled, "--horizon", "90", "--max-lag", "29.9")
    assert (result["late_outcomes"], result["events_with_outcome"], result["decided"]) == (
        28,
        0,
        False,
    )


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "abc", ""])
def test_a_bad_max_lag_is_a_usage_error(capsys, value) -> None:
    code, _, err = run(capsys, "compare", "--model", "patchtst", "--max-lag", value)
    assert code == 2
    assert f"argument --max-lag: not a number of seconds >= 0: {value!r}" in err


def test_a_report_that_cannot_be_written_is_exit_2(capsys, filled, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = run(capsys, "compare", *filled, "--report-dir", str(blocker / "reports"))
    assert code == 2
    assert "## Paired comparison" in out
    assert f"cannot write the reports to {blocker / 'reports'}" in err
