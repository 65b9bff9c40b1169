"""The service: start-up proof lines, sd_notify, paced publishing loop, faults and signals."""

from __future__ import annotations

import hashlib
import math
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TextIO

from .config import (
    EX_CONFIG,
    ConfigError,
    EngineConfig,
    display_name,
    format_pct,
    format_weight,
    format_weights,
    load_config,
)
from .engine import Engine, EngineEvent
from .events import utc_now
from .models import Prediction
from .notify import sd_notify
from .publisher import RedisSink, Sink, SqliteSink, StartupError, connect_redis

EX_OK = 0
EX_FAILURE = 1
CHECKOUT_DIR = Path(__file__).resolve().parents[1]
STATS_INTERVAL = 60.0
MAX_SLEEP = 0.25
GIT_TIMEOUT = 10.0
_SHORT_SHA_RE = re.compile(r"^[0-9a-f]{4,40}$")
SPAM_BURST = 10_000
DISK_GROWTH_FILE = "sim_disk_growth.bin"
DISK_GROWTH_CAP = 256 * 1024 * 1024


class SimulatedCrash(RuntimeError):
    """Raised by the loop when SIM_CRASH_AFTER has elapsed."""


class Logger:
    """Flushed line output: info to stdout, ``[ERROR] ...`` to stderr (both reach the journal)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._err = err or sys.stderr

    def info(self, line: str) -> None:
        """Write one line to stdout."""
        print(line, file=self._out, flush=True)

    def error(self, message: str) -> None:
        """Write ``[ERROR] <message>`` to stderr."""
        print(f"[ERROR] {message}", file=self._err, flush=True)


def read_build(
    checkout: Path, run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
) -> str:
    """Short git SHA of HEAD in ``checkout``; ConfigError when it cannot be read."""
    argv = [
        "git",
        "-c",
        f"safe.directory={checkout}",
        "-C",
        str(checkout),
        "rev-parse",
        "--short",
        "HEAD",
    ]
    try:
        result = run(argv, capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot read the engine build in {checkout}: {exc}") from exc
    sha = result.stdout.strip()
    if result.returncode != 0 or not _SHORT_SHA_RE.match(sha):
        detail = result.stderr.strip() or f"unexpected output {sha!r}"
        raise ConfigError(f"cannot read the engine build in {checkout}: git: {detail}")
    return sha


def model_file_line(path: Path) -> str:
    """The [PatchTST-INIT] line: whether the model file exists, and its sha256 prefix."""
    if not path.exists():
        state = "missing, using built-in simulator"
    elif not path.is_file():
        state = "not a regular file, using built-in simulator"
    else:
        try:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            state = f"present, sha256 {digest.hexdigest()[:12]}"
        except OSError as exc:
            state = f"unreadable ({exc.strerror}), using built-in simulator"
    return f"[PatchTST-INIT] Model file: {path} ({state})"


def startup_lines(config: EngineConfig) -> list[str]:
    """The lines logged after AI_ENGINE_BUILD and before [READY], in order."""
    lines = []
    if "patchtst" in config.models:
        lines.append(model_file_line(config.patchtst_model_path))
    weights = config.weights
    for model in config.voters:
        line = f"[OK] {model} agent loaded (weight: {format_pct(weights[model])}%)"
        if model == config.canary_model and config.canary_conf_cap is not None:
            line += f" conf_cap={format_weight(config.canary_conf_cap)}"
        lines.append(line)
    for model in config.models:
        if model in config.shadow:
            lines.append(
                f"[SHADOW] {model} agent loaded in shadow mode "
                f"(weight: {format_pct(weights[model])}%, never votes)"
            )
    if config.canary_model is not None:
        lines.append(
            f"[CANARY] {config.canary_model} weight={format_pct(weights[config.canary_model])}% "
            f"weights={format_weights(config.models, weights)}"
        )
    behaviours = " ".join(
        f"{m}:{','.join(f'{b}@{t:g}' if t else b for t, b in config.schedules[m])}"
        for m in config.models
    )
    shadow_leak = "on" if config.shadow_leak else "off"
    faults = "on" if config.faults_active else "off (SIM_FAULTS_ONLY_WITH_CANARY, no canary)"
    lines.append(
        f"[CONFIG] seed={config.seed} behaviours={behaviours} "
        f"features={config.features_mode} shadow_leak={shadow_leak} "
        f"payload_pad={config.payload_pad} faults={faults}"
    )
    return lines


def ready_line(config: EngineConfig) -> str:
    """The [READY] line."""
    return (
        f"[READY] publishing to {config.stream} at {config.rate:g}/s, "
        f"symbols={','.join(config.symbols)}"
    )


def plan_batch(
    now: float, deadline: float, interval: float, max_batch: int
) -> tuple[int, float, int]:
    """Events due at ``now`` on the absolute schedule ``deadline + k * interval``.

    Returns ``(count, next_deadline, skipped)``. At most ``max_batch`` events (one second's
    worth) are sent at once; an older backlog is skipped (and reported as dropped).
    """
    if now < deadline:
        return 0, deadline, 0
    due = int((now - deadline) / interval) + 1
    skipped = max(0, due - max_batch)
    return due - skipped, deadline + due * interval, skipped


class ShadowLogger:
    """At most one ``[SHADOW] ...`` line per shadow model per ``interval`` seconds."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}

    def line(self, model: str, symbol: str, prediction: Prediction) -> str | None:
        """The line to log now for this prediction, or None when rate-limited or inactive."""
        if not prediction.active:
            return None
        now = self._clock()
        last = self._last.get(model)
        if last is not None and now - last < self._interval:
            return None
        self._last[model] = now
        return (
            f"[SHADOW] {display_name(model)} | {symbol} | action={prediction.action} "
            f"conf={prediction.confidence:.2f} | mode=SHADOW_ONLY"
        )


class SimulatedLoad:
    """SIM_LOG_SPAM and SIM_DISK_GROWTH: the journal lines and the bytes under the data path
    due by the time since the start. Lines over SPAM_BURST at once are dropped (a stalled loop
    does not flood the journal afterwards); the growth file (DISK_GROWTH_FILE beside the trade
    log, emptied at the start) stops at DISK_GROWTH_CAP bytes."""

    def __init__(self, config: EngineConfig, log: Logger) -> None:
        self._config = config
        self._log = log
        self._path = config.db_path.parent / DISK_GROWTH_FILE
        self.lines = 0
        self.written = 0
        if config.disk_growth:
            self._path.write_bytes(b"")

    def tick(self, elapsed: float) -> None:
        """Log and write what is due at ``elapsed`` seconds since the start."""
        config = self._config
        if config.log_spam:
            due = int(elapsed * config.log_spam / 60.0) - self.lines
            for number in range(min(due, SPAM_BURST)):
                self._log.info(f"[SIM] log spam line {self.lines + number + 1}")
            self.lines += max(0, due)
        if config.disk_growth:
            due = min(DISK_GROWTH_CAP, int(elapsed * config.disk_growth)) - self.written
            if due > 0:
                with self._path.open("ab") as handle:
                    handle.write(b"\x01" * due)
                self.written += due


class Runner:
    """The paced publishing loop."""

    def __init__(
        self,
        config: EngineConfig,
        sinks: Sequence[Sink],
        log: Logger,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._engine = Engine(config)
        self._sinks = sinks
        self._log = log
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._shadow_log = ShadowLogger(config.shadow_log_interval, clock)
        self._load = SimulatedLoad(config, log)
        self._shadow_models = tuple(m for m in config.models if m in config.shadow)
        self._stop_reason: str | None = None
        self.events = 0
        self.skipped = 0
        self.silenced = False

    @property
    def dropped(self) -> int:
        """Events not delivered: skipped by pacing plus every sink's drops."""
        return self.skipped + sum(s.dropped for s in self._sinks)

    def stop(self, reason: str) -> None:
        """Ask the loop to finish after the current iteration."""
        self._stop_reason = reason

    @property
    def stop_reason(self) -> str | None:
        """Why the loop stopped (None while running)."""
        return self._stop_reason

    def run(self) -> None:
        """Publish until stop(); raises SimulatedCrash when SIM_CRASH_AFTER has elapsed."""
        config = self._config
        interval = 1.0 / config.rate
        max_batch = max(1, math.floor(config.rate))
        start = self._clock()
        deadline = start
        stats_at, stats_events = start, 0
        while self._stop_reason is None:
            now = self._clock()
            elapsed = now - start
            if config.crash_after is not None and elapsed >= config.crash_after:
                raise SimulatedCrash(f"simulated crash (SIM_CRASH_AFTER={config.crash_after:g})")
            count, deadline, skipped = plan_batch(now, deadline, interval, max_batch)
            self.skipped += skipped
            if config.silent_after is not None and elapsed >= config.silent_after:
                if not self.silenced:
                    after = f"{config.silent_after:g}"
                    self._log.info(f"[SIM] silent from now on (SIM_SILENT_AFTER={after})")
                    self.silenced = True
                count = 0
            if count:
                self._emit(count, elapsed)
            self._load.tick(elapsed)
            for sink in self._sinks:
                sink.tick()
            if now - stats_at >= STATS_INTERVAL:
                rate = (self.events - stats_events) / (now - stats_at)
                self._log.info(
                    f"[STATS] events={self.events} rate={rate:.2f}/s dropped={self.dropped}"
                )
                stats_at, stats_events = now, self.events
            if not count:
                self._sleep(min(MAX_SLEEP, max(0.0, deadline - self._clock())))

    def _emit(self, count: int, elapsed: float) -> None:
        moment = self._wall()
        batch = [self._engine.step(elapsed, moment) for _ in range(count)]
        self.events += count
        for sink in self._sinks:
            sink.write(batch)
        self._log_shadow(batch)

    def _log_shadow(self, batch: Sequence[EngineEvent]) -> None:
        for event in batch:
            for model in self._shadow_models:
                line = self._shadow_log.line(model, event.tick.symbol, event.predictions[model])
                if line:
                    self._log.info(line)


def _open_sinks(config: EngineConfig, log: Logger) -> list[Sink]:
    if config.silent:
        return []
    client = connect_redis(config.redis_url)
    sinks: list[Sink] = [
        RedisSink(client, config.stream, config.stream_maxlen, log.error, log.info)
    ]
    sinks.append(SqliteSink(config.db_path, log.error))
    return sinks


def _notify(message: str, env: Mapping[str, str], log: Logger) -> None:
    try:
        sd_notify(message, env)
    except OSError as exc:
        log.error(f"sd_notify {message}: {exc}")


def run_service(env: Mapping[str, str], log: Logger, checkout: Path = CHECKOUT_DIR) -> int:
    """Start, publish until SIGTERM/SIGINT, stop; returns the process exit code."""
    try:
        config = load_config(env)
        build = config.build_override or read_build(checkout)
    except ConfigError as exc:
        log.error(f"config: {exc}")
        return EX_CONFIG
    log.info(f"AI_ENGINE_BUILD: {build}")
    if config.fail_start:
        log.error("simulated start failure (SIM_FAIL_START=1)")
        return EX_FAILURE
    for line in startup_lines(config):
        log.info(line)
    try:
        sinks = _open_sinks(config, log)
    except StartupError as exc:
        log.error(str(exc))
        return EX_FAILURE
    runner = Runner(config, sinks, log)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        runner.stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(ready_line(config))
    _notify("READY=1", env, log)
    try:
        runner.run()
    except SimulatedCrash as exc:
        log.info(f"[FATAL] {exc}")
        return EX_FAILURE
    _notify("STOPPING=1", env, log)
    for sink in sinks:
        sink.close()
    log.info(
        f"[STOP] {runner.stop_reason} received: stopped cleanly after {runner.events} events "
        f"(dropped {runner.dropped})"
    )
    return EX_OK
