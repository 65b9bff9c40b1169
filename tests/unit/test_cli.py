"""Unit tests of the model-safety CLI's argument layer, output and exit codes (no Redis).

The checks themselves are replaced by fakes where a window would be needed; bad arguments
are refused before anything is sent, so those run the real code. The CLI against a real
redis-server: tests/integration/test_gate_cli.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_safety import cli
from model_safety.judgement import run as run_module

PASS_RESULT: dict[str, Any] = {
    "verdict": "PASS",
    "mode": "canary",
    "event_count": 300,
    "malformed": 0,
    "blockers": [],
    "models": {
        "xgb": {
            "passed": True,
            "shadow": False,
            "n": 300,
            "actions": {"BUY": 0.4, "SELL": 0.35, "HOLD": 0.25},
            "conf_std": 0.08,
            "p10": 0.45,
            "p90": 0.72,
            "agreement": 0.6,
            "hard_disagree": 0.1,
            "blockers": [],
        }
    },
}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fake_gate(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """run_gate replaced: records its arguments, returns ``seen['result']``."""
    seen: dict[str, Any] = {"result": dict(PASS_RESULT)}

    def fake(client_or_url: Any, stream: str, **kwargs: Any) -> dict[str, Any]:
        seen.update(url=client_or_url, stream=stream, **kwargs)
        return dict(seen["result"])

    monkeypatch.setattr(run_module, "run_gate", fake)
    return seen


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "version")
    assert code == 0
    assert out.startswith("model-safety 0.1.0\n")


def test_gate_defaults_reach_run_gate(capsys, fake_gate, tmp_path) -> None:
    code, out, _ = run_cli(capsys, "gate", "--report-dir", str(tmp_path))
    assert code == 0
    assert fake_gate["url"] is None  # stream.connect then uses $MODEL_SAFETY_REDIS_URL/default
    assert fake_gate["stream"] == "quantum:stream:trade.intent"
    assert (fake_gate["mode"], fake_gate["model"]) == ("canary", None)
    assert (fake_gate["count"], fake_gate["after"]) == (None, None)
    assert (fake_gate["page_size"], fake_gate["timeout"]) == (2000, 10.0)
    assert out.startswith("QUALITY GATE PASS (mode canary, 300 events, 0 malformed")
    assert f"report: {tmp_path}/quality_gate_" in out


def test_gate_options_reach_run_gate(capsys, fake_gate) -> None:
    argv = [
        "gate", "--mode", "collection", "--model", "patchtst", "--after", "1700000000000-0",
        "--count", "1000", "--redis-url", "redis://h:1/2", "--stream", "s:x", "--timeout", "2.5",
        "--page-size", "500", "--no-report",
    ]  # fmt: skip
    fake_gate["result"] = dict(PASS_RESULT, verdict="COLLECTION", mode="collection")
    code, _, _ = run_cli(capsys, *argv)
    assert code == 3
    assert fake_gate["url"] == "redis://h:1/2"
    assert fake_gate["stream"] == "s:x"
    assert (fake_gate["mode"], fake_gate["model"]) == ("collection", "patchtst")
    assert (fake_gate["count"], fake_gate["after"]) == (1000, "1700000000000-0")
    assert (fake_gate["page_size"], fake_gate["timeout"]) == (500, 2.5)


def test_gate_json_prints_one_object_with_report_paths(capsys, fake_gate, tmp_path) -> None:
    code, out, _ = run_cli(capsys, "gate", "--json", "--report-dir", str(tmp_path))
    assert code == 0
    shown = json.loads(out)
    assert {k: v for k, v in shown.items() if k != "reports"} == PASS_RESULT
    assert shown["reports"]["markdown"].endswith(".md")
    with open(shown["reports"]["json"], encoding="utf-8") as handle:
        assert json.load(handle) == PASS_RESULT


@pytest.mark.parametrize(("verdict", "code"), [("PASS", 0), ("FAIL", 2), ("COLLECTION", 3)])
def test_gate_exit_codes(capsys, fake_gate, verdict: str, code: int) -> None:
    fake_gate["result"] = dict(PASS_RESULT, verdict=verdict, blockers=["xgb: conf_std"])
    assert run_cli(capsys, "gate", "--no-report")[0] == code


def test_gate_summary_lists_blockers_and_models(capsys, fake_gate) -> None:
    fake_gate["result"] = dict(
        PASS_RESULT, verdict="FAIL", blockers=["xgb: conf_std 0.031 < 0.050"], model="xgb"
    )
    code, out, _ = run_cli(capsys, "gate", "--no-report", "--model", "xgb")
    assert code == 2
    lines = out.splitlines()
    assert lines[0].startswith("QUALITY GATE FAIL (mode canary")
    assert lines[0].endswith("judged: xgb)")
    assert "  blocker: xgb: conf_std 0.031 < 0.050" in lines
    assert any(line.startswith("  xgb  PASS  n=300  BUY 40.0% SELL 35.0%") for line in lines)


@pytest.mark.parametrize(("verdict", "code"), [("PASS", 2), ("FAIL", 2), ("COLLECTION", 3)])
def test_unwritable_report_dir_never_passes(capsys, fake_gate, tmp_path, verdict, code) -> None:
    fake_gate["result"] = dict(PASS_RESULT, verdict=verdict)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli(capsys, "gate", "--json", "--report-dir", str(blocker / "reports"))
    assert result[0] == code
    assert "cannot write the reports" in result[2]
    assert "cannot write the reports" in json.loads(result[1])["report_error"]


@pytest.mark.parametrize(
    "argv",
    [
        ["gate", "--count", "0"],
        ["gate", "--count", "many"],
        ["gate", "--count", "-3"],
        ["gate", "--mode", "production"],
        ["gate", "--timeout", "0"],
        ["gate", "--timeout", "nan"],
        ["gate", "--page-size", "0"],
        ["gate", "--bogus"],
        ["shadow-report"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(capsys, argv: list[str]) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert "error:" in err
    assert out == ""


def test_usage_error_with_json_prints_a_fail(capsys) -> None:
    code, out, err = run_cli(capsys, "gate", "--json", "--count", "zero")
    assert code == 2
    shown = json.loads(out)
    assert shown["verdict"] == "FAIL"
    assert "count" in " ".join(shown["blockers"])
    assert "--count" in err


@pytest.mark.parametrize("model", ["Patchtst", "patch-tst", "9lives", "a" * 33, "x;rm -rf"])
def test_bad_model_name_fails_before_any_connection(capsys, model: str) -> None:
    # Port 1 of a TEST-NET address: nothing may be contacted, the name is refused first.
    argv = ["gate", "--json", "--no-report", "--redis-url", "redis://192.0.2.1:1/0"]
    code, out, _ = run_cli(capsys, *argv, "--model", model, "--timeout", "0.2")
    assert code == 2
    shown = json.loads(out)
    assert shown["verdict"] == "FAIL"
    assert any("not a valid model name" in b for b in shown["blockers"])


@pytest.mark.parametrize("after", ["yesterday", "2026-01-10T12:00:00", "17000"])
def test_bad_cutover_fails_before_any_connection(capsys, after: str) -> None:
    argv = ["gate", "--json", "--no-report", "--redis-url", "redis://192.0.2.1:1/0"]
    code, out, _ = run_cli(capsys, *argv, "--after", after, "--timeout", "0.2")
    assert code == 2
    assert any("--after" in b for b in json.loads(out)["blockers"])


@pytest.mark.parametrize(
    "command", [["gate"], ["scoreboard"], ["feature-sanity"], ["shadow-report", "--model", "x"]]
)
@pytest.mark.parametrize("after", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_an_out_of_range_cutover_is_a_usage_error(capsys, command: list[str], after: str) -> None:
    # Its UTC time is outside the years datetime knows: once an "internal error: OverflowError".
    argv = [*command, "--no-report", "--redis-url", "redis://192.0.2.1:1/0", "--timeout", "0.2"]
    code, out, err = run_cli(capsys, *argv, "--after", after)
    assert code == 2
    assert out == ""
    assert f"error: argument --after: cutover time {after!r} is out of range" in err
    assert "internal error" not in err


def test_internal_error_is_a_fail(capsys, monkeypatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(run_module, "run_gate", broken)
    code, out, err = run_cli(capsys, "gate", "--json", "--no-report")
    assert code == 2
    assert "internal error: RuntimeError: boom" in err
    assert json.loads(out)["verdict"] == "FAIL"


@pytest.mark.parametrize(
    ("result", "code", "headline"),
    [
        ({"mode": "canary", "models": {"xgb": {"status": "GO"}}}, 0, "SCOREBOARD (mode canary"),
        ({"error": "Redis down", "exit_code": 2, "models": {}}, 0, "SCOREBOARD unavailable"),
    ],
)
def test_scoreboard_exit_codes(capsys, monkeypatch, tmp_path, result, code, headline) -> None:
    monkeypatch.setattr(run_module, "run_scoreboard", lambda *a, **k: dict(result))
    got, out, _ = run_cli(capsys, "scoreboard", "--report-dir", str(tmp_path))
    assert got == code
    assert out.startswith(headline)
    assert (tmp_path / "scoreboard_latest.md").exists()


@pytest.mark.parametrize(("exit_code", "code"), [(0, 0), (2, 2), (None, 2), (7, 2)])
def test_feature_sanity_exit_codes(capsys, monkeypatch, exit_code, code) -> None:
    result = {"exit_code": exit_code, "features": {}, "problems": [], "warnings": []}
    monkeypatch.setattr(run_module, "run_feature_sanity", lambda *a, **k: dict(result))
    assert run_cli(capsys, "feature-sanity", "--no-report")[0] == code


@pytest.mark.parametrize(
    ("status", "code"), [("READY", 0), ("NOT_READY", 2), ("BLOCKED", 2), (None, 2)]
)
def test_shadow_report_exit_codes(capsys, monkeypatch, status, code) -> None:
    seen: dict[str, Any] = {}

    def fake(*_args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        return {"model": "patchtst", "status": status, "gates": {}, "hard_blockers": []}

    monkeypatch.setattr(run_module, "run_shadow_report", fake)
    got, out, _ = run_cli(capsys, "shadow-report", "--model", "patchtst", "--no-report")
    assert got == code
    assert seen["model"] == "patchtst"
    assert out.startswith(f"SHADOW REPORT patchtst: {status}")
