"""Unit tests of model_safety.engine.status: parsing, validation, composition, the table."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from model_safety.engine.commands import CommandError, EngineStateError
from model_safety.engine.git import build_matches, read_git_head
from model_safety.engine.startup import Canary, StartupReport, parse_startup, parse_weight_pct
from model_safety.engine.status import collect_engine_status, format_status_table
from model_safety.engine.stream_stats import stream_stats
from model_safety.engine.systemd import (
    SHOW_PROPERTIES,
    ServiceState,
    parse_systemctl_show,
    read_journal,
    read_service_state,
    service_state_from_properties,
    service_uptime,
)
from model_safety.engine.validation import validate_unit
from tests.systemd_fakes import journal_argv, show_output

UNIT = "quantum-ai-engine.service"
INVOCATION = "0123456789abcdef0123456789abcdef"
SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"

SHOW_OK = show_output(UNIT, INVOCATION, restarts=2)

STARTUP_CANARY = [
    "AI_ENGINE_BUILD: 1a2b3c4",
    "[PatchTST-INIT] Model file: /opt/quantum/models/patchtst.pth (present, sha256 0123456789ab)",
    "[OK] xgb agent loaded (weight: 28.125%)",
    "[OK] lgbm agent loaded (weight: 28.125%)",
    "[OK] nhits agent loaded (weight: 33.75%)",
    "[OK] patchtst agent loaded (weight: 10%)",
    "[CANARY] patchtst weight=10% weights=xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1",
    "[READY] publishing to quantum:stream:trade.intent at 10/s, "
    "symbols=BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT",
    "[STATS] 600 events, 10.0/s",
]

STARTUP_SHADOW = [
    "AI_ENGINE_BUILD: 1a2b3c4",
    "[OK] xgb agent loaded (weight: 31.25%)",
    "[OK] lgbm agent loaded (weight: 31.25%)",
    "[OK] nhits agent loaded (weight: 37.5%)",
    "[SHADOW] patchtst agent loaded in shadow mode (weight: 20%, never votes)",
    "[READY] publishing to quantum:stream:trade.intent at 10/s, symbols=BTCUSDT",
    "[SHADOW] PatchTST | BTCUSDT | action=BUY conf=0.62 | mode=SHADOW_ONLY",
    "[SHADOW] PatchTST | ETHUSDT | action=HOLD conf=0.51 | mode=SHADOW_ONLY",
]


class FakeRun:
    """Answers commands by their program name and records every argv it was given."""

    def __init__(self, **answers: tuple[int, str, str]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        assert isinstance(argv, list), "argv lists only, never shell strings"
        self.calls.append(argv)
        return self.answers.get(argv[0], (127, "", f"{argv[0]}: not found"))


def healthy_run(journal: list[str] = STARTUP_CANARY, sha: str = SHA) -> FakeRun:
    return FakeRun(
        systemctl=(0, SHOW_OK, ""),
        journalctl=(0, "\n".join(journal) + "\n", ""),
        git=(0, sha + "\n", ""),
    )


class FakeRedis:
    """The three calls stream_stats makes, over fixed (id, fields) entries, oldest first."""

    def __init__(self, ids: list[str], now_ms: int, as_bytes: bool = True) -> None:
        convert = (lambda text: text.encode()) if as_bytes else (lambda text: text)
        self.entries = [(convert(i), {convert("payload"): convert("{}")}) for i in ids]
        self.now_ms = now_ms

    def xlen(self, _stream: str) -> int:
        return len(self.entries)

    def xrevrange(self, _stream: str, max: str, min: str, count: int) -> list[Any]:
        assert (max, min) == ("+", "-")
        return list(reversed(self.entries))[:count]

    def time(self) -> tuple[int, int]:
        return self.now_ms // 1000, (self.now_ms % 1000) * 1000


class BrokenRedis:
    """A client whose every call fails like an unreachable server."""

    def __getattr__(self, _name: str) -> Any:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise ConnectionRefusedError("Error 111 connecting to 127.0.0.1:6399")

        return fail


def recent_ids(now_ms: int, count: int = 11, step_ms: int = 100) -> list[str]:
    return [f"{now_ms - (count - 1 - i) * step_ms}-0" for i in range(count)]


# --------------------------------------------------------------------------- systemctl


def test_parse_systemctl_show_keeps_equals_and_empty_values() -> None:
    parsed = parse_systemctl_show("A=1\nExecStart={ path=/x ; argv[]=/x a=b }\nEmpty=\n\n")
    assert parsed == {"A": "1", "ExecStart": "{ path=/x ; argv[]=/x a=b }", "Empty": ""}


def test_parse_systemctl_show_rejects_garbage() -> None:
    with pytest.raises(EngineStateError, match="unexpected line"):
        parse_systemctl_show("A=1\nnot a property\n")


def test_read_service_state() -> None:
    run = FakeRun(systemctl=(0, SHOW_OK, ""))
    state = read_service_state(run, UNIT)
    assert state == ServiceState(
        unit=UNIT,
        load_state="loaded",
        active_state="active",
        sub_state="running",
        main_pid=4242,
        n_restarts=2,
        invocation_id=INVOCATION,
        active_enter_timestamp="Sat 2026-01-10 12:00:00 UTC",
        active_enter_monotonic_us=123456789,
        result="success",
    )
    assert state.running
    assert run.calls == [["systemctl", "show", UNIT, "--property=" + ",".join(SHOW_PROPERTIES)]]


def test_read_service_state_of_stopped_unit() -> None:
    show = SHOW_OK.replace("ActiveState=active", "ActiveState=inactive")
    show = show.replace("SubState=running", "SubState=dead").replace("MainPID=4242", "MainPID=0")
    state = read_service_state(FakeRun(systemctl=(0, show, "")), UNIT)
    assert (state.active_state, state.main_pid, state.running) == ("inactive", 0, False)


@pytest.mark.parametrize(
    ("show", "message"),
    [
        (SHOW_OK.replace("NRestarts=2\n", ""), "lacks NRestarts"),
        (SHOW_OK.replace("MainPID=4242", "MainPID=x"), "MainPID is not an integer"),
    ],
)
def test_read_service_state_rejects_incomplete_output(show: str, message: str) -> None:
    with pytest.raises(EngineStateError, match=message):
        read_service_state(FakeRun(systemctl=(0, show, "")), UNIT)


def test_read_service_state_command_failure() -> None:
    run = FakeRun(systemctl=(1, "", "System has not been booted with systemd"))
    with pytest.raises(CommandError, match=r"rc 1\): System has not been booted") as info:
        read_service_state(run, UNIT)
    assert info.value.rc == 1
    assert isinstance(info.value, EngineStateError)


@pytest.mark.parametrize(
    "unit",
    [
        "",
        "quantum-ai-engine",
        "-quantum.service",
        "bad;name.service",
        "a b.service",
        "x.service\n",
        "../x.service",
        "x" * 250 + ".service",
        None,
    ],
)
def test_invalid_unit_names_never_reach_a_command(unit: Any) -> None:
    run = FakeRun()
    with pytest.raises(EngineStateError, match="unit name"):
        read_service_state(run, unit)
    assert run.calls == []


@pytest.mark.parametrize(
    "unit", ["quantum-ai-engine.service", "getty@tty1.service", "a_b:c.d.timer", r"x\x2d.mount"]
)
def test_valid_unit_names(unit: str) -> None:
    assert validate_unit(unit) == unit


# --------------------------------------------------------------------------- journal


def test_read_journal_argv_and_lines() -> None:
    run = FakeRun(journalctl=(0, "a\nb\n", ""))
    assert read_journal(run, UNIT, INVOCATION) == ["a", "b"]
    assert run.calls == [journal_argv(UNIT, INVOCATION)]


@pytest.mark.parametrize("invocation", ["", INVOCATION.upper(), INVOCATION[:-1], INVOCATION + "0"])
def test_read_journal_rejects_bad_invocation_ids(invocation: str) -> None:
    run = FakeRun(journalctl=(0, "", ""))
    with pytest.raises(EngineStateError, match="invocation id"):
        read_journal(run, UNIT, invocation)
    assert run.calls == []


def test_read_journal_failure() -> None:
    with pytest.raises(CommandError, match="rc 1"):
        read_journal(FakeRun(journalctl=(1, "", "No journal files")), UNIT, INVOCATION)


# --------------------------------------------------------------------------- start-up lines


@pytest.mark.parametrize(
    ("text", "fraction"),
    [
        ("28.125", 0.28125),
        ("33.75", 0.3375),
        ("10", 0.1),
        ("0", 0.0),
        ("100", 1.0),
        ("0.0001", 1e-6),
    ],
)
def test_parse_weight_pct(text: str, fraction: float) -> None:
    assert parse_weight_pct(text) == fraction


@pytest.mark.parametrize("text", ["", "abc", "-5", "1e2", "100.5", "28,125", "nan", "10%"])
def test_parse_weight_pct_rejects(text: str) -> None:
    with pytest.raises(EngineStateError):
        parse_weight_pct(text)


def test_parse_startup_canary() -> None:
    report = parse_startup(STARTUP_CANARY)
    weights = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
    assert report.build == "1a2b3c4"
    assert report.builds == ["1a2b3c4"]
    assert report.voting == weights
    assert report.shadow == {}
    assert report.canary == Canary("patchtst", 0.1, weights)
    assert report.model_file == STARTUP_CANARY[1]
    assert report.ready is True
    assert (report.errors, report.anomalies) == ([], [])


def test_parse_startup_shadow() -> None:
    report = parse_startup(STARTUP_SHADOW)
    assert report.voting == {"xgb": 0.3125, "lgbm": 0.3125, "nhits": 0.375}
    assert report.shadow == {"patchtst": 0.2}
    assert report.canary is None
    assert report.model_file is None
    assert report.shadow_predictions == {"patchtst": 2}
    assert report.anomalies == []


def test_parse_startup_of_nothing_proves_nothing() -> None:
    report = parse_startup([])
    assert report == StartupReport()
    assert (report.build, report.ready, report.voting) == (None, False, {})


def test_parse_startup_same_build_twice_is_one_build() -> None:
    report = parse_startup(["AI_ENGINE_BUILD: 1a2b3c4", "AI_ENGINE_BUILD: 1a2b3c4"])
    assert (report.build, report.builds, report.anomalies) == (
        "1a2b3c4",
        ["1a2b3c4", "1a2b3c4"],
        [],
    )


def test_parse_startup_conflicting_builds() -> None:
    report = parse_startup(["AI_ENGINE_BUILD: 1a2b3c4", "x", "AI_ENGINE_BUILD: 9f8e7d6"])
    assert report.build is None
    assert report.builds == ["1a2b3c4", "9f8e7d6"]
    assert report.anomalies == ["conflicting AI_ENGINE_BUILD lines: 1a2b3c4, 9f8e7d6"]


def test_parse_startup_errors_and_fatal_lines() -> None:
    lines = [
        *STARTUP_CANARY,
        "[ERROR] redis publish failed: timeout",
        "[FATAL] model file unreadable",
        "an ERROR without brackets is not one",
    ]
    report = parse_startup(lines)
    assert report.errors == [
        "[ERROR] redis publish failed: timeout",
        "[FATAL] model file unreadable",
    ]


def test_parse_startup_tolerates_a_logging_prefix() -> None:
    report = parse_startup(["2026-01-10 12:00:00 INFO AI_ENGINE_BUILD: 1a2b3c4"])
    assert report.build == "1a2b3c4"


@pytest.mark.parametrize(
    ("line", "anomaly"),
    [
        ("[OK] XGB agent loaded (weight: 25%)", "unparseable voting load line"),
        ("[OK] xgb agent loaded (weight: 250%)", "unparseable voting load line"),
        ("[SHADOW] patchtst agent loaded in shadow mode (weight: x%, never votes)", "shadow"),
        ("[CANARY] patchtst weight=10% weights=xgb:0.9,xgb:0.1", "unparseable canary line"),
        ("[CANARY] patchtst weight=10% weights=xgb:1.5", "unparseable canary line"),
        ("[CANARY] patchtst weight=10% weights=xgb", "unparseable canary line"),
    ],
)
def test_parse_startup_reports_malformed_lines(line: str, anomaly: str) -> None:
    report = parse_startup([line])
    assert len(report.anomalies) == 1
    assert anomaly in report.anomalies[0]
    assert (report.voting, report.shadow, report.canary) == ({}, {}, None)


def test_parse_startup_contradictions() -> None:
    report = parse_startup(
        [
            "[OK] xgb agent loaded (weight: 25%)",
            "[OK] xgb agent loaded (weight: 30%)",
            "[SHADOW] xgb agent loaded in shadow mode (weight: 20%, never votes)",
        ]
    )
    assert report.voting == {"xgb": 0.3}
    assert report.anomalies == [
        "xgb loaded twice as voting with different weights: 0.25 then 0.3",
        "loaded both as voting and as shadow: xgb",
    ]


def test_startup_report_as_dict_is_json() -> None:
    data = parse_startup(STARTUP_CANARY).as_dict()
    assert data["canary"] == {
        "model": "patchtst",
        "weight": 0.1,
        "weights": {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1},
    }
    assert json.loads(json.dumps(data)) == data


# --------------------------------------------------------------------------- git


def test_read_git_head() -> None:
    run = FakeRun(git=(0, SHA.upper() + "\n", ""))
    assert read_git_head(run, "/home/qt/quantum_trader") == SHA
    assert run.calls == [
        [
            "git",
            "--no-optional-locks",
            "-C",
            "/home/qt/quantum_trader",
            "-c",
            "safe.directory=/home/qt/quantum_trader",
            "rev-parse",
            "--verify",
            "HEAD^{commit}",
        ]
    ]


@pytest.mark.parametrize(
    "checkout", ["", "relative", "/home/qt/../etc", "/home/qt/", "/home/qt\nx", "~qt/x"]
)
def test_read_git_head_rejects_bad_paths(checkout: str) -> None:
    run = FakeRun(git=(0, SHA, ""))
    with pytest.raises(EngineStateError, match="absolute path"):
        read_git_head(run, checkout)
    assert run.calls == []


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((128, "", "fatal: not a git repository"), "is not a readable git checkout with a commit"),
        ((127, "", "git: not found"), "git is missing or cannot run on this host"),
        ((0, "HEAD\n", ""), "git rev-parse HEAD in /home/qt/quantum_trader returned 'head'"),
        ((0, SHA[:12], ""), "returned '1a2b3c4d5e6f'"),
    ],
)
def test_read_git_head_failures(answer: tuple[int, str, str], message: str) -> None:
    with pytest.raises(EngineStateError, match=re.escape(message)):
        read_git_head(FakeRun(git=answer), "/home/qt/quantum_trader")


@pytest.mark.parametrize(
    ("build", "sha", "expected"),
    [
        ("1a2b3c4", SHA, True),
        ("1A2B3C4", SHA, True),
        ("1a2b3c4", SHA.upper(), True),
        (SHA, SHA, True),
        ("1a2b3c4d5e6f", SHA, True),
        ("1a2b3c5", SHA, False),
        ("1a2b3c", SHA, False),
        (SHA + "0", SHA, False),
        ("", SHA, False),
        ("1a2b3c4-dirty", SHA, False),
        ("unknown", SHA, False),
        (None, SHA, False),
        ("1a2b3c4", None, False),
        ("1a2b3c4", "1a2b3c4", False),
        ("1a2b3c4", "1a2b3c4" + "g" * 33, False),
    ],
)
def test_build_matches(build: str | None, sha: str | None, expected: bool) -> None:
    assert build_matches(build, sha) is expected


# --------------------------------------------------------------------------- stream


@pytest.mark.parametrize("as_bytes", [True, False])
def test_stream_stats_from_ids(as_bytes: bool) -> None:
    now = 1_700_000_001_500
    client = FakeRedis(recent_ids(1_700_000_001_000), now_ms=now, as_bytes=as_bytes)
    stats = stream_stats(client, "s", sample=200)
    assert stats == {
        "stream": "s",
        "length": 11,
        "last_id": "1700000001000-0",
        "last_event_age_s": 0.5,
        "rate_per_s": 10.0,
        "sampled": 11,
    }
    assert stream_stats(client, "s", sample=200, now_ms=now + 1000)["last_event_age_s"] == 1.5


def test_stream_stats_samples_only_the_newest() -> None:
    ids = ["1700000000000-0", *recent_ids(1_700_000_010_000, count=5, step_ms=250)]
    stats = stream_stats(FakeRedis(ids, now_ms=1_700_000_010_000), "s", sample=5)
    assert (stats["length"], stats["sampled"], stats["rate_per_s"]) == (6, 5, 4.0)


@pytest.mark.parametrize("ids", [[], ["1700000000000-0"], ["1700000000000-0", "1700000000000-1"]])
def test_stream_stats_without_a_rate(ids: list[str]) -> None:
    stats = stream_stats(FakeRedis(ids, now_ms=1_700_000_000_000), "s")
    assert stats["rate_per_s"] is None
    assert stats["length"] == len(ids)


@pytest.mark.parametrize("sample", [0, 1, 10_001, True, "200"])
def test_stream_stats_rejects_bad_sample(sample: Any) -> None:
    with pytest.raises(EngineStateError, match="sample"):
        stream_stats(FakeRedis([], now_ms=0), "s", sample=sample)


@pytest.mark.parametrize("stream", ["", "a b", "x" * 257])
def test_stream_stats_rejects_bad_stream_names(stream: str) -> None:
    with pytest.raises(EngineStateError, match="stream name"):
        stream_stats(FakeRedis([], now_ms=0), stream)


# --------------------------------------------------------------------------- composition


def collect(run: FakeRun, client: Any) -> dict[str, Any]:
    return collect_engine_status(
        run, client, UNIT, "/home/qt/quantum_trader", "quantum:stream:trade.intent"
    )


def live_redis() -> FakeRedis:
    return FakeRedis(recent_ids(1_700_000_001_000), now_ms=1_700_000_001_200)


def test_collect_healthy() -> None:
    status = collect(healthy_run(), live_redis())
    assert status["problems"] == []
    assert status["build_verified"] is True
    assert status["git"] == {"sha": SHA, "short": SHA[:7]}
    assert status["service"]["main_pid"] == 4242
    assert status["startup"]["canary"]["model"] == "patchtst"
    assert status["stream"]["rate_per_s"] == 10.0
    assert status["stream"]["error"] is None
    assert json.loads(json.dumps(status)) == status


def test_collect_build_mismatch() -> None:
    status = collect(healthy_run(sha="9" * 40), live_redis())
    assert status["build_verified"] is False
    assert status["problems"] == ["running build 1a2b3c4 does not match git HEAD 999999999999"]


def test_collect_missing_build_and_not_ready() -> None:
    status = collect(healthy_run(journal=STARTUP_CANARY[2:6]), live_redis())
    assert status["build_verified"] is False
    assert status["problems"] == [
        f"AI_ENGINE_BUILD missing from the journal of invocation {INVOCATION}",
        f"engine never logged [READY] in invocation {INVOCATION}",
    ]


def test_collect_conflicting_builds_fail_closed() -> None:
    journal = [*STARTUP_CANARY, f"AI_ENGINE_BUILD: {SHA[:8]}0"]
    status = collect(healthy_run(journal=journal), live_redis())
    assert status["build_verified"] is False
    assert status["problems"] == [f"conflicting AI_ENGINE_BUILD lines: 1a2b3c4, {SHA[:8]}0"]


def test_collect_stopped_service() -> None:
    show = SHOW_OK.replace("ActiveState=active", "ActiveState=failed")
    show = show.replace("SubState=running", "SubState=failed").replace(INVOCATION, "")
    show = show.replace("Result=success", "Result=exit-code")
    run = healthy_run()
    run.answers["systemctl"] = (0, show, "")
    status = collect(run, live_redis())
    assert status["problems"][:2] == [
        f"service {UNIT} is not running (ActiveState=failed, SubState=failed, Result=exit-code)",
        f"service {UNIT} has no InvocationID: no start to prove",
    ]
    assert status["build_verified"] is False
    assert not any(call[0] == "journalctl" for call in run.calls)


def test_collect_unknown_unit() -> None:
    show = SHOW_OK.replace("LoadState=loaded", "LoadState=not-found")
    run = healthy_run()
    run.answers["systemctl"] = (0, show, "")
    assert collect(run, live_redis())["problems"][0] == (
        f"service {UNIT} is not loaded (LoadState=not-found)"
    )


def test_collect_journal_and_git_failures_are_problems() -> None:
    run = healthy_run()
    run.answers["journalctl"] = (1, "", "Failed to open journal")
    run.answers["git"] = (128, "", "fatal: not a git repository")
    status = collect(run, live_redis())
    assert status["build_verified"] is False
    assert [problem.split(":")[0] for problem in status["problems"]] == [
        f"journal of invocation {INVOCATION} unreadable",
        "git HEAD of /home/qt/quantum_trader unreadable",
    ]


def test_collect_startup_errors_are_problems() -> None:
    status = collect(healthy_run(journal=[*STARTUP_CANARY, "[FATAL] boom"]), live_redis())
    assert status["problems"] == [
        f"1 [ERROR]/[FATAL] line(s) in invocation {INVOCATION}, latest: [FATAL] boom"
    ]


def test_collect_stale_and_empty_streams() -> None:
    stale = FakeRedis(recent_ids(1_700_000_000_000), now_ms=1_700_000_030_000)
    assert collect(healthy_run(), stale)["problems"] == [
        "no events on stream quantum:stream:trade.intent in the last 10 s (newest is 30.0 s old)"
    ]
    empty = FakeRedis([], now_ms=1_700_000_000_000)
    assert collect(healthy_run(), empty)["problems"] == [
        "no events on stream quantum:stream:trade.intent (empty or missing)"
    ]


def test_collect_redis_failure_is_a_problem() -> None:
    status = collect(healthy_run(), BrokenRedis())
    assert status["stream"]["length"] is None
    assert status["stream"]["error"].startswith("ConnectionRefusedError")
    assert status["problems"] == [
        "redis unreachable or failing: ConnectionRefusedError: Error 111 connecting to "
        "127.0.0.1:6399"
    ]


def test_collect_raises_only_on_bad_input_or_systemctl() -> None:
    with pytest.raises(EngineStateError, match="absolute path"):
        collect_engine_status(healthy_run(), live_redis(), UNIT, "x", "s")
    with pytest.raises(CommandError, match="systemctl"):
        collect(FakeRun(), live_redis())


# --------------------------------------------------------------------------- table


def test_format_status_table() -> None:
    healthy = collect(healthy_run(), live_redis())
    broken = collect(healthy_run(sha="9" * 40), BrokenRedis())
    table = format_status_table(
        {"qlab1": healthy, "qlab2": broken, "qlab3": {"failed": True, "msg": "systemctl missing"}}
    )
    lines = table.splitlines()
    assert lines[0].split() == [
        "HOST",
        "SERVICE",
        "(restarts)",
        "BUILD",
        "(journal)",
        "GIT",
        "HEAD",
        "VERIFIED",
        "STREAM",
        "LEN",
        "RATE",
        "(/s)",
        "LAST",
        "EVENT",
        "(s",
        "ago)",
    ]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == [
        "qlab1",
        "active/running",
        "(2)",
        "1a2b3c4",
        "1a2b3c4",
        "yes",
        "11",
        "10.0",
        "0.2",
    ]
    assert lines[3].split() == [
        "qlab2",
        "active/running",
        "(2)",
        "1a2b3c4",
        "9999999",
        "NO",
        "-",
        "-",
        "-",
    ]
    assert lines[4].split() == ["qlab3", "-", "-", "-", "NO", "-", "-", "-"]
    assert len({len(line) for line in lines[:2]}) == 1
    assert lines[6:] == [
        "PROBLEMS:",
        "  qlab2: running build 1a2b3c4 does not match git HEAD 999999999999",
        "  qlab2: redis unreachable or failing: ConnectionRefusedError: Error 111 connecting "
        "to 127.0.0.1:6399",
        "  qlab3: no status: systemctl missing",
    ]


def test_format_status_table_healthy_and_missing_results() -> None:
    healthy = collect(healthy_run(), live_redis())
    assert format_status_table({"qlab1": healthy}).endswith("\nPROBLEMS: none")
    table = format_status_table({"qlab1": healthy, "qlab2": None, "qlab3": {}})
    assert table.splitlines()[-2:] == [
        "  qlab2: no status: the engine_status module returned nothing",
        "  qlab3: no status: the engine_status module returned nothing",
    ]
    unreachable = format_status_table({"qlab1": {"unreachable": True}})
    assert unreachable.splitlines()[-1] == "  qlab1: no status: host unreachable"


def test_format_status_table_shows_conflicting_builds() -> None:
    journal = [*STARTUP_CANARY, "AI_ENGINE_BUILD: 9f8e7d6"]
    status = collect(healthy_run(journal=journal), live_redis())
    assert format_status_table({"h": status}).splitlines()[2].split()[3] == "CONFLICT"


def test_service_uptime_from_the_monotonic_clock():
    state = service_state_from_properties(
        "quantum-ai-engine.service",
        {
            "Id": "quantum-ai-engine.service",
            "LoadState": "loaded",
            "ActiveState": "active",
            "SubState": "running",
            "MainPID": "42",
            "NRestarts": "0",
            "InvocationID": "0" * 32,
            "ActiveEnterTimestamp": "whatever the locale prints",
            "ActiveEnterTimestampMonotonic": "100000000",
            "Result": "success",
        },
    )
    # Up for 25.5 s at wall time 2026-01-10T12:00:25.500Z: started at 12:00:00.000Z.
    assert service_uptime(state, monotonic_now=125.5, wall_now=1768046425.5) == {
        "uptime_s": 25.5,
        "active_since": "2026-01-10T12:00:00.000Z",
    }
    stopped = ServiceState(**{**state.as_dict(), "active_state": "inactive"})
    assert service_uptime(stopped) == {"uptime_s": None, "active_since": None}
