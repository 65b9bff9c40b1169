"""The runbook's stop conditions (issue 16 item 4): the host measures
(engine.stop_conditions: the exact journalctl argv, NRestarts vs the journal, disk usage, Redis)
with a fake runner and a real redis-server, and every rule's boundary (judgement.stop_rules),
the events-based ones undecided below stop_min_events at 1 event/min and decided at 100/s."""

from __future__ import annotations

import json
import os

import pytest

from model_safety.activation.log import append_record
from model_safety.engine import stop_conditions as sc
from model_safety.engine.commands import EngineStateError
from model_safety.judgement.stop_rules import consensus_findings, judge_host, payload_p95_blocker
from model_safety.judgement.thresholds import Thresholds

UNIT = "quantum-ai-engine.service"
NOW = 1_780_000_000.0
T = Thresholds()


class FakeJournal:
    """journalctl answering ``restarts`` scheduled-restart lines and ``lines`` unit lines."""

    def __init__(self, restarts: int = 0, lines: int = 0, fail: bool = False) -> None:
        self.restarts, self.lines, self.fail = restarts, lines, fail
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        if self.fail:
            return 1, "", "No journal files were found."
        count = self.restarts if f"MESSAGE_ID={sc.RESTART_SCHEDULED_ID}" in argv else self.lines
        return 0, "".join(f"line {i}\n" for i in range(count)), ""


def measures(tmp_path, run, n_restarts=0, window=60.0, redis_client=None) -> dict:
    return sc.measure_host(
        run,
        redis_client,
        unit=UNIT,
        stream="s",
        paths=[str(tmp_path)],
        n_restarts=n_restarts,
        now_s=NOW,
        log_window_s=window,
    )


def test_the_journal_is_read_with_argv_lists_over_24_h_and_the_window(tmp_path) -> None:
    run = FakeJournal(restarts=1, lines=30)
    result = measures(tmp_path, run, window=30)
    assert run.calls == [
        [
            "journalctl",
            "--no-pager",
            "--quiet",
            "-o",
            "cat",
            f"--since=@{NOW - 86400:.3f}",
            "_PID=1",
            f"UNIT={UNIT}",
            f"MESSAGE_ID={sc.RESTART_SCHEDULED_ID}",
        ],
        [
            "journalctl",
            "--no-pager",
            "--quiet",
            "-o",
            "cat",
            f"--since=@{NOW - 30:.3f}",
            f"--until=@{NOW:.3f}",
            f"--lines={sc.MAX_LOG_LINES}",
            f"_SYSTEMD_UNIT={UNIT}",
        ],
    ]
    assert result["restarts"] == {"journal_24h": 1, "n_restarts": 0, "error": None, "count": 1}
    assert (result["log_lines"]["lines"], result["log_lines"]["per_min"]) == (30, 60.0)


@pytest.mark.parametrize(("journal", "n_restarts", "count"), [(3, 1, 3), (0, 4, 4), (0, 0, 0)])
def test_restarts_are_the_larger_of_the_journal_and_nrestarts(
    tmp_path, journal, n_restarts, count
) -> None:
    result = measures(tmp_path, FakeJournal(restarts=journal), n_restarts=n_restarts)
    assert result["restarts"]["count"] == count


def test_an_unreadable_journal_is_an_error_of_both_journal_rules(tmp_path) -> None:
    result = measures(tmp_path, FakeJournal(fail=True), n_restarts=5)
    judged = judge_host(result, None, T)
    assert result["restarts"]["count"] is None
    assert [e.split(":")[0] for e in judged["errors"]] == ["restart_loop", "log_spam"]
    assert judged["blockers"] == []


@pytest.mark.parametrize(
    "bad",
    [["relative/path"], ["/a/../b"], ["/a\nb"], "/not/a/list", ["/x"] * (sc.MAX_STOP_PATHS + 1)],
)
def test_bad_stop_paths_are_refused(tmp_path, bad) -> None:
    with pytest.raises(EngineStateError):
        sc.measure_host(
            FakeJournal(), None, unit=UNIT, stream="s", paths=bad, n_restarts=0, now_s=NOW
        )


@pytest.mark.parametrize("window", [0, 3601, float("nan"), True, "60"])
def test_a_bad_log_window_is_refused(tmp_path, window) -> None:
    with pytest.raises(EngineStateError):
        measures(tmp_path, FakeJournal(), window=window)


def test_a_bad_unit_is_refused_before_any_command(tmp_path) -> None:
    run = FakeJournal()
    with pytest.raises(EngineStateError):
        sc.measure_host(
            run, None, unit="x; rm -rf /", stream="s", paths=[], n_restarts=0, now_s=NOW
        )
    assert run.calls == []


def test_disk_usage_counts_blocks_hard_links_once_and_no_symlink_target(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.db").write_bytes(os.urandom(1 << 20))
    os.link(data / "a.db", data / "b.db")
    outside = tmp_path / "outside"
    outside.write_bytes(os.urandom(1 << 20))
    (data / "link").symlink_to(outside)
    size = sc.disk_usage(str(data))
    assert 1 << 20 <= size < (1 << 20) + 64 * 1024
    assert sc.disk_usage(str(data / "a.db")) >= 1 << 20


def test_a_missing_path_counts_zero(tmp_path) -> None:
    result = sc.measure_host(
        FakeJournal(),
        None,
        unit=UNIT,
        stream="s",
        paths=[str(tmp_path / "none")],
        n_restarts=0,
        now_s=NOW,
    )
    assert result["disk"] == {"paths": {str(tmp_path / "none"): 0}, "bytes": 0, "error": None}
    assert result["redis"] is None  # without a client: the caller reads Redis itself


# --------------------------------------------------------------------------- rules


def host(restarts=0, per_min=0.0, disk=None, redis=None) -> dict:
    return {
        "restarts": {"count": restarts, "journal_24h": restarts, "n_restarts": 0, "error": None},
        "log_lines": {"lines": per_min, "per_min": per_min, "window_s": 60.0, "error": None},
        "disk": {
            "paths": disk or {"/d": 0},
            "bytes": sum((disk or {"/d": 0}).values()),
            "error": None,
        },
        "redis": redis or {"used_memory": 1000, "stream_length": 10, "error": None},
    }


def rules(judged: dict) -> list[str]:
    return [f["rule"] for f in judged["findings"]]


def test_restart_loop_holds_above_two_restarts() -> None:
    assert rules(judge_host(host(restarts=2), None, T)) == []
    judged = judge_host(host(restarts=3), None, T)
    assert rules(judged) == ["restart_loop"]
    assert judged["blockers"] == [
        "Restart loop: 3 crash restarts in 24 h (>2; journal 3, NRestarts 0)"
    ]


def test_log_spam_holds_above_1000_lines_per_minute() -> None:
    assert rules(judge_host(host(per_min=1000.0), None, T)) == []
    judged = judge_host(host(per_min=1000.1), None, T)
    assert judged["findings"][0]["rule"] == "log_spam"
    assert judged["findings"][0]["text"].startswith("Log spam: 1000 journal lines/min (>1000;")


def test_disk_growth_holds_above_5_gb_since_the_activation_and_redis_is_a_trend() -> None:
    baseline = {
        "disk": {"paths": {"/d": 1_000, "/gone": 5}},
        "redis": {"used_memory": 400, "stream_length": 4},
    }
    at_limit = judge_host(host(disk={"/d": 1_000 + 5_000_000_000}), baseline, T)
    assert (rules(at_limit), at_limit["disk_growth"]) == ([], 5_000_000_000)
    over = judge_host(host(disk={"/d": 1_001 + 5_000_000_000}), baseline, T)
    assert rules(over) == ["disk_growth"]
    assert over["blockers"] == ["Disk growth: +5.00 GB since the activation (>5 GB) under /d"]
    assert over["trend"] == {
        "used_memory": {"now": 1000, "at_activation": 400, "growth": 600},
        "stream_length": {"now": 10, "at_activation": 4, "growth": 6},
    }


def test_disk_growth_without_a_baseline_is_undecided() -> None:
    judged = judge_host(host(disk={"/d": 10**12}), None, T)
    assert judged["findings"] == []
    assert judged["undecided"] == ["disk_growth: no size recorded at the activation"]


def test_smaller_thresholds_from_overrides() -> None:
    small = T.with_overrides({"max_disk_growth_bytes": 5_000_000, "max_restarts_24h": 0})
    baseline = {"disk": {"paths": {"/d": 0}}}
    assert rules(judge_host(host(restarts=1, disk={"/d": 5_000_001}), baseline, small)) == [
        "restart_loop",
        "disk_growth",
    ]
    with pytest.raises(ValueError):
        T.with_overrides({"consensus_low_share": 1.5})


@pytest.mark.parametrize(("p95", "blocked"), [(1499.9, False), (1500.0, True), (None, False)])
def test_the_payload_rule_is_the_shadow_blocker(p95, blocked) -> None:
    assert (payload_p95_blocker(p95, T) is not None) is blocked
    judged = judge_host(host(), None, T, {"events": 100, "payload_p95": p95})
    assert (rules(judged) == ["payload_p95"]) is blocked


def test_the_payload_rule_is_undecided_below_the_minimum_events() -> None:
    judged = judge_host(host(), None, T, {"events": 99, "payload_p95": 9999.0})
    assert judged["findings"] == []
    assert judged["undecided"][-1].startswith("payload_p95: 99 events, fewer than 100")


@pytest.mark.parametrize(
    ("events", "low", "full", "found"),
    [
        (99, 99, 99, []),  # 1 event/min for 99 minutes: not decided yet
        (100, 30, 80, []),  # exactly at both limits
        (100, 31, 0, ["consensus_broken"]),
        (100, 0, 81, ["consensus_redundant"]),
        (3000, 1200, 2700, ["consensus_broken", "consensus_redundant"]),  # 100/s, 30 s
    ],
)
def test_consensus_boundaries(events, low, full, found) -> None:
    findings, undecided = consensus_findings(events, low, full, "patchtst", T)
    assert [f["rule"] for f in findings] == found
    assert bool(undecided) is (events < 100)
    assert all(f["blocking"] is (f["rule"] == "consensus_broken") for f in findings)


def test_consensus_broken_waits_for_the_evidence_it_is_given() -> None:
    findings, _ = consensus_findings(100, 40, 0, "patchtst", T, decided=lambda *_: False)
    assert findings == []


# --------------------------------------------------------------------------- real Redis


def event(agree: int, pad: int = 0, canary_votes: bool = True) -> str:
    """A DESIGN event of three voters (two without the canary), ``agree`` of them with the
    side; ``pad`` bytes more in an extra key (the payload's size)."""
    actions = ["BUY"] * agree + ["SELL"] * 3
    names = ["xgb", "lgbm", "patchtst"] if canary_votes else ["xgb", "lgbm"]
    breakdown = {
        name: {"action": action, "confidence": 0.6, "model": name}
        for name, action in zip(names, actions, strict=False)
    }
    return json.dumps(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "confidence": 0.6,
            "consensus_count": min(agree, len(names)),
            "total_models": len(names),
            "timestamp": "2026-12-04T00:00:00.000Z",
            "model_breakdown": breakdown,
            "note": "x" * pad,
        }
    )


def test_window_measures_count_consensus_and_payload_sizes(redis_client, redis_stream) -> None:
    from model_safety.telemetry.stream import read_window

    for payload in [event(3)] * 3 + [event(1)] * 2 + [event(2, canary_votes=False)]:
        redis_client.xadd(redis_stream, {"payload": payload})
    window = read_window(redis_client, redis_stream, count=100)
    result = sc.window_measures(window, "patchtst")
    assert (result["events"], result["low"], result["full"]) == (6, 2, 3)
    assert len(result["payload_bytes"]) == 6 and result["payload_p95"] > 200
    # Full consensus without the canary voting is not "full consensus with the canary".
    assert sc.window_measures(window, "nhits")["full"] == 0


def test_check_host_judges_the_stream_and_the_activation_baseline(
    tmp_path, redis_client, redis_stream
) -> None:
    for _ in range(120):
        redis_client.xadd(redis_stream, {"payload": event(3, pad=1500)})
    log = str(tmp_path / "log" / "qsc_canary.jsonl")
    data = tmp_path / "data"
    data.mkdir()
    baseline = {
        "disk": {"paths": {str(data): 0}, "bytes": 0},
        "redis": {"used_memory": 1, "stream_length": 0},
    }
    append_record(log, {"event": "activation", "model": "patchtst", "stop_baseline": baseline})
    (data / "grown").write_bytes(os.urandom(2 << 20))
    result = sc.check_host(
        FakeJournal(),
        redis_client,
        unit=UNIT,
        stream=redis_stream,
        paths=[str(data)],
        n_restarts=0,
        activation_log=log,
        sample=200,
        now_s=NOW,
        thresholds=T.with_overrides({"max_disk_growth_bytes": 1_000_000}),
    )
    assert rules(result) == ["disk_growth", "payload_p95"]
    assert result["baseline"] == baseline
    assert result["events"]["events"] == 120 and "payload_bytes" not in result["events"]
    assert result["trend"]["stream_length"]["growth"] == 120
    assert result["measures"]["redis"]["used_memory"] > 0


def test_a_rollback_ends_the_baseline(tmp_path, redis_client, redis_stream) -> None:
    log = str(tmp_path / "qsc_canary.jsonl")
    append_record(
        log,
        {
            "event": "activation",
            "model": "patchtst",
            "stop_baseline": {"disk": {"paths": {"/d": 0}}},
        },
    )
    append_record(log, {"event": "rollback_executed", "model": "patchtst"})
    result = sc.check_host(
        FakeJournal(),
        redis_client,
        unit=UNIT,
        stream=redis_stream,
        paths=[str(tmp_path)],
        n_restarts=0,
        activation_log=log,
        sample=200,
        now_s=NOW,
        thresholds=T,
    )
    assert result["baseline"] is None
    assert "disk_growth: no size recorded at the activation" in result["undecided"]


def test_an_unreadable_stream_leaves_the_payload_to_the_gate(tmp_path) -> None:
    import redis as redis_py

    from tests.redis_server import free_port

    client = redis_py.Redis(port=free_port(), socket_connect_timeout=0.5)
    result = sc.check_host(
        FakeJournal(),
        client,
        unit=UNIT,
        stream="s",
        paths=[str(tmp_path)],
        n_restarts=0,
        activation_log=str(tmp_path / "none.jsonl"),
        sample=200,
        now_s=NOW,
        thresholds=T,
    )
    assert (result["blockers"], result["errors"], result["events"]) == ([], [], None)
    assert result["undecided"][-1].startswith("payload_p95: stream unreadable, left to the gate")
    assert result["measures"]["redis"]["error"]  # reported in the measures
