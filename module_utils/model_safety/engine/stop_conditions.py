"""The runbook's stop conditions as measured on an engine host (issue 16 item 4), in one place
for the preflight (``engine_status``) and the monitor's probe (``canary_probe``):

* ``restarts``: systemd's automatic restarts of the unit, the larger of the journal's
  "Scheduled restart job" records (``MESSAGE_ID`` 5eb03494..., logged by PID 1 only for a
  ``Restart=`` after the service died) in the last 24 h and ``NRestarts`` (automatic restarts
  since the unit was last started by hand). An activation's stop + start, or an operator's
  ``systemctl restart``, is a job, never a scheduled restart, so it does not count; it also
  resets ``NRestarts``.
* ``log_lines``: the journal lines of the unit's own processes (``_SYSTEMD_UNIT``) in the
  last ``log_window_s`` seconds, and their rate per minute.
* ``disk``: the disk usage (allocated blocks, like ``du``; hard links once; symlinks not
  followed) under each of the engine's data and log paths;
* ``redis``: the server's ``used_memory`` and the stream's length (XLEN).

The events-based measures (payload size, consensus) come from an EventWindow the caller read
(:func:`window_measures`). A measurement that fails is recorded as ``error`` in its part and
judged by :mod:`..judgement.stop_rules` (fail closed where it refuses, reported where it
rolls back). Commands are argv lists through the ``Runner``.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Sequence
from typing import Any

from .commands import EngineStateError, Runner, run_checked
from .systemd import JOURNAL_MESSAGES
from .validation import validate_unit

RESTART_SCHEDULED_ID = "5eb03494b6584870a536b337290809b3"
RESTART_WINDOW_S = 24 * 3600
DEFAULT_LOG_WINDOW_S = 60.0
MAX_LOG_WINDOW_S = 3600.0
# At most this many journal lines are read per measure: a rate that high is spam anyway, and
# the module's output stays bounded.
MAX_LOG_LINES = 200_000
MAX_STOP_PATHS = 20


def validate_stop_paths(paths: Sequence[str]) -> list[str]:
    """The data and log paths, each normalised and absolute (at most MAX_STOP_PATHS);
    EngineStateError otherwise."""
    if isinstance(paths, str | bytes) or not isinstance(paths, Sequence):
        raise EngineStateError(f"stop paths must be a list of paths, got {paths!r}")
    if len(paths) > MAX_STOP_PATHS:
        raise EngineStateError(f"at most {MAX_STOP_PATHS} stop paths, got {len(paths)}")
    for path in paths:
        if (
            not isinstance(path, str)
            or not os.path.isabs(path)
            or os.path.normpath(path) != path
            or any(ord(char) < 32 or ord(char) == 127 for char in path)
        ):
            raise EngineStateError(f"a stop path must be a normalised absolute path: {path!r}")
    return list(paths)


def validate_log_window(seconds: Any) -> float:
    """The log-spam window in seconds, in [1, MAX_LOG_WINDOW_S]."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or not 1 <= seconds <= MAX_LOG_WINDOW_S
    ):
        raise EngineStateError(
            f"log_window_s must be in [1, {MAX_LOG_WINDOW_S:g}] seconds, got {seconds!r}"
        )
    return float(seconds)


def _since(epoch_s: float) -> str:
    return f"--since=@{epoch_s:.3f}"


def _lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def count_crash_restarts(run: Runner, unit: str, now_s: float) -> int:
    """systemd's "Scheduled restart job" records of ``unit`` in the 24 h before ``now_s``."""
    argv = [
        *JOURNAL_MESSAGES,
        _since(now_s - RESTART_WINDOW_S),
        "_PID=1",
        "UNIT=" + validate_unit(unit),
        "MESSAGE_ID=" + RESTART_SCHEDULED_ID,
    ]
    return _lines(run_checked(run, argv))


def count_log_lines(run: Runner, unit: str, since_s: float, until_s: float) -> int:
    """The journal lines the unit's processes logged between ``since_s`` and ``until_s``
    (epoch seconds), at most MAX_LOG_LINES."""
    argv = [
        *JOURNAL_MESSAGES,
        _since(since_s),
        f"--until=@{until_s:.3f}",
        f"--lines={MAX_LOG_LINES}",
        "_SYSTEMD_UNIT=" + validate_unit(unit),
    ]
    return len(run_checked(run, argv).splitlines())


def disk_usage(path: str) -> int:
    """Bytes allocated under ``path`` (a file or a directory tree, like ``du -s``): hard
    links counted once, symlinks not followed, entries that vanish meanwhile skipped. Raises
    OSError when ``path`` itself cannot be read."""
    seen: set[tuple[int, int]] = set()
    top = os.lstat(path)
    total = top.st_blocks * 512
    if not stat.S_ISDIR(top.st_mode):
        return total

    def failed(exc: OSError) -> None:
        raise exc

    for root, dirs, files in os.walk(path, onerror=failed):
        for name in dirs + files:
            try:
                info = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if info.st_nlink > 1:
                key = (info.st_dev, info.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += info.st_blocks * 512
    return total


def _disk(paths: Sequence[str]) -> dict[str, Any]:
    sizes: dict[str, int | None] = {}
    errors = []
    for path in paths:
        try:
            sizes[path] = disk_usage(path)
        except FileNotFoundError:
            sizes[path] = 0  # nothing there yet: no growth to hide
        except OSError as exc:
            sizes[path] = None
            errors.append(f"{path}: {exc.strerror or exc}")
    known = [size for size in sizes.values() if size is not None]
    return {
        "paths": sizes,
        "bytes": sum(known) if not errors else None,
        "error": "; ".join(errors) or None,
    }


def redis_measures(client: Any, stream: str) -> dict[str, Any]:
    """The Redis server's ``used_memory`` and the stream's length, or the ``error``."""
    try:
        memory = client.info("memory")
        return {
            "used_memory": int(memory["used_memory"]),
            "stream_length": int(client.xlen(stream)),
            "error": None,
        }
    except Exception as exc:  # any client failure is a fact about the host, never a crash
        return {
            "used_memory": None,
            "stream_length": None,
            "error": f"{type(exc).__name__}: {exc}",
        }


def measure_host(
    run: Runner,
    client: Any,
    *,
    unit: str,
    stream: str,
    paths: Sequence[str],
    n_restarts: int | None,
    now_s: float,
    log_window_s: float = DEFAULT_LOG_WINDOW_S,
) -> dict[str, Any]:
    """The host's stop-condition measures at ``now_s`` (epoch seconds): ``restarts``,
    ``log_lines``, ``disk`` and ``redis``, each with an ``error`` (None when measured).

    ``n_restarts`` is the unit's NRestarts (None when unknown); without a ``client``, ``redis``
    is None (the caller reads it with its own client). Raises EngineStateError only for bad
    arguments."""
    validate_unit(unit)
    paths = validate_stop_paths(paths)
    log_window_s = validate_log_window(log_window_s)
    restarts: dict[str, Any] = {"journal_24h": None, "n_restarts": n_restarts, "error": None}
    try:
        restarts["journal_24h"] = count_crash_restarts(run, unit, now_s)
    except EngineStateError as exc:
        restarts["error"] = f"journal unreadable: {exc}"
    counted = [v for v in (restarts["journal_24h"], n_restarts) if isinstance(v, int)]
    restarts["count"] = max(counted) if counted and restarts["error"] is None else None
    log: dict[str, Any] = {"window_s": log_window_s, "lines": None, "per_min": None}
    try:
        lines = count_log_lines(run, unit, now_s - log_window_s, now_s)
        log.update(lines=lines, per_min=round(lines * 60.0 / log_window_s, 1), error=None)
        log["capped"] = lines >= MAX_LOG_LINES
    except EngineStateError as exc:
        log["error"] = f"journal unreadable: {exc}"
    return {
        "measured_at": now_s,
        "restarts": restarts,
        "log_lines": log,
        "disk": _disk(paths),
        "redis": None if client is None else redis_measures(client, stream),
    }


def window_measures(window: Any, model: str | None) -> dict[str, Any]:
    """The events-based measures of an EventWindow: ``events``, ``payload_bytes`` (each
    event's payload size, oldest first), ``payload_p95`` (:func:`..telemetry.metrics.payload_p95`)
    and the consensus counts: ``low`` (consensus_count 0 or 1) and ``full`` (every voting
    model agreed and ``model`` voted)."""
    import numpy as np

    from ..telemetry.metrics import payload_p95

    n = int(window.n)
    columns = window.models.get(model) if model else None
    voted = columns.active & ~columns.shadow if columns is not None else np.zeros(n, dtype=bool)
    return {
        "events": n,
        "payload_bytes": window.payload_bytes.astype(int).tolist(),
        "payload_p95": payload_p95(window.payload_bytes),
        "low": int(np.count_nonzero(window.consensus_count <= 1)),
        "full": int(np.count_nonzero((window.consensus_count == window.total_models) & voted)),
    }


# The records after which the engine's sizes are measured from a new start: an activation's
# change records its measures; a rollback ends what they were the start of.
BASELINE_EVENTS = ("activation", "shadow", "promotion", "rollback_executed")


def activation_baseline(record: Any) -> dict[str, Any] | None:
    """The measures an activation record kept (``stop_baseline``), None without any."""
    if not isinstance(record, dict) or record.get("event") == "rollback_executed":
        return None
    baseline = record.get("stop_baseline")
    return baseline if isinstance(baseline, dict) else None


def check_host(
    run: Runner,
    client: Any,
    *,
    unit: str,
    stream: str,
    paths: Sequence[str],
    n_restarts: int | None,
    activation_log: str,
    thresholds: Any,
    sample: int,
    log_window_s: float = DEFAULT_LOG_WINDOW_S,
    now_s: float | None = None,
) -> dict[str, Any]:
    """Stop conditions 1-4 of this host before an activation changes anything: the measures
    now, the newest ``sample`` events of the stream (payload p95), the baseline of the newest
    activation in ``activation_log`` (since which the disk grew), judged at ``thresholds``
    (:func:`..judgement.stop_rules.judge_host`). The result's ``measures`` are what the
    activation's record keeps as its ``stop_baseline``. A stream that cannot be read leaves
    the payload undecided: the telemetry is the gate's business, and what follows every
    preflight (the gate, the promotion's check, the shadow's telemetry proof) fails closed on
    it."""
    import time

    from ..activation.log import ActivationLogError, last_record
    from ..judgement.stop_rules import judge_host
    from ..telemetry.stream import read_window

    now_s = time.time() if now_s is None else now_s
    measures = measure_host(
        run,
        client,
        unit=unit,
        stream=stream,
        paths=paths,
        n_restarts=n_restarts,
        now_s=now_s,
        log_window_s=log_window_s,
    )
    baseline, baseline_error = None, None
    try:
        baseline = activation_baseline(last_record(activation_log, BASELINE_EVENTS))
    except ActivationLogError as exc:
        baseline_error = f"disk_growth: activation log unreadable: {exc}"
    events, unread = None, None
    try:
        events = window_measures(read_window(client, stream, count=sample), None)
        del events["payload_bytes"]
    except Exception as exc:  # Redis down: judged by the gate or proof that follows
        unread = f"payload_p95: stream unreadable, left to the gate: {type(exc).__name__}: {exc}"
    judged = judge_host(measures, baseline, thresholds, events)
    judged["errors"] += [baseline_error] if baseline_error else []
    if unread:
        judged["undecided"].append(unread)
    return {"measures": measures, "events": events, "baseline": baseline, **judged}
