"""The activation log (model_safety.activation_log) on real files in tmp_path: lines written,
read back, torn lines repaired and reported, concurrent appenders, and every refusal."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from model_safety import activation_log as al

T0 = datetime(2026, 1, 10, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def log_path(tmp_path: Path) -> str:
    return str(tmp_path / "quantum" / "qsc_canary.jsonl")


def test_append_writes_one_compact_line_with_ts_first(log_path):
    written = al.append_record(
        log_path, {"event": "activation", "model": "patchtst", "weight": 0.1}, now=T0
    )
    line = '{"ts":"2026-01-10T12:00:00.123Z","event":"activation","model":"patchtst","weight":0.1}'
    assert written == {
        "record": {
            "ts": "2026-01-10T12:00:00.123Z",
            "event": "activation",
            "model": "patchtst",
            "weight": 0.1,
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
    assert records[0]["ts"] == given_ts and list(records[0]) == ["event", "model", "ts"]
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
