"""Feature drift from the command line against a real redis-server (tests.redis_server):
``feature-reference`` writes a reference, ``gate`` and ``feature-sanity`` judge a window
against it or against the events up to the cutover, and every bad reference blocks."""

from __future__ import annotations

import json
import os
import stat
from typing import Any

import numpy as np
import pytest

from model_safety import cli
from model_safety.judgement.run import run_gate, run_gate_waiting

T0_MS = 1_768_046_400_000
BREAKDOWN_ACTIONS = ("BUY", "SELL", "HOLD")


def event(i: int, ms: int, features: dict[str, float], rng: np.random.Generator) -> str:
    seconds, millis = divmod(ms, 1000)
    moment = np.datetime64(seconds, "s").astype(str)
    breakdown = {}
    for name in ("xgb", "lgbm", "nhits"):
        breakdown[name] = {
            "action": BREAKDOWN_ACTIONS[int(rng.integers(0, 3))],
            "confidence": round(float(rng.uniform(0.3, 0.95)), 4),
            "model": name,
        }
    side = breakdown["xgb"]["action"]
    agree = sum(entry["action"] == side for entry in breakdown.values())
    return json.dumps(
        {
            "symbol": "BTCUSDT",
            "side": side,
            "confidence": 0.6,
            "consensus_count": agree,
            "total_models": 3,
            "timestamp": f"{moment}.{millis:03d}Z",
            "model_breakdown": breakdown,
            "features": features,
        }
    )


def fill(client: Any, stream: str, n: int, *, start: int, shift: float, step_ms: int) -> str:
    """n healthy-model events ``step_ms`` apart from event number ``start``; their feature
    ``atr_value`` ~ N(shift, 1), ``rsi_14`` ~ U(0, 100). Returns the last stream id."""
    rng = np.random.default_rng(start + 1)
    last = ""
    for i in range(start, start + n):
        ms = T0_MS + i * step_ms
        features = {
            "atr_value": float(rng.normal(shift, 1.0)),
            "rsi_14": float(rng.uniform(0, 100)),
        }
        last = client.xadd(stream, {"payload": event(i, ms, features, rng)}, id=f"{ms}-0")
    return last.decode() if isinstance(last, bytes) else last


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict | str]:
    code = cli.main(list(argv))
    out, _ = capsys.readouterr()
    try:
        return code, json.loads(out)
    except ValueError:
        return code, out


@pytest.fixture
def shifted_stream(redis_client, redis_stream) -> tuple[str, str]:
    """1000 in-distribution events, then 300 with atr_value shifted by 3 std: (cutover, stream)."""
    cutover = fill(redis_client, redis_stream, 1000, start=0, shift=0.0, step_ms=1000)
    fill(redis_client, redis_stream, 300, start=1000, shift=3.0, step_ms=1000)
    return cutover, redis_stream


def test_feature_reference_writes_a_0640_file_the_gate_blocks_on(
    capsys, redis_server, redis_client, redis_stream, tmp_path
) -> None:
    stream = redis_stream
    cutover = fill(redis_client, stream, 1000, start=0, shift=0.0, step_ms=1000)
    out = str(tmp_path / "ref.json")
    base = ("--redis-url", redis_server.url, "--stream", stream)
    code, text = run(capsys, "feature-reference", *base, "--count", "1000", "--out", out)
    assert code == 0, text
    assert text == (
        f"FEATURE REFERENCE written to {out}: 1000 events 2026-01-10T12:00:00.000Z .. "
        f"2026-01-10T12:16:39.000Z of {stream}; atr_value (1000 values, 10 bins), "
        "rsi_14 (1000 values, 10 bins)\n"
    )
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640
    # In-distribution events (the newest 300 of the reference's own) pass.
    code, result = run(capsys, "gate", *base, "--count", "300", "--feature-reference", out,
                       "--no-report", "--json")  # fmt: skip
    assert result["drift"]["status"] == "ok", result["drift"]
    assert code == 0 and result["verdict"] == "PASS", result["blockers"]
    fill(redis_client, stream, 300, start=1000, shift=3.0, step_ms=1000)
    code, result = run(capsys, "gate", *base, "--after", cutover, "--feature-reference", out,
                       "--no-report", "--json")  # fmt: skip
    assert code == 2 and result["verdict"] == "FAIL"
    drift = result["drift"]
    assert drift["status"] == "block" and drift["reference"]["path"] == out
    assert drift["features"]["rsi_14"]["status"] == "ok"
    psi = drift["features"]["atr_value"]["psi"]
    assert psi > 1.0
    assert result["blockers"] == [
        f"feature drift: atr_value PSI {psi:.3f} > 0.25 (reference 1000 values, current 300)"
    ]
    assert "1 blocker" in result["summary"]


def test_reference_events_before_the_cutover_and_feature_sanity(
    capsys, redis_server, shifted_stream
) -> None:
    cutover, stream = shifted_stream
    base = ("--redis-url", redis_server.url, "--stream", stream, "--no-report", "--json")
    code, result = run(capsys, "gate", *base, "--after", cutover, "--reference-events", "500")
    assert code == 2
    reference = result["drift"]["reference"]
    assert reference["event_count"] == 500 and reference["last_id"] == cutover
    assert result["drift"]["features"]["atr_value"]["status"] == "block"
    code, result = run(capsys, "feature-sanity", *base, "--after", cutover,
                       "--reference-events", "500")  # fmt: skip
    assert code == 2
    assert result["problems"][0].startswith("feature drift: atr_value PSI ")
    # Too few events before the cutover: not decided, which the gate does not pass.
    code, result = run(capsys, "gate", *base, "--after", cutover, "--reference-events", "150")
    assert code == 2 and result["drift"]["status"] == "error"
    assert "too few finite values for a reference (< 200): atr_value 150" in result["blockers"][0]


def test_without_a_reference_drift_is_not_judged(capsys, redis_server, shifted_stream) -> None:
    _, stream = shifted_stream
    code, result = run(capsys, "gate", "--redis-url", redis_server.url, "--stream", stream,
                       "--count", "300", "--no-report", "--json")  # fmt: skip
    assert code == 0 and result["verdict"] == "PASS"
    assert result["drift"]["status"] == "not_judged"
    assert result["drift"]["blockers"] == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot be read: No such file or directory"),
        ('{"format": "model-safety-feature-reference", "version": ', "not valid JSON"),
        ('{"format": "model-safety-feature-reference", "version": 9}', "version 9 is not 1"),
        ("[]", "not a JSON object"),
    ],
    ids=["missing", "corrupt", "wrong_version", "not_an_object"],
)
def test_a_bad_reference_file_blocks_with_its_reason(
    capsys, redis_server, shifted_stream, tmp_path, content, reason
) -> None:
    _, stream = shifted_stream
    path = tmp_path / "ref.json"
    if content is not None:
        path.write_text(content)
    code, result = run(capsys, "gate", "--redis-url", redis_server.url, "--stream", stream,
                       "--count", "300", "--after", "0-0", "--feature-reference", str(path),
                       "--no-report", "--json")  # fmt: skip
    assert code == 2 and result["verdict"] == "FAIL"
    assert result["drift"]["status"] == "error"
    assert result["blockers"] == [f"feature drift: feature reference {path}: {reason}"] or (
        reason in result["blockers"][0]
    )
    assert reason in result["blockers"][0]


def test_an_unreadable_reference_file_blocks(capsys, redis_server, shifted_stream, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    _, stream = shifted_stream
    path = tmp_path / "ref.json"
    path.write_text("{}")
    path.chmod(0)
    code, result = run(capsys, "gate", "--redis-url", redis_server.url, "--stream", stream,
                       "--count", "300", "--feature-reference", str(path), "--json",
                       "--no-report")  # fmt: skip
    assert code == 2 and "cannot be read: Permission denied" in result["blockers"][0]


def test_bad_drift_options_are_refused(capsys, redis_server, shifted_stream, tmp_path) -> None:
    _, stream = shifted_stream
    base = ("--redis-url", redis_server.url, "--stream", stream, "--no-report", "--json")
    code, result = run(capsys, "gate", *base, "--reference-events", "100")
    assert code == 2
    assert result["blockers"] == ["reference events are the events before the cutover: give one"]
    code, _ = run(capsys, "gate", *base, "--reference-events", "0")
    assert code == 2
    code, _ = run(capsys, "gate", *base, "--reference-events", "5", "--feature-reference", "x")
    assert code == 2
    assert run_gate(redis_server.url, stream, reference_events=10**6, after="0-0")["blockers"] == [
        "reference events must be <= 100000, not 1000000"
    ]
    code, text = run(capsys, "feature-reference", "--redis-url", redis_server.url,
                     "--stream", stream, "--out", str(tmp_path))  # fmt: skip
    assert code == 2 and "not a file path to write the reference to" in text
    out = str(tmp_path / "r.json")
    code, text = run(capsys, "feature-reference", "--redis-url", redis_server.url,
                     "--stream", stream, "--count", "100", "--out", out)  # fmt: skip
    assert code == 2 and "too few finite values for a reference (< 200)" in text
    assert not (tmp_path / "r.json").exists()
    code, text = run(capsys, "feature-reference", "--redis-url", redis_server.url,
                     "--stream", stream, "--out", str(tmp_path / "no" / "r.json"))  # fmt: skip
    assert code == 2 and "cannot write the reference to" in text


def test_the_gate_wait_ends_at_once_on_drift_and_waits_while_filling(
    redis_server, redis_client, redis_stream, tmp_path
) -> None:
    """At 1 event/min a gate right after the start sees too few events: it waits (nothing is
    decided, drift included); a decided drift ends the wait at once."""
    cutover = fill(redis_client, redis_stream, 1000, start=0, shift=0.0, step_ms=60_000)
    fill(redis_client, redis_stream, 5, start=1000, shift=3.0, step_ms=60_000)
    sleeps: list[float] = []
    clock = iter(range(100))
    result = run_gate_waiting(
        redis_server.url, redis_stream, wait=3, sleep=sleeps.append,
        clock=lambda: float(next(clock)), after=cutover, reference_events=1000,
    )  # fmt: skip
    assert result["reads"] == 3 and result["verdict"] == "FAIL"
    assert result["drift"]["status"] == "undecided"
    fill(redis_client, redis_stream, 300, start=1005, shift=3.0, step_ms=60_000)
    result = run_gate_waiting(
        redis_server.url, redis_stream, wait=3, sleep=sleeps.append,
        clock=lambda: float(next(clock)), after=cutover, reference_events=1000,
    )  # fmt: skip
    assert result["reads"] == 1 and result["drift"]["status"] == "block"
