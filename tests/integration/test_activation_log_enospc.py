"""The activation log on a real full filesystem: a small tmpfs (mounted by the test, so root
only) is filled until ENOSPC; an append then writes part of its line and fails. It must be
truncated back (the log's bytes as before, its last record still the newest), and a torn last
line must make last_record refuse. The activation_log module is run once too (ansible,
local connection) to see its failure message."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_safety.activation import log as al
from model_safety.fileio import write_all
from tests import local_ansible

# tmpfs hands out whole pages: the log's first page has room for a few KiB more, a record
# longer than that is written in part before ENOSPC.
BIG = {"event": "rollback_executed", "model": "patchtst", "pad": "x" * 6000}


def fill(root: Path) -> None:
    """Write a filler file until the filesystem has no free block left."""
    fd = os.open(root / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    assert os.statvfs(root).f_bavail == 0


@pytest.fixture
def full_tmpfs() -> Iterator[tuple[Path, str, bytes]]:
    """A 64 KiB tmpfs holding a log of two activations, then filled: (root, log, its bytes)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    root = Path(tempfile.mkdtemp(prefix="activation-log-tmpfs-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        root.rmdir()
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        log = str(root / "quantum" / "qsc_canary.jsonl")
        al.append_record(log, {"event": "activation", "model": "patchtst", "weight": 0.1})
        al.append_record(log, {"event": "activation", "model": "patchtst", "weight": 0.2})
        fill(root)
        yield root, log, Path(log).read_bytes()
    finally:
        subprocess.run(["umount", str(root)], check=True)
        root.rmdir()


def test_an_append_on_a_full_filesystem_is_truncated_back(full_tmpfs, monkeypatch):
    root, log, before = full_tmpfs
    sizes_at_failure: list[int] = []

    def spy(fd: int, data: bytes) -> None:
        try:
            write_all(fd, data)
        except OSError:
            sizes_at_failure.append(os.fstat(fd).st_size)
            raise

    monkeypatch.setattr(al, "write_all", spy)
    with pytest.raises(al.ActivationLogError) as raised:
        al.append_record(log, BIG)
    assert str(raised.value) == (
        f"cannot append to {log}: ENOSPC (No space left on device); nothing was appended "
        f"(the log is back to its {len(before)} bytes)"
    )
    assert len(before) < sizes_at_failure[0] < len(before) + len(json.dumps(BIG))  # torn
    assert Path(log).read_bytes() == before
    assert al.last_record(log, "activation", "patchtst")["weight"] == 0.2
    assert al.read_records(log)[1] == []

    # A crash mid-append leaves a torn line: refused, not read past.
    with open(log, "ab") as handle:
        handle.write(b'{"ts":"2026-01-10T12:00:00.000Z","event":"activation","mo')
    torn = Path(log).read_bytes()
    with pytest.raises(al.ActivationLogError, match=r"ends in a torn line \(line 3 at byte"):
        al.last_record(log, "activation", "patchtst")
    records, problems = al.read_records(log)
    assert [r["weight"] for r in records] == [0.1, 0.2] and len(problems) == 1

    # The repairing append fails too: the torn line is left as it was, still refused.
    with pytest.raises(al.ActivationLogError, match="ENOSPC"):
        al.append_record(log, BIG)
    assert Path(log).read_bytes() == torn

    (root / "filler").unlink()
    assert al.append_record(log, BIG)["repaired"] is True
    assert al.last_record(log)["pad"] == BIG["pad"]


def run_module(**args: object) -> tuple[bool, dict, str]:
    """Run activation_log once on localhost: (succeeded, its result, all output)."""
    return local_ansible.run_module("activation_log", args)


def test_the_module_fails_with_the_reason_and_appends_nothing(full_tmpfs):
    _, log, before = full_tmpfs
    succeeded, result, output = run_module(path=log, record=BIG)
    assert not succeeded, output
    assert result["msg"] == (
        f"activation log {log}: cannot append to {log}: ENOSPC (No space left on device); "
        f"nothing was appended (the log is back to its {len(before)} bytes)"
    ), output
    assert Path(log).read_bytes() == before
