"""``model-safety compare`` against a real redis-server (tests.redis_server): the window read
the way the gate reads it, the paired comparison printed as Markdown or JSON, and the refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_safety import cli
from tests.redis_server import free_port
from tests.unit.test_compare import T0, event

WRONG_CANARY = {"xgb": ("BUY", 0.7), "lgbm": ("BUY", 0.6), "patchtst": ("SELL", 0.9)}


def fill(client: Any, stream: str, n: int, breakdown: dict[str, Any] = WRONG_CANARY) -> None:
    """n events one minute apart on a rising price, stream ids at the events' times."""
    start_ms = int(T0.timestamp() * 1000)
    for i in range(n):
        payload = event(i * 60, 100.0 + i, breakdown)
        client.xadd(stream, {"payload": json.dumps(payload)}, id=f"{start_ms + i * 60_000}-0")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command's exit code, stdout and stderr; no report files unless a directory is given."""
    code = cli.main([*argv, *(() if "--report-dir" in argv else ("--no-report",))])
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_json_finds_the_wrong_canary(
    capsys, redis_server, redis_client, redis_stream
) -> None:
    fill(redis_client, redis_stream, 30)
    code, out, _ = run(
        capsys, "compare", "--model", "patchtst", "--redis-url", redis_server.url,
        "--stream", redis_stream, "--horizon", "60", "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0
    assert (result["events"], result["events_with_outcome"], result["decided"]) == (30, 29, True)
    assert result["canary_worse_than"] == ["xgb", "lgbm", "ensemble", "ensemble without patchtst"]
    assert result["source"]["stream"] == redis_stream
    assert result["horizon_s"] == 60.0


def test_compare_prints_the_markdown_section(
    capsys, redis_server, redis_client, redis_stream
) -> None:
    fill(redis_client, redis_stream, 12)
    code, out, _ = run(
        capsys, "compare", "--model", "patchtst", "--redis-url", redis_server.url,
        "--stream", redis_stream, "--horizon", "120",
    )  # fmt: skip
    assert code == 0
    assert out.startswith("## Paired comparison: `patchtst` against the baseline\n")
    assert (
        "Horizon 120 s, later price at most 120 s past it; 12 events, 12 with a price, "
        "10 with an outcome (up 10, down 0, flat 0), 0 with a late outcome"
    ) in out
    assert "| xgb | 10 | 0 | 10 | 0.00195 | 0.000977 | -1.000 | -100.0% | yes |" in out


def test_compare_after_a_cutover_reads_only_later_events(
    capsys, redis_server, redis_client, redis_stream
) -> None:
    fill(redis_client, redis_stream, 30)
    code, out, _ = run(
        capsys, "compare", "--model", "patchtst", "--redis-url", redis_server.url,
        "--stream", redis_stream, "--after", "2026-01-10T12:19:30Z", "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0
    assert result["events"] == 10
    # The default 300 s horizon leaves the last 5 events without an outcome.
    assert result["events_with_outcome"] == 5


def test_compare_without_outcomes_is_not_decided_and_exits_0(
    capsys, redis_server, redis_client, redis_stream
) -> None:
    fill(redis_client, redis_stream, 3)
    code, out, _ = run(
        capsys, "compare", "--model", "patchtst", "--redis-url", redis_server.url,
        "--stream", redis_stream,
    )  # fmt: skip
    assert code == 0
    assert "**Not decided**: patchtst made no directional call with an outcome." in out


def test_a_voting_model_without_weight_is_an_error(
    capsys, redis_server, redis_client, redis_stream
) -> None:
    fill(redis_client, redis_stream, 10)
    code, out, _ = run(
        capsys, "compare", "--model", "patchtst", "--redis-url", redis_server.url,
        "--stream", redis_stream, "--weights", "xgb:0.5,patchtst:0.5", "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 2
    assert result["error"] == "no baseline weight for voting model 'lgbm'"
    assert result["decided"] is False


def test_unreachable_redis_is_an_error(capsys) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    code, out, _ = run(
        capsys, "compare", "--model", "patchtst", "--redis-url", url, "--timeout", "1"
    )
    assert code == 2
    assert out.startswith("COMPARE patchtst: error: ")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--weights", "xgb:0.5,lgbm:0.6", "must sum to 1"),
        ("--weights", "xgb:0.5,xgb:0.5", "more than once"),
        ("--alpha", "1", "not a significance level in (0, 1)"),
        ("--alpha", "nan", "not a significance level in (0, 1)"),
        ("--horizon", "0", "not a positive number"),
    ],
)
def test_bad_options_are_usage_errors(capsys, option: str, value: str, message: str) -> None:
    code, _, err = run(capsys, "compare", "--model", "patchtst", option, value)
    assert code == 2
    assert message in err


def test_bad_model_name_fails_before_any_connection(capsys) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    code, out, _ = run(capsys, "compare", "--model", "Bad-Name", "--redis-url", url, "--json")
    assert code == 2
    assert "not a valid model name" in json.loads(out)["error"]
