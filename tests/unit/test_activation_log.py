"""The activation log (model_safety.activation.log) on real files in tmp_path: lines written,
read back, torn lines repaired and reported (and refused by last_record, and so by the canary
probe), failed appends taken back, concurrent appenders, and every refusal."""

from __future__ import annotations

import errno
import fcntl
import json
import math
import multiprocessing
import os
import stat
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from model_safety.activation import log as al
from model_safety.engine.systemd import ServiceState
from model_safety.monitor import probe as canary_probe
from model_safety.monitor.assess import assess
from model_safety.monitor.settings import MonitorSettings, new_state

T0 = datetime(2026, 1, 10, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def log_path(tmp_path: Path) -> str:
    return str(tmp_path / "quantum" / "qsc_canary.jsonl")


def test_append_writes_one_compact_line_with_ts_first_and_the_seed_keys_last(log_path):
    written = al.append_record(
        log_path, {"event": "activation", "model": "patchtst", "weight": 0.1}, now=T0
    )
    line = (
        '{"ts":"2026-01-10T12:00:00.123Z","event":"activation","model":"patchtst","weight":0.1,'
        '"timestamp":"2026-01-10T12:00:00.123Z","action":"canary_activated",'
        '"canary_model":"patchtst","canary_weight":0.1}'
    )
    assert written == {
        "record": {
            "ts": "2026-01-10T12:00:00.123Z",
            "event": "activation",
            "model": "patchtst",
            "weight": 0.1,
            "timestamp": "2026-01-10T12:00:00.123Z",
            "action": "canary_activated",
            "canary_model": "patchtst",
            "canary_weight": 0.1,
        },
        "line": line,
        "created": True,
        "repaired": False,
    }
    assert Path(log_path).read_text() == line + "\n"
    assert stat.S_IMODE(os.stat(log_path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(os.path.dirname(log_path)).st_mode) == 0o750


def test_records_read_back_in_order_and_last_record_filters(log_path):
    given_ts = "2026-01-10T11:00:00Z"
    al.append_record(log_path, {"event": "shadow", "model": "patchtst", "ts": given_ts})
    al.append_record(log_path, {"event": "activation", "model": "patchtst", "note": "é\nx"})
    al.append_record(log_path, {"event": "activation", "model": "nhits"})
    second = al.append_record(log_path, {"event": "rollback_executed", "model": "patchtst"})
    assert second["created"] is False
    lines = Path(log_path).read_bytes().split(b"\n")
    assert len(lines) == 5 and lines[-1] == b""  # four lines, newline-terminated, ASCII
    assert all(line.isascii() for line in lines)

    records, problems = al.read_records(log_path)
    assert problems == []
    assert [r["event"] for r in records] == [
        "shadow",
        "activation",
        "activation",
        "rollback_executed",
    ]
    assert records[0]["ts"] == given_ts
    assert list(records[0]) == ["event", "model", "ts", "timestamp", "action", "canary_model"]
    assert records[1]["note"] == "é\nx"  # escaped on disk, intact when read

    assert al.last_record(log_path)["event"] == "rollback_executed"
    assert al.last_record(log_path, "activation")["model"] == "nhits"
    assert al.last_record(log_path, "activation", model="patchtst")["note"] == "é\nx"
    assert al.last_record(log_path, ["shadow", "activation"], "patchtst")["event"] == "activation"
    assert al.last_record(log_path, "promotion") is None
    assert al.last_record(log_path, model="xgb") is None
    with pytest.raises(al.ActivationLogError, match="unknown event"):
        al.last_record(log_path, "canary")


def test_a_missing_log_has_no_records(tmp_path):
    assert al.read_records(str(tmp_path / "none.jsonl")) == ([], [])
    assert al.last_record(str(tmp_path / "none.jsonl"), "activation") is None


def test_a_torn_last_line_is_reported_then_repaired_by_the_next_append(log_path):
    al.append_record(log_path, {"event": "activation", "model": "patchtst"})
    with open(log_path, "ab") as log:
        log.write(b'{"ts":"2026-01-10T12:00:00.000Z","event":"rollb')  # killed mid-write
    records, problems = al.read_records(log_path)
    assert len(records) == 1
    assert len(problems) == 1 and problems[0].startswith(
        "line 2: torn last line (no newline at the end): "
    )
    assert "rollb" in problems[0]

    written = al.append_record(log_path, {"event": "rollback_executed", "model": "patchtst"})
    assert written["repaired"] is True
    records, problems = al.read_records(log_path)
    assert [r["event"] for r in records] == ["activation", "rollback_executed"]
    assert len(problems) == 1 and problems[0].startswith("line 2: unreadable: ")
    assert Path(log_path).read_text().endswith(written["line"] + "\n")
    assert al.append_record(log_path, {"event": "shadow"})["repaired"] is False


def test_unreadable_lines_are_reported_with_their_numbers(log_path):
    os.makedirs(os.path.dirname(log_path))
    Path(log_path).write_bytes(
        b'{"event":"activation"}\n[1,2]\n\n\xff\n{"event":"rollback_executed"}\n'
    )
    records, problems = al.read_records(log_path)
    assert [r["event"] for r in records] == ["activation", "rollback_executed"]
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4"]
    assert "not a JSON object" in problems[0]


def test_an_existing_log_keeps_its_mode(log_path):
    os.makedirs(os.path.dirname(log_path))
    Path(log_path).write_text("")
    os.chmod(log_path, 0o600)
    assert al.append_record(log_path, {"event": "shadow"}, mode="0644")["created"] is False
    assert stat.S_IMODE(os.stat(log_path).st_mode) == 0o600


def test_mode_and_group_of_a_new_log(log_path):
    gid = os.getegid()
    al.append_record(log_path, {"event": "shadow"}, mode="600", group=str(gid))
    status = os.stat(log_path)
    assert stat.S_IMODE(status.st_mode) == 0o600 and status.st_gid == gid


@pytest.mark.parametrize(
    ("mode", "expected"), [("0640", 0o640), ("640", 0o640), (0o600, 0o600), ("0750", 0o750)]
)
def test_parse_mode(mode, expected):
    assert al.parse_mode(mode) == expected


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("0666", "would let anyone write"),
        (0o642, "would let anyone write"),
        ("rw-r-----", "octal permission bits"),
        ("0800", "octal permission bits"),
        ("01640", "octal permission bits"),
        (-1, "octal permission bits"),
        (0o1000, "octal permission bits"),
        (True, "octal permission bits"),
        (None, "octal permission bits"),
    ],
)
def test_bad_modes_are_refused_before_writing(log_path, mode, message):
    with pytest.raises(al.ActivationLogError, match=message):
        al.append_record(log_path, {"event": "shadow"}, mode=mode)
    assert not os.path.exists(os.path.dirname(log_path))


def test_an_unknown_group_is_refused_before_writing(log_path):
    with pytest.raises(al.ActivationLogError, match="no such group: 'no-such-group-x'"):
        al.append_record(log_path, {"event": "shadow"}, group="no-such-group-x")
    assert not os.path.exists(os.path.dirname(log_path))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"event": "activation", "weight": math.nan}, "not loggable as JSON"),
        ({"event": "activation", "weight": math.inf}, "not loggable as JSON"),
        ({"event": "activation", "sha": {"nested": [1, -math.inf]}}, "not loggable as JSON"),
        ({"event": "activation", "when": datetime(2026, 1, 1)}, "not loggable as JSON"),
        ({"event": "canary"}, "event must be one of activation, activation_failed"),
        ({"event": None}, "event must be one of"),
        ({"model": "patchtst"}, "event must be one of"),
        ({"event": "activation", 1: "x"}, "record keys must be strings"),
        ({"event": "activation", "ts": "2026-01-10 12:00:00"}, "ts must be a UTC time"),
        ({"event": "activation", "ts": "2026-01-10T12:00:00+01:00"}, "ts must be a UTC time"),
        ({"event": "activation", "ts": "2026-13-40T12:00:00Z"}, "ts must be a UTC time"),
        ({"event": "activation", "ts": 1767000000}, "ts must be a UTC time"),
        (["event", "activation"], "a record must be a mapping"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_written(log_path, record, message):
    with pytest.raises(al.ActivationLogError, match=message):
        al.append_record(log_path, record)
    with pytest.raises(al.ActivationLogError, match=message):
        al.format_line(record)
    assert not os.path.exists(log_path)


def test_timestamps_are_utc_milliseconds():
    east = timezone(timedelta(hours=2))
    assert al.utc_timestamp(datetime(2026, 1, 10, 14, 0, 0, 999999, east)) == (
        "2026-01-10T12:00:00.999Z"
    )
    with pytest.raises(al.ActivationLogError, match="timezone-aware"):
        al.utc_timestamp(datetime(2026, 1, 10))


def test_an_unwritable_log_fails_as_an_activation_log_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(al.ActivationLogError, match="cannot append to"):
        al.append_record(str(blocker / "log.jsonl"), {"event": "shadow"})


def _append_many(path: str, writer: int, count: int) -> None:
    padding = "x" * (writer * 300)  # lines of different lengths, some longer than 4 KiB
    for index in range(count):
        al.append_record(
            path, {"event": "violation", "writer": writer, "index": index, "pad": padding}
        )


def test_concurrent_appenders_never_interleave(log_path):
    writers, count = 6, 150
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_append_many, args=(log_path, writer, count))
        for writer in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    records, problems = al.read_records(log_path)
    assert problems == []
    assert len(records) == writers * count
    for writer in range(writers):
        mine = [r["index"] for r in records if r["writer"] == writer]
        assert mine == list(range(count))  # each writer's lines whole and in its order
    assert all(len(r["pad"]) == r["writer"] * 300 for r in records)
    assert json.loads(Path(log_path).read_text().splitlines()[-1])["event"] == "violation"


# --------------------------------------------------------------------------- torn last lines


def _two_activations(log_path: str) -> dict:
    al.append_record(log_path, {"event": "activation", "model": "patchtst", "weight": 0.1})
    return al.append_record(log_path, {"event": "activation", "model": "patchtst", "weight": 0.2})


def test_last_record_refuses_a_torn_last_line_that_read_records_lists(log_path):
    newest = _two_activations(log_path)["record"]
    size = os.path.getsize(log_path)
    with open(log_path, "ab") as log:
        log.write(b'{"ts":"2026-01-10T12:00:00.000Z","event":"activa')  # an append cut short
    with pytest.raises(al.ActivationLogError) as raised:
        al.last_record(log_path, "activation", "patchtst")
    assert str(raised.value).startswith(
        f"{log_path} ends in a torn line (line 3 at byte {size}, 48 bytes, no newline at its end; "
        'starts \'{"ts":"2026-01-10T12:00:00.000Z","event"\'): '
    )
    records, problems = al.read_records(log_path)  # a reader that only lists records
    assert records[-1] == newest and len(records) == 2
    assert len(problems) == 1 and problems[0].startswith("line 3: torn last line")

    al.append_record(log_path, {"event": "shadow", "model": "nhits"})  # ends the torn line
    assert al.last_record(log_path, "activation", "patchtst") == newest


def test_last_record_refuses_a_whole_object_without_its_newline(log_path):
    _two_activations(log_path)
    with open(log_path, "ab") as log:
        log.write(b'{"event":"activation","model":"patchtst","weight":0.3}')
    with pytest.raises(al.ActivationLogError, match="ends in a torn line"):
        al.last_record(log_path)


def test_last_record_refuses_an_unreadable_last_line_but_skips_earlier_ones(log_path):
    os.makedirs(os.path.dirname(log_path))
    Path(log_path).write_bytes(b'{"event":"activation"}\nnot json\n{"event":"shadow"}\n[1]\n')
    with pytest.raises(al.ActivationLogError, match=r"ends in an unreadable line \(line 4 at byte"):
        al.last_record(log_path, "activation")
    with open(log_path, "ab") as log:
        log.write(b'{"event":"promotion"}\n')
    assert al.last_record(log_path, "activation") == {"event": "activation"}
    assert al.last_record(log_path) == {"event": "promotion"}


def test_a_reader_waits_for_an_append_in_progress(log_path):
    _two_activations(log_path)
    line = b'{"event":"activation","model":"patchtst","weight":0.3}\n'
    found: list[dict | None] = []
    with open(log_path, "ab") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)  # what append_record holds while it writes
        writer.write(line[:20])
        writer.flush()
        reader = threading.Thread(target=lambda: found.append(al.last_record(log_path)))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive()  # it does not read the half-written line
        writer.write(line[20:])
        writer.flush()
        fcntl.flock(writer, fcntl.LOCK_UN)
    reader.join(10)
    assert found == [json.loads(line)]


# --------------------------------------------------------------------------- failed appends


def _fail_part_way(code: int):
    """A write_all that writes half of the data, then fails like a full disk would."""

    def write_half(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(code, os.strerror(code))

    return write_half


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_an_append_that_fails_part_way_is_truncated_back(log_path, monkeypatch, code):
    newest = _two_activations(log_path)["record"]
    before = Path(log_path).read_bytes()
    monkeypatch.setattr(al, "write_all", _fail_part_way(code))
    with pytest.raises(al.ActivationLogError) as raised:
        al.append_record(log_path, {"event": "rollback_executed", "model": "patchtst"})
    assert str(raised.value) == (
        f"cannot append to {log_path}: {errno.errorcode[code]} ({os.strerror(code)}); nothing "
        f"was appended (the log is back to its {len(before)} bytes)"
    )
    assert Path(log_path).read_bytes() == before
    assert al.last_record(log_path) == newest


def test_a_failed_repairing_append_leaves_the_torn_line_as_it_was(log_path, monkeypatch):
    _two_activations(log_path)
    with open(log_path, "ab") as log:
        log.write(b'{"event":"rollb')
    before = Path(log_path).read_bytes()
    monkeypatch.setattr(al, "write_all", _fail_part_way(errno.ENOSPC))
    with pytest.raises(al.ActivationLogError, match="ENOSPC"):
        al.append_record(log_path, {"event": "rollback_executed"})
    assert Path(log_path).read_bytes() == before


def test_an_append_that_writes_nothing_leaves_the_log(log_path, monkeypatch):
    _two_activations(log_path)
    before = Path(log_path).read_bytes()

    def write_nothing(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(al, "write_all", write_nothing)
    with pytest.raises(al.ActivationLogError, match=r"ENOSPC .* nothing was appended"):
        al.append_record(log_path, {"event": "shadow"})
    assert Path(log_path).read_bytes() == before


def test_a_record_whose_fsync_fails_is_taken_back(log_path, monkeypatch):
    newest = _two_activations(log_path)["record"]
    before = Path(log_path).read_bytes()
    real_fsync, calls = os.fsync, []

    def fsync_failing_once(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_once)
    with pytest.raises(al.ActivationLogError, match=r"EIO .* nothing was appended"):
        al.append_record(log_path, {"event": "rollback_executed"})
    assert len(calls) == 2  # the truncation is fsynced too
    assert Path(log_path).read_bytes() == before
    assert al.last_record(log_path) == newest


def test_a_torn_line_that_cannot_be_truncated_is_said_and_refused(log_path, monkeypatch):
    _two_activations(log_path)
    monkeypatch.setattr(al, "write_all", _fail_part_way(errno.ENOSPC))

    def cannot_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "ftruncate", cannot_truncate)
    with pytest.raises(al.ActivationLogError) as raised:
        al.append_record(log_path, {"event": "rollback_executed", "model": "patchtst"})
    assert "ENOSPC" in str(raised.value)
    assert "could not be truncated away (EIO (Input/output error))" in str(raised.value)
    with pytest.raises(al.ActivationLogError, match="ends in a torn line"):
        al.last_record(log_path, "activation", "patchtst")


# --------------------------------------------------------------------------- the canary probe


def test_the_canary_probe_reports_a_torn_log_and_the_monitor_cannot_judge(log_path, monkeypatch):
    _two_activations(log_path)
    with open(log_path, "ab") as log:
        log.write(b'{"event":"activation","model":"patchtst","started_at":"2026-01-10T')
    service = ServiceState(
        unit="quantum-ai-engine.service",
        load_state="loaded",
        active_state="active",
        sub_state="running",
        main_pid=42,
        n_restarts=0,
        invocation_id="0123456789abcdef0123456789abcdef",
        active_enter_timestamp="",
        active_enter_monotonic_us=1,
        result="success",
    )
    config = {"canary": "patchtst", "canary_weight": 0.1, "voting": {}, "shadow": []}
    monkeypatch.setattr(canary_probe, "read_service_state", lambda run, unit: service)
    monkeypatch.setattr(canary_probe, "unit_expected_config", lambda *a: {"expected": config})
    telemetry = {"observations": {"rows": [], "malformed": 0, "last_id": None}, "silence_s": 1.0}
    monkeypatch.setattr(canary_probe, "_telemetry", lambda *a, **k: dict(telemetry))
    probe = canary_probe.probe_canary(
        None,
        None,
        unit=service.unit,
        baseline={},
        model="patchtst",
        stream="s",
        activation_log=log_path,
        pause=lambda seconds: None,
    )
    assert probe["activation"] is None
    assert probe["config_error"].startswith(
        f"cannot read the activation log: {log_path} ends in a torn line (line 3 at byte"
    )
    settings = MonitorSettings(model="patchtst")
    state = new_state("engine-01", settings, "2026-01-10T12:00:00.000Z", "0-0")
    _, check, _ = assess(state, probe, settings)
    assert check["status"] == "error" and "ends in a torn line" in check["reason"]


# --------------------------------------------------------------------------- the seed's keys

# The records as the producers write them (the playbooks' change_record and failure records,
# rollback.yml's two, the monitor's Monitor._record calls), rendered as Ansible would. A
# weight or a count may arrive as its text when a template renders it as a string.
HOST = "qlab1"
ROLLBACK_CMD = "ansible-playbook -i /work/main/inventory/lab playbooks/rollback.yml --limit qlab1"
BACKUP = "/opt/quantum/backups/model_activations/20261123T180604.174499Z_patchtst"
WEIGHTS = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
CHANGE = {  # what every change record of the playbooks carries
    "start_ts": "2026-11-23T18:06:00.512Z",
    "host": HOST,
    "model": "patchtst",
    "git_sha": "18c7dbb5f0c3a1e0b6b9d2f4c8e7a6b5c4d3e2f1",
    "invocation_id": "2e17ec0b4d6f4fe3a2070ee978cd2f25",
    "started_at": "2026-11-23T18:06:09.062103Z",
    "backup": BACKUP,
    "operator": "ops",
}
GATE = {
    "verdict": "PASS",
    "summary": "PASS: 342 events",
    "model": {"hold_share": 0.41},
    "reports": ["reports/safety/qlab1/quality_gate_20261123T180601Z.md"],
    "thresholds": {"max_class_share": 0.7},
    "thresholds_override": {},
}
VIOLATION = {
    "rule": "hold_collapse",
    "value": 0.783,
    "threshold": 0.7,
    "text": "Action collapse: HOLD=78.3% (>70%)",
    "count": 2,
}
RUNNER = {"ident": "rollback-x", "status": "successful", "rc": 0, "failures": {}, "seconds": 9.1}


def _canary(weight: object, event_count: object) -> dict:
    """canary_steps.yml's record."""
    return {
        "event": "activation",
        **CHANGE,
        "weight": weight,
        "weights": WEIGHTS,
        "cutover": "2026-11-23T05:43:00.000Z",
        "gate": {**GATE, "event_count": event_count},
        "votes": 20,
        "trade_rows": 28,
        "rollback_command": ROLLBACK_CMD,
    }


def _failed(kind: str) -> dict:
    """apply_change.yml's failure record of change_kind ``kind``."""
    return {
        "event": f"{kind}_failed",
        "start_ts": CHANGE["start_ts"],
        "host": HOST,
        "model": "patchtst",
        "reason": "Prove the build: 3 of 20 events in 60 s",
        "state": f"restored from {BACKUP}",
        "backup": BACKUP,
        "git_sha": CHANGE["git_sha"],
        "operator": "ops",
    }


CANARY_SEED = {
    "action": "canary_activated",
    "canary_model": "patchtst",
    "canary_weight": 0.1,
    "cutover_ts": "2026-11-23T05:43:00.000Z",
    "quality_gate_events": 342,
    "rollback_cmd": ROLLBACK_CMD,
}
PRODUCERS = {
    "canary": (_canary(0.1, 342), CANARY_SEED),
    "canary, numbers as text": (_canary("0.1", "342"), CANARY_SEED),
    "canary failed": (
        _failed("activation"),
        {
            "action": "canary_failed",
            "canary_model": "patchtst",
            "trigger": "Prove the build: 3 of 20 events in 60 s",
        },
    ),
    "shadow": (
        {
            "event": "shadow",
            **CHANGE,
            "model_path": "/opt/quantum/models/patchtst-v2.pth",
            "model_sha256": "ab" * 32,
            "shadow_events": 20,
            "rollback_command": ROLLBACK_CMD,
        },
        {"action": "shadow_activated", "canary_model": "patchtst", "rollback_cmd": ROLLBACK_CMD},
    ),
    "shadow failed": (
        _failed("shadow"),
        {
            "action": "shadow_failed",
            "canary_model": "patchtst",
            "trigger": "Prove the build: 3 of 20 events in 60 s",
        },
    ),
    "promotion": (
        {
            "event": "promotion",
            **CHANGE,
            "from": 0.1,
            "to": 0.25,
            "weights": {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.25, "patchtst": 0.25},
            "blockers": [],
            "decision_log": {"markdown": "reports/safety/qlab1/promotion.md"},
            "votes": 20,
            "rollback_command": ROLLBACK_CMD,
        },
        {"action": "promotion_step", "canary_model": "patchtst", "rollback_cmd": ROLLBACK_CMD},
    ),
    "promotion failed": (
        _failed("promotion"),
        {
            "action": "promotion_failed",
            "canary_model": "patchtst",
            "trigger": "Prove the build: 3 of 20 events in 60 s",
        },
    ),
    "rollback (playbook)": (
        {
            "event": "rollback_executed",
            "host": HOST,
            "model": "patchtst",
            "reason": "monitor 1a2b3c4d: qlab1 hold_collapse",
            "backup": BACKUP,
            "restored": ["/etc/quantum/ai-engine.env"],
            "removed": ["/etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf"],
            "changed": True,
            "invocation_id": "3f28fe1c5e7a5fe4b3181ff9890e3e36",
            "build": "18c7dbb",
            "config": {"voting": {"xgb": 0.25}, "shadow": ["patchtst"]},
            "operator": "ops",
        },
        {
            "action": "rollback_executed",
            "canary_model": "patchtst",
            "trigger": "monitor 1a2b3c4d: qlab1 hold_collapse",
        },
    ),
    "rollback failed (playbook)": (
        {
            "event": "rollback_failed",
            "host": HOST,
            "model": None,
            "reason": "manual rollback",
            "failure": "Take the activation lease: another activation holds the lease",
            "backup": "",
            "operator": "ops",
        },
        {"action": "rollback_failed", "trigger": "manual rollback"},
    ),
    "monitoring started": (
        {
            "event": "monitoring_started",
            "host": HOST,
            "model": "patchtst",
            "resumed": False,
            "window_start": "2026-11-23T18:06:09.062Z",
            "checks_done": 0,
            "settings": {"model": "patchtst", "duration_s": 21600.0},
            "webhook": None,
        },
        {"action": "monitoring_started", "canary_model": "patchtst"},
    ),
    "violation": (
        {"event": "violation", "host": HOST, "model": "patchtst", "check": 7, **VIOLATION},
        {
            "action": "violation",
            "canary_model": "patchtst",
            "violations": ["Action collapse: HOLD=78.3% (>70%)"],
        },
    ),
    # The monitor's own record sets violations (readable) and trigger: kept as it wrote them.
    "rollback (monitor)": (
        {
            "event": "rollback_executed",
            "host": HOST,
            "model": "patchtst",
            "result": "rolled_back",
            "violations": [VIOLATION["text"]],
            "violation_details": [VIOLATION],
            "trigger": "monitor 1a2b3c4d: qlab1 hold_collapse",
            "runner": RUNNER,
        },
        {"action": "rollback_executed", "canary_model": "patchtst"},
    ),
    "monitoring completed": (
        {
            "event": "monitoring_completed",
            "host": HOST,
            "model": "patchtst",
            "result": "safe",
            "checks": 720,
            "window_start": "2026-11-23T18:06:09.062Z",
            "duration_s": 21600.0,
        },
        {
            "action": "monitoring_completed",
            "canary_model": "patchtst",
            "checks_performed": 720,
            "duration_hours": 6.0,
        },
    ),
    "monitoring ended": (
        {
            "event": "monitoring_completed",
            "host": HOST,
            "model": "patchtst",
            "result": "ended",
            "reason": "patchtst is no longer the canary on qlab1",
            "checks": 3,
        },
        {"action": "monitoring_completed", "canary_model": "patchtst", "checks_performed": 3},
    ),
}


def test_every_event_has_an_action_and_a_producer_here():
    assert tuple(al.ACTIONS) == al.EVENTS
    assert {record["event"] for record, _ in PRODUCERS.values()} == set(al.EVENTS)


@pytest.mark.parametrize("producer", PRODUCERS)
def test_each_producer_s_record_gets_the_seed_keys_after_its_own(log_path, producer):
    given, seed = PRODUCERS[producer]
    written = al.append_record(log_path, given, now=T0)["record"]
    assert written == {
        "ts": "2026-01-10T12:00:00.123Z",
        **given,
        "timestamp": "2026-01-10T12:00:00.123Z",
        **seed,
    }
    assert list(written)[1 : len(given) + 1] == list(given)  # the caller's keys, in order
    assert al.last_record(log_path) == written


def test_the_seed_keys_take_a_given_ts_and_leave_the_caller_s_values_as_they_are(log_path):
    given = _canary("0.1", "342")
    record = {"ts": "2026-11-23T18:06:12.345Z", **given}
    written = al.append_record(log_path, record)["record"]
    assert written["timestamp"] == written["ts"] == "2026-11-23T18:06:12.345Z"
    assert {key: written[key] for key in record} == record  # "0.1" stays "0.1" in weight
    assert written["gate"]["event_count"] == "342" and written["quality_gate_events"] == 342


def test_a_seed_key_the_caller_set_is_kept(log_path):
    given = {
        "event": "rollback_executed",
        "model": "patchtst",
        "reason": "monitor 1a2b3c4d: qlab1 hold_collapse",
        "action": "rollback_executed_by_hand",
        "timestamp": "2026-01-10T11:59:59Z",
        "canary_model": "nhits",
        "trigger": "monitor",
        "violations": ["Action collapse: HOLD=78.3% (>70%)"],
    }
    written = al.append_record(log_path, given, now=T0)["record"]
    assert written == {"ts": "2026-01-10T12:00:00.123Z", **given}


@pytest.mark.parametrize(
    ("given", "left_out"),
    [
        ({"model": ""}, "canary_model"),
        ({"model": "  "}, "canary_model"),
        ({"model": None}, "canary_model"),
        ({"model": ["patchtst"]}, "canary_model"),
        ({"weight": "n/a"}, "canary_weight"),
        ({"weight": ""}, "canary_weight"),
        ({"weight": "nan"}, "canary_weight"),
        ({"weight": "inf"}, "canary_weight"),
        ({"weight": 10**400}, "canary_weight"),
        ({"weight": True}, "canary_weight"),
        ({"weight": None}, "canary_weight"),
        ({"cutover": ""}, "cutover_ts"),
        ({"cutover": None}, "cutover_ts"),
        ({"gate": "PASS"}, "quality_gate_events"),
        ({"gate": {}}, "quality_gate_events"),
        ({"gate": {"event_count": -1}}, "quality_gate_events"),
        ({"gate": {"event_count": 3.5}}, "quality_gate_events"),
        ({"gate": {"event_count": "many"}}, "quality_gate_events"),
        ({"gate": {"event_count": False}}, "quality_gate_events"),
        ({"rollback_command": ""}, "rollback_cmd"),
    ],
)
def test_a_seed_key_that_cannot_be_derived_is_left_out_and_the_record_logged(
    log_path, given, left_out
):
    written = al.append_record(log_path, {"event": "activation", **given}, now=T0)["record"]
    assert left_out not in written
    assert written["action"] == "canary_activated"
    assert al.last_record(log_path) == written


@pytest.mark.parametrize(
    ("record", "left_out"),
    [
        ({"event": "violation", "text": ""}, "violations"),
        ({"event": "rollback_failed", "reason": ""}, "trigger"),
        ({"event": "monitoring_completed", "checks": "a few"}, "checks_performed"),
        ({"event": "monitoring_completed", "duration_s": -1}, "duration_hours"),
        # Keys that belong to other events are not derived from a look-alike source.
        ({"event": "monitoring_completed", "reason": "ended"}, "trigger"),
        ({"event": "activation", "text": "a note"}, "violations"),
        ({"event": "violation", "checks": 3}, "checks_performed"),
    ],
)
def test_keys_of_the_monitor_and_of_failures_only_where_they_mean_that(log_path, record, left_out):
    assert left_out not in al.append_record(log_path, record)["record"]


def test_numbers_from_their_text_and_whole_floats():
    keys = al.seed_keys(
        {
            "ts": "2026-01-10T12:00:00Z",
            "event": "activation",
            "weight": " 0.25\n",
            "gate": {"event_count": 342.0},
        }
    )
    assert keys["canary_weight"] == 0.25 and keys["quality_gate_events"] == 342
    ended = {"ts": "2026-01-10T12:00:00Z", "event": "monitoring_completed", "duration_s": 30}
    assert al.seed_keys(ended)["duration_hours"] == round(30 / 3600, 6)


def _jq_select(records: list[dict], action: str) -> list[dict]:
    """jq 'select(.action=="<action>")'"""
    return [record for record in records if record.get("action") == action]


def test_a_host_s_story_filtered_by_action_as_a_runbook_does(log_path):
    story = [
        "shadow",
        "canary",
        "monitoring started",
        "violation",
        "rollback (monitor)",
        "rollback (playbook)",
        "canary failed",
        "rollback failed (playbook)",
        "promotion",
        "monitoring completed",
    ]
    for producer in story:
        al.append_record(log_path, PRODUCERS[producer][0])
    records, problems = al.read_records(log_path)
    assert problems == [] and len(records) == len(story)

    rollbacks = _jq_select(records, "rollback_executed")
    assert [r.get("trigger") for r in rollbacks] == ["monitor 1a2b3c4d: qlab1 hold_collapse"] * 2
    assert [r["canary_model"] for r in rollbacks] == ["patchtst"] * 2
    (canary,) = _jq_select(records, "canary_activated")
    assert (canary["canary_weight"], canary["quality_gate_events"]) == (0.1, 342)
    assert canary["cutover_ts"] == "2026-11-23T05:43:00.000Z"
    assert canary["rollback_cmd"] == ROLLBACK_CMD and canary["weights"] == WEIGHTS
    (violation,) = _jq_select(records, "violation")
    assert violation["violations"] == ["Action collapse: HOLD=78.3% (>70%)"]
    assert [r["action"] for r in records] == [
        "shadow_activated",
        "canary_activated",
        "monitoring_started",
        "violation",
        "rollback_executed",
        "rollback_executed",
        "canary_failed",
        "rollback_failed",
        "promotion_step",
        "monitoring_completed",
    ]
    assert all(r["timestamp"] == r["ts"] for r in records)
    assert al.last_record(log_path, "activation", "patchtst") == canary


def test_an_old_log_without_the_seed_keys_reads_as_before(log_path):
    os.makedirs(os.path.dirname(log_path))
    old = [
        {"ts": "2026-01-09T10:00:00.000Z", "event": "shadow", "model": "patchtst"},
        {"ts": "2026-01-09T11:00:00.000Z", "event": "activation", "model": "patchtst"},
        {"ts": "2026-01-09T12:00:00.000Z", "event": "rollback_executed", "reason": "manual"},
    ]
    Path(log_path).write_text("".join(json.dumps(record) + "\n" for record in old))
    assert al.read_records(log_path) == (old, [])
    assert al.last_record(log_path, "activation", "patchtst") == old[1]

    new = al.append_record(log_path, {"event": "activation", "model": "patchtst"})["record"]
    records, problems = al.read_records(log_path)
    assert problems == [] and records == [*old, new]  # old lines are read, never rewritten
    assert al.last_record(log_path, ["activation", "promotion"], "patchtst") == new
    assert _jq_select(records, "canary_activated") == [new]  # as jq: old lines lack .action
