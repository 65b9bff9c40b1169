"""Unit tests for the engine simulator's service: start-up lines, pacing, faults, sd_notify."""

import hashlib
import io
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import ai_engine.service as service
from ai_engine.__main__ import main
from ai_engine.config import ConfigError, EngineConfig, load_config
from ai_engine.engine import EngineEvent
from ai_engine.models import Prediction
from ai_engine.notify import notify_address, sd_notify
from ai_engine.publisher import StartupError
from ai_engine.service import (
    Logger,
    Runner,
    ShadowLogger,
    SimulatedCrash,
    model_file_line,
    plan_batch,
    read_build,
    ready_line,
    run_service,
    startup_lines,
)
from tests.fake_clock import FakeClock

# The runner never sleeps longer than this at a time, so it notices a stop soon.
LONGEST_SLEEP = 0.25
CANARY_ENV = {
    "QSC_MODEL_WEIGHTS": "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1",
    "QSC_CANARY_MODEL": "patchtst",
    "QSC_CANARY_WEIGHT": "0.1",
}


class RecordingSink:
    """Stops the runner at ``stop_at`` (elapsed seconds); records (elapsed, event)."""

    def __init__(self, clock: FakeClock, stop_at: float) -> None:
        self.clock = clock
        self.start = clock.now
        self.stop_at = stop_at
        self.runner: Runner | None = None
        self.events: list[tuple[float, EngineEvent]] = []
        self.dropped = 0
        self.closed = False

    def write(self, events: Sequence[EngineEvent]) -> None:
        self.events.extend((self.clock.now - self.start, e) for e in events)

    def tick(self) -> None:
        if self.clock.now - self.start >= self.stop_at and self.runner is not None:
            self.runner.stop("TEST")

    def close(self) -> None:
        self.closed = True


def config(**env: str) -> EngineConfig:
    return load_config({"ENGINE_SEED": "3", **env})


def make_runner(
    stop_at: float, stall: tuple[float, float] | None = None, **env: str
) -> tuple[Runner, RecordingSink, FakeClock, io.StringIO]:
    """A runner on a fake clock; ``stall=(at, seconds)`` freezes the process once."""
    clock = FakeClock(LONGEST_SLEEP)
    start = clock.now
    sink = RecordingSink(clock, stop_at)
    out = io.StringIO()

    def sleep(seconds: float) -> None:
        nonlocal stall
        clock.sleep(seconds)
        if stall is not None and clock.now - start >= stall[0]:
            clock.now += stall[1]
            stall = None

    runner = Runner(config(**env), [sink], Logger(out, out), clock=clock, sleep=sleep)
    sink.runner = runner
    return runner, sink, clock, out


# --- start-up lines --------------------------------------------------------------------------


def test_startup_lines_default() -> None:
    lines = startup_lines(config(PATCHTST_MODEL_PATH="/nonexistent/patchtst.pth"))
    assert lines[:5] == [
        "[PatchTST-INIT] Model file: /nonexistent/patchtst.pth (missing, using built-in simulator)",
        "[OK] xgb agent loaded (weight: 25%)",
        "[OK] lgbm agent loaded (weight: 25%)",
        "[OK] nhits agent loaded (weight: 30%)",
        "[OK] patchtst agent loaded (weight: 20%)",
    ]
    assert lines[5] == (
        "[CONFIG] seed=3 behaviours=xgb:healthy lgbm:healthy nhits:healthy patchtst:healthy "
        "features=healthy shadow_leak=off payload_pad=0 faults=on"
    )
    assert len(lines) == 6


def test_config_line_shows_the_payload_faults_in_force() -> None:
    faults = {"SIM_SHADOW_LEAK": "true", "SIM_PAYLOAD_PAD": "1500", "PATCHTST_SHADOW_ONLY": "1"}
    line = startup_lines(config(**faults))[-1]
    assert line.endswith(" features=healthy shadow_leak=on payload_pad=1500 faults=on")
    gated = startup_lines(config(**faults, SIM_FAULTS_ONLY_WITH_CANARY="1"))[-1]
    assert gated.endswith(
        " features=healthy shadow_leak=off payload_pad=0 "
        "faults=off (SIM_FAULTS_ONLY_WITH_CANARY, no canary)"
    )


def test_startup_lines_shadow() -> None:
    lines = startup_lines(config(PATCHTST_SHADOW_ONLY="true", SIM_NHITS="healthy,noisy@60"))
    assert lines[1:5] == [
        "[OK] xgb agent loaded (weight: 25%)",
        "[OK] lgbm agent loaded (weight: 25%)",
        "[OK] nhits agent loaded (weight: 30%)",
        "[SHADOW] patchtst agent loaded in shadow mode (weight: 20%, never votes)",
    ]
    assert "nhits:healthy,noisy@60 " in lines[5]


def test_startup_lines_canary() -> None:
    lines = startup_lines(config(**CANARY_ENV))
    assert lines[1:6] == [
        "[OK] xgb agent loaded (weight: 28.125%)",
        "[OK] lgbm agent loaded (weight: 28.125%)",
        "[OK] nhits agent loaded (weight: 33.75%)",
        "[OK] patchtst agent loaded (weight: 10%)",
        "[CANARY] patchtst weight=10% weights=xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1",
    ]


def test_no_patchtst_line_without_patchtst(tmp_path: Path) -> None:
    models = tmp_path / "models.json"
    models.write_text('{"models": {"xgb": 1.0}}')
    lines = startup_lines(config(ENGINE_MODELS_FILE=str(models)))
    assert lines[0] == "[OK] xgb agent loaded (weight: 100%)"


def test_ready_line() -> None:
    assert ready_line(config(ENGINE_RATE="2.5", ENGINE_SYMBOLS="BTCUSDT,ETHUSDT")) == (
        "[READY] publishing to quantum:stream:trade.intent at 2.5/s, symbols=BTCUSDT,ETHUSDT"
    )


def test_model_file_line(tmp_path: Path) -> None:
    model = tmp_path / "patchtst.pth"
    model.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()[:12]
    assert (
        model_file_line(model) == f"[PatchTST-INIT] Model file: {model} (present, sha256 {digest})"
    )
    assert model_file_line(tmp_path) == (
        f"[PatchTST-INIT] Model file: {tmp_path} (not a regular file, using built-in simulator)"
    )


# --- build -----------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "quantum_trader"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README.md").write_text("engine\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "init")
    return repo


def test_read_build_from_a_git_checkout(checkout: Path) -> None:
    assert read_build(checkout) == git(checkout, "rev-parse", "--short", "HEAD").strip()


def test_read_build_uses_an_argv_list_with_safe_directory(checkout: Path) -> None:
    seen: list[list[str]] = []

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, "abc1234\n", "")

    assert read_build(checkout, run=run) == "abc1234"
    assert seen == [
        [
            "git",
            "-c",
            f"safe.directory={checkout}",
            "-C",
            str(checkout),
            "rev-parse",
            "--short",
            "HEAD",
        ]
    ]


def test_read_build_failures(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the engine build"):
        read_build(tmp_path)

    def missing_git(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(2, "No such file or directory", "git")

    with pytest.raises(ConfigError, match="No such file"):
        read_build(tmp_path, run=missing_git)

    def garbage(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 0, "not a sha\n", "")

    with pytest.raises(ConfigError, match="unexpected output"):
        read_build(tmp_path, run=garbage)


# --- pacing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "deadline", "expected"),
    [
        (9.99, 10.0, (0, 10.0, 0)),
        (10.0, 10.0, (1, 10.1, 0)),
        (10.25, 10.0, (3, 10.3, 0)),
        (10.95, 10.0, (10, 11.0, 0)),
        (11.0, 10.0, (10, 11.1, 1)),
        (15.0, 10.0, (10, 15.1, 41)),
    ],
)
def test_plan_batch(now: float, deadline: float, expected: tuple[int, float, int]) -> None:
    count, next_deadline, skipped = plan_batch(now, deadline, 0.1, 10)
    assert (count, skipped) == (expected[0], expected[2])
    assert next_deadline == pytest.approx(expected[1])


def test_runner_paces_by_absolute_deadlines() -> None:
    runner, sink, _clock, out = make_runner(5.0, ENGINE_RATE="10")
    runner.run()
    assert 50 <= runner.events <= 51
    assert runner.dropped == 0
    assert runner.stop_reason == "TEST"
    per_second = [sum(1 for t, _ in sink.events if s <= t < s + 1) for s in range(5)]
    assert per_second == [10] * 5
    assert out.getvalue() == ""


def test_runner_catches_up_at_most_one_second_at_once() -> None:
    runner, sink, _clock, _ = make_runner(8.0, stall=(1.0, 5.0), ENGINE_RATE="10")
    runner.run()
    batch_sizes = {}
    for t, _ in sink.events:
        batch_sizes[t] = batch_sizes.get(t, 0) + 1
    assert max(batch_sizes.values()) == 10
    assert 40 <= runner.skipped <= 41
    assert 8 * 10 - 41 <= runner.events <= 8 * 10 - 40 + 1
    assert runner.dropped == runner.skipped


def test_runner_simulated_crash() -> None:
    runner, _sink, _clock, _ = make_runner(100.0, SIM_CRASH_AFTER="2.5")
    with pytest.raises(SimulatedCrash, match=r"simulated crash \(SIM_CRASH_AFTER=2.5\)"):
        runner.run()
    assert 25 <= runner.events <= 26


def test_runner_goes_silent_after_but_keeps_running() -> None:
    runner, sink, _clock, out = make_runner(6.0, SIM_SILENT_AFTER="2.5", ENGINE_RATE="10")
    runner.run()
    assert 25 <= runner.events <= 26
    assert max(t for t, _ in sink.events) < 2.5
    assert runner.stop_reason is not None
    assert "[SIM] silent from now on (SIM_SILENT_AFTER=2.5)" in out.getvalue().splitlines()


def test_runner_stats_line_every_minute() -> None:
    runner, _sink, _clock, out = make_runner(125.0, ENGINE_RATE="4")
    runner.run()
    stats = [line for line in out.getvalue().splitlines() if line.startswith("[STATS]")]
    assert stats == [
        "[STATS] events=241 rate=4.02/s dropped=0",
        "[STATS] events=481 rate=4.00/s dropped=0",
    ]


def test_runner_switches_behaviour_on_schedule() -> None:
    runner, sink, _clock, _ = make_runner(4.0, SIM_XGB="healthy,constant@2,inactive@3")
    runner.run()
    for elapsed, event in sink.events:
        xgb = event.predictions["xgb"]
        if elapsed < 2.0:
            continue
        if elapsed < 3.0:
            assert xgb == Prediction("BUY", 0.5)
        else:
            assert not xgb.active
            assert event.payload["model_breakdown"]["xgb"]["inactive"] is True
    early = [e.predictions["xgb"] for t, e in sink.events if t < 2.0]
    assert len(early) == 20
    assert any(p != Prediction("BUY", 0.5) for p in early)


def test_runner_logs_shadow_lines_rate_limited() -> None:
    runner, _sink, _clock, out = make_runner(
        35.0, PATCHTST_SHADOW_ONLY="yes", ENGINE_SHADOW_LOG_INTERVAL="10"
    )
    runner.run()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    for line in lines:
        assert line.startswith("[SHADOW] PatchTST | ")
        assert line.endswith(" | mode=SHADOW_ONLY")
        symbol, action = line.split(" | ")[1:3]
        assert symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
        assert action.split()[0] in ("action=BUY", "action=SELL", "action=HOLD")
        assert len(action.split("conf=")[1]) == 4


def test_shadow_logger_rate_limit_per_model() -> None:
    clock = FakeClock(LONGEST_SLEEP)
    logger = ShadowLogger(10.0, clock)
    buy = Prediction("BUY", 0.6234)
    assert logger.line("patchtst", "BTCUSDT", buy) == (
        "[SHADOW] PatchTST | BTCUSDT | action=BUY conf=0.62 | mode=SHADOW_ONLY"
    )
    assert logger.line("nhits", "ETHUSDT", Prediction("SELL", 0.5)) == (
        "[SHADOW] NHiTS | ETHUSDT | action=SELL conf=0.50 | mode=SHADOW_ONLY"
    )
    clock.now += 9.99
    assert logger.line("patchtst", "BTCUSDT", buy) is None
    clock.now += 0.01
    assert logger.line("tft", "BTCUSDT", buy) is not None
    assert logger.line("patchtst", "SOLUSDT", Prediction(inactive_reason="x")) is None
    assert logger.line("patchtst", "SOLUSDT", buy) is not None
    assert logger.line("patchtst", "SOLUSDT", buy) is None


def test_shadow_logger_interval_zero_logs_every_prediction() -> None:
    logger = ShadowLogger(0.0, FakeClock(LONGEST_SLEEP))
    assert all(logger.line("xgb", "BTCUSDT", Prediction("HOLD", 0.5)) for _ in range(3))


# --- sd_notify -------------------------------------------------------------------------------


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    directory = Path(f"/tmp/engine-notify-{os.getpid()}-{threading.get_ident()}")
    directory.mkdir()
    path = directory / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2.0)
    try:
        yield server, str(path)
    finally:
        server.close()
        path.unlink()
        directory.rmdir()


def test_sd_notify_sends_a_datagram(notify_socket: tuple[socket.socket, str]) -> None:
    server, path = notify_socket
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": path}) is True
    assert server.recv(4096) == b"READY=1"


def test_sd_notify_abstract_namespace() -> None:
    name = f"engine-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2.0)
        assert sd_notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert server.recv(4096) == b"STOPPING=1"


def test_sd_notify_without_socket_is_a_no_op() -> None:
    assert sd_notify("READY=1", {}) is False
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": ""}) is False
    assert notify_address({"NOTIFY_SOCKET": "@x"}) == "\0x"
    assert notify_address({"NOTIFY_SOCKET": "/run/n"}) == "/run/n"
    with pytest.raises(OSError):
        sd_notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/notify"})


# --- run_service -----------------------------------------------------------------------------


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def run(env: dict[str, str], checkout: Path) -> tuple[int, list[str], list[str]]:
    out, err = io.StringIO(), io.StringIO()
    code = run_service(env, Logger(out, err), checkout=checkout)
    return code, out.getvalue().splitlines(), err.getvalue().splitlines()


def test_run_service_config_error_exits_78(tmp_path: Path) -> None:
    code, out, err = run({"ENGINE_RATE": "fast"}, tmp_path)
    assert (code, out) == (78, [])
    assert err == ["[ERROR] config: ENGINE_RATE must be a number, got 'fast'"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SIM_SHADOW_LEAK": "maybe"},
            "SIM_SHADOW_LEAK must be true/false, 1/0 or yes/no, got 'maybe'",
        ),
        ({"SIM_PAYLOAD_PAD": "100001"}, "SIM_PAYLOAD_PAD must be <= 100000, got '100001'"),
        ({"SIM_PAYLOAD_PAD": "-5"}, "SIM_PAYLOAD_PAD must be a non-negative integer, got '-5'"),
    ],
)
def test_run_service_invalid_payload_fault_exits_78(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    code, out, err = run({**env, "SIM_FAULTS_ONLY_WITH_CANARY": "1"}, tmp_path)
    assert (code, out) == (78, [])
    assert err == [f"[ERROR] config: {message}"]


def test_run_service_unreadable_build_exits_78(tmp_path: Path) -> None:
    code, out, err = run({}, tmp_path)
    assert (code, out) == (78, [])
    assert err[0].startswith(f"[ERROR] config: cannot read the engine build in {tmp_path}: git:")


def test_run_service_simulated_start_failure(checkout: Path) -> None:
    sha = git(checkout, "rev-parse", "--short", "HEAD").strip()
    code, out, err = run({"SIM_FAIL_START": "1"}, checkout)
    assert (code, out) == (1, [f"AI_ENGINE_BUILD: {sha}"])
    assert err == ["[ERROR] simulated start failure (SIM_FAIL_START=1)"]


def redis_down(url: str) -> None:
    raise StartupError("redis: cannot reach redis://127.0.0.1:1/0 within 10 s: refused")


def test_run_service_fault_gating(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sha = git(checkout, "rev-parse", "--short", "HEAD").strip()
    faults = {
        "SIM_FAULTS_ONLY_WITH_CANARY": "1",
        "SIM_BUILD_OVERRIDE": "abcdef1",
        "SIM_FAIL_START": "1",
    }
    code, out, err = run({**faults, **CANARY_ENV}, checkout)
    assert (code, out) == (1, ["AI_ENGINE_BUILD: abcdef1"])
    assert err == ["[ERROR] simulated start failure (SIM_FAIL_START=1)"]

    monkeypatch.setattr(service, "connect_redis", redis_down)
    code, out, err = run(faults, checkout)
    assert (code, out[0], out[2]) == (
        1,
        f"AI_ENGINE_BUILD: {sha}",
        "[OK] xgb agent loaded (weight: 25%)",
    )
    assert err == ["[ERROR] redis: cannot reach redis://127.0.0.1:1/0 within 10 s: refused"]


def test_run_service_silent_crash(
    checkout: Path, notify_socket: tuple[socket.socket, str], restore_signals: None
) -> None:
    server, path = notify_socket
    env = {
        "SIM_SILENT": "1",
        "SIM_CRASH_AFTER": "0.2",
        "SIM_BUILD_OVERRIDE": "0123abc",
        "NOTIFY_SOCKET": path,
        "ENGINE_DB": "/nonexistent/never-opened.db",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    code, out, err = run(env, checkout)
    assert code == 1
    assert out[0] == "AI_ENGINE_BUILD: 0123abc"
    assert out[-2].startswith("[READY] publishing to quantum:stream:trade.intent at 10/s")
    assert out[-1] == "[FATAL] simulated crash (SIM_CRASH_AFTER=0.2)"
    assert err == []
    assert server.recv(4096) == b"READY=1"


def test_run_service_stops_cleanly_on_sigterm(
    checkout: Path, notify_socket: tuple[socket.socket, str], restore_signals: None
) -> None:
    server, path = notify_socket
    env = {"SIM_SILENT": "1", "PATCHTST_SHADOW_ONLY": "1", "NOTIFY_SOCKET": path}
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code, out, err = run(env, checkout)
    finally:
        timer.cancel()
    assert (code, err) == (0, [])
    assert any(line.startswith("[SHADOW] PatchTST | ") for line in out)
    assert out[-1].startswith("[STOP] SIGTERM received: stopped cleanly after ")
    assert out[-1].endswith(" events (dropped 0)")
    assert [server.recv(4096), server.recv(4096)] == [b"READY=1", b"STOPPING=1"]


def test_run_service_notify_failure_is_logged_not_fatal(
    checkout: Path, restore_signals: None
) -> None:
    env = {"SIM_SILENT": "1", "SIM_CRASH_AFTER": "0.05", "NOTIFY_SOCKET": "/nonexistent/n"}
    code, out, err = run(env, checkout)
    assert code == 1
    assert out[-1].startswith("[FATAL]")
    assert err[0].startswith("[ERROR] sd_notify READY=1: ")


def test_run_service_redis_unreachable_exits_1(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "connect_redis", redis_down)
    code, out, err = run({}, checkout)
    assert code == 1
    assert not any(line.startswith("[READY]") for line in out)
    assert err == ["[ERROR] redis: cannot reach redis://127.0.0.1:1/0 within 10 s: refused"]


# --- command line ----------------------------------------------------------------------------


def test_main_benchmark(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("ENGINE_SEED", "1")
    assert main(["--benchmark", "200"]) == 0
    output = capsys.readouterr().out.strip()
    assert output.startswith("benchmark: 200 events, ")
    assert output.endswith(" events/s")


def test_main_benchmark_config_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("SIM_XGB", "exploding")
    assert main(["--benchmark", "10"]) == 78
    assert capsys.readouterr().err.startswith("[ERROR] config: SIM_XGB: unknown behaviour")


def test_main_rejects_a_bad_benchmark_count() -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["--benchmark", "0"])
    assert excinfo.value.code == 2
