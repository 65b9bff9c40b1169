"""Unit tests for model_safety.monitor.store: host locks, state files, the check log, the
Prometheus textfile and the webhook (against real local HTTP servers and sockets)."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from model_safety import fileio
from model_safety.monitor import store as monitor_io
from model_safety.monitor.report import prometheus_text
from model_safety.monitor.settings import MonitorSettings, new_state
from tests.monitor_events import close_check_loggers

MODULE_UTILS = Path(__file__).resolve().parents[2] / "module_utils"
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def mode_of(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- host locks ------------------------------------------------------------------------------


@pytest.fixture
def locks(tmp_path: Path) -> Iterator[list[monitor_io.HostLocks]]:
    """HostLocks made by a test, released afterwards."""
    made: list[monitor_io.HostLocks] = []
    yield made
    for item in made:
        item.release()


def new_locks(made: list[monitor_io.HostLocks], state_dir: Path) -> monitor_io.HostLocks:
    item = monitor_io.HostLocks(str(state_dir))
    made.append(item)
    return item


def test_a_second_lock_in_the_same_process_is_refused_and_names_the_holder(
    tmp_path: Path, locks: list[monitor_io.HostLocks]
) -> None:
    state_dir = tmp_path / "state"
    first = new_locks(locks, state_dir)
    first.acquire(["e1"], "patchtst")
    assert mode_of(state_dir) == 0o700
    assert mode_of(state_dir / "e1.lock") == 0o600
    holder = json.loads((state_dir / "e1.lock").read_text())
    assert (holder["pid"], holder["model"]) == (os.getpid(), "patchtst")
    assert TS.match(holder["since"])
    second = new_locks(locks, state_dir)
    with pytest.raises(monitor_io.MonitorIOError) as refused:
        second.acquire(["e1"], "nhits")
    message = str(refused.value)
    assert message.startswith("another monitor already watches e1 (")
    assert f'"pid": {os.getpid()}' in message
    assert '"model": "patchtst"' in message
    assert message.endswith("refusing to run a second one")
    # The refusal did not overwrite the holder's record.
    assert json.loads((state_dir / "e1.lock").read_text())["model"] == "patchtst"
    first.release()
    second.acquire(["e1"], "nhits")
    assert json.loads((state_dir / "e1.lock").read_text())["model"] == "nhits"


def test_locks_are_all_or_none(tmp_path: Path, locks: list[monitor_io.HostLocks]) -> None:
    state_dir = tmp_path / "state"
    holder = new_locks(locks, state_dir)
    holder.acquire(["e2"], "patchtst")
    loser = new_locks(locks, state_dir)
    with pytest.raises(monitor_io.MonitorIOError, match="already watches e2"):
        loser.acquire(["e1", "e2", "e3"], "patchtst")
    # e1 was locked before e2 was refused: it is free again; e3 was never taken.
    third = new_locks(locks, state_dir)
    third.acquire(["e1", "e3"], "patchtst")
    assert json.loads((state_dir / "e3.lock").read_text())["pid"] == os.getpid()


def test_bad_host_names_are_refused_before_anything_is_locked(
    tmp_path: Path, locks: list[monitor_io.HostLocks]
) -> None:
    state_dir = tmp_path / "state"
    item = new_locks(locks, state_dir)
    for bad in ("../e1", "", "-e1", "e1/x", "e 1"):
        with pytest.raises(monitor_io.MonitorIOError, match="not a usable inventory host name"):
            item.acquire(["ok1", bad], "patchtst")
    new_locks(locks, state_dir).acquire(["ok1"], "patchtst")  # released by the refusals
    assert sorted(os.listdir(state_dir)) == ["ok1.lock"]


HOLD_LOCK = """
import sys, time
from model_safety.monitor.store import HostLocks
HostLocks(sys.argv[1]).acquire(sys.argv[2:], "patchtst")
print("locked", flush=True)
time.sleep(60)
"""


def test_a_lock_of_another_process_is_refused_and_dropped_when_it_dies(
    tmp_path: Path, locks: list[monitor_io.HostLocks]
) -> None:
    state_dir = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(MODULE_UTILS)}
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(state_dir), "e1", "e2"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "locked\n"
        mine = new_locks(locks, state_dir)
        with pytest.raises(monitor_io.MonitorIOError) as refused:
            mine.acquire(["e2"], "patchtst")
        assert f'"pid": {child.pid}' in str(refused.value)
        child.kill()
        child.wait(10)
        # The kernel dropped the dead process's locks: no stale lock, no clean-up needed.
        mine.acquire(["e1", "e2"], "patchtst")
        assert json.loads((state_dir / "e2.lock").read_text())["pid"] == os.getpid()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def test_release_lets_another_take_the_lock(
    tmp_path: Path, locks: list[monitor_io.HostLocks]
) -> None:
    first = new_locks(locks, tmp_path)
    first.acquire(["e1", "e2"], "patchtst")
    first.release()
    first.release()  # twice is harmless
    new_locks(locks, tmp_path).acquire(["e1", "e2"], "patchtst")


# -- state store -------------------------------------------------------------------------------


def sample_state(host: str = "e1", model: str = "patchtst") -> dict[str, Any]:
    return {
        "host": host,
        "model": model,
        "status": "monitoring",
        "checks": 3,
        "consecutive": {"action_collapse": 1},
        "baseline": {"invocation_id": "abc", "weight": 0.1},
        "violations": [],
        "cursor": "1767000000000-0",
        "text": 'ünïcode "quoted"',
    }


def test_state_round_trip_and_mode(tmp_path: Path) -> None:
    state_dir = tmp_path / "monitor"
    store = monitor_io.StateStore(str(state_dir))
    assert store.load("e1", "patchtst") is None
    store.save(sample_state())
    path = Path(store.path("e1", "patchtst"))
    assert path == state_dir / "e1.patchtst.json"
    assert mode_of(path) == 0o600
    assert mode_of(state_dir) == 0o700
    assert store.load("e1", "patchtst") == sample_state()
    changed = {**sample_state(), "checks": 4}
    store.save(changed)
    assert store.load("e1", "patchtst") == changed
    assert sorted(os.listdir(state_dir)) == ["e1.patchtst.json"]  # no temporary file left
    # Another host and another model live in their own files.
    assert store.load("e2", "patchtst") is None
    assert store.load("e1", "nhits") is None


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b"", b"[1, 2]", b'"text"'],
    ids=["bad-json", "bad-utf8", "empty", "a-list", "a-string"],
)
def test_an_unusable_state_file_raises(tmp_path: Path, content: bytes) -> None:
    store = monitor_io.StateStore(str(tmp_path))
    Path(store.path("e1", "patchtst")).write_bytes(content)
    with pytest.raises(monitor_io.MonitorIOError, match="e1"):
        store.load("e1", "patchtst")


def test_a_state_of_another_host_or_model_raises(tmp_path: Path) -> None:
    store = monitor_io.StateStore(str(tmp_path))
    Path(store.path("e1", "patchtst")).write_text(json.dumps(sample_state("e2")))
    with pytest.raises(monitor_io.MonitorIOError, match="is not the monitor state of e1/patchtst"):
        store.load("e1", "patchtst")
    Path(store.path("e3", "patchtst")).write_text(json.dumps(sample_state("e3", "nhits")))
    with pytest.raises(monitor_io.MonitorIOError, match="is not the monitor state of e3/patchtst"):
        store.load("e3", "patchtst")


def test_a_state_directory_in_place_of_the_file_raises(tmp_path: Path) -> None:
    store = monitor_io.StateStore(str(tmp_path))
    os.mkdir(store.path("e1", "patchtst"))
    with pytest.raises(monitor_io.MonitorIOError, match="remove it to start a new window"):
        store.load("e1", "patchtst")


def test_state_store_refuses_bad_host_names(tmp_path: Path) -> None:
    store = monitor_io.StateStore(str(tmp_path))
    with pytest.raises(monitor_io.MonitorIOError):
        store.path("../etc", "patchtst")
    with pytest.raises(monitor_io.MonitorIOError):
        store.save(sample_state(host="a/b"))


# -- check log ---------------------------------------------------------------------------------


@pytest.fixture
def close_loggers(tmp_path: Path) -> Iterator[None]:
    """Close the check loggers a test opened under tmp_path (they are process-wide)."""
    yield
    close_check_loggers(tmp_path)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.usefixtures("close_loggers")
def test_log_check_writes_json_lines_with_ts(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "checks.jsonl"
    logger = monitor_io.check_logger(str(path))
    assert mode_of(tmp_path / "logs") == 0o750
    monitor_io.log_check(logger, {"check": 1, "host": "e1", "status": "ok", "odd": Path("/var/x")})
    monitor_io.log_check(logger, {"check": 2, "host": "e1", "status": "violation", "findings": []})
    for handler in logger.handlers:
        handler.flush()
    first, second = read_lines(path)
    assert TS.match(first["ts"]) and TS.match(second["ts"])
    assert (first["check"], first["status"], first["odd"]) == (1, "ok", "/var/x")
    assert second == {
        "ts": second["ts"],
        "check": 2,
        "host": "e1",
        "status": "violation",
        "findings": [],
    }
    assert not logger.propagate


@pytest.mark.usefixtures("close_loggers")
def test_one_handler_per_path_however_often_the_logger_is_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "checks.jsonl"
    first = monitor_io.check_logger(str(path))
    second = monitor_io.check_logger(str(path))
    assert first is second
    assert len(second.handlers) == 1
    monitor_io.log_check(second, {"check": 1})
    second.handlers[0].flush()
    assert len(path.read_text().splitlines()) == 1


@pytest.mark.usefixtures("close_loggers")
def test_the_check_log_rotates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitor_io, "CHECK_LOG_BYTES", 400)
    monkeypatch.setattr(monitor_io, "CHECK_LOG_BACKUPS", 2)
    path = tmp_path / "checks.jsonl"
    logger = monitor_io.check_logger(str(path))
    for number in range(60):
        monitor_io.log_check(logger, {"check": number, "host": "e1", "status": "ok"})
    for handler in logger.handlers:
        handler.flush()
    names = sorted(os.listdir(tmp_path))
    assert names == ["checks.jsonl", "checks.jsonl.1", "checks.jsonl.2"]
    kept: list[dict[str, Any]] = []
    for name in ("checks.jsonl.2", "checks.jsonl.1", "checks.jsonl"):  # oldest first
        assert os.path.getsize(tmp_path / name) <= 400
        kept += read_lines(tmp_path / name)
    numbers = [line["check"] for line in kept]
    assert numbers == list(range(60 - len(numbers), 60))  # the newest, in order, none lost
    assert all(TS.match(line["ts"]) for line in kept)


def test_default_check_log_rotation_settings() -> None:
    assert (monitor_io.CHECK_LOG_BYTES, monitor_io.CHECK_LOG_BACKUPS) == (10 * 1024 * 1024, 5)


# -- textfile ----------------------------------------------------------------------------------


def test_write_textfile_is_atomic_with_mode_0644(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        path = monitor_io.write_textfile(str(tmp_path), "patchtst", "metric 1\n")
    finally:
        os.umask(old_umask)
    assert path == str(tmp_path / "qsc_monitor_patchtst.prom")
    assert Path(path).read_text() == "metric 1\n"
    assert mode_of(path) == 0o644
    inode = os.stat(path).st_ino
    monitor_io.write_textfile(str(tmp_path), "patchtst", "metric 2\n")
    assert Path(path).read_text() == "metric 2\n"
    assert os.stat(path).st_ino != inode  # replaced by rename, never rewritten in place
    assert os.listdir(tmp_path) == ["qsc_monitor_patchtst.prom"]


def test_a_failed_textfile_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = monitor_io.write_textfile(str(tmp_path), "patchtst", "metric 1\n")

    def half_then_fail(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio, "write_all", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        monitor_io.write_textfile(str(tmp_path), "patchtst", "metric 2 with a longer line\n")
    assert Path(path).read_text() == "metric 1\n"
    assert os.listdir(tmp_path) == ["qsc_monitor_patchtst.prom"]


def test_write_textfile_into_a_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        monitor_io.write_textfile(str(tmp_path / "missing"), "patchtst", "x\n")


STARTED = "2026-01-10T12:00:00.000Z"


def monitor_states(model: str, **hosts: str) -> dict[str, dict[str, Any]]:
    """The states of ``model``'s monitor: each host checked 3 times, in the status given."""
    states = {}
    for host, status in hosts.items():
        state = new_state(host, MonitorSettings(model=model), STARTED, STARTED)
        state.update(
            baseline={"weight": 0.1},
            last_check_s=1767700000.25,
            checks=3,
            violations=[{"rule": "flat_predictions"}] if status == "rolled_back" else [],
            status=status,
        )
        states[host] = state
    return states


def read_families(path: str) -> list[Any]:
    return list(text_string_to_metric_families(Path(path).read_text()))


def test_the_textfile_reads_back_whole_with_prometheus_client(tmp_path: Path) -> None:
    states = monitor_states("patchtst", e1="rolled_back", **{'we"ird\\host': "inconclusive"})
    path = monitor_io.write_textfile(
        str(tmp_path), "patchtst", prometheus_text("patchtst", states, 1.5)
    )
    assert Path(path).read_text().endswith("\n")
    families = read_families(path)
    # One family per metric, each typed: a split family would come back as an untyped copy.
    assert [(f.name, f.type) for f in families] == [
        ("qsc_monitor_canary_weight_ratio", "gauge"),
        ("qsc_monitor_last_check_timestamp_seconds", "gauge"),
        ("qsc_monitor_checks", "counter"),  # the parser names a counter without its _total
        ("qsc_monitor_violations", "counter"),
        ("qsc_monitor_status", "gauge"),
        ("qsc_monitor_exported_timestamp_seconds", "gauge"),
    ]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }
    e1 = (("host", "e1"), ("model", "patchtst"))
    odd = (("host", 'we"ird\\host'), ("model", "patchtst"))
    assert samples == {
        ("qsc_monitor_canary_weight_ratio", e1): 0.1,
        ("qsc_monitor_canary_weight_ratio", odd): 0.1,
        ("qsc_monitor_last_check_timestamp_seconds", e1): 1767700000.25,
        ("qsc_monitor_last_check_timestamp_seconds", odd): 1767700000.25,
        ("qsc_monitor_checks_total", e1): 3,
        ("qsc_monitor_checks_total", odd): 3,
        ("qsc_monitor_violations_total", e1): 1,
        ("qsc_monitor_violations_total", odd): 0,
        **{
            ("qsc_monitor_status", (*labels, ("status", status))): float(status == current)
            for labels, current in ((e1, "rolled_back"), (odd, "inconclusive"))
            for status in (
                "monitoring",
                "rolling_back",
                "completed",
                "inconclusive",
                "rolled_back",
                "rollback_failed",
                "ended",
            )
        },
        ("qsc_monitor_exported_timestamp_seconds", (("model", "patchtst"),)): 1.5,
    }
    assert all(s.labels["model"] == "patchtst" for f in families for s in f.samples)


def test_two_models_textfiles_merge_without_a_duplicate_series(tmp_path: Path) -> None:
    # The same hosts watched by two monitors, one per model, in one textfile directory.
    paths = []
    for model in ("patchtst", "nhits"):
        states = monitor_states(model, e1="monitoring", e2="rolled_back")
        paths.append(
            monitor_io.write_textfile(str(tmp_path), model, prometheus_text(model, states, 2.0))
        )
    # node_exporter merges the files' families by name: their type and help must agree, and
    # no two series may share a name and labels ("collected before with the same name...").
    merged: dict[str, tuple[str, str]] = {}
    series = []
    for path in paths:
        for family in read_families(path):
            meta = (family.type, family.documentation)
            assert merged.setdefault(family.name, meta) == meta
            series += [(s.name, tuple(sorted(s.labels.items()))) for s in family.samples]
    # 2 files of 2 hosts x 11 series (7 of them the one-hot status) + the file's export time
    assert len(series) == len(set(series)) == 2 * (2 * 11 + 1)
    assert {dict(labels)["model"] for _, labels in series} == {"patchtst", "nhits"}


# -- webhook URL redaction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:pass@hooks.example.com/services/T0/B0/XYZ?token=abc",
            "https://hooks.example.com",
        ),
        ("http://hooks.example.com:8080/hook?key=secret#frag", "http://hooks.example.com:8080"),
        ("https://token@hooks.example.com", "https://hooks.example.com"),
        ("http://127.0.0.1:9/x", "http://127.0.0.1:9"),
    ],
)
def test_redact_webhook(url: str, shown: str) -> None:
    redacted = monitor_io.redact_webhook(url)
    assert redacted == shown
    for secret in ("user", "pass", "services", "token", "abc", "secret", "XYZ", "frag"):
        assert secret not in redacted


def test_redact_webhook_keeps_ipv6_brackets() -> None:
    assert monitor_io.redact_webhook("http://u:p@[::1]:8080/hook") == "http://[::1]:8080"


# -- webhook delivery --------------------------------------------------------------------------


class Recorder:
    """A threaded HTTP server on 127.0.0.1 answering with ``statuses`` in turn (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[dict[str, Any]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status = recorder.statuses.pop(0) if recorder.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-path?token=t"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def recorder_factory() -> Iterator[Any]:
    made: list[Recorder] = []

    def make(statuses: list[int] | None = None) -> Recorder:
        made.append(Recorder(statuses))
        return made[-1]

    yield make
    for item in made:
        item.close()


class Outcomes:
    """The webhook's report callback: collects outcomes, wakes waiters."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.event = threading.Event()

    def __call__(self, outcome: dict[str, Any]) -> None:
        self.items.append(outcome)
        self.event.set()

    def wait(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.event.wait(timeout), "the webhook never reported"
        return self.items[-1]


def test_a_notification_is_delivered_as_json(recorder_factory: Any) -> None:
    server = recorder_factory()
    outcomes = Outcomes()
    hook = monitor_io.Webhook(server.url, timeout=5, retries=2, backoff=0.05, report=outcomes)
    payload = {"event": "violation", "host": "e1", "model": "patchtst", "violations": [{"x": 1}]}
    hook.notify(payload)
    assert outcomes.wait() == {
        "webhook": "delivered",
        "event": "violation",
        "attempt": 1,
        "status": 200,
    }
    hook.drain(5)
    (request,) = server.requests
    assert request["path"] == "/hook/secret-path?token=t"
    assert json.loads(request["body"]) == payload
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["User-Agent"] == "model-safety"


def test_a_failing_endpoint_is_retried(recorder_factory: Any) -> None:
    server = recorder_factory([500, 503])
    outcomes = Outcomes()
    hook = monitor_io.Webhook(server.url, timeout=5, retries=2, backoff=0.05, report=outcomes)
    hook.notify({"event": "rollback_executed", "host": "e1"})
    hook.drain(5)
    assert outcomes.wait() == {
        "webhook": "delivered",
        "event": "rollback_executed",
        "attempt": 3,
        "status": 200,
    }
    assert len(outcomes.items) == 1
    assert len(server.requests) == 3
    assert {json.loads(r["body"])["event"] for r in server.requests} == {"rollback_executed"}


def test_retries_run_out_and_are_reported(recorder_factory: Any) -> None:
    server = recorder_factory([500, 500, 500])
    outcomes = Outcomes()
    hook = monitor_io.Webhook(server.url, timeout=5, retries=1, backoff=0.01, report=outcomes)
    hook.notify({"event": "violation"})
    hook.drain(5)
    outcome = outcomes.wait()
    assert (outcome["webhook"], outcome["attempts"], outcome["event"]) == ("failed", 2, "violation")
    assert outcome["error"] == "Internal Server Error"  # the reason of the last answer
    assert len(server.requests) == 2


@pytest.fixture
def dead_endpoint() -> Iterator[str]:
    """A socket that listens (connections complete in the kernel) but never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    listener.close()


def test_a_dead_endpoint_never_delays_the_caller(dead_endpoint: str) -> None:
    outcomes = Outcomes()
    hook = monitor_io.Webhook(dead_endpoint, timeout=0.3, retries=2, backoff=0.05, report=outcomes)
    began = time.monotonic()
    hook.notify({"event": "violation", "host": "e1"})
    assert time.monotonic() - began < 0.1
    began = time.monotonic()
    hook.drain(0.1)  # gives up after the wait, the delivery goes on
    assert time.monotonic() - began < 0.5
    outcome = outcomes.wait(10)
    assert outcome["webhook"] == "failed"
    assert (outcome["attempts"], outcome["event"]) == (3, "violation")
    assert "timed out" in outcome["error"]
    assert len(outcomes.items) == 1
    hook.drain(5)
    assert hook._threads == []


def test_a_refused_connection_is_reported_failed() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    outcomes = Outcomes()
    hook = monitor_io.Webhook(
        f"http://127.0.0.1:{port}/", timeout=1, retries=1, backoff=0.01, report=outcomes
    )
    hook.notify({"event": "x"})
    outcome = outcomes.wait()
    assert (outcome["webhook"], outcome["attempts"]) == ("failed", 2)
    assert "refused" in outcome["error"].lower()


def read_request(conn: socket.socket) -> bytes:
    """The whole HTTP request on ``conn`` (headers, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length:\s*(\d+)", head)
    while length and len(body) < int(length.group(1)):
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def not_http() -> Iterator[str]:
    """An endpoint that answers every connection with a line that is not HTTP (an SSH
    banner) and closes, as a wrong port would."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.settimeout(2)
                read_request(conn)  # answer only once the request is in: no reset races
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    stop.set()
    thread.join(5)
    listener.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_non_http_answer_is_retried_and_reported_failed(not_http: str) -> None:
    outcomes = Outcomes()
    hook = monitor_io.Webhook(not_http, timeout=1, retries=1, backoff=0.01, report=outcomes)
    hook.notify({"event": "violation"})
    hook.drain(5)
    outcome = outcomes.wait(0.5)
    assert (outcome["webhook"], outcome["attempts"]) == ("failed", 2)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://user:secret@hooks.example.com/hook",
        "file:///etc/passwd",
        "hooks.example.com/hook",
        "http:///no-host",
        "",
        "javascript:alert(1)",
    ],
)
def test_non_http_urls_are_refused(url: str) -> None:
    with pytest.raises(
        monitor_io.MonitorIOError, match=r"webhook URL must be http\(s\)://host/"
    ) as refused:
        monitor_io.Webhook(url)
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/services/T0K3N x",
        "https://hooks.example.com/services/T0K3N\t",
        "https://hooks.example.com/services/T0K3N\n",
        "https://hooks.example.com/services/T0K3N\x00",
        "https://hooks.example.com/services/T0K3N\x7f",
        "https://hooks.example.com/services/T0K3N\u00e9",
        12345,  # from a YAML config file
    ],
)
def test_urls_http_cannot_send_are_refused_up_front(url: str) -> None:
    # Accepted before, each delivery then failed with the path (and token) in its error.
    with pytest.raises(
        monitor_io.MonitorIOError, match="printable ASCII without spaces"
    ) as refused:
        monitor_io.Webhook(url)  # type: ignore[arg-type]
    assert "T0K3N" not in str(refused.value)
    assert "services" not in str(refused.value)
