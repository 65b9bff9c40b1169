"""The shared low-level helpers: durable writes (model_safety.fileio) on real files in
tmp_path, and UTC timestamp text (model_safety.utctime) at its three precisions."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from model_safety import fileio, utctime

# --------------------------------------------------------------------------- fileio


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_fsync_directory_accepts_a_directory_and_refuses_anything_else(tmp_path):
    fileio.fsync_directory(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        fileio.fsync_directory(str(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        fileio.fsync_directory(str(tmp_path / "file"))


def test_write_all_loops_over_short_writes(tmp_path, monkeypatch):
    real_write = os.write
    sizes = []

    def short_write(fd, data):
        sizes.append(len(data))
        return real_write(fd, bytes(data[:3]))

    monkeypatch.setattr(fileio.os, "write", short_write)
    target = tmp_path / "out"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        fileio.write_all(fd, b"0123456789")
    finally:
        os.close(fd)
    assert target.read_bytes() == b"0123456789"
    assert sizes == [10, 7, 4, 1]


def test_ensure_directory_creates_with_exact_mode_and_leaves_existing_alone(tmp_path):
    previous = os.umask(0o077)
    try:
        fileio.ensure_directory(str(tmp_path / "a" / "b"), 0o750)
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "a" / "b") == 0o750
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    fileio.ensure_directory(str(existing), 0o700)
    assert mode_of(existing) == 0o755


def test_write_atomic_replaces_the_file_with_mode_and_owner(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(fileio, "fsync_directory", synced.append)
    target = tmp_path / "env"
    target.write_bytes(b"old contents that are longer\n")
    owner = (os.getuid(), os.getgid())
    fileio.write_atomic(str(target), b"new\n", 0o640, owner)
    assert target.read_bytes() == b"new\n"
    assert mode_of(target) == 0o640
    assert (target.stat().st_uid, target.stat().st_gid) == owner
    assert leftovers(tmp_path) == []
    assert synced == [str(tmp_path)]


def test_write_atomic_sets_the_mode_whatever_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        fileio.write_atomic(str(tmp_path / "shared"), b"x", 0o644)
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "shared") == 0o644


def test_write_atomic_without_replace_creates_but_never_overwrites(tmp_path):
    target = tmp_path / "lease"
    fileio.write_atomic(str(target), b"first\n", 0o600, replace=False)
    assert target.read_bytes() == b"first\n"
    assert mode_of(target) == 0o600
    with pytest.raises(FileExistsError):
        fileio.write_atomic(str(target), b"second\n", 0o600, replace=False)
    assert target.read_bytes() == b"first\n"
    assert leftovers(tmp_path) == []


def test_a_failed_write_atomic_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "manifest.json"
    target.write_bytes(b"old\n")

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fileio.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        fileio.write_atomic(str(target), b"new\n", 0o600)
    assert target.read_bytes() == b"old\n"
    assert leftovers(tmp_path) == []


def test_write_atomic_of_a_bare_name_writes_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fileio.write_atomic("state.json", b"{}\n", 0o600)
    assert (tmp_path / "state.json").read_bytes() == b"{}\n"


def test_write_atomic_into_a_missing_directory_fails_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        fileio.write_atomic(str(tmp_path / "missing" / "file"), b"x", 0o600)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- utctime

EAST = timezone(timedelta(hours=2))
# 2026-01-10T12:00:00.987654Z given in another zone: converted, never rounded up.
MOMENT = datetime(2026, 1, 10, 14, 0, 0, 987654, EAST)


@pytest.mark.parametrize(
    ("render", "converted", "whole_second"),
    [
        (utctime.iso_s, "2026-01-10T12:00:00Z", "2026-01-10T12:00:00Z"),
        (utctime.iso_ms, "2026-01-10T12:00:00.987Z", "2026-01-10T12:00:00.000Z"),
        (utctime.iso_us, "2026-01-10T12:00:00.987654Z", "2026-01-10T12:00:00.000000Z"),
    ],
)
def test_an_aware_datetime_is_converted_to_utc_and_truncated(render, converted, whole_second):
    assert render(MOMENT) == converted
    # Zero fractions keep their digits.
    assert render(datetime(2026, 1, 10, 12, tzinfo=UTC)) == whole_second


def test_epoch_seconds_are_accepted_as_int_and_float():
    epoch = datetime(2026, 1, 10, 12, tzinfo=UTC).timestamp()
    assert utctime.iso_s(int(epoch)) == "2026-01-10T12:00:00Z"
    assert utctime.iso_ms(epoch + 0.25) == "2026-01-10T12:00:00.250Z"
    assert utctime.iso_us(epoch + 0.5) == "2026-01-10T12:00:00.500000Z"
    assert utctime.as_utc(epoch) == datetime(2026, 1, 10, 12, tzinfo=UTC)


def test_as_utc_returns_the_same_instant_in_utc():
    converted = utctime.as_utc(MOMENT)
    assert converted == MOMENT and converted.tzinfo is UTC


@pytest.mark.parametrize("render", [utctime.iso_s, utctime.iso_ms, utctime.iso_us])
def test_a_naive_datetime_is_refused(render):
    with pytest.raises(ValueError, match="naive datetime"):
        render(datetime(2026, 1, 10, 12))


@pytest.mark.parametrize("value", [True, "2026-01-10T12:00:00Z", None])
def test_anything_but_a_datetime_or_epoch_seconds_is_refused(value):
    with pytest.raises(TypeError, match="not a datetime or epoch seconds"):
        utctime.iso_ms(value)
